"""Which reasoning_gym tasks can the SmolLM2 OrthoReg setting use? One plain LoRA fine-tune per candidate (issue 13).

A task is usable when a 100-step LoRA fine-tune (the setting's exact recipe, seed 0) clearly beats both the base
model and a constant answer (the training pool's most common answer), and the fine-tune does not collapse onto one
answer. The first task set failed that last check: letter_counting was learned as "always 1" (its score equalled
the constant answer's) and gcd barely beat "always 2".

Per candidate the table gives: the base model's and the fine-tune's test accuracy, the constant answer's test
score, and how many distinct answers the fine-tune predicts on the test split (teacher-forced argmax token at
every answer position; a constant-answer fine-tune gives few, against the gold answers' count).

Resumable (one JSON per task under ``<out>/cache``); ``--shard i/n`` splits the candidates over processes; every
process renders results.json / results.md from what is cached when it finishes.

Run:  nohup python benchmarks/smollm2_task_pilot.py --shard 1/2 > /tmp/pilot1.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import efficacy_orthoreg as driver
import efficacy_smollm2 as setting
import torch

from distill_ortho_merge.run_record import git_commit, machine

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "efficacy_orthoreg" / "task_pilot"
MIN_TRAIN_POOL = 1000


def answers(tokens: torch.Tensor) -> list[tuple[int, ...]]:
    """Per row, its entries that are not -100 (the answer positions of a row aligned with ``labels[:, 1:]``)."""
    return [tuple(t for t in row.tolist() if t != -100) for row in tokens]


def pilot(task: str, base: dict[str, torch.Tensor]) -> dict:
    """Base and fine-tuned test accuracy of `task`, its constant-answer score and the fine-tune's answer spread."""
    setting.TASKS = (task,)  # the driver fine-tunes toy.TASKS[t]
    pool = len(setting.train_items(task))
    if pool < MIN_TRAIN_POOL:  # e.g. a value range so small that the evaluation splits hold every question
        return {"task": task, "config": setting.CONFIGS[task], "train_pool": pool,
                "skipped": f"only {pool} training questions outside the evaluation splits"}  # fmt: skip
    test = driver.split(task, "test")
    base_model = driver.model_at(base)
    base_acc = setting.accuracy(base_model, test)
    start = time.time()
    delta, extra = driver.finetune_lora(base, "plain", 0, 0, [])
    model = driver.model_at(base, delta)
    predicted = answers(setting.predictions(model, test))  # teacher-forced argmax at every answer position
    gold = [a for b in test for a in answers(b.labels[:, 1:])]
    return {
        "task": task,
        "config": setting.CONFIGS[task],
        "train_pool": pool,
        "base_test": base_acc,
        "finetuned_val": setting.accuracy(model, driver.split(task, "val")),
        "finetuned_test": setting.accuracy(model, test),
        "constant_answer_test": setting.majority_accuracy(task, "test", driver.HP["test_items"]),
        "distinct_answers": len(set(predicted)),
        "gold_distinct_answers": len(set(gold)),
        "losses": extra["losses"],
        "seconds": round(time.time() - start, 1),
    }


def render(cache: Path, out: Path, invocation: dict, commit: str, machine: str) -> None:
    """results.json (the cached rows, the hyper-parameters and the run record), results.md rendered from it."""
    run_path = out / "run.json"
    run = json.loads(run_path.read_text()) if run_path.exists() else {"invocations": []}
    run.update(git_commit=commit, machine=machine)
    run["invocations"].append(invocation)
    results = {
        "run": run,
        "hp": {k: driver.HP[k] for k in ("steps", "batch", "lora", "test_items")},
        "tasks": [json.loads(p.read_text()) for p in sorted(cache.glob("*.json"))],
    }
    driver.write_json(out / "results.json", results)
    driver.write_json(run_path, run)
    driver.atomic_write(out / "results.md", lambda p: p.write_text(render_md(results)))


def render_md(results: dict) -> str:
    run, hp = results["run"], results["hp"]
    lines = [
        "# Candidate tasks for the SmolLM2 OrthoReg setting: one plain LoRA fine-tune each (seed 0)",
        "",
        f"Git commit `{run['git_commit']}`; {run['machine']}.",
        "",
        "Commands (each resumes from the cache):",
        "",
        *[
            f"- `{i['command']}` ({i['wall_s']} s, finished {i['finished']})"
            + (f" — {i['note']}" if "note" in i else "")
            for i in run["invocations"]
        ],
        "",
        f"LoRA r {hp['lora']['r']}, α {hp['lora']['alpha']}, {hp['steps']} steps × {hp['batch']}; "
        f"test split {hp['test_items']} items, teacher-forced exact match.",
        "",
        "| task | config | base | fine-tuned (val) | fine-tuned (test) | constant answer | distinct answers "
        "(predicted / gold) | minutes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["tasks"]:
        cfg = ", ".join(f"{k} {v}" for k, v in r["config"].items())
        if "skipped" in r:
            lines.append(f"| {r['task']} | {cfg} | skipped: {r['skipped']} |" + " |" * 5)
            continue
        lines.append(
            f"| {r['task']} | {cfg} | {r['base_test']:.3f} | {r['finetuned_val']:.3f} | {r['finetuned_test']:.3f} "
            f"| {r['constant_answer_test']:.3f} | {r['distinct_answers']} / {r['gold_distinct_answers']} "
            f"| {r['seconds'] / 60:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--tasks", default=",".join(t for t in setting.CONFIGS if t not in ("letter_counting", "gcd"))
    )
    p.add_argument("--shard", default="1/1", help="i/n (1 ≤ i ≤ n): every n-th task, starting at the i-th")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--note", default="", help="recorded with this invocation in run.json")
    args = p.parse_args(argv)
    tasks = args.tasks.split(",")
    unknown = [t for t in tasks if t not in setting.CONFIGS]
    if unknown:
        print(f"smollm2_task_pilot: unknown --tasks {','.join(unknown)} (known: {', '.join(setting.CONFIGS)})",
              file=sys.stderr)  # fmt: skip
        return 2
    parsed = driver.parse_shard(args.shard)
    if parsed is None:
        print(
            f"smollm2_task_pilot: invalid --shard {args.shard} (expected i/n with 1 ≤ i ≤ n)", file=sys.stderr
        )
        return 2
    shard, shards = parsed
    torch.set_num_threads(1)
    driver.use_setting("smollm2")
    out = Path(args.out)
    cache = out / "cache"
    start, start_commit = time.time(), git_commit()
    base = None  # the model's own weights, loaded once when some task needs them
    for i, task in enumerate(tasks):
        path = cache / f"{task}.json"
        if args.render_only or i % shards != shard - 1 or path.exists():
            continue
        driver.log(f"pilot {task}")
        base = base if base is not None else driver.base_state(cache)  # a pretrained setting: its own weights
        result = pilot(task, base)
        driver.write_json(path, result)
        if "skipped" in result:
            driver.log(f"  {task}: skipped, {result['skipped']}")
            continue
        driver.log(f"  {task}: base {result['base_test']:.3f} fine-tuned {result['finetuned_test']:.3f} "
                   f"constant {result['constant_answer_test']:.3f} distinct {result['distinct_answers']}")  # fmt: skip
    invocation = driver.invocation(__file__, argv, start, args.note, start_commit)
    render(cache, out, invocation, git_commit(), machine(1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
