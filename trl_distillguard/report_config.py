"""Configuration of `distillguard report` (TRL-style dataclass; every field documented in `metadata`).

Example:
    >>> from trl_distillguard.report_config import ReportConfig
    >>> cfg = ReportConfig(teachers={"original": "t0", "calibrated": "t1"}, students={"llama": "s"},
    ...                    train_dataset="train.jsonl", eval_dataset="eval.jsonl", output_dir="out")
    >>> cfg.original_teacher, cfg.seed_list
    ('original', [0])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from trl_distillguard.distill_config import RECIPES, DistillConfig

# DistillConfig fields that the report sets itself, per run.
_PER_RUN = {"recipe", "teacher_model_name_or_path", "student_model_name_or_path", "dataset_name_or_path",
            "output_dir", "overwrite_output_dir", "seed", "prompt_column"}  # fmt: skip


def _as_dict(value: Any, name: str) -> dict:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a mapping name -> path, got {type(value).__name__}")
    return dict(value)


@dataclass
class ReportConfig:
    """Teachers × students × recipes × seeds, evaluated on a held-out set with a task verifier.

    Example:
        >>> ReportConfig(teachers={"orig": "t0"}, recipes="sft,uld").recipes
        ['sft', 'uld']
    """

    teachers: dict[str, str] | str | None = field(
        default=None,
        metadata={
            "help": "Teachers as a mapping name -> local path (dict or JSON string): the original teacher and one "
            "or more calibrated ones."
        },
    )
    original_teacher: str | None = field(
        default=None,
        metadata={"help": "Name of the original teacher in `teachers` (Δ is against it); default: first."},
    )
    students: dict[str, str] | str | None = field(
        default=None,
        metadata={
            "help": "Initial students as a mapping name -> local path; include at least one that is not the "
            "calibration proxy (other architecture and/or tokenizer)."
        },
    )
    recipes: list[str] = field(
        default_factory=lambda: ["sft"],
        metadata={"help": f"Distillation recipes to run, among {', '.join(RECIPES)}."},
    )
    train_dataset: str | None = field(
        default=None, metadata={"help": "Train prompt set (local .jsonl/.json/.parquet file or directory)."}
    )
    eval_dataset: str | None = field(
        default=None, metadata={"help": "Held-out eval set with the gold answers the verifier needs."}
    )
    prompt_column: str = field(default="prompt", metadata={"help": "Prompt column of both datasets."})
    verifier: str = field(
        default="math_answer", metadata={"help": "Task verifier: a registered reward name or an import path."}
    )
    seeds: int = field(
        default=1, metadata={"help": "Number of seeds per (teacher, student, recipe): mean ± std."}
    )
    seed: int = field(default=0, metadata={"help": "First seed; the runs use seed, seed+1, ..."})
    distill: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "DistillConfig fields shared by every run (dict or JSON string), e.g. "
            "`{max_steps: 200, learning_rate: 1e-4}`; the report sets recipe/paths/seed itself."
        },
    )
    max_eval_examples: int | None = field(
        default=None, metadata={"help": "Evaluate on the first N eval rows only."}
    )
    eval_max_new_tokens: int = field(
        default=64, metadata={"help": "Maximum new tokens of an evaluation answer."}
    )
    eval_batch_size: int = field(default=16, metadata={"help": "Prompts per batched evaluation generation."})
    eval_temperature: float = field(
        default=0.0,
        metadata={"help": "Evaluation decoding temperature; 0 = greedy (deterministic, the default)."},
    )
    evaluate_initial_students: bool = field(
        default=True, metadata={"help": "Also score every student before distillation (the floor)."}
    )
    proxy_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "The proxy student used in calibration: students identical to it are flagged."},
    )
    require_heldout_student: bool = field(
        default=True,
        metadata={
            "help": "Warn when no student differs from the proxy (an undistillability claim needs one)."
        },
    )
    save_students: bool = field(
        default=False, metadata={"help": "Keep every distilled student under output_dir/students (large)."}
    )
    output_dir: str | None = field(default=None, metadata={"help": "Where report.json/.md/.png are written."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace an existing non-empty output_dir."}
    )

    def __post_init__(self) -> None:
        if self.teachers is not None:
            self.teachers = _as_dict(self.teachers, "teachers")
        if self.students is not None:
            self.students = _as_dict(self.students, "students")
        self.distill = _as_dict(self.distill or {}, "distill")
        if isinstance(self.recipes, str):
            self.recipes = [r.strip() for r in self.recipes.split(",") if r.strip()]
        unknown = [r for r in self.recipes if r not in RECIPES]
        if unknown or not self.recipes:
            raise ValueError(f"recipes: {unknown or 'empty'} not among {', '.join(RECIPES)}")
        if self.seeds < 1:
            raise ValueError(f"seeds: must be >= 1, got {self.seeds}")
        bad = sorted(set(self.distill) - set(DistillConfig.field_names()))
        if bad:
            raise ValueError(f"distill: unknown DistillConfig fields {bad}")
        per_run = sorted(set(self.distill) & _PER_RUN)
        if per_run:
            raise ValueError(f"distill: {per_run} are set per run by the report; remove them")
        if self.original_teacher is None and self.teachers:
            self.original_teacher = next(iter(self.teachers))
        if self.teachers and self.original_teacher not in self.teachers:
            raise ValueError(
                f"original_teacher: {self.original_teacher!r} is not one of the teachers {list(self.teachers)}"
            )

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))

    def distill_config(self, **per_run: Any) -> DistillConfig:
        """The DistillConfig of one run: the shared `distill` fields plus the per-run ones."""
        return DistillConfig(**{**self.distill, **per_run})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
