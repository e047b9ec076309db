"""The gold bare-answer floor of candidate tasks: where are bare answers much harder to learn than traces?

A teacher made undistillable by calibration answers bare (`#### N`); its students can then sit no lower than
students trained on the task's gold bare answers. So the knob can only protect a task whose gold-bare students stay
far below gold-trace students at every attacker budget. This script measures that floor before any calibration,
on validation items only, in the tiny setting of `efficacy_knob.py` (students: a Llama on tokenizer A and a
Mistral on tokenizer B, hidden 64 × 2, trained from scratch by SFT on 1000 prompts × budget for 600 steps × budget).

Candidate tasks, each with four equally correct trace formats (one of them bare) ending in `#### N`:
`add3` (3-digit + 3-digit), `mul21` (2-digit × 1-digit), `sum46` (sums of 4–6 terms below 100), and `add21`
(2-digit + 1-digit: the knob study's task, the known negative case).

Criterion, fixed before any score was seen: a task is chosen when, for both student families, the mean
validation score of gold-bare students at 3× is ≤ 50 % of that of gold-trace students at 3×, and gold-trace
students at 3× reach ≥ 0.5 (the task is learnable from traces at all).

Real students (`--student smollm2-135m-instruct`, a built-in name or a local model folder; one model per `--out`):
the pretrained model is fine-tuned in full on the same gold completions with the knob study's real-setting attacker
recipe (`REAL_RECIPE`: 240 prompts, 30 steps × 16, lr 1e-4 per 1× budget) and scored on the same validation items.

Every (task, family, kind, budget, seed) result is one JSON file under `<out>/cache/`; re-running continues.

    python benchmarks/knob_floor.py --out benchmarks/results/knob_floor --seeds 0,1,2
    python benchmarks/knob_floor.py --student smollm2-135m-instruct --out benchmarks/results/knob_floor_smollm2 \
        --tasks mul21 --budgets 1,3

Example:
    >>> TASKS["mul21"].trace((34, 7), "split")
    ' 30*7=210. 4*7=28. 210+28=238. #### 238'
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

from knob_tasks import TASKS, split, tokenizer

from distill_ortho_merge.stats import welch

FAMILIES = {"a": "llama", "b": "mistral"}
KINDS = ("bare", "traces")
# A real (pretrained) student's 1x budget: the knob study's real-setting `t1` attacker (n_distill, distill_steps,
# distill_lr, batch); pretrained models need far fewer steps than the tiny from-scratch students.
REAL_RECIPE = {"n_prompts": 240, "steps": 30, "lr": 1e-4, "batch": 16}


def train_and_score(
    task: str,
    fam: str,
    kind: str,
    mult: int,
    seed: int,
    work: Path,
    size: tuple[int, int] = (64, 2),
    steps: int = 600,
    batch: int = 16,
    n_prompts: int = 1000,
    lr: float = 3e-3,
    model_path: str | None = None,
) -> dict:
    """Train one model on gold completions (`bare`: ` #### N`; `traces`: a uniformly random format per prompt,
    bare included) for `steps × mult` steps on `n_prompts × mult` prompts, and score it greedily on the validation
    items. From scratch by default: `size` is (hidden, layers), students are 64 × 2, and the knob study's teacher is
    a 128 × 4 Llama trained on traces with batch 32. With `model_path`, the pretrained model there (and its own
    tokenizer) is fine-tuned instead, and `fam` only names its cache folder."""  # fmt: skip
    from datasets import Dataset
    from efficacy_knob_task import new_lm
    from trl import SFTConfig, SFTTrainer

    from distill_ortho_merge.evaluate import evaluate
    from distill_ortho_merge.verifiers import math_answer

    t, parts = TASKS[task], split(task)
    rng = random.Random(seed)
    prompts = [rng.choice(parts["train"]) for _ in range(n_prompts * mult)]
    data = [
        {
            "prompt": t.question(x),
            "completion": t.trace(x, "direct" if kind == "bare" else rng.choice(t.formats)),
        }
        for x in prompts
    ]
    if model_path is None:
        tok = tokenizer(task, fam)
        model = new_lm(fam, tok, *size, seed=100 + seed)
    else:
        from trl_distillguard.loading import load_causal_lm

        model, tok = load_causal_lm(model_path, "--student")
    steps *= mult
    args = SFTConfig(
        output_dir=str(work / "_sft"), max_steps=steps, learning_rate=lr, per_device_train_batch_size=batch,
        lr_scheduler_type="cosine", warmup_steps=min(20, steps // 10), logging_steps=steps, save_strategy="no",
        report_to="none", use_cpu=True, bf16=False, seed=seed, max_length=None, disable_tqdm=True,
        activation_checkpointing=False,  # SFTConfig turns it on: it only recomputes, on CPU and small models
    )  # fmt: skip
    start = time.time()
    SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tok).train()
    shutil.rmtree(work / "_sft", ignore_errors=True)
    rows = [{"prompt": t.question(x), "answer": str(t.answer(x))} for x in parts["val"]]
    longest = max(len(tok(t.trace(x, f))["input_ids"]) for x in parts["val"][:20] for f in t.formats)
    result = evaluate(
        model.eval(), tok, rows, math_answer, max_new_tokens=longest + 8, batch_size=64, desc=None
    )
    return {
        "score": result.score,
        "train_samples": len(data),
        "steps": steps,
        "seconds": round(time.time() - start, 1),
    }


# ------------------------------------------------------------------------------------------------ sweep
def mean_std(xs: list[float]) -> str:
    """`mean ± std` (sample std; `±` omitted for one value)."""
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def n_range(counts: list[int]) -> str:
    """Seeds per cell of a row: `3`, or `2–3` when the row's cells have different counts (a sweep still running)."""
    return str(max(counts)) if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"


def students_of(out: Path) -> str:
    """The student size a results folder holds (`cache/setting.json`; the 64 × 2 folder predates that file)."""
    setting = out / "cache" / "setting.json"
    return json.loads(setting.read_text())["student"] if setting.exists() else "64x2"


def is_real(student: str) -> bool:
    """Whether `--student` names a pretrained model (a folder or built-in name) rather than a tiny HIDDENxLAYERS."""
    from efficacy_knob_task import parse_size

    try:
        parse_size(student)
    except ValueError:
        return True
    return False


def families_of(student: str) -> dict[str, str]:
    """Row label → cache folder of the families a folder holds: the tiny Llama and Mistral, or the one real model
    (`families_of("smollm2-135m-instruct")` → `{"smollm2-135m-instruct": "smollm2-135m-instruct"}`)."""
    if not is_real(student):
        return {f"{s} ({fam})": fam for s, fam in FAMILIES.items()}
    name = Path(student).name
    return {name: name}


def budget_unit(student: str) -> str:
    """What 1× means for this folder's students."""
    if is_real(student):
        return f"{REAL_RECIPE['n_prompts']} prompts, {REAL_RECIPE['steps']} steps"
    return "1000 prompts, 600 steps"


def render(out: Path, tasks: list[str], budgets: list[int]) -> str:
    """`results.md` from the cached JSON: one row per task and family, and the criterion's verdict per task."""
    student = students_of(out)
    judged = [m for m in budgets if m >= 3] or budgets[-1:]  # ratio and p at 3× (the criterion's) and above
    shown_as = (f"student {student}, full fine-tuning, 1× = {budget_unit(student)} × {REAL_RECIPE['batch']}, "
                f"lr {REAL_RECIPE['lr']:g}" if is_real(student) else f"students {student.replace('x', ' × ')}")  # fmt: skip
    lines = [f"# Gold bare-answer floor (validation), {shown_as}", "",
             "Mean ± std over seeds of the greedy validation score of students trained on gold bare answers or gold",
             "traces; ratio = bare / traces and p = Welch's t-test of bare vs traces at each budget of 3× and above.",
             "Criterion (fixed in advance): bare ≤ 50 % of traces",
             f"at 3× for {'the student' if is_real(student) else 'both families'}, and traces ≥ 0.5 at 3×.", "",
             "| task | student | " + " | ".join(f"bare {m}× | traces {m}×" for m in budgets) + " | "
             + " | ".join(f"ratio {m}× | p {m}×" for m in judged) + " | n |",
             "|---|---|" + "---|---|" * (len(budgets) + len(judged)) + "---|"]  # fmt: skip
    verdicts = []
    for task in tasks:
        ok_all = True
        for label, fam in families_of(student).items():
            cells, stats, at = [], [], {}
            counts: list[int] = []
            for m in budgets:
                for kind in KINDS:
                    at[m, kind] = [
                        json.loads(p.read_text())["score"]
                        for p in sorted((out / "cache" / task / fam / kind / f"{m}x").glob("seed*.json"))
                    ]
                    counts.append(len(at[m, kind]))
                    cells.append(mean_std(at[m, kind]) if at[m, kind] else "–")
            ok = 3 in budgets
            for m in judged:
                bare, traces = at[m, "bare"], at[m, "traces"]
                ratio = (
                    statistics.mean(bare) / statistics.mean(traces)
                    if bare and traces and any(traces)
                    else None
                )
                if m == 3:
                    ok &= ratio is not None and ratio <= 0.5 and statistics.mean(traces) >= 0.5
                p = f"{welch(bare, traces)['p']:.2g}" if min(len(bare), len(traces)) >= 2 else "–"
                stats += ["–" if ratio is None else f"{ratio:.2f}", p]
            ok_all &= ok
            lines.append(f"| {task} | {label} | " + " | ".join(cells + stats) + f" | {n_range(counts)} |")
        verdicts.append(f"- `{task}`: {'chosen' if ok_all else 'not chosen'}")
        teachers = sorted(
            (out / "cache" / task / "teacher").glob("*steps/seed0.json"),
            key=lambda t: int(t.parent.name[:-5]),
        )
        for t in teachers:
            r = json.loads(t.read_text())
            verdicts.append(f"  - teacher (128 × 4 Llama on traces, {r['steps']} steps): validation score {r['score']:.3f}"
                            f" ({'≥' if r['score'] >= 0.9 else '<'} 0.9)")  # fmt: skip
    return "\n".join(lines + ["", "## Verdict", "", *verdicts, ""])


def plot(out: Path, tasks: list[str]) -> Path:
    """`floor.png`: the budget curves, one panel per task and student family, validation score vs budget for
    gold-bare and gold-trace students (mean ± std over seeds; every budget with a cached result)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    student = students_of(out)
    families = families_of(student)
    fig, axes = plt.subplots(
        len(tasks), len(families), figsize=(4.5 * len(families), 3.2 * len(tasks)), squeeze=False
    )
    for row, task in zip(axes, tasks, strict=True):
        for ax, (label, fam) in zip(row, families.items(), strict=True):
            for kind, style in zip(KINDS, ("o:", "s-"), strict=True):
                pts = []
                for d in sorted(
                    (out / "cache" / task / fam / kind).glob("*x"), key=lambda d: int(d.name[:-1])
                ):
                    xs = [json.loads(f.read_text())["score"] for f in d.glob("seed*.json")]
                    if xs:
                        sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
                        pts.append((int(d.name[:-1]), statistics.mean(xs), sd))
                if pts:
                    ax.errorbar(*zip(*[(m, y) for m, y, _ in pts], strict=True), yerr=[e for *_, e in pts],
                                fmt=style, capsize=3, label=f"gold {kind}")  # fmt: skip
            ax.set_xticks(sorted({int(d.name[:-1]) for d in (out / "cache" / task / fam).glob("*/*x")}))
            size = "" if is_real(student) else f", {student.replace('x', ' × ')}"
            ax.set_title(f"{task}, student {label}{size}", fontsize=10)
            ax.set_xlabel(f"budget (× {budget_unit(student)})")
            ax.set_ylabel("validation score (greedy)")
            ax.set_ylim(0, 1.02)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "floor.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def shown_budgets(out: Path, budgets: list[int] = ()) -> list[int]:
    """Every budget with a cached student, plus `budgets`: a run of fewer budgets still renders the whole table,
    e.g. `shown_budgets(Path("benchmarks/results/knob_floor"))` → `[1, 3]`."""
    # cells are cache/<task>/<family>/<kind>/<M>x/seed<S>.json (teacher checks sit in <task>/teacher/)
    cached = {int(p.parent.name[:-1]) for p in (out / "cache").glob("*/*/*/*x/seed*.json")}
    return sorted(cached | set(budgets))


def shown(out: Path) -> list[str]:
    """Every task with a cached result (a later invocation may measure fewer tasks than an earlier one)."""
    return [t for t in TASKS if (out / "cache" / t).is_dir()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/knob_floor"))
    ap.add_argument("--tasks", default="mul21,sum46,add3,add21")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="1,3")
    ap.add_argument(
        "--student", default="64x2",
        help="students' HIDDENxLAYERS (tiny Llama and Mistral from scratch), or a pretrained model (folder or "
        "built-in name, e.g. smollm2-135m-instruct) fine-tuned with REAL_RECIPE; one student per --out folder",
    )  # fmt: skip
    ap.add_argument(
        "--teacher", action="store_true",
        help="also train the knob study's teacher shape (a 128 × 4 Llama, batch 32, 8000 trace prompts) per task "
        "(seed 0) and score it on validation: can a teacher reach ≥ 0.9 on the task?",
    )  # fmt: skip
    ap.add_argument("--teacher_steps", type=int, default=1000)
    ap.add_argument(
        "--render_only", action="store_true", help="re-render results.md from the cache; train nothing"
    )
    a = ap.parse_args()
    from efficacy_knob_task import parse_size

    model_path = None
    if is_real(a.student):
        from distill_ortho_merge.models import ModelError, resolve_model

        if "x" in a.student and not Path(a.student).exists() and a.student[0].isdigit():
            sys.exit(f"knob_floor: error: --student {a.student!r} is not HIDDENxLAYERS, e.g. 64x2")
        try:
            model_path = str(resolve_model(a.student, "--student"))
        except ModelError as e:
            sys.exit(f"knob_floor: error: {e}")
        size, student = (0, 0), a.student
    else:
        size = parse_size(a.student)
        student = f"{size[0]}x{size[1]}"
    held = students_of(a.out)
    if not a.render_only and (a.out / "cache").is_dir() and held != student:
        sys.exit(f"knob_floor: error: --out {a.out} holds {held} students, not --student {a.student}")
    tasks, seeds, budgets = (
        a.tasks.split(","),
        [int(s) for s in a.seeds.split(",")],
        [int(m) for m in a.budgets.split(",")],
    )
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        sys.exit(f"knob_floor: error: --tasks {bad[0]!r} is not one of {', '.join(TASKS)}")
    import torch

    from distill_ortho_merge.run_record import git_commit, machine

    torch.set_num_threads(1)
    # run.json: one record per invocation of this resumable sweep (each cell's JSON is written by exactly one)
    run_file = a.out / "run.json"
    this = {"git_commit": git_commit(), "command": "python " + shlex.join(sys.argv), "machine": machine(1),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wall_seconds": 0, "cells": 0}  # fmt: skip
    start = time.time()

    def publish() -> None:  # results.md and floor.png, from the whole cache
        (a.out / "results.md").write_text(render(a.out, shown(a.out), shown_budgets(a.out, budgets)))
        plot(a.out, shown(a.out))

    def record(finished: bool) -> None:
        this.update(wall_seconds=round(time.time() - start), finished=finished)
        setting_file = a.out / "cache" / "setting.json"
        setting_file.parent.mkdir(parents=True, exist_ok=True)  # also creates --out
        recipe = {"recipe": REAL_RECIPE} if model_path else {}
        setting_file.write_text(json.dumps({"student": student} | recipe) + "\n")
        publish()
        # re-read each time: two invocations on different cells of one folder may run side by side
        history = json.loads(run_file.read_text())["invocations"] if run_file.exists() else []
        others = [
            r for r in history if (r.get("started"), r["command"]) != (this["started"], this["command"])
        ]
        tmp = run_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"invocations": [*others, this]}, indent=1))
        os.replace(tmp, run_file)

    work = a.out / f"work.{os.getpid()}"  # trainer scratch, one per invocation: sweeps may run side by side

    def cell(path: Path, **kw) -> None:
        print(path.relative_to(a.out / "cache"), flush=True)
        result = train_and_score(work=work, **kw)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, path)
        this["cells"] += 1
        record(finished=False)

    for task in tasks if a.teacher and not a.render_only else ():
        path = a.out / "cache" / task / "teacher" / f"{a.teacher_steps}steps" / "seed0.json"
        if not path.exists():
            cell(path, task=task, fam="llama", kind="traces", mult=1, seed=0, size=(128, 4),
                 steps=a.teacher_steps, batch=32, n_prompts=8000)  # fmt: skip
    for seed in seeds:  # seed-major: a partial run still has every cell at n ≥ 1
        for task in tasks:
            for m in budgets:
                for kind in KINDS:
                    for fam in families_of(student).values():
                        path = a.out / "cache" / task / fam / kind / f"{m}x" / f"seed{seed}.json"
                        if path.exists() or a.render_only:
                            continue
                        real = REAL_RECIPE | {"model_path": model_path} if model_path else {}
                        cell(path, task=task, fam=fam, kind=kind, mult=m, seed=seed, size=size, **real)
    shutil.rmtree(work, ignore_errors=True)
    if a.render_only:
        publish()
    else:
        record(finished=True)


if __name__ == "__main__":
    main()
