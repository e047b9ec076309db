"""examples/quickstart.py, the README's first command, runs end to end in a fresh process (about 20 s)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_quickstart_end_to_end(tmp_path):
    out = tmp_path / "qs"
    proc = run("--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    for header in (
        "[1/4] tiny models",
        "[2/4] peft_orthoreg",
        "[3/4] mergekit_plugins",
        "[4/4] trl_distillguard",
    ):
        assert header in text
    # every stage printed its numbers
    assert re.search(r"λ=0\.01\s+add .*orthoreg .*\d+\.\d+ -> \d+\.\d+", text)
    assert re.search(r"cosine\(add, reverse\)\s+[+-]\d\.\d{4}\s+[+-]\d\.\d{4}", text)
    for method in ("task_arithmetic", "tsv", "iso_c"):
        assert re.search(rf"^  {method}\s+\d+\.\d{{3}}\s+\d+\.\d{{3}}\s+-?\d+%\s+-?\d+%$", text, re.M), method
    assert re.search(r"' The answer is 85\.'\s+\d+\s+\d+\s+-\d+\.\d{3}\s+-\d+\.\d{3}\s+[+-]\d+\.\d{3}", text)
    assert re.search(
        r"^\s+2\s+\d\.\d{4}\s+-?\d+\.\d{4}\s+-\d+\.\d{4}\s+-\d+\.\d{4}", text, re.M
    )  # GRPO step 2
    n = re.search(r"checks: (\d+)/(\d+) passed", text)
    assert n and n.group(1) == n.group(2) and int(n.group(2)) >= 10
    assert "quick start OK" in text and "FAILED" not in text
    # --out keeps what a user would look at next
    assert (out / "adapters" / "add" / "adapter_config.json").is_file()
    assert (out / "merges" / "tsv.yaml").is_file()
    assert list((out / "merges" / "iso_c").glob("*.safetensors"))
    assert "Traceback" not in proc.stderr and "FutureWarning" not in proc.stderr


def test_quickstart_refuses_a_non_empty_out_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    proc = run("--out", str(tmp_path))
    assert proc.returncode == 2
    assert "--out" in proc.stderr and "not empty" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def load_quickstart():
    import importlib.util

    spec = importlib.util.spec_from_file_location("quickstart_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failed_check_or_stage_exits_non_zero_and_cleans_up(monkeypatch, capsys, tmp_path):
    qs = load_quickstart()
    monkeypatch.setattr(qs.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "work"))
    monkeypatch.setattr(qs, "stage_build", lambda work, steps: (work / "base", work / "proxy"))
    monkeypatch.setattr(qs, "stage_orthoreg", lambda base, work, args, checks: checks.update(a=True, b=False))
    monkeypatch.setattr(qs, "stage_merge", lambda *a: Path("teacher"))
    monkeypatch.setattr(qs, "stage_distillguard", lambda *a: None)
    monkeypatch.setattr(qs, "quiet_frameworks", lambda: None)
    assert qs.main([]) == 1
    text = capsys.readouterr().out
    assert "checks: 1/2 passed" in text and "FAILED: b" in text and "quick start FAILED" in text
    assert not (tmp_path / "work").exists()  # the default work directory is removed

    def boom(*a):
        raise RuntimeError("merge failed")

    monkeypatch.setattr(qs, "stage_merge", boom)
    with pytest.raises(RuntimeError, match="merge failed"):  # not swallowed: the interpreter exits with 1
        qs.main([])
    assert not (tmp_path / "work").exists()
