"""The demo fixtures of examples/data/: the README's lora-merge command has its adapters, the toy tasks are
learned within seconds (so demos print scores away from 0), and what the README commands write is git-ignored."""

from __future__ import annotations

import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from mergekit_plugins import cli

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"


def test_documented_lora_merge_runs_on_the_example_adapters(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "examples" / "configs", tmp_path / "examples" / "configs")
    runpy.run_path(str(DATA / "merge_tiny.py"))["build"](tmp_path / "models", steps=8)
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == [
        "task_chat",
        "task_code",
        "task_math",
    ]
    monkeypatch.chdir(tmp_path)
    assert cli.main(["lora-merge", "examples/configs/merge_lora.yaml", "./merged-adapter"]) == 0
    assert (tmp_path / "merged-adapter" / "adapter_config.json").is_file()


def test_the_toy_sums_are_learned_in_seconds():
    """What every demo fixture relies on: 150 steps take the tiny teacher from 0 to well above 0 on the table."""
    from distill_ortho_merge import testing as tiny
    from distill_ortho_merge import toy_tasks
    from distill_ortho_merge.evaluate import evaluate
    from distill_ortho_merge.verifiers import math_answer

    rows = toy_tasks.sums()[::5]
    tok = tiny.tokenizer_a()
    model = tiny.make_teacher(tok)
    assert evaluate(model, tok, rows, math_answer, max_new_tokens=8, batch_size=20, desc=None).score == 0.0
    toy_tasks.train_lm(model, tok, toy_tasks.texts(toy_tasks.sums()), 150)
    assert evaluate(model, tok, rows, math_answer, max_new_tokens=8, batch_size=20, desc=None).score >= 0.3


def test_committed_prompt_sets_are_rows_of_the_learned_table():
    import json

    from distill_ortho_merge import toy_tasks

    table = {(r["prompt"], r["answer"]) for r in toy_tasks.sums()}
    seen = {}
    for name in ("calibrate_tiny.jsonl", "report_train.jsonl", "report_eval.jsonl"):
        rows = [json.loads(line) for line in (DATA / name).read_text().splitlines()]
        assert rows and {(r["prompt"], r["answer"]) for r in rows} <= table, name
        seen[name] = {r["prompt"] for r in rows}
    assert not seen["report_train.jsonl"] & seen["report_eval.jsonl"]  # the report evaluates held-out prompts


@pytest.mark.parametrize(
    "path", ["merged-tsv/config.json", "merged-adapter/x", "adapters/task_math/x", "models/base/x"]
)
def test_readme_outputs_are_git_ignored(path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    proc = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
    assert proc.returncode == 0, path
