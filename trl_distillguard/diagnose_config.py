"""`DiagnoseConfig`: what `distillguard diagnose` measures and how (TRL-style dataclass, one help per field).

Example:
    >>> DiagnoseConfig(top_k=20).top_k
    20
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trl_distillguard import traps


@dataclass
class DiagnoseConfig:
    """What to diagnose and how (every field documented in `metadata`).

    Example:
        >>> DiagnoseConfig(top_k=20).temperature
        1.0
    """

    teacher_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "The teacher: a local directory, a *.gguf file or a built-in model name."},
    )
    student_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "The student: a local directory, a *.gguf file or a built-in model name."},
    )
    dataset_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Prompt set: a local .jsonl/.json/.parquet file or directory, a built-in, or reasoning_gym:<task>."
        },
    )
    prompt_column: str = field(default="prompt", metadata={"help": "Column holding the prompts."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where diagnose.json and diagnose.png go."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace an existing non-empty output_dir."}
    )
    max_prompts: int = field(default=64, metadata={"help": "Use at most this many prompts (the first ones)."})
    num_samples: int = field(default=1, metadata={"help": "Samples per prompt from each model."})
    temperature: float = field(
        default=1.0, metadata={"help": "Sampling temperature of both models (1 = unbiased KL estimates)."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Maximum new tokens per sample."})
    batch_size: int = field(default=16, metadata={"help": "Sequences per generation / scoring batch."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})
    top_k: int = field(
        default=10, metadata={"help": "Tail noise: the teacher's mass outside its top-k tokens."}
    )
    ngram_n: int = field(default=3, metadata={"help": "Repeated n-gram rate: n (whitespace words)."})
    degenerate_min_run: int = field(
        default=4,
        metadata={"help": "Degenerate-token rate: a run of this many identical tokens is degenerate."},
    )
    verifier: str | None = field(
        default=None,
        metadata={"help": "Optional task verifier (registered name) for overconfidence on wrong answers."},
    )
    markers: list[str] = field(
        default_factory=lambda: list(traps.DEFAULT_MARKERS),
        metadata={"help": "Self-correction marker phrases (case-insensitive, word-bounded)."},
    )

    def __post_init__(self) -> None:
        for name in ("max_prompts", "num_samples", "max_new_tokens", "batch_size", "top_k", "ngram_n"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature: must be > 0 (samples estimate the KL), got {self.temperature}")
