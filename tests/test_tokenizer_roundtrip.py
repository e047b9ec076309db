"""Every tokenizer the project saves loads back exactly as it was trained: `AutoTokenizer.from_pretrained(dir)`
tokenizes a probe set like the saved `tokenizer.json` (transformers re-imposes some model types' own
pre-tokenizer, e.g. Qwen2's digit splitting, whatever tokenizer.json says), and the loaders warn when not."""

from __future__ import annotations

import logging
import runpy
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from distill_ortho_merge import testing as tiny
from distill_ortho_merge.tokenizer_check import (
    PROBE_TEXTS,
    tokenizer_json_mismatch,
    warn_if_tokenizer_differs,
)

ROOT = Path(__file__).resolve().parents[1]


def assert_round_trip(path: Path, trained=None) -> None:
    """AutoTokenizer == tokenizer.json (== the in-memory tokenizer it was saved from) on every probe text."""
    loaded = AutoTokenizer.from_pretrained(path)
    saved = Tokenizer.from_file(str(path / "tokenizer.json"))
    saved.no_padding()
    for text in PROBE_TEXTS:
        ids = loaded(text, add_special_tokens=False)["input_ids"]
        assert ids == saved.encode(text, add_special_tokens=False).ids, (path, text)
        if trained is not None:
            assert ids == trained(text, add_special_tokens=False)["input_ids"], (path, text)
        assert loaded.decode(ids) == saved.decode(ids, skip_special_tokens=False)
    if trained is not None:
        assert (loaded.pad_token_id, loaded.eos_token_id) == (trained.pad_token_id, trained.eos_token_id)
        assert loaded.chat_template == trained.chat_template


def test_fixture_tokenizers_round_trip(teacher_dir, student_dir, tokenizer_a, tokenizer_b, tmp_path):
    assert_round_trip(teacher_dir, tokenizer_a)  # qwen2 config: the case transformers overrides
    assert_round_trip(student_dir, tokenizer_b)
    # tokenizer A also serves a Llama (shared vocabulary for `kd`)
    assert_round_trip(
        tiny.save_model(tiny.make_student(tokenizer_a), tokenizer_a, tmp_path / "a"), tokenizer_a
    )


def test_the_issue_example_is_the_same_length_in_memory_and_reloaded(teacher_dir, tokenizer_a):
    text = "What is 47 + 38? The answer is 85."
    assert len(AutoTokenizer.from_pretrained(teacher_dir)(text)["input_ids"]) == len(
        tokenizer_a(text)["input_ids"]
    )


def test_save_model_refuses_a_tokenizer_its_model_type_would_not_load_back(tokenizer_b, tmp_path):
    """Tokenizer B (Llama pipeline) beside a Qwen2 config would reload with Qwen2's digit-splitting regex."""
    with pytest.raises(
        RuntimeError, match=r"tokenizes .* into \d+ tokens, its tokenizer.json into \d+.*qwen2"
    ):
        tiny.save_model(tiny.make_teacher(tokenizer_b), tokenizer_b, tmp_path / "bad")


def test_loaders_warn_on_a_mismatch(tokenizer_b, tmp_path, caplog):
    bad = tmp_path / "bad"
    tokenizer_b.save_pretrained(bad)
    tiny.make_teacher(tokenizer_b).config.save_pretrained(bad)
    loaded = AutoTokenizer.from_pretrained(bad)
    assert tokenizer_json_mismatch(loaded, bad) is not None
    with caplog.at_level(logging.WARNING, logger="distill_ortho_merge.tokenizer_check"):
        assert warn_if_tokenizer_differs(loaded, bad)
    assert "tokenizer.json" in caplog.text
    from trl_distillguard.loading import load_causal_lm

    tiny.make_teacher(tokenizer_b).save_pretrained(bad)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="distill_ortho_merge.tokenizer_check"):
        load_causal_lm(str(bad), "teacher")
    assert "tokenizes" in caplog.text


def test_example_builders_round_trip(tmp_path, monkeypatch):
    """examples/data/*.py (the quick start builds its models with calibrate_tiny.py)."""
    calibrate = runpy.run_path(str(ROOT / "examples" / "data" / "calibrate_tiny.py"))["build"]
    report = runpy.run_path(str(ROOT / "examples" / "data" / "report_tiny.py"))["build"]
    root = calibrate(tmp_path / "calibrate", steps=1)
    report(tmp_path / "report", steps=1)
    dirs = sorted(p.parent for p in tmp_path.rglob("tokenizer.json"))
    assert len(dirs) == 6
    for d in dirs:
        assert_round_trip(d)
    assert root == tmp_path / "calibrate"


def test_benchmark_tokenizers_round_trip(tmp_path, monkeypatch):
    """A digit-splitting tokenizer (what benchmarks/distillability_report.py gives its Llama student) round-trips."""
    tok_b = tiny.digit_tokenizer(640, tiny.corpus(2, mix=(0.1, 0.6, 0.3)))
    assert_round_trip(tiny.save_model(tiny.make_student(tok_b), tok_b, tmp_path / "b"), tok_b)
