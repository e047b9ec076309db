"""OrthoReg on parameters sharded by FSDP2 (`fully_shard`, two torchrun gloo CPU processes): every form's value and
gradients equal the 1-process computation in fp64 (tests/fsdp2_orthoreg_worker.py); unsupported layouts and
forms without a sharded implementation are refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).parent / "torchrun"


@pytest.mark.skipif(not TORCHRUN.exists(), reason="no torchrun next to python")
def test_every_form_on_fsdp2_shards_matches_one_process(tmp_path):
    out = tmp_path / "fsdp2.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", str(ROOT / "tests" / "fsdp2_orthoreg_worker.py"), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["ranks"] == 2
    assert len(result["cases"]) == 8
    for name, case in result["cases"].items():
        assert case["one_process"] > 0.1, name  # a term worth comparing
        assert case["value"] <= 1e-10 and case["grad"] <= 1e-10, (name, case)
    refusals = result["refusals"]
    assert (
        "placements (Replicate(),)" in refusals["replicated DTensor"]
        and "fully_shard" in refusals["replicated DTensor"]
    )
    assert "dense flat-spectrum form has no implementation" in refusals["dense flat_spectrum"]


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="no torchrun next to python")
@pytest.mark.parametrize("case", ["lora", "full_ft"])
def test_with_orthoreg_sft_steps_on_a_fully_shard_model_match_one_process(case, tmp_path):
    from distill_ortho_merge import testing

    tok = testing.tokenizer_b()
    model_dir = testing.save_model(testing.make_student(tok), tok, tmp_path / "model")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    worker = str(ROOT / "tests" / "fsdp2_trainer_worker.py")
    runs = {}
    for shard, launcher in ((0, [sys.executable]), (1, [str(TORCHRUN), "--nproc_per_node", "2"])):
        out = tmp_path / f"run{shard}.json"
        done = subprocess.run([*launcher, worker, case, str(model_dir), str(out), str(shard)], env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        runs[shard] = json.loads(out.read_text())
    one, fsdp = runs[0], runs[1]
    assert fsdp["parameter_types"] == ["DTensor"] and len(one["logs"]) == len(fsdp["logs"]) == 3
    for key in ("loss", "orthoreg", "grad_norm"):
        a, b = [h[key] for h in one["logs"]], [h[key] for h in fsdp["logs"]]
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1e-4 * max(map(abs, a)), (key, a, b)
    assert one["logs"][0]["orthoreg"] > 0 and one["weights"].keys() == fsdp["weights"].keys()
    scale = max(abs(v) for w in one["weights"].values() for v in w)
    diff = max(
        abs(x - y) for n, w in one["weights"].items() for x, y in zip(w, fsdp["weights"][n], strict=True)
    )
    assert diff <= 1e-4 * scale
