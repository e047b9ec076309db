"""The scale-free form ‖G/τ − I_k‖, τ = tr G / k: dense (reference, full fine-tuning) and LoRA factor space."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from peft_orthoreg.orthoreg.common import _check_factors, _finish, _no_autocast, _smaller_gram, _work_dtype
from peft_orthoreg.orthoreg.row_shards import is_row_sharded, row_product, whole


def dense_scale_free_deviation_sq(delta: torch.Tensor) -> torch.Tensor:
    """‖G/τ − I_k‖²_F with τ = tr G / k, from a dense ΔW (m × n); 0 (zero gradient) when ΔW = 0.

    A row-sharded ΔW (FSDP2) uses H = ΔWᵀΔW (n × n) summed over the ranks: ‖H/τ − I_n‖²_F − (n − k).

    Example:
        >>> float(dense_scale_free_deviation_sq(3 * torch.eye(2, 4)))  # G = 9·I: isotropic, so 0
        0.0
    """
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
    with _no_autocast(delta):
        if is_row_sharded(delta):
            gram = row_product(delta, delta, _work_dtype(delta))
            extra = gram.shape[0] - min(delta.shape)  # H's zero eigenvalues beyond G's k
        else:
            gram, extra = _smaller_gram(delta.to(_work_dtype(delta))), 0
        k = gram.shape[0] - extra
        trace = torch.diagonal(gram).sum()
        ok = trace > 0
        scaled = gram * (k / torch.where(ok, trace, torch.ones_like(trace)))
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        return torch.where(ok, (scaled - eye).pow(2).sum() - extra, torch.zeros_like(trace))


def factor_scale_free_deviation_sq(
    lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float
) -> torch.Tensor:
    """‖G/τ − I_k‖²_F for ΔW = s·B·A from the factors only, O(r²(m + n)); 0 (zero gradient) when ΔW = 0.

    Example:
        >>> A, B = torch.randn(2, 7), torch.randn(5, 2)
        >>> torch.allclose(factor_scale_free_deviation_sq(A, B, 0.5), dense_scale_free_deviation_sq(0.5 * B @ A))
        True
    """
    _check_factors(lora_A, lora_B)
    dtype = _work_dtype(lora_A)
    with _no_autocast(lora_A):
        a = whole(lora_A, dtype)  # r × n: FSDP2 shards it along r
        r, k = a.shape[0], min(lora_B.shape[0], a.shape[1])
        x = row_product(lora_B, lora_B, dtype) @ (a @ a.T)  # s² cancels in X/τ
        trace = torch.diagonal(x).sum()  # = ‖BA‖²_F ≥ 0
        ok = trace > 0
        dev = x * (k / torch.where(ok, trace, torch.ones_like(trace))) - torch.eye(
            r, dtype=dtype, device=x.device
        )
        return torch.where(ok, (dev * dev.T).sum() + (k - r), torch.zeros_like(trace))


def dense_scale_free_loss(deltas: Iterable[torch.Tensor], squared: bool = False) -> torch.Tensor:
    """Σ over matrices of ‖G/τ − I_k‖_F (or its square), τ = tr G / k, from dense updates (full FT / reference).

    Example:
        >>> float(dense_scale_free_loss([torch.zeros(3, 4), 2 * torch.eye(3, 4)]))
        0.0
    """
    return _finish([dense_scale_free_deviation_sq(d) for d in deltas], squared)


def factor_scale_free_loss(
    factors: Sequence[tuple[torch.Tensor, torch.Tensor, float]], squared: bool = False
) -> torch.Tensor:
    """Σ over LoRA layers (A, B, s) of ‖G/τ − I_k‖_F (or its square), exact, in factor space.

    Example:
        >>> A, B = torch.randn(2, 6), torch.zeros(4, 2)  # ΔW = 0: defined as 0
        >>> float(factor_scale_free_loss([(A, B, 1.0)]))
        0.0
    """
    return _finish([factor_scale_free_deviation_sq(a, b, s) for a, b, s in factors], squared)
