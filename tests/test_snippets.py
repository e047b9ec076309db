"""Every program under examples/snippets/ (README and docs quote them verbatim) runs as is, offline, on a CPU,
on the tiny fixtures the README tells a user to build first (`examples/data/*.py`, here with fewer steps)."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = sorted((ROOT / "examples" / "snippets").glob("*.py"))
OFFLINE = {
    k: "1"
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE")
}

# One interpreter runs every snippet in a fresh `__main__` namespace (an undefined name still fails) from the
# working directory a user would have, and prints a JSON verdict per snippet; imports are paid once.
DRIVER = """
import json, runpy, sys, traceback
verdicts = {}
for path in sys.argv[1:]:
    try:
        runpy.run_path(path, run_name="__main__")
        verdicts[path] = "ok"
    except BaseException:
        verdicts[path] = traceback.format_exc(limit=-3)
print("VERDICTS " + json.dumps(verdicts))
"""


def test_each_snippet_starts_with_its_own_path():
    assert len(SNIPPETS) >= 4
    for path in SNIPPETS:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# examples/snippets/{path.name}", path


def test_every_snippet_runs_as_a_program(tmp_path):
    data = tmp_path / "examples" / "data"
    data.mkdir(parents=True)
    for f in (ROOT / "examples" / "data").glob("*.jsonl"):
        shutil.copy(f, data / f.name)
    runpy.run_path(str(ROOT / "examples" / "data" / "merge_tiny.py"))["build"](tmp_path / "models", steps=12)
    runpy.run_path(str(ROOT / "examples" / "data" / "calibrate_tiny.py"))["build"](
        data / "calibrate_tiny", steps=4
    )
    env = {
        **os.environ,
        **OFFLINE,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *map(str, SNIPPETS)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("VERDICTS ")), None)
    assert line, proc.stderr[-3000:]
    failed = {Path(k).name: v for k, v in json.loads(line[len("VERDICTS ") :]).items() if v != "ok"}
    assert not failed, failed
    assert (tmp_path / "outputs" / "snippets" / "task_a_full" / "config.json").is_file()
    assert (tmp_path / "outputs" / "snippets" / "merged-adapter" / "adapter_config.json").is_file()


@pytest.mark.parametrize("name", ["peft_orthoreg_lora.py", "trl_distillguard_calibrate.py"])
def test_snippets_use_our_cpu_safe_configs(name):
    """The snippets do not pass bf16 / use_cpu: the configs pick them (see tests/test_cpu_defaults.py)."""
    text = (ROOT / "examples" / "snippets" / name).read_text(encoding="utf-8")
    assert "bf16" not in text.replace("bf16 stays off", "") and "use_cpu" not in text
