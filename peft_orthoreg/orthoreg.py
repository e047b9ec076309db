"""The OrthoReg regulariser in pure torch (no PEFT / TRL imports): one home for every form of the formula.

For an update ΔW (m × n) let G be its smaller Gram matrix (ΔW ΔWᵀ if m < n, else ΔWᵀ ΔW), k = min(m, n).
The per-matrix term is ‖G − I_k‖_F (``norm="fro"``, the official code) or ‖G − I_k‖²_F (``"fro_squared"``,
the paper's text); the loss is the sum over matrices.

Three forms:
- dense (the reference, and the exact full-fine-tuning form): builds G, O(m·n·k);
- LoRA factor space, exact, for ΔW = s·B·A: with P = BᵀB, Q = AAᵀ (r × r) and X = s²PQ,
  ‖G − I_k‖²_F = tr((X − I_r)²) + (k − r), O(r²(m + n)); ΔW is never built. (Same as
  s⁴tr((PQ)²) − 2s²⟨P, Q⟩ + k, but subtracting I_r before squaring avoids cancellation when G ≈ I.)
- Hutchinson: ‖(G − I)Z‖²_F / p with p Rademacher probes Z (k × p), unbiased for the squared norm, O(p·m·n).

Example:
    >>> import torch
    >>> d = torch.zeros(3, 5)
    >>> round(float(dense_orthoreg_loss([d])) ** 2, 4)  # ‖0 − I_3‖²_F = 3
    3.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

NORMS = ("fro", "fro_squared")
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


# -- per-matrix squared deviations -----------------------------------------------------------------------------
def dense_gram_deviation_sq(delta: torch.Tensor) -> torch.Tensor:
    """‖G − I_k‖²_F from a dense ΔW (m × n), building the smaller Gram G (k × k), O(m·n·k)."""
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
    with _no_autocast(delta):
        d = delta.to(_work_dtype(delta))
        gram = d @ d.T if d.shape[0] < d.shape[1] else d.T @ d
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        return (gram - eye).pow(2).sum()


def factor_gram_deviation_sq(lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float) -> torch.Tensor:
    """‖G − I_k‖²_F for ΔW = s·B·A from the factors only: A (r × n), B (m × r); O(r²(m + n)).

    Example:
        >>> A, B = torch.randn(2, 7), torch.randn(5, 2)
        >>> torch.allclose(factor_gram_deviation_sq(A, B, 0.5), dense_gram_deviation_sq(0.5 * B @ A), rtol=1e-4)
        True
    """
    if lora_A.dim() != 2 or lora_B.dim() != 2 or lora_A.shape[0] != lora_B.shape[1]:
        raise ValueError(
            f"LoRA factors must be A (r × n) and B (m × r); got A {tuple(lora_A.shape)}, B {tuple(lora_B.shape)}"
        )
    dtype = _work_dtype(lora_A)
    with _no_autocast(lora_A):
        a, b = lora_A.to(dtype), lora_B.to(dtype)
        r, k = a.shape[0], min(b.shape[0], a.shape[1])
        x = (float(scaling) ** 2) * (b.T @ b) @ (a @ a.T)  # s²PQ: its eigenvalues are G's nonzero ones
        dev = x - torch.eye(r, dtype=dtype, device=x.device)
        return (dev * dev.T).sum() + (k - r)  # tr(D²) = Σ_ij D_ij D_ji


def hutchinson_gram_deviation_sq(
    delta: torch.Tensor, probes: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Unbiased estimate of ‖G − I_k‖²_F: mean over p Rademacher probes z of ‖(G − I)z‖², O(p·m·n).

    G is never built: Gz = ΔW(ΔWᵀz) (or ΔWᵀ(ΔWz)). Probes are drawn on the CPU from ``generator`` (seeded
    → reproducible on every device and rank).
    """
    check_estimator("hutchinson", probes)
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
    with _no_autocast(delta):
        d = delta.to(_work_dtype(delta))
        wide = d.shape[0] < d.shape[1]
        k = min(d.shape)
        z = torch.randint(0, 2, (k, probes), generator=generator).to(device=d.device, dtype=d.dtype) * 2 - 1
        gz = d @ (d.T @ z) if wide else d.T @ (d @ z)
        return (gz - z).pow(2).sum() / probes


# -- losses over many matrices --------------------------------------------------------------------------------
def _finish(terms: list[torch.Tensor], squared: bool) -> torch.Tensor:
    if not terms:
        return torch.zeros(())
    per_matrix = terms if squared else [safe_sqrt(t) for t in terms]
    return torch.stack(per_matrix).sum()


def dense_orthoreg_loss(
    deltas: Iterable[torch.Tensor],
    squared: bool = False,
    *,
    estimator: str = "exact",
    probes: int = 1,
    seed: int | None = None,
) -> torch.Tensor:
    """Σ over matrices of ‖G − I_k‖_F (or its square) from dense updates ΔW: the reference / full-FT form.

    Args:
        deltas: 2-D updates ΔW = W − W⁰ (differentiable).
        squared: use ‖·‖²_F (the paper's text) instead of ‖·‖_F (the official code).
        estimator: ``"exact"`` builds each Gram; ``"hutchinson"`` estimates ‖G − I‖²_F with ``probes``
            Rademacher probes per matrix (unbiased for the squared norm; its square root, used when
            ``squared=False``, is consistent but biased low by Jensen).
        probes: probes per matrix (≥ 1), Hutchinson only.
        seed: seed of the probes (Hutchinson only); ``None`` draws from torch's global generator.

    Example:
        >>> float(dense_orthoreg_loss([torch.eye(3)], squared=True))
        0.0
    """
    check_estimator(estimator, probes)
    deltas = list(deltas)
    if estimator == "exact":
        return _finish([dense_gram_deviation_sq(d) for d in deltas], squared)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return _finish([hutchinson_gram_deviation_sq(d, probes, generator) for d in deltas], squared)


def factor_orthoreg_loss(
    factors: Sequence[tuple[torch.Tensor, torch.Tensor, float]], squared: bool = False
) -> torch.Tensor:
    """Σ over LoRA layers (A, B, s) of ‖G − I_k‖_F (or its square) for ΔW = s·B·A, exact, in factor space.

    Example:
        >>> A, B = torch.randn(2, 6), torch.zeros(4, 2)  # LoRA at init: B = 0, so ΔW = 0 and the value is √k
        >>> float(factor_orthoreg_loss([(A, B, 1.0)]))
        2.0
    """
    return _finish([factor_gram_deviation_sq(a, b, s) for a, b, s in factors], squared)
