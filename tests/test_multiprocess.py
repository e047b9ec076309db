"""Two torchrun (gloo) CPU processes give the same `with_orthoreg(SFTTrainer)` curve and weights as one process with
the same global batch (the orthoreg case of benchmarks/multiprocess_equivalence.py, two of its layouts)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from distill_ortho_merge import testing as tiny

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(
    not (Path(sys.executable).parent / "torchrun").exists(), reason="no torchrun next to python"
)
def test_two_processes_match_one_process_orthoreg(tmp_path, tokenizer_a):
    spec = importlib.util.spec_from_file_location("mpe", ROOT / "benchmarks" / "multiprocess_equivalence.py")
    mpe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mpe)
    tiny.save_model(tiny.make_teacher(tokenizer_a), tokenizer_a, tmp_path / "orthoreg_teacher")
    runs = {}
    for i, layout in enumerate(["1 process, batch 4", "2 processes (torchrun, gloo), batch 2 each"]):
        (tmp_path / str(i)).mkdir()
        runs[layout] = mpe.launch("orthoreg", layout, tmp_path, tmp_path / str(i))
    result = mpe.compare("orthoreg", runs)["layouts"]["2 processes (torchrun, gloo), batch 2 each"]
    assert result["processes"] == 2 and result["distributed_type"] == "DistributedType.MULTI_CPU"
    assert len(result["curves"]["orthoreg"]) == mpe.STEPS and result["curves"]["orthoreg"][0] > 0
    assert result["within_tolerance"], result
