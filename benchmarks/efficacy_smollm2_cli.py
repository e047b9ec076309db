"""One cell of the SmolLM2 merging study, re-run through the public command-line workflow.

The committed study (`efficacy_orthoreg.py --setting smollm2-open`, results in
`benchmarks/results/efficacy_orthoreg/smollm2-open/`) trains its LoRA adapters with its own loop and scores them by
teacher-forced exact match. This script runs one of its cells — plain LoRA (λ = 0), one seed, the four open-answer
`reasoning_gym` tasks — with nothing but the commands a user has:

1. `peft-orthoreg train` per task (TRL's SFTTrainer): the study's recipe (r 8, α 16, every linear layer, lr 1e-3,
   100 steps of batch 8, warm-up 10 % then cosine, no weight decay) on the study's training pool, written as a
   JSONL file (the pool drops every question of an evaluation split, which a spec cannot express);
2. `distillguard evaluate` per adapter on the task's test split, given as a data spec (`prompt=bare`, the study's
   reasoning-gym seeds and task options: the same 150 items, checked below);
3. `mergekit-plugins single-scores` on validation, then `search-alpha` on a `lora-merge` config with the study's
   α grid and criterion (mean normalised exact accuracy on 48 validation items per task), `--save-best`;
4. `distillguard evaluate` of the saved merged adapter on every test split.

The single-task adapters are also scored by the study's own teacher-forced exact match, so a difference from the
committed cell can be told apart into scoring (none, if the two scorers agree) and training.

Every step writes one file under `cache/seed<S>/` and is skipped when that file exists, so a killed run resumes. `results.md` compares the
cell with the committed one (same seed) and with the committed mean ± std over its 3 seeds.

    OMP_NUM_THREADS=1 python benchmarks/efficacy_smollm2_cli.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import efficacy_smollm2 as study
import yaml

from distill_ortho_merge.run_record import git_commit, machine

HERE = Path(__file__).resolve().parent
COMMITTED = HERE / "results" / "efficacy_orthoreg" / "smollm2-open" / "cache" / "lora" / "plain"
MODEL = "smollm2-135m-instruct"
METHODS = ("task_arithmetic", "tsv")
TRAIN = [
    "--lora_r", "8", "--lora_alpha", "16", "--lora_dropout", "0",
    "--lora_target_modules", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    "--learning_rate", "1e-3", "--max_steps", "100", "--per_device_train_batch_size", "8",
    "--lr_scheduler_type", "cosine", "--warmup_steps", "0.1", "--weight_decay", "0", "--orthoreg_weight", "0",
    "--logging_steps", "20",
]  # fmt: skip


def spec(task: str, kind: str) -> str:
    """The study's `kind` split of `task` ("val": 48 items, "test": 150) as a data spec."""
    n = {"val": study.HP["val_items"], "test": study.HP["test_items"]}[kind]
    options = "&".join(
        # a tuple as a Python literal without spaces: ('+','-','*')
        f"{k}={'(' + ','.join(map(repr, v)) + ')' if isinstance(v, tuple) else v}"
        for k, v in study.CONFIGS[task].items()
    )
    seed = study.SPLIT_SEED[kind] + study._index(task)
    return f"reasoning_gym:{task}?size={n}&seed={seed}&{options}&format=text&prompt=bare"


def check_specs() -> None:
    """The specs give exactly the study's evaluation items (prompt `{question}\\nAnswer:` and gold answer)."""
    from distill_ortho_merge.task_data import load_spec_rows

    for task in study.TASKS:
        for kind in ("val", "test"):
            rows = load_spec_rows(spec(task, kind), None, 0)
            ref = study.eval_items(task, kind, len(rows))
            same = [
                (r["prompt"], str(r["answer"])) == (q + "\nAnswer:", a)
                for r, (q, a) in zip(rows, ref, strict=True)
            ]
            if not all(same):
                sys.exit(f"efficacy_smollm2_cli: the {kind} spec of {task} differs from the study's items")


def run(cmd: list[str], log: Path) -> None:
    """Run one command of the workflow (its output in `log`); stop on failure."""
    print("$", shlex.join(cmd), flush=True)
    with log.open("w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if code:
        sys.exit(f"efficacy_smollm2_cli: exit {code} from {cmd[0]} {cmd[1]}; see {log}")


def evaluate(adapter: Path, task: str, out: Path, logs: Path) -> float:
    if not out.exists():
        run(["distillguard", "evaluate", "--model", MODEL, "--adapter", str(adapter), "--data", spec(task, "test"),
             "--verifier", "reasoning_gym", "--max_new_tokens", "24", "--batch_size", "32", "--progress", "false",
             "--output_json", str(out)], logs / f"{out.stem}.log")  # fmt: skip
    return json.loads(out.read_text())["exact_accuracy"]


def teacher_forced(adapters: list[Path]) -> dict[str, float]:
    """Test accuracy of each single-task adapter under the study's own scorer (`efficacy_smollm2.accuracy`)."""
    from peft import PeftModel

    out = {}
    for task, adapter in zip(study.TASKS, adapters, strict=True):
        model = PeftModel.from_pretrained(study.make_model(), str(adapter)).eval()
        out[task] = study.accuracy(model, study.eval_batch(task, "test", study.HP["test_items"]))
    return out


def committed(seed: int) -> dict:
    """The committed cell (`seed`) and every committed seed: single test accuracy per task; per method α and
    normalised test accuracy."""
    seeds = sorted(COMMITTED.glob("seed*"), key=lambda p: int(p.name[4:]))
    per_seed = {}
    for d in seeds:
        merge = json.loads((d / "merge.json").read_text())["merges"]
        per_seed[d.name] = {
            "single": {t: json.loads((d / f"{t}.json").read_text())["test"] for t in study.TASKS},
            **{
                m: {"alpha": merge[m]["alpha"], "norm": merge[m]["norm"], "abs": merge[m]["abs"]}
                for m in METHODS
            },
        }
    return {"this": per_seed[f"seed{seed}"], "all": per_seed}


def render_markdown(res: dict) -> str:
    """results.md from results.json: the CLI cell beside the committed cell of the same seed and the committed
    mean ± std (benchmarks/selfcheck.py checks the committed table against its JSON)."""
    ref = res["committed"]

    def ms(xs: list[float]) -> str:
        return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"

    seeds = list(ref["all"])
    lines = [
        f"# SmolLM2 merging study, one cell through the command line (plain LoRA, seed {res['seed']})", "",
        "Test exact accuracy (150 items per task). Committed: `efficacy_orthoreg.py --setting smollm2-open`",
        f"(its own training loop, teacher-forced exact match), the same seed and the mean ± std over {', '.join(seeds)}.",
        "",
        "| task / merge | command line | committed, same seed | committed, all seeds |", "|---|---|---|---|",
    ]  # fmt: skip
    for t in res["single"]:  # the task set it ran on (render needs no use_task_set)
        allv = [ref["all"][s]["single"][t] for s in seeds]
        lines.append(
            f"| single: {t} | {res['single'][t]:.3f} | {ref['this']['single'][t]:.3f} | {ms(allv)} |"
        )
        lines.append(f"| single: {t}, the study's scorer | {res['teacher_forced'][t]:.3f} | | |")
    for m in METHODS:
        for key, label in (("norm", "normalised"), ("abs", "absolute"), ("alpha", "α on validation")):
            allv = [ref["all"][s][m][key] for s in seeds]
            lines.append(f"| {m}: {label} | {res[m][key]:.3f} | {ref['this'][m][key]:.3f} | {ms(allv)} |")
    return "\n".join(lines + [""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "efficacy_smollm2_cli")
    a = ap.parse_args()
    study.use_task_set("open")
    check_specs()
    work = a.out / "cache" / f"seed{a.seed}"  # every step's output (the resumable part)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    start = time.time()
    adapters = []
    for i, task in enumerate(study.TASKS):
        data = work / f"train_{task}.jsonl"
        if not data.exists():
            rows = [{"prompt": f"{q}\nAnswer:", "answer": ans} for q, ans in study.train_items(task)]
            data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        adapter = work / "adapters" / task
        if not (adapter / "adapter_config.json").exists():
            run(["peft-orthoreg", "train", "--model_name_or_path", MODEL, "--dataset", str(data),
                 "--output_dir", str(adapter), "--overwrite_output_dir", "true", "--seed", str(a.seed * 1000 + i),
                 *TRAIN], logs / f"train_{task}.log")  # fmt: skip
        adapters.append(adapter)
    res: dict = {"seed": a.seed, "single": {}}
    for task, adapter in zip(study.TASKS, adapters, strict=True):
        res["single"][task] = evaluate(adapter, task, work / f"test_single_{task}.json", logs)
    # the same adapters under the study's scorer (teacher-forced exact match): any gap to the study is training
    forced = work / "teacher_forced.json"
    if not forced.exists():
        forced.write_text(json.dumps(teacher_forced(adapters), indent=1))
    res["teacher_forced"] = json.loads(forced.read_text())
    eval_args = ["--eval", "reasoning_gym", "--max-new-tokens", "24"]
    for task in study.TASKS:
        eval_args += ["--eval-data", f"{task}={spec(task, 'val')}"]
    single = work / "alpha" / "single.json"
    for m in METHODS:
        cfg = work / f"merge_{m}.yaml"
        cfg.write_text(yaml.safe_dump({"merge_method": m, "base_model": MODEL,
                                       "models": [{"model": str(p)} for p in adapters]}))  # fmt: skip
        if not single.exists():
            run(["mergekit-plugins", "single-scores", str(cfg), *eval_args, "--output-dir", str(work / "alpha")],
                logs / "single_scores.log")  # fmt: skip
        report, best = work / f"alpha_{m}" / "search_alpha.json", work / f"merged_{m}"
        if not report.exists():
            grid = ",".join(str(x) for x in study.HP["grid"][m])
            run(["mergekit-plugins", "search-alpha", str(cfg), *eval_args, "--grid", grid, "--criterion",
                 "exact_accuracy", "--single-task-scores", str(single), "--output-dir", str(work / f"alpha_{m}"),
                 "--save-best", str(best), "--overwrite", "--no-progress"], logs / f"search_{m}.log")  # fmt: skip
        alpha = json.loads(report.read_text())["best"]["alpha"]
        tests = [evaluate(best, t, work / f"test_{m}_{t}.json", logs) for t in study.TASKS]
        norm = statistics.mean(x / res["single"][t] for x, t in zip(tests, study.TASKS, strict=True))
        res[m] = {"alpha": alpha, "abs": statistics.mean(tests), "norm": norm, "test": dict(zip(study.TASKS, tests, strict=True))}  # fmt: skip
    res["committed"] = committed(a.seed)
    run_file = a.out / "run.json"
    history = json.loads(run_file.read_text())["invocations"] if run_file.exists() else []
    this = {"git_commit": git_commit(), "command": "python " + shlex.join(sys.argv),
            "machine": machine(int(os.environ.get("OMP_NUM_THREADS", "0")) or None),
            "wall_seconds": round(time.time() - start)}  # fmt: skip
    res["run"] = {"invocations": [*history, this]}
    run_file.write_text(json.dumps(res["run"], indent=1) + "\n")
    (a.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (a.out / "results.md").write_text(render_markdown(res))
    print((a.out / "results.md").read_text())


if __name__ == "__main__":
    main()
