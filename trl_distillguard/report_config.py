"""Configuration of `distillguard report` (TRL-style dataclass; every field documented in `metadata`).

Example:
    >>> from trl_distillguard.report_config import ReportConfig
    >>> cfg = ReportConfig(teachers={"original": "t0", "calibrated": "t1"}, students={"llama": "s"},
    ...                    train_dataset="train.jsonl", eval_dataset="eval.jsonl", output_dir="out")
    >>> cfg.baseline_teacher, cfg.seed_list
    ('original', [0])
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from trl_distillguard.distill_config import RECIPES, DistillConfig

# DistillConfig fields that the report sets itself, per run (the attacker sets the sampling).
_PER_RUN = {"recipe", "teacher_model_name_or_path", "student_model_name_or_path", "dataset_name_or_path",
            "output_dir", "overwrite_output_dir", "seed", "prompt_column", "sample_temperature",
            "num_samples_per_prompt"}  # fmt: skip
GOLD = ("answers", "completions")  # gold references, reported as teachers `gold-answers`, `gold-completions`


def _as_dict(value: Any, name: str) -> dict:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError(f"{name}: expected a mapping name -> path, got {type(value).__name__}")
    return dict(value)


@dataclass
class ReportConfig:
    """Teachers × students × recipes × attackers × seeds, evaluated on a held-out set with a task verifier.

    Example:
        >>> ReportConfig(teachers={"orig": "t0"}, recipes="sft,uld", attackers="t1,t1_3x").attackers
        ['t1', 't1_3x']
    """

    teachers: dict[str, str] | str | None = field(
        default=None,
        metadata={
            "help": "Teachers as a mapping name -> model (dict or JSON string): the original teacher and one "
            "or more calibrated ones. A path may hold `{seed}`: one teacher per seed (e.g. one calibration run each)."
        },
    )
    baseline_teacher: str | None = field(
        default=None,
        metadata={
            "help": "Name of the teacher every other one is compared with (for calibration studies the η = 0 "
            "control); default: `original_teacher`, else the first teacher."
        },
    )
    original_teacher: str | None = field(
        default=None, metadata={"help": "Older name of `baseline_teacher` (used when that is not set)."}
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
    attackers: list[str] = field(
        default_factory=lambda: ["t1"],
        metadata={
            "help": "Attackers (training-data recipes): greedy, t07, t1, t1_correct (verified samples only), "
            "t1_2x, t1_3x (2×/3× prompts and steps), t<T>[_correct][_<k>x], or a plugin's attacker."
        },
    )
    attack_prompts: int | None = field(
        default=None,
        metadata={
            "help": "Train prompts of a budget-1 attacker (a `_<k>x` attacker gets k times as many, cycling the "
            "prompt set); default: every train prompt once."
        },
    )
    gold: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Gold references trained like students (sft, same prompts and budget): `answers` (the gold "
            "answer column through `gold_answer_template`, the floor a correct teacher cannot go below) and "
            "`completions` (the dataset's own completions); reported as teachers `gold-answers`, `gold-completions`."
        },
    )
    gold_answer_column: str = field(
        default="answer", metadata={"help": "Train set column of the gold answers."}
    )
    gold_answer_template: str = field(
        default=" #### {answer}", metadata={"help": "How a gold answer is written as a completion."}
    )
    gold_completion_column: str = field(
        default="completion", metadata={"help": "Train set column of the gold completions."}
    )
    verdict_ratio: float = field(
        default=0.5,
        metadata={
            "help": "The verdict asks whether a teacher's students reach at most this share of the baseline's "
            "students under every attacker."
        },
    )
    shard: str | None = field(
        default=None,
        metadata={
            "help": "`i/n` (1 <= i <= n): run only the i-th of n equal blocks of the cells (n processes)."
        },
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
        for name in ("recipes", "attackers", "gold"):  # "a,b", ["a,b"] (command line) or ["a", "b"]
            value = getattr(self, name)
            items = (
                value.split(",") if isinstance(value, str) else [x for v in value for x in str(v).split(",")]
            )
            setattr(self, name, [x.strip() for x in items if x.strip()])
        if not self.attackers:
            raise ValueError("attackers: empty")
        bad_gold = [g for g in self.gold if g not in GOLD]
        if bad_gold:
            raise ValueError(f"gold: {bad_gold} not among {', '.join(GOLD)}")
        if self.gold and "sft" not in self.recipes:
            raise ValueError("gold: gold references are trained by sft: add sft to recipes")
        if self.attack_prompts is not None and self.attack_prompts < 1:
            raise ValueError(f"attack_prompts: must be >= 1, got {self.attack_prompts}")
        self.shard_index  # noqa: B018 (validates `shard`)
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
        for name in self.teachers or {}:
            if name.startswith("gold-"):
                raise ValueError(f"teachers: {name!r}: names starting with gold- are the gold references'")
        for role in ("teachers", "students"):
            for name in getattr(self, role) or {}:
                if not name or "/" in name or name.startswith("."):
                    raise ValueError(
                        f"{role}: name {name!r} must be non-empty, without '/', not starting with '.'"
                    )
        if self.baseline_teacher is None:
            self.baseline_teacher = self.original_teacher or (
                next(iter(self.teachers)) if self.teachers else None
            )
        if self.teachers and self.baseline_teacher not in self.teachers:
            which = (
                "original_teacher" if self.original_teacher == self.baseline_teacher else "baseline_teacher"
            )
            raise ValueError(
                f"{which}: {self.baseline_teacher!r} is not one of the teachers {list(self.teachers)}"
            )

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))

    @property
    def shard_index(self) -> tuple[int, int]:
        """`shard` as (i, n), 1-based; (1, 1) when unset."""
        if self.shard is None:
            return 1, 1
        i, sep, n = str(self.shard).partition("/")
        if not (sep and i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n)):
            raise ValueError(f"shard: {self.shard!r} is not i/n with 1 <= i <= n (e.g. 1/4)")
        return int(i), int(n)

    @property
    def gold_teachers(self) -> list[str]:
        return [f"gold-{g}" for g in self.gold]

    def distill_config(self, **per_run: Any) -> DistillConfig:
        """The DistillConfig of one run: the shared `distill` fields plus the per-run ones."""
        return DistillConfig(**{**self.distill, **per_run})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
