"""The paper's form ‖G − I_k‖: dense (reference and exact full fine-tuning), LoRA factor space (exact) and
Hutchinson (unbiased for the squared norm)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from peft_orthoreg.orthoreg.common import _check_factors, _finish, _no_autocast, _work_dtype, check_estimator
from peft_orthoreg.orthoreg.row_shards import is_row_sharded, local_rows, row_product, sum_over_ranks, whole


def dense_gram_deviation_sq(delta: torch.Tensor) -> torch.Tensor:
    """‖G − I_k‖²_F from a dense ΔW (m × n), building the smaller Gram G (k × k), O(m·n·k).

    A row-sharded ΔW (FSDP2) uses H = ΔWᵀΔW (n × n) summed over the ranks: ‖H − I_n‖²_F − (n − k).
    """
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
    with _no_autocast(delta):
        if is_row_sharded(delta):
            h = row_product(delta, delta, _work_dtype(delta))
            eye = torch.eye(h.shape[0], dtype=h.dtype, device=h.device)
            return (h - eye).pow(2).sum() - (h.shape[0] - min(delta.shape))
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
    _check_factors(lora_A, lora_B)
    dtype = _work_dtype(lora_A)
    with _no_autocast(lora_A):
        a = whole(lora_A, dtype)  # r × n: FSDP2 shards it along r
        r, k = a.shape[0], min(lora_B.shape[0], a.shape[1])
        x = (
            (float(scaling) ** 2) * row_product(lora_B, lora_B, dtype) @ (a @ a.T)
        )  # s²PQ: G's nonzero eigenvalues
        dev = x - torch.eye(r, dtype=dtype, device=x.device)
        return (dev * dev.T).sum() + (k - r)  # tr(D²) = Σ_ij D_ij D_ji


def hutchinson_gram_deviation_sq(
    delta: torch.Tensor, probes: int = 1, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Unbiased estimate of ‖G − I_k‖²_F: mean over p Rademacher probes z of ‖(G − I)z‖², O(p·m·n).

    G is never built: Gz = ΔW(ΔWᵀz) (or ΔWᵀ(ΔWz)). Probes are drawn on the CPU from ``generator`` (seeded
    → reproducible on every device and rank). A row-sharded ΔW (FSDP2) sums the local rows' products over the
    ranks, with the same probes: the same estimate as one process.
    """
    check_estimator("hutchinson", probes)
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
    with _no_autocast(delta):
        d, first, group = local_rows(delta, _work_dtype(delta))  # the whole ΔW (group None) in one process
        wide = delta.shape[0] < delta.shape[1]
        k = min(delta.shape)
        z = torch.randint(0, 2, (k, probes), generator=generator).to(device=d.device, dtype=d.dtype) * 2 - 1
        if not wide:
            gz = sum_over_ranks(d.T @ (d @ z), group)
            return (gz - z).pow(2).sum() / probes
        z = z[first : first + d.shape[0]]  # G is m × m: the probes' rows follow ΔW's rows
        gz = d @ sum_over_ranks(d.T @ z, group, partial_downstream=True)
        return sum_over_ranks((gz - z).pow(2).sum(), group) / probes


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
