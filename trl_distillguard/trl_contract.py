"""What `DistillGuardTrainer` relies on inside TRL's `GRPOTrainer`, in one place.

The trainer overrides three private `GRPOTrainer` methods (`_generate`, `_get_per_token_logps_and_entropies`,
`_calculate_rewards`) and reads the tuple `_generate` returns. Those are not TRL's public API, so the fields are
named here, the tested TRL range is stated here, and `tests/test_trl_contract.py` pins the signatures and the
source facts the trainer depends on: a TRL upgrade that changes them fails there, loudly, in one place.

Example:
    >>> fields = generate_fields((["p"], ["c"], None, ["text"], None, None, None, None))
    >>> fields["completion_ids"], fields["sampling_logps"]
    (['c'], None)
"""

from __future__ import annotations

import warnings
from typing import Any

# The TRL releases this trainer was verified against: [first, first incompatible).
TESTED_TRL = ("1.16", "1.17")

# `GRPOTrainer._generate(prompts)` return tuple in TRL 1.16, field by field.
GENERATE_FIELDS = (
    "prompt_ids",  # list[list[int]] per sample
    "completion_ids",  # list[list[int]] per sample, as sampled (not re-tokenised)
    "tool_mask",
    "completions",  # decoded text (or messages)
    "sampling_logps",  # per-token sampling log-probs from the backend (vLLM), else None
    "extra_fields",
    "images",
    "tool_images",
)


def generate_fields(out: tuple) -> dict[str, Any]:
    """`GRPOTrainer._generate`'s return tuple as a dict by field name; a clear error if its shape changed."""
    if not isinstance(out, tuple) or len(out) != len(GENERATE_FIELDS):
        raise RuntimeError(
            f"GRPOTrainer._generate returned {type(out).__name__} of {len(out) if isinstance(out, tuple) else '?'} "
            f"fields, expected {len(GENERATE_FIELDS)} (TRL {TESTED_TRL[0]}): this TRL version is not supported by "
            "DistillGuardTrainer"
        )
    return dict(zip(GENERATE_FIELDS, out, strict=True))


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_trl_version(version: str) -> bool:
    """Warn (once per call) when `version` is outside the tested range; True when inside.

    Example:
        >>> check_trl_version("1.16.0")
        True
    """
    low, high = (_release(v) for v in TESTED_TRL)
    if low <= _release(version) < high:
        return True
    warnings.warn(
        f"trl {version} is outside the range DistillGuardTrainer was tested with (>={TESTED_TRL[0]},<{TESTED_TRL[1]});"
        " it overrides private GRPOTrainer methods, so check tests/test_trl_contract.py before relying on it",
        RuntimeWarning,
        stacklevel=2,
    )
    return False
