"""Two torchrun (gloo) CPU processes give the same `with_orthoreg(SFTTrainer)` curve and weights as one process with
the same global batch: the orthoreg case of benchmarks/multiprocess_equivalence.py, run as a script, its result
file read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = 4  # the benchmark's optimizer steps per run


@pytest.mark.slow
@pytest.mark.skipif(
    not (Path(sys.executable).parent / "torchrun").exists(), reason="no torchrun next to python"
)
def test_two_processes_match_one_process_orthoreg(tmp_path):
    script = ROOT / "benchmarks" / "multiprocess_equivalence.py"
    run = subprocess.run(
        [sys.executable, str(script), "--cases", "orthoreg", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    layouts = json.loads((tmp_path / "multiprocess.json").read_text())["cases"]["orthoreg"]["layouts"]
    result = layouts["2 processes (torchrun, gloo), batch 2 each"]
    assert result["processes"] == 2 and result["distributed_type"] == "DistributedType.MULTI_CPU"
    assert len(result["curves"]["orthoreg"]) == STEPS and result["curves"]["orthoreg"][0] > 0
    assert result["within_tolerance"], result
