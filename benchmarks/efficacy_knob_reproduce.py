"""Does the knob study's student cell, run through `distillguard report` (`efficacy_knob_suite.py`), reproduce the
number its own loop committed? Rebuilds the tiny setting's original teacher (deterministic SFT, the recorded
protocol's flags) and student b's initial weights in a fresh workdir, runs the one cell
`original/seed0/t1/b/sft` through the report, and compares it field by field with
`benchmarks/results/efficacy_knob/cache/tiny-1391fdae/original/seed0/t1/b/sft.json` (and the report's teacher
score with the committed teacher result). About 20 minutes on 2 busy CPU cores; a workdir that already holds
the teacher (`tiny-base-*/teacher`, deterministic) skips its training.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/efficacy_knob_reproduce.py --workdir /tmp/knob_repro/work
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import tempfile
import time
from pathlib import Path

from distill_ortho_merge.run_record import git_commit, machine

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("score", "n_train", "teacher_sample_accuracy", "final_loss", "format_mix_train")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=None, help="default: a temporary folder")
    ap.add_argument("--out", default="benchmarks/results/efficacy_knob_reproduce")
    a = ap.parse_args()
    started, commit, t0 = time.strftime("%Y-%m-%d %H:%M:%S"), git_commit(), time.perf_counter()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="knob-repro-"))
    ek = runpy.run_path(
        str(ROOT / "benchmarks/efficacy_knob.py"), run_name="efficacy_knob"
    )  # the study's module
    run_cells = ek["run_cells"]
    knob = ek["Knob"](ek["parse_args"](["--seeds", "0", "--etas=", "--attackers", "t1", "--students", "b",
                                  "--out", str(work / "out"), "--workdir", str(work)]))  # fmt: skip
    knob._setup_tiny()  # the original teacher and the students' initial weights (no proxy: not needed here)
    (new,) = run_cells(knob, "t1", 0, ["original"], ["b"], ["sft"], [])
    cache = ROOT / f"benchmarks/results/efficacy_knob/cache/tiny-{knob.tag}"
    committed = json.loads((cache / "original/seed0/t1/b/sft.json").read_text())
    teacher = json.loads((knob.work / "suite/report.json").read_text())["teachers"]["original"]["score"]
    results = {
        "cell": "original/seed0/t1/b/sft", "protocol_tag": knob.tag,
        "new": {k: new.get(k) for k in FIELDS}, "committed": {k: committed.get(k) for k in FIELDS},
        "identical": {k: new.get(k) == committed.get(k) for k in FIELDS},
        "teacher_score": {"new": teacher, "committed": json.loads((cache / "original/all/teacher.json").read_text())["teacher_score"]},
    }  # fmt: skip
    run = {"git_commit": commit, "command": "python " + " ".join(sys.argv), "machine": machine(1),
           "started": started, "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results | {"run": run}, indent=1))
    (out / "run.json").write_text(json.dumps(run, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
