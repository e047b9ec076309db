"""Configuration of `mergekit-plugins search-alpha` (a TRL-style dataclass: every field has its help).

Example:
    >>> cfg = SearchAlphaConfig(config="merge.yaml", eval="my_pkg.evals:score", grid="0.5:1.5:0.5")
    >>> parse_grid(cfg.grid)
    [0.5, 1.0, 1.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

#: Default grids: the papers' α ∈ {0.1 … 3.0} for TSV-M / Iso, OrthoReg's linspace(0, 1, 21) for task arithmetic.
DEFAULT_GRID_ALPHA = "0.1:3.0:0.1"
DEFAULT_GRID_LAMBDA = "0.0:1.0:0.05"
CRITERIA = ("mean_score", "exact_accuracy")


@dataclass
class SearchAlphaConfig:
    """What `search_alpha` needs: a mergekit YAML, an α grid and an evaluation callable."""

    config: str = field(
        metadata={
            "help": "Path of an ordinary mergekit YAML (tsv, iso_c, iso_cts or a task-arithmetic method)."
        }
    )
    eval: str = field(
        metadata={
            "help": "A verifier name (math_answer, qa_exact_match, ...: greedy accuracy on each --eval-data task) or "
            "an importable `package.module:function` called as f(model, tokenizer) -> {task: score}."
        }
    )
    eval_data: list[str] | None = field(
        default=None,
        metadata={
            "help": "TASK=FILE.jsonl (repeatable): each task's rows (`prompt` + gold) for a verifier --eval."
        },
    )
    max_new_tokens: int = field(
        default=64, metadata={"help": "Greedy tokens generated per prompt by a verifier --eval."}
    )
    output_dir: str = field(
        default="outputs/search-alpha",
        metadata={"help": "Where outputs go unless given one by one (search_alpha.json, .png, single.json)."},
    )
    grid: str | None = field(
        default=None,
        metadata={
            "help": "α values as `start:stop:step` (inclusive) or a comma list. Default "
            f"{DEFAULT_GRID_ALPHA} for tsv/iso_c/iso_cts (`alpha`), {DEFAULT_GRID_LAMBDA} for task arithmetic (`lambda`)."
        },
    )
    single_task_scores: str | None = field(
        default=None,
        metadata={
            "help": "JSON file {task: score of the single-task model}; scores are divided by it (normalised)."
        },
    )
    output_json: str | None = field(
        default=None,
        metadata={"help": "Where the JSON results are written (default: OUTPUT_DIR/search_alpha.json)."},
    )
    output_png: str | None = field(
        default=None, metadata={"help": "Where the α curve is drawn (default: output_json with .png)."}
    )
    save_best: str | None = field(
        default=None,
        metadata={
            "help": "If set, the merge at the best α is written here: by mergekit for a dense config, as the "
            "lora-merge adapter for a lora-merge config (a full model with save_best_merged)."
        },
    )
    save_best_merged: bool = field(
        default=False,
        metadata={
            "help": "lora-merge config: write --save-best as base + α·merged (a full model), not an adapter."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Replace a non-empty --save-best directory (never one the merge reads)."},
    )
    device: str = field(
        default="cpu", metadata={"help": "Device for merging and evaluation (e.g. cpu, cuda)."}
    )
    num_threads: int | None = field(
        default=None, metadata={"help": "torch threads for merging and evaluation (default: torch's choice)."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Passed to mergekit and transformers when loading models."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar over the grid."})
    criterion: str = field(
        default="mean_score",
        metadata={
            "help": "What a verifier --eval's best α maximises (averaged over tasks): mean_score (mean verifier "
            "score, counting partial credit) or exact_accuracy (fraction of answers with full credit). Both are "
            "reported either way; a custom evaluation's numbers are used as they are."
        },
    )

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion={self.criterion!r} must be one of {', '.join(CRITERIA)}")
        if self.output_json is None:
            self.output_json = str(Path(self.output_dir) / "search_alpha.json")


def parse_grid(text: str) -> list[float]:
    """`start:stop:step` (stop included, up to rounding) or `a,b,c` → list of finite floats; errors are one line.

    Example:
        >>> parse_grid("0:1:0.25"), parse_grid("0.5, 2")
        ([0.0, 0.25, 0.5, 0.75, 1.0], [0.5, 2.0])
    """
    try:
        if ":" in text:
            start, stop, step = (float(x) for x in text.split(":"))
            if not step > 0:
                raise ValueError("step must be > 0")
            n = math.floor((stop - start) / step + 1e-9) + 1
            values = [round(start + i * step, 12) for i in range(max(n, 0))]
        else:
            values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ValueError(
            f"grid {text!r}: expected start:stop:step or a comma list of numbers ({exc})"
        ) from None
    if not values:
        raise ValueError(f"grid {text!r} is empty")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"grid {text!r} contains a non-finite value")
    return values
