"""The inter-task form: overlap of ΔW with fixed reference updates ΔW_t, dense and LoRA factor space."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from peft_orthoreg.orthoreg.common import _check_factors, _finish, _no_autocast, _ratio_or_zero, _work_dtype
from peft_orthoreg.orthoreg.row_shards import refuse_row_sharded, row_product, whole


def dense_overlap_sq(delta: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(‖ΔW ΔW_tᵀ‖²_F + ‖ΔWᵀ ΔW_t‖²_F) / ‖ΔW_t‖²_F for a fixed reference ΔW_t (no gradient flows into it).

    Example:
        >>> d, ref = torch.zeros(2, 3), torch.zeros(2, 3)
        >>> d[0, 0] = ref[1, 1] = 1.0  # disjoint rows and columns
        >>> float(dense_overlap_sq(d, ref)), float(dense_overlap_sq(d, d))
        (0.0, 2.0)
    """
    if delta.dim() != 2 or reference.shape != delta.shape:
        raise ValueError(
            f"inter-task OrthoReg needs 2-D updates of one shape; got {tuple(delta.shape)} and "
            f"{tuple(reference.shape)}"
        )
    refuse_row_sharded(delta, "the dense inter-task form")
    with _no_autocast(delta):
        d = delta.to(_work_dtype(delta))
        ref = reference.detach().to(d.dtype)
        value = (d @ ref.T).pow(2).sum() + (d.T @ ref).pow(2).sum()
        return _ratio_or_zero(value, ref.pow(2).sum())


def factor_overlap_sq(
    factors: tuple[torch.Tensor, torch.Tensor, float], reference: tuple[torch.Tensor, torch.Tensor, float]
) -> torch.Tensor:
    """`dense_overlap_sq` of ΔW = s·B·A against ΔW_t = s_t·B_t·A_t from the factors (ranks may differ).

    Example:
        >>> A, B, At, Bt = torch.randn(2, 7), torch.randn(5, 2), torch.randn(3, 7), torch.randn(5, 3)
        >>> fast = factor_overlap_sq((A, B, 0.5), (At, Bt, 2.0))
        >>> torch.allclose(fast, dense_overlap_sq(0.5 * B @ A, 2.0 * Bt @ At), rtol=1e-4)
        True
    """
    (a, b, s), (at, bt, _) = factors, reference  # s_t cancels in the ratio
    _check_factors(a, b)
    _check_factors(at, bt)
    if a.shape[1] != at.shape[1] or b.shape[0] != bt.shape[0]:
        raise ValueError(
            f"reference factors A {tuple(at.shape)}, B {tuple(bt.shape)} do not match A {tuple(a.shape)}"
        )
    dtype = _work_dtype(a)
    with _no_autocast(a):
        a, at = whole(a, dtype), whole(at.detach(), dtype)  # r × n: FSDP2 shards them along r
        bt = bt.detach()
        p, q, pt, qt = row_product(b, b, dtype), a @ a.T, row_product(bt, bt, dtype), at @ at.T
        m, n = a @ at.T, row_product(b, bt, dtype)  # r × r_t; B's rows may be sharded across processes
        rows = (p @ m * (m @ pt)).sum()  # tr(P M P_t Mᵀ) = Σ (PM) ∘ (M P_t)
        cols = (q @ n * (n @ qt)).sum()  # tr(Q N Q_t Nᵀ)
        value = (float(s) ** 2) * (rows + cols)
        return _ratio_or_zero(value, (pt * qt).sum())  # ‖B_t A_t‖²_F = tr(P_t Q_t); s_t² cancels


def dense_inter_task_loss(
    deltas: Sequence[torch.Tensor], references: Sequence[Sequence[torch.Tensor]], squared: bool = False
) -> torch.Tensor:
    """Σ over matrices i of (Σ_t overlap²(ΔW_i, ΔW_t,i))^{1/2} (or without the root), references[i] = [ΔW_t,i].

    Example:
        >>> d = torch.eye(2, 3)
        >>> float(dense_inter_task_loss([d], [[torch.zeros(2, 3)]]))  # a zero reference contributes 0
        0.0
    """
    if len(deltas) != len(references):
        raise ValueError(f"inter-task OrthoReg: {len(deltas)} updates but {len(references)} reference lists")
    terms = [
        torch.stack([dense_overlap_sq(d, ref) for ref in refs]).sum()
        for d, refs in zip(deltas, references, strict=True)
        if refs
    ]
    return _finish(terms, squared)


def factor_inter_task_loss(
    factors: Sequence[tuple[torch.Tensor, torch.Tensor, float]],
    references: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor, float]]],
    squared: bool = False,
) -> torch.Tensor:
    """`dense_inter_task_loss` for LoRA layers (A, B, s) against reference factors, exact, in factor space.

    Example:
        >>> A, B = torch.randn(2, 6), torch.zeros(4, 2)  # ΔW = 0: no overlap
        >>> float(factor_inter_task_loss([(A, B, 1.0)], [[(torch.randn(2, 6), torch.randn(4, 2), 1.0)]]))
        0.0
    """
    if len(factors) != len(references):
        raise ValueError(f"inter-task OrthoReg: {len(factors)} layers but {len(references)} reference lists")
    terms = [
        torch.stack([factor_overlap_sq(f, ref) for ref in refs]).sum()
        for f, refs in zip(factors, references, strict=True)
        if refs
    ]
    return _finish(terms, squared)
