"""benchmarks/efficacy_knob.py through its command line: bad input (exit 2, one line naming the flag, nothing
written) and `--render_only` from a cache alone. Its task, driver, flags and renderer are checked by
`python benchmarks/selfcheck.py` (`efficacy_knob_checks.py`, run by test_benchmark_results.py); its statistics are
`distill_ortho_merge.stats` (test_stats.py)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "efficacy_knob.py"


def knob(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_a_missing_real_model_is_one_line_before_anything_is_written(tmp_path):
    out = knob("--setting", "real", "--real_dataset", "addition", "--out", str(tmp_path / "out"), "--workdir",
               str(tmp_path / "work"), "--real_models",
               f"teacher={tmp_path / 'missing'},proxy=x,student_a=x,student_b=x")  # fmt: skip
    err = out.stderr.strip()
    assert out.returncode == 2 and len(err.splitlines()) == 1 and err.startswith("efficacy_knob: "), err
    assert "--real_models teacher" in err and "missing" in err
    assert list(tmp_path.iterdir()) == []


def test_render_only_needs_the_cache_not_the_models(tmp_path):
    """Committed real results re-render from their own command line on a machine without the models: the cache
    folder is found again (the protocol's hash has not drifted), nothing is resolved or written but the rendered
    files."""
    committed = ROOT / "benchmarks/results/efficacy_knob/real"
    cache = tmp_path / "out/cache/real-7de90296"
    (cache / "original/all").mkdir(parents=True)
    shutil.copy(
        committed / "cache/real-7de90296/original/all/teacher.json", cache / "original/all/teacher.json"
    )
    command = shlex.split(json.loads((committed / "run.json").read_text())["command"])
    assert command[:2] == ["python", "benchmarks/efficacy_knob.py"]
    out = knob(
        *command[2:], "--out", str(tmp_path / "out"), "--workdir", str(tmp_path / "work"), "--render_only"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| original | 1 | 0.980 ± 0.000 |" in (tmp_path / "out/results.md").read_text()
    assert not (tmp_path / "work").exists() and not (tmp_path / "out/sweeps").exists()
