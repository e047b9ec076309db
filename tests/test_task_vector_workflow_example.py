"""`examples/task_vector_workflow.sh` end to end on the tiny Llama (train 2 adapters, score, merge, choose α,
report): every command of the workflow through its console script. Minutes on a busy CPU, hence slow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from lora_fixtures import save_base

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_workflow_script_on_tiny_model(student_dir, tmp_path):
    pytest.importorskip("reasoning_gym")
    if not all(shutil.which(c) for c in ("peft-orthoreg", "distillguard", "mergekit-plugins")):
        pytest.skip("console scripts not installed (pip install -e .)")
    base = save_base(student_dir, tmp_path / "base", torch.float32)
    out = tmp_path / "wf"
    env = {**os.environ, "MODEL": str(base), "OUT": str(out), "STEPS": "2", "TRAIN_SIZE": "8", "EVAL_SIZE": "4",
           "GRID": "0.5,1.0", "PYTHONPATH": str(ROOT)}  # fmt: skip
    subprocess.run(["bash", "examples/task_vector_workflow.sh"], cwd=ROOT, env=env, check=True)
    report = json.loads((out / "alpha" / "search_alpha.json").read_text())
    assert report["route"].startswith("factor space") and [r["alpha"] for r in report["results"]] == [
        0.5,
        1.0,
    ]
    assert (out / "merged" / "adapter_model.safetensors").is_file()
    for task in ("gcd", "letter_counting"):
        result = json.loads((out / f"test_merged_{task}.json").read_text())
        assert result["n_items"] == 4 and {"exact_accuracy", "mean_score"} <= set(result)
