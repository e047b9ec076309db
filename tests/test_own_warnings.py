"""Our own calls raise no FutureWarning: every one a `distillguard` command prints comes from inside TRL or
transformers (listed on the command-line conventions page), never from a call site in this project's packages."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from trl_distillguard.cli import main as distillguard
from trl_distillguard.distill import distill
from trl_distillguard.distill_config import DistillConfig

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    ROOT / p for p in ("distill_ortho_merge", "trl_distillguard", "peft_orthoreg", "mergekit_plugins")
]


def ours(caught) -> list[str]:
    """The FutureWarnings whose reported call site (the warning's filename) is in one of our packages."""
    return [
        f"{w.filename}:{w.lineno}: {w.message}"
        for w in caught
        if issubclass(w.category, FutureWarning) and any(Path(w.filename).is_relative_to(p) for p in PACKAGES)
    ]


def test_calibrate_and_distill_cause_no_future_warning_of_ours(tmp_path, teacher_dir, student_dir):
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"prompt": f"What is {a} + 2?", "answer": str(a + 2)} for a in range(8)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calibrate = ["calibrate", "--config", str(ROOT / "examples/configs/tiny.yaml"), "--model_name_or_path",
                 str(teacher_dir), "--proxy_model_name_or_path", str(student_dir), "--dataset_name", str(prompts),
                 "--output_dir", str(tmp_path / "calibrated"), "--max_steps", "1", "--num_generations", "2",
                 "--max_completion_length", "4", "--disable_tqdm", "true"]  # fmt: skip
    config = DistillConfig(
        recipe="sft", teacher_model_name_or_path=str(teacher_dir), student_model_name_or_path=str(student_dir),
        dataset_name_or_path=str(prompts), output_dir=str(tmp_path / "distilled"), max_steps=1,
        per_device_train_batch_size=4, max_completion_length=4,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert distillguard(calibrate) == 0
        distill(config)
    assert not ours(caught), "\n".join(ours(caught))


def test_the_check_sees_a_warning_raised_from_our_code():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn_explicit("old", FutureWarning, str(PACKAGES[1] / "cli.py"), 1)
    assert len(ours(caught)) == 1
