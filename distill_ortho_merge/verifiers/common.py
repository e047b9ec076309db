"""What every verifier shares: the text of a completion and a checked dataset column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as is, a conversational completion's last message content.

    Example:
        >>> completion_text([{"role": "assistant", "content": "hi"}])
        'hi'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence) and completion:
        return completion_text(completion[-1])
    return ""


def column_values(
    kwargs: dict[str, Any], name: str, n: int, verifier: str, aliases: tuple[str, ...] = ()
) -> list:
    """The values of dataset column `name` (or an alias) that TRL passed, one per completion; one clear error
    naming `verifier` when it is missing or has the wrong length.

    Example:
        >>> column_values({"answer": ["4"]}, "answer", 1, "math_answer")
        ['4']
    """
    for key in (name, *aliases):
        if key in kwargs and kwargs[key] is not None:
            values = list(kwargs[key])
            if len(values) != n:
                raise ValueError(f"{verifier}: column {key!r} has {len(values)} values for {n} completions")
            return values
    raise ValueError(
        f"{verifier}: the dataset has no {name!r} column (needed for the gold answer); "
        f"columns passed: {sorted(k for k in kwargs if k not in {'trainer_state', 'log_extra', 'log_metric'})}"
    )
