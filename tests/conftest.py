"""Session-wide offline setup and the tiny model fixtures (`distill_ortho_merge.testing`)."""

from __future__ import annotations

import os
from pathlib import Path

# Offline before anything imports transformers/datasets/trl.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ[_var] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


import pytest  # noqa: E402
import torch  # noqa: E402

from distill_ortho_merge import testing as tiny  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def tokenizer_a():
    """ByteLevel BPE, 400 tokens, with chat template and pad/eos (the teacher's)."""
    return tiny.tokenizer_a()


@pytest.fixture(scope="session")
def tokenizer_b():
    """ByteLevel BPE, 640 tokens trained on other text (the student's / proxy's)."""
    return tiny.tokenizer_b()


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory, tokenizer_a) -> Path:
    """A tiny Qwen2 teacher saved with its tokenizer (read-only: copy it before training in place)."""
    return tiny.save_model(tiny.make_teacher(tokenizer_a), tokenizer_a, tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="session")
def student_dir(tmp_path_factory, tokenizer_b) -> Path:
    """A tiny Llama student saved with its own tokenizer."""
    return tiny.save_model(tiny.make_student(tokenizer_b), tokenizer_b, tmp_path_factory.mktemp("student"))


@pytest.fixture(scope="session")
def make_finetuned_copies():
    """The helper `tiny.make_finetuned_copies(base, n, scale, seed)`."""
    return tiny.make_finetuned_copies
