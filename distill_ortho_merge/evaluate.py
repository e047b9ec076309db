"""Deterministic evaluation of a causal LM on an eval set with a task verifier: rows and prompts of the eval set,
the gold-answer check, and `evaluate` (greedy generations scored by any registered reward function or an
importable `module:attr` / `module.attr`, see `distill_ortho_merge.plugins.resolve_verifier`).

Example:
    >>> prompts_of([{"prompt": "What is 1 + 1?"}], "prompt", "dataset")
    ['What is 1 + 1?']
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill_ortho_merge.errors import InputError
from distill_ortho_merge.generation import generate


# ------------------------------------------------------------------------------------------------ data
def load_rows(spec: str | os.PathLike, role: str = "dataset") -> list[dict[str, Any]]:
    """Rows of a local dataset (jsonl/json/parquet file or directory) or a built-in, through the project's loader
    (`distill_ortho_merge.data.load_dataset_rows`); errors become one-line `InputError`s naming `role`.

    Example:
        >>> len(load_rows("arithmetic"))  # a built-in; or a .jsonl/.json/.parquet path or a directory
        64
    """
    from distill_ortho_merge.data import load_dataset_rows

    try:
        rows = list(load_dataset_rows(spec))
    except (ValueError, FileNotFoundError) as err:
        raise InputError(f"{role}: {err}") from None
    if not rows:
        raise InputError(f"{role}: {spec} has no rows")
    return rows


def prompts_of(rows: Sequence[dict[str, Any]], column: str, role: str) -> list[Any]:
    """The prompt column of `rows`, with one-line errors for an empty set or a missing/empty column.

    Example:
        >>> prompts_of([{"prompt": "What is 1 + 1?"}], "prompt", "dataset")
        ['What is 1 + 1?']
    """
    if not rows:
        raise InputError(f"{role}: the prompt set is empty")
    missing = [i for i, r in enumerate(rows) if not r.get(column)]
    if missing:
        raise InputError(
            f"{role}: row {missing[0]} has no {column!r} (prompt column); columns: {sorted(rows[0])}"
        )
    return [r[column] for r in rows]


# ------------------------------------------------------------------------------------------------ models


# ------------------------------------------------------------------------------------------------ verifiers
def _columns(rows: Sequence[dict[str, Any]], prompt_column: str) -> dict[str, list[Any]]:
    keys = sorted({k for r in rows for k in r} - {prompt_column})
    return {k: [r.get(k) for r in rows] for k in keys}


def check_gold(
    rows: Sequence[dict[str, Any]],
    verifier: Callable,
    verifier_name: str,
    prompt_column: str,
    role: str = "eval dataset",
) -> None:
    """Fail early (one line naming `role`) when the eval set lacks the gold answers `verifier` needs.

    Example:
        >>> from distill_ortho_merge.plugins import resolve_verifier
        >>> check_gold([{"prompt": "q", "answer": "4"}], resolve_verifier("math_answer"), "math_answer", "prompt")
        >>> check_gold([{"prompt": "q"}], resolve_verifier("math_answer"), "math_answer", "prompt", "--data x.jsonl")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: --data x.jsonl: no gold answers for verifier 'math_answer' (math_answer: the dataset has no 'answer' column ...
    """
    prompts = prompts_of(rows, prompt_column, role)
    try:
        scores = verifier(prompts=prompts, completions=[""] * len(rows), **_columns(rows, prompt_column))
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"{role}: no gold answers for verifier {verifier_name!r} ({err})") from None
    if all(s is None for s in scores):
        columns = ", ".join(sorted({k for r in rows for k in r}))
        raise InputError(
            f"{role}: every row lacks the gold answer verifier {verifier_name!r} needs (columns: {columns})"
        )


FULL_CREDIT = 1.0 - 1e-9  # a score this high is an exact answer (verifiers return 1.0; float noise aside)


@dataclass
class EvalResult:
    """Every row's verifier score and completion, summarised as two named numbers: `exact_accuracy` (the fraction
    of scorable rows with full credit, score 1) and `mean_score` (the mean score, which counts the partial credit
    some verifiers give, e.g. reasoning-gym's ``score_answer``). `score` is `mean_score` (the original name).

    Example:
        >>> r = EvalResult(0.5, [1.0, 0.0, None], ["a", "b", "c"])
        >>> r.n_scored, r.n_exact, r.exact_accuracy, r.mean_score
        (2, 1, 0.5, 0.5)
        >>> EvalResult(0.1, [0.2, 0.0], ["a", "b"]).exact_accuracy  # partial credit is not an exact answer
        0.0
    """

    score: float
    scores: list[float | None] = field(repr=False)
    completions: list[str] = field(repr=False)

    @property
    def mean_score(self) -> float:
        return self.score

    @property
    def n_scored(self) -> int:
        return sum(s is not None for s in self.scores)

    @property
    def n_exact(self) -> int:
        return sum(s is not None and float(s) >= FULL_CREDIT for s in self.scores)

    @property
    def exact_accuracy(self) -> float:
        return self.n_exact / self.n_scored if self.n_scored else float("nan")

    def summary(self) -> dict[str, Any]:
        """The two numbers and the counts, as JSON-ready values.

        Example:
            >>> EvalResult(0.5, [1.0, 0.0, None], ["a", "b", "c"]).summary()
            {'exact_accuracy': 0.5, 'mean_score': 0.5, 'n_items': 3, 'n_scored': 2, 'n_exact': 1}
        """
        return {
            "exact_accuracy": self.exact_accuracy,
            "mean_score": self.mean_score,
            "n_items": len(self.scores),
            "n_scored": self.n_scored,
            "n_exact": self.n_exact,
        }


def evaluate(
    model,
    tokenizer,
    rows: Sequence[dict[str, Any]],
    verifier: Callable,
    *,
    prompt_column: str = "prompt",
    max_new_tokens: int = 64,
    batch_size: int = 16,
    temperature: float = 0.0,
    seed: int = 0,
    desc: str | None = "evaluate",
) -> EvalResult:
    """Generate (greedy by default) for every row and score the completions with `verifier`.

    Example:
        >>> from distill_ortho_merge.plugins import resolve_verifier
        >>> from distill_ortho_merge.testing import make_teacher, tokenizer_a
        >>> tok, rows = tokenizer_a(), [{"prompt": "What is 2 + 2?", "answer": "4"}, {"prompt": "Hi"}]
        >>> result = evaluate(make_teacher(tok), tok, rows, resolve_verifier("math_answer"), max_new_tokens=4)
        >>> result.n_scored, result.score  # the row without a gold answer is not scored; a random model errs
        (1, 0.0)
    """
    prompts = prompts_of(rows, prompt_column, "eval dataset")
    gens = generate(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
        seed=seed, desc=desc,
    )  # fmt: skip
    completions = [g[0].text for g in gens]
    scores = verifier(prompts=prompts, completions=completions, **_columns(rows, prompt_column))
    valid = [float(s) for s in scores if s is not None and not math.isnan(float(s))]
    return EvalResult(sum(valid) / len(valid) if valid else float("nan"), list(scores), completions)


# ------------------------------------------------------------------------------------------------ outputs
