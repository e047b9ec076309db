"""Factor-space merging of one weight's LoRA deltas (pure torch, no PEFT or mergekit import).

Each task delta is Δ_t = w_t · B_t A_t (B_t: m × r_t with the adapter's scale already folded in, A_t: r_t × n;
r_t = 0 for an adapter that does not target this weight). The SVD of a sum or of one Δ_t comes from its factors
in O((m + n)·R²) (`core.factor_svd`), and the method formulas are the ones the dense merges use
(`core.tsv_factors`, `core.iso_c_factors`, `core.iso_cts_common` / `core.iso_cts_factors`, with the same
⌊r/T⌋ and (k_c, s) arithmetic on r = min(m, n) and the same low-rank rule), so the result equals the dense method
on the densified deltas, without forming any m × n matrix.

`iso_cts` equals `iso_c` whenever Σ r_t ≤ k_c ≈ 0.8·min(m, n) (the usual case for LoRA: e.g. 4 × r = 16 on a
4096-wide weight): the common space then holds every task direction and no residual remains, as for dense inputs.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> factors = [(torch.randn(8, 2, generator=g, dtype=torch.float64),
    ...             torch.randn(2, 6, generator=g, dtype=torch.float64)) for _ in range(3)]
    >>> b, a = merge_factors("iso_c", factors)
    >>> from mergekit_plugins import core
    >>> torch.allclose(b @ a, core.iso_c_merge([b_t @ a_t for b_t, a_t in factors]))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mergekit_plugins import core

#: Methods that are exact in factor space.
FACTOR_METHODS = ("task_arithmetic", "tsv", "iso_c", "iso_cts")


def _empty(m: int, n: int, like: torch.Tensor) -> core.Factors:
    return like.new_zeros(m, 0), like.new_zeros(0, n)


def frobenius_norm(b: torch.Tensor, a: torch.Tensor) -> float:
    """‖b a‖_F from the factors: ‖b a‖²_F = Σ (bᵀb) ⊙ (a aᵀ), O((m + n)·r²).

    Example:
        >>> b, a = torch.randn(5, 2, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
        >>> abs(frobenius_norm(b, a) - float(torch.linalg.matrix_norm(b @ a))) < 1e-12
        True
    """
    return float(((b.mT @ b) * (a @ a.mT)).sum().clamp_min(0).sqrt())


def merge_factors(
    method: str,
    factors: Sequence[tuple[torch.Tensor, torch.Tensor]],
    weights: Sequence[float] | None = None,
    *,
    rank_rtol: float = core.DEFAULT_RANK_RTOL,
    rank: int | None = None,
    common_space_fraction: float = 0.8,
) -> core.Factors:
    """Merge LoRA factors ``[(B_t, A_t)]`` of one weight; returns (B, A) with B @ A = the merged delta.

    `method`: ``task_arithmetic`` (Σ w_t B_t A_t: the factors side by side, rank Σ r_t, no SVD), ``tsv``,
    ``iso_c`` or ``iso_cts`` (equal to `core.tsv_merge` / `iso_c_merge` / `iso_cts_merge` of the deltas
    w_t·B_t A_t). `weights` default to 1. `rank_rtol` is the SVD methods' low-rank rule (task_arithmetic has
    none) and `common_space_fraction` Iso-CTS's f. `rank` keeps the top `rank` singular triplets of the result (an
    approximation: `truncate` reports the discarded energy); None keeps it exact. Computed in fp32 (fp64 for fp64
    inputs); the returned B carries the singular values and A has orthonormal rows (SVD methods).

    Example:
        >>> b, a = merge_factors("tsv", [(torch.randn(6, 2), torch.randn(2, 5)), (torch.randn(6, 1), torch.randn(1, 5))])
        >>> b.shape, a.shape
        (torch.Size([6, 3]), torch.Size([3, 5]))
    """
    if method not in FACTOR_METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(FACTOR_METHODS)}")
    if not factors:
        raise ValueError("at least one (B, A) pair is required")
    weights = [1.0] * len(factors) if weights is None else list(weights)
    if len(weights) != len(factors):
        raise ValueError(f"{len(weights)} weights for {len(factors)} (B, A) pairs")
    m, n = factors[0][0].shape[0], factors[0][1].shape[-1]
    dtype = core.compute_dtype(factors[0][0])
    bs, as_ = [], []
    for t, (b, a) in enumerate(factors):
        if b.ndim != 2 or a.ndim != 2 or b.shape[0] != m or a.shape[1] != n or b.shape[1] != a.shape[0]:
            raise ValueError(
                f"factors[{t}]: B {tuple(b.shape)} and A {tuple(a.shape)} are not m × r and r × n with "
                f"(m, n) = ({m}, {n})"
            )
        bs.append(float(weights[t]) * b.to(dtype))
        as_.append(a.to(dtype))
    num_tasks, b_cat, a_cat = len(bs), torch.cat(bs, 1), torch.cat(as_, 0)
    if method == "task_arithmetic":
        left, right = b_cat, a_cat
    elif method == "tsv":
        k = core.tsv_k(min(m, n), num_tasks)
        svds = [core.factor_svd(b, a) for b, a in zip(bs, as_, strict=True)]
        left, right = core.tsv_factors(svds, k, rank_rtol) if k > 0 else _empty(m, n, b_cat)
    elif method == "iso_c":
        left, right = core.iso_c_factors(core.factor_svd(b_cat, a_cat), rank_rtol)
    else:
        k_c, s_task = core.iso_cts_split(min(m, n), num_tasks, common_space_fraction)
        common = core.iso_cts_common(core.factor_svd(b_cat, a_cat), k_c, rank_rtol)
        residuals, scales = [], []
        if s_task > 0:
            u_c = common[0]
            for b, a in zip(bs, as_, strict=True):  # R_t = (I − U_c U_cᵀ) B_t A_t, still in factor form
                residuals.append(core.factor_svd(b - u_c @ (u_c.mT @ b), a))
                scales.append(frobenius_norm(b, a))
        left, right = core.iso_cts_factors(common, residuals, scales, s_task, rank_rtol)
    if rank is not None:
        left, right, _ = truncate(left, right, rank)
    return left, right


def truncate(b: torch.Tensor, a: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The top-`rank` singular triplets of b @ a as factors, and the fraction of ‖b a‖²_F they discard.

    Factors of rank ≤ `rank` are returned unchanged (0.0 discarded).

    Example:
        >>> b, a, lost = truncate(torch.diag(torch.tensor([3.0, 1.0])), torch.eye(2), 1)
        >>> b.shape, round(lost, 3)
        (torch.Size([2, 1]), 0.1)
    """
    if rank < 1:
        raise ValueError(f"rank must be a positive integer, got {rank}")
    if b.shape[1] <= rank:
        return b, a, 0.0
    u, s, vh = core.factor_svd(b, a)
    energy = s.square()
    total = float(energy.sum())
    discarded = float(energy[rank:].sum()) / total if total > 0 else 0.0
    return u[:, :rank] * s[:rank], vh[:rank], discarded
