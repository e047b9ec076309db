"""What every OrthoReg form shares: argument checks (one-line errors naming the field), the guarded square
root, the working precision, and the sum over matrices.

Example:
    >>> check_norm("fro_squared")
    True
"""

from __future__ import annotations

import math

import torch

NORMS = ("fro", "fro_squared")
FORMS = ("paper", "scale_free", "inter_task", "flat_spectrum")  # built-in forms; plugins may add more
ESTIMATORS = ("exact", "hutchinson")


# -- validation (one-line errors naming the field) -----------------------------------------------------------
def check_norm(norm: str, field: str = "orthoreg_norm") -> bool:
    """Return True for the squared norm; a clear error for anything but ``"fro"`` / ``"fro_squared"``."""
    if norm not in NORMS:
        raise ValueError(f"{field}={norm!r} is not supported; use one of {', '.join(map(repr, NORMS))}")
    return norm == "fro_squared"


def check_weight(weight: float, field: str = "orthoreg_weight") -> float:
    """λ must be a finite number ≥ 0."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"{field}={weight!r} must be a finite number >= 0") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field}={weight!r} must be a finite number >= 0")
    return value


def check_form(form: str, field: str = "orthoreg_form") -> str:
    """A form name must be a non-empty string (whether it exists is the plugin registry's answer)."""
    if not isinstance(form, str) or not form:
        raise ValueError(
            f"{field}={form!r} must be a non-empty string, e.g. one of {', '.join(map(repr, FORMS))}"
        )
    return form


def check_estimator(estimator: str, probes: int, field: str = "orthoreg_estimator") -> None:
    """``estimator`` in {"exact", "hutchinson"} and ``probes`` an integer ≥ 1."""
    if estimator not in ESTIMATORS:
        raise ValueError(
            f"{field}={estimator!r} is not supported; use one of {', '.join(map(repr, ESTIMATORS))}"
        )
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise ValueError(f"orthoreg_probes={probes!r} must be an integer >= 1")


# -- the guarded square root -----------------------------------------------------------------------------------
class _SafeSqrt(torch.autograd.Function):
    """√max(x, 0) whose gradient is 0 (a subgradient) where the value is 0 instead of inf/NaN.

    ‖G − I‖_F reaches 0 exactly when G = I (and rounding can push the factor form slightly below 0).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clamp_min(0).sqrt()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        safe = torch.where(y > 0, y, torch.ones_like(y))
        return torch.where(y > 0, grad / (2 * safe), torch.zeros_like(grad))


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """√max(x, 0) with a zero gradient at 0.

    Example:
        >>> x = torch.zeros((), requires_grad=True)
        >>> safe_sqrt(x).backward(); float(x.grad)
        0.0
    """
    return _SafeSqrt.apply(x)


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    # Half precision Gram sums lose too much; compute in fp32 and keep fp64 when given.
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _no_autocast(t: torch.Tensor) -> torch.autocast:
    # Trainers call compute_loss under autocast (bf16/fp16): keep the Gram products in full precision.
    return torch.autocast(device_type=t.device.type, enabled=False)


def _check_factors(lora_A: torch.Tensor, lora_B: torch.Tensor) -> None:
    if lora_A.dim() != 2 or lora_B.dim() != 2 or lora_A.shape[0] != lora_B.shape[1]:
        raise ValueError(
            f"LoRA factors must be A (r × n) and B (m × r); got A {tuple(lora_A.shape)}, B {tuple(lora_B.shape)}"
        )


def _smaller_gram(d: torch.Tensor) -> torch.Tensor:
    return d @ d.T if d.shape[0] < d.shape[1] else d.T @ d


def _ratio_or_zero(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # num / den where den > 0, else 0 with a zero gradient (no NaN from the unused branch).
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def _finish(terms: list[torch.Tensor], squared: bool) -> torch.Tensor:
    if not terms:
        return torch.zeros(())
    per_matrix = terms if squared else [safe_sqrt(t) for t in terms]
    return torch.stack(per_matrix).sum()
