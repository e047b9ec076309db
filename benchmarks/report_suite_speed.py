"""Wall time of a tiny attack suite run by `distillguard report` against the same cells run one by one as a
`distill` (which loads and samples the teacher itself) followed by an evaluation of the student.

Suite: 2 teachers (the tiny Qwen2 teacher and a perturbed copy) × 2 students (Llama on the teacher's tokenizer and
on another) × 4 attackers (greedy, t07, t1, t1_2x) × 3 seeds, recipe `sft`, models from
`examples/data/report_tiny.py`, prompts `examples/data/report_train.jsonl`. The suite loads, scores and samples each
teacher once per seed and temperature; the one-by-one path does what the two commands do in-process (so Python and
library start-up, several seconds per command, is *not* counted against it). Both paths use the same prompts,
seeds and settings: the script also records whether every cell's score is the same.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/report_suite_speed.py --out benchmarks/results/report_suite_speed
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import shutil
import sys
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ[_var] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

from distill_ortho_merge.evaluate import evaluate, load_rows  # noqa: E402
from distill_ortho_merge.run_record import git_commit, machine  # noqa: E402
from trl_distillguard.attackers import prompt_order, resolve_attacker  # noqa: E402
from trl_distillguard.distill import distill  # noqa: E402
from trl_distillguard.distill_config import DistillConfig  # noqa: E402
from trl_distillguard.loading import load_causal_lm  # noqa: E402
from trl_distillguard.plugins import resolve_reward  # noqa: E402
from trl_distillguard.report import run_report  # noqa: E402
from trl_distillguard.report_config import ReportConfig  # noqa: E402

ATTACKERS = ["greedy", "t07", "t1", "t1_2x"]
DISTILL = {
    "max_steps": 4,
    "per_device_train_batch_size": 4,
    "max_completion_length": 12,
    "learning_rate": 1e-3,
}
EVAL = {"max_new_tokens": 12, "batch_size": 16}


def suite_config(models: Path, out: Path, seeds: int) -> ReportConfig:
    return ReportConfig(
        teachers={"original": str(models / "teacher"), "perturbed": str(models / "teacher_perturbed")},
        students={"llama_b": str(models / "student_llama_b"), "llama_a": str(models / "student_llama_a")},
        attackers=ATTACKERS, recipes=["sft"], seeds=seeds, train_dataset=str(ROOT / "examples/data/report_train.jsonl"),
        eval_dataset=str(ROOT / "examples/data/report_eval.jsonl"), verifier="math_answer", distill=DISTILL,
        eval_max_new_tokens=EVAL["max_new_tokens"], eval_batch_size=EVAL["batch_size"],
        evaluate_initial_students=False, output_dir=str(out),
    )  # fmt: skip


def one_by_one(cfg: ReportConfig, work: Path) -> dict[tuple, float]:
    """Every cell as `distill` + evaluation; teachers are evaluated once each (as a user would)."""
    verifier = resolve_reward(cfg.verifier, "verifier")
    train, evals = load_rows(cfg.train_dataset), load_rows(cfg.eval_dataset)
    for name, path in cfg.teachers.items():
        evaluate(*load_causal_lm(path, name), evals, verifier, desc=None, **EVAL)
    scores = {}
    for t_name, t_path in cfg.teachers.items():
        for seed in cfg.seed_list:
            for a_name in cfg.attackers:
                attacker = resolve_attacker(a_name)
                rows = prompt_order(train, len(train) * attacker.budget, seed)
                prompts = work / f"prompts-{seed}-{a_name}.jsonl"
                prompts.write_text("".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in rows))
                for s_name, s_path in cfg.students.items():
                    out = work / f"{t_name}-{s_name}-{a_name}-{seed}"
                    distill(DistillConfig(**{**DISTILL, "max_steps": DISTILL["max_steps"] * attacker.budget},
                                          recipe="sft", teacher_model_name_or_path=t_path, student_model_name_or_path=s_path,
                                          dataset_name_or_path=str(prompts), output_dir=str(out), seed=seed,
                                          sample_temperature=attacker.temperature), quiet=True)  # fmt: skip
                    res = evaluate(*load_causal_lm(str(out), "student"), evals, verifier, desc=None, **EVAL)
                    scores[(t_name, s_name, "sft", a_name, seed)] = res.score
                    shutil.rmtree(out)
    return scores


def render_markdown(results: dict) -> str:
    """results.md from results.json (`benchmarks/selfcheck.py` renders the committed one again)."""
    r = results
    return (
        f"# Attack suite vs one command per cell (tiny, CPU)\n\n"
        f"{r['cells']} cells (2 teachers × 2 students × {len(r['attackers'])} attackers × {r['seeds']} seeds, sft): "
        f"`distillguard report` {r['suite_seconds']} s with {r['suite_sampling_passes']} teacher "
        f"sampling passes; one `distill` + evaluation per cell {r['separate_seconds']} s with "
        f"{r['separate_sampling_passes']} (start-up of the commands not counted) — "
        f"{r['speedup']}× faster. Same score in {r['cells_with_the_same_score']} of "
        f"{r['separate_sampling_passes']} cells.\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/report_suite_speed")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()

    torch.set_num_threads(1)
    started, commit = time.strftime("%Y-%m-%d %H:%M:%S"), git_commit()  # the code this run imported
    with tempfile.TemporaryDirectory(prefix="report-suite-speed-") as tmp:
        tmp = Path(tmp)
        models = runpy.run_path(str(ROOT / "examples/data/report_tiny.py"))["build"](tmp / "models")
        cfg = suite_config(models, tmp / "suite", a.seeds)
        t0 = time.perf_counter()
        report = run_report(cfg)
        suite_s = time.perf_counter() - t0
        (tmp / "separate").mkdir()
        t0 = time.perf_counter()
        separate = one_by_one(cfg, tmp / "separate")
        separate_s = time.perf_counter() - t0
    suite_scores = {(c["teacher"], c["student"], c["recipe"], c["attacker"], c["seed"]): c["student_score"]
                    for c in report["cells"]}  # fmt: skip
    same = sum(suite_scores[k] == v for k, v in separate.items())
    results = {
        "cells": len(report["cells"]), "suite_seconds": round(suite_s, 1), "separate_seconds": round(separate_s, 1),
        "speedup": round(separate_s / suite_s, 2), "suite_sampling_passes": report["run"]["sampling_passes"],
        "separate_sampling_passes": len(separate), "cells_with_the_same_score": same,
        "attackers": ATTACKERS, "seeds": a.seeds, "distill": DISTILL, "eval": EVAL,
    }  # fmt: skip
    run = {"git_commit": commit, "command": "python " + " ".join(sys.argv), "machine": machine(1),
           "started": started, "wall_s": round(suite_s + separate_s, 1)}  # fmt: skip
    results["run"] = run
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(render_markdown(results))
    (out / "run.json").write_text(json.dumps(run, indent=1))
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
