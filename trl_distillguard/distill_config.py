"""Configuration of `distillguard distill` (TRL-style dataclass; every field documented in `metadata`).

Example:
    >>> from trl_distillguard.distill_config import DistillConfig
    >>> cfg = DistillConfig(recipe="sft", teacher_model_name_or_path="t", student_model_name_or_path="s",
    ...                     dataset_name_or_path="p.jsonl", output_dir="out")
    >>> DistillConfig(**cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

RECIPES = ("sft", "kd", "uld")


@dataclass
class DistillConfig:
    """How to distil one student from one teacher (`recipe` = `sft`, `kd` or `uld`).

    Example:
        >>> DistillConfig(recipe="kd", on_policy_fraction=0.25).divergence_beta
        0.5
    """

    recipe: str = field(
        default="sft",
        metadata={
            "help": "Distillation recipe: `sft` (sequence-level KD: SFT on the teacher's sampled completions, any "
            "tokenizers), `kd` (logit distillation, TRL `DistillationTrainer`, shared vocabulary only) or `uld` "
            "(cross-tokenizer logit distillation, TRL `experimental.gold` ULD loss, ByteLevel-BPE tokenizers).",
            "choices": list(RECIPES),
        },
    )
    teacher_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "The teacher: a model directory (with its tokenizer), a *.gguf file or a built-in model name."
        },
    )
    student_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "The initial student: a model directory, a *.gguf file or a built-in model name."},
    )
    dataset_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Train prompt set: a local .jsonl/.json/.parquet file or a directory of them."},
    )
    prompt_column: str = field(
        default="prompt", metadata={"help": "Column holding the prompts (text or messages)."}
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where the distilled student (full model + tokenizer) and `distill.json` are written."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace an existing non-empty `output_dir` (atomically, at the end)."},
    )
    num_samples_per_prompt: int = field(
        default=1, metadata={"help": "`sft`/`uld`: teacher completions sampled per prompt for the train set."}
    )
    sample_temperature: float = field(
        default=1.0,
        metadata={
            "help": "`sft`/`uld`: temperature of the teacher's sampling (0 = greedy, one sample per prompt)."
        },
    )
    max_completion_length: int = field(
        default=64,
        metadata={"help": "Maximum new tokens of every teacher sample and on-policy student sample."},
    )
    on_policy_fraction: float = field(
        default=0.5,
        metadata={
            "help": "`kd`/`uld`: probability that a generation batch is sampled by the student (on-policy); otherwise "
            "the teacher's samples are used (GKD's lambda)."
        },
    )
    divergence_beta: float = field(
        default=0.5,
        metadata={
            "help": "`kd`/`uld` (GOLD's JSD path): generalized-JSD interpolation, 0 = forward KL, 1 = reverse KL."
        },
    )
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate of the student."})
    max_steps: int = field(default=100, metadata={"help": "Optimizer steps of the distillation."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Sequences per optimizer step."})
    seed: int = field(
        default=0, metadata={"help": "Seed of the teacher's sampling and of the student's training."}
    )
    generation_batch_size: int = field(
        default=16, metadata={"help": "Prompts per batched teacher generation."}
    )
    use_peft: bool = field(
        default=False, metadata={"help": "Train a LoRA adapter on the student instead of all weights."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (with `use_peft`)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (with `use_peft`)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (with `use_peft`)."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "LoRA target modules (with `use_peft`); default: all linear layers."}
    )
    trainer_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Extra fields (dict or JSON string) for the recipe's TRL config (`SFTConfig`, "
            "`DistillationConfig` or `GOLDConfig`), e.g. `{'warmup_steps': 10}`."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow models that ship their own code."}
    )

    def __post_init__(self) -> None:
        if isinstance(self.trainer_kwargs, str):
            self.trainer_kwargs = json.loads(self.trainer_kwargs)
        if self.recipe not in RECIPES:
            raise ValueError(f"recipe: {self.recipe!r} is not one of {', '.join(RECIPES)}")
        if not 0.0 <= self.on_policy_fraction <= 1.0:
            raise ValueError(f"on_policy_fraction: must be in [0, 1], got {self.on_policy_fraction}")
        if not 0.0 <= self.divergence_beta <= 1.0:
            raise ValueError(f"divergence_beta: must be in [0, 1], got {self.divergence_beta}")
        if not math.isfinite(self.sample_temperature) or self.sample_temperature < 0:
            raise ValueError(
                f"sample_temperature: must be a finite number >= 0, got {self.sample_temperature}"
            )
        if self.sample_temperature == 0 and self.num_samples_per_prompt != 1:
            raise ValueError(
                "num_samples_per_prompt: greedy sampling (sample_temperature 0) gives one per prompt"
            )
        for name in (
            "num_samples_per_prompt",
            "max_completion_length",
            "max_steps",
            "per_device_train_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (round-trips through `DistillConfig(**d)`)."""
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
