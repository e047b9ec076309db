"""The flat-spectrum form: spread of the r largest Gram eigenvalues around their mean, dense and LoRA factor
space."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from peft_orthoreg.orthoreg.common import _check_factors, _finish, _no_autocast, _smaller_gram, _work_dtype
from peft_orthoreg.orthoreg.row_shards import refuse_row_sharded, row_product, whole


def dense_flat_spectrum_deviation_sq(delta: torch.Tensor, rank: int | None = None) -> torch.Tensor:
    """Σ_{i≤r} (λ_i − λ̄)² over the r = ``rank`` largest eigenvalues λ_i of G, λ̄ their mean (r = k if None).

    Example:
        >>> float(dense_flat_spectrum_deviation_sq(torch.diag(torch.tensor([2.0, 1.0, 0.0])), rank=2))  # λ = 4, 1
        4.5
    """
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
    refuse_row_sharded(delta, "the dense flat-spectrum form")
    k = min(delta.shape)
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ValueError(f"rank={rank!r} must be an integer >= 1")
    with _no_autocast(delta):
        d = delta.to(_work_dtype(delta))
        r = rank or k  # a rank above k counts G's missing eigenvalues as zeros, as the factor form does
        top = torch.linalg.eigvalsh(_smaller_gram(d))[-min(r, k) :]  # ascending: the largest last
        mean = top.sum() / r
        return (top - mean).pow(2).sum() + (r - top.numel()) * mean.pow(2)


def factor_flat_spectrum_deviation_sq(
    lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float
) -> torch.Tensor:
    """`dense_flat_spectrum_deviation_sq` of ΔW = s·B·A at rank r from the factors only, O(r²(m + n)).

    Example:
        >>> A, B = torch.randn(2, 7), torch.randn(5, 2)
        >>> fast = factor_flat_spectrum_deviation_sq(A, B, 0.5)
        >>> torch.allclose(fast, dense_flat_spectrum_deviation_sq(0.5 * B @ A, rank=2), rtol=1e-4, atol=1e-6)
        True
    """
    _check_factors(lora_A, lora_B)
    dtype = _work_dtype(lora_A)
    with _no_autocast(lora_A):
        a = whole(lora_A, dtype)  # r × n: FSDP2 shards it along r
        r = a.shape[0]
        x = (
            (float(scaling) ** 2) * row_product(lora_B, lora_B, dtype) @ (a @ a.T)
        )  # G's r largest eigenvalues
        dev = x - (torch.diagonal(x).sum() / r) * torch.eye(r, dtype=dtype, device=x.device)
        return (dev * dev.T).sum()  # tr(D²) = Σ (λ_i − λ̄)²


def dense_flat_spectrum_loss(
    deltas: Iterable[torch.Tensor], rank: int | None = None, squared: bool = False
) -> torch.Tensor:
    """Σ over matrices of (Σ_{i≤r} (λ_i − λ̄)²)^{1/2} (or without the root) from dense updates (the reference).

    Example:
        >>> float(dense_flat_spectrum_loss([torch.zeros(3, 4), 2 * torch.eye(3, 4)]))  # both spectra are flat
        0.0
    """
    return _finish([dense_flat_spectrum_deviation_sq(d, rank) for d in deltas], squared)


def factor_flat_spectrum_loss(
    factors: Sequence[tuple[torch.Tensor, torch.Tensor, float]], squared: bool = False
) -> torch.Tensor:
    """Σ over LoRA layers (A, B, s) of the flat-spectrum term at each layer's rank, exact, in factor space.

    Example:
        >>> A, B = torch.randn(2, 6), torch.zeros(4, 2)  # LoRA at init: ΔW = 0, a flat (zero) spectrum
        >>> float(factor_flat_spectrum_loss([(A, B, 1.0)]))
        0.0
    """
    return _finish([factor_flat_spectrum_deviation_sq(a, b, s) for a, b, s in factors], squared)
