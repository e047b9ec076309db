"""Factor-space merging of one weight's LoRA deltas (pure torch; the kernel of a method comes from its plugin).

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
from typing import Any

import torch

from mergekit_plugins import core


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


def _weighted(factors: Sequence[core.Factors], weights: Sequence[float]) -> tuple[list, list]:
    return [float(w) * b for (b, _), w in zip(factors, weights, strict=True)], [a for _, a in factors]


# -- the built-in kernels (declared by the built-in plugin; see `MergeMethodDeclaration.factor_kernel`) -------
def task_arithmetic_kernel(
    factors: Sequence[core.Factors], weights: Sequence[float], *, normalize: bool = False
) -> core.Factors:
    """Σ w_t B_t A_t: the factors side by side (rank Σ r_t, no SVD); `normalize` divides the weights by their
    sum (mergekit's option).

    Example:
        >>> b, a = task_arithmetic_kernel([(torch.ones(2, 1), torch.ones(1, 3))] * 2, [1.0, 3.0], normalize=True)
        >>> (b @ a)[0, 0].item()
        1.0
    """
    if normalize:
        weights = [w / sum(weights) for w in weights]
    bs, as_ = _weighted(factors, weights)
    return torch.cat(bs, 1), torch.cat(as_, 0)


def tsv_kernel(
    factors: Sequence[core.Factors], weights: Sequence[float], *, rank_rtol: float = core.DEFAULT_RANK_RTOL
) -> core.Factors:
    """TSV-M of the deltas w_t·B_t A_t (equal to `core.tsv_merge` of the densified deltas)."""
    bs, as_ = _weighted(factors, weights)
    m, n = bs[0].shape[0], as_[0].shape[1]
    k = core.tsv_k(min(m, n), len(bs))
    if k == 0:
        return _empty(m, n, bs[0])
    return core.tsv_factors([core.factor_svd(b, a) for b, a in zip(bs, as_, strict=True)], k, rank_rtol)


def iso_c_kernel(
    factors: Sequence[core.Factors], weights: Sequence[float], *, rank_rtol: float = core.DEFAULT_RANK_RTOL
) -> core.Factors:
    """Iso-C of the deltas w_t·B_t A_t (equal to `core.iso_c_merge` of the densified deltas)."""
    bs, as_ = _weighted(factors, weights)
    return core.iso_c_factors(core.factor_svd(torch.cat(bs, 1), torch.cat(as_, 0)), rank_rtol)


def iso_cts_kernel(
    factors: Sequence[core.Factors],
    weights: Sequence[float],
    *,
    common_space_fraction: float = 0.8,
    rank_rtol: float = core.DEFAULT_RANK_RTOL,
) -> core.Factors:
    """Iso-CTS of the deltas w_t·B_t A_t (equal to `core.iso_cts_merge` of the densified deltas)."""
    bs, as_ = _weighted(factors, weights)
    m, n = bs[0].shape[0], as_[0].shape[1]
    k_c, s_task = core.iso_cts_split(min(m, n), len(bs), common_space_fraction)
    common = core.iso_cts_common(core.factor_svd(torch.cat(bs, 1), torch.cat(as_, 0)), k_c, rank_rtol)
    residuals, scales = [], []
    if s_task > 0:
        u_c = common[0]
        for b, a in zip(bs, as_, strict=True):  # R_t = (I − U_c U_cᵀ) B_t A_t, still in factor form
            residuals.append(core.factor_svd(b - u_c @ (u_c.mT @ b), a))
            scales.append(frobenius_norm(b, a))
    return core.iso_cts_factors(common, residuals, scales, s_task, rank_rtol)


# -- running a declared kernel -------------------------------------------------------------------------------
def factor_declaration(method: str) -> Any:
    """The `MergeMethodDeclaration` of `method` if it has a factor kernel (from the plugin registry; this loads
    the plugins and imports mergekit), a ValueError naming the methods that have one otherwise.

    Example:
        >>> factor_declaration("iso_cts").factor_parameters["common_space_fraction"]
        0.8
    """
    from mergekit_plugins.plugins import declarations

    found = declarations()
    declared = found.get(method)
    if declared is None or declared.factor_kernel is None:
        names = sorted(name for name, d in found.items() if d.factor_kernel is not None)
        raise ValueError(
            f"method {method!r} is not one of {', '.join(names)} (the methods with a factor kernel)"
        )
    return declared


def run_kernel(
    declared: Any,
    factors: Sequence[tuple[torch.Tensor, torch.Tensor]],
    weights: Sequence[float] | None = None,
    parameters: dict[str, Any] | None = None,
) -> core.Factors:
    """Check the factors of one weight, cast them to the compute dtype (fp32, fp64 for fp64 inputs) and call the
    declared kernel; its result is checked to be (m × r, r × n)."""
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(declared.factor_parameters))
    if unknown:
        raise ValueError(
            f"method {declared.name!r} takes no parameter {', '.join(unknown)} "
            f"(its parameters: {', '.join(declared.factor_parameters) or 'none'})"
        )
    if not factors:
        raise ValueError("at least one (B, A) pair is required")
    weights = [1.0] * len(factors) if weights is None else [float(w) for w in weights]
    if len(weights) != len(factors):
        raise ValueError(f"{len(weights)} weights for {len(factors)} (B, A) pairs")
    m, n = factors[0][0].shape[0], factors[0][1].shape[-1]
    dtype = core.compute_dtype(factors[0][0])
    cast = []
    for t, (b, a) in enumerate(factors):
        if b.ndim != 2 or a.ndim != 2 or b.shape[0] != m or a.shape[1] != n or b.shape[1] != a.shape[0]:
            raise ValueError(
                f"factors[{t}]: B {tuple(b.shape)} and A {tuple(a.shape)} are not m × r and r × n with "
                f"(m, n) = ({m}, {n})"
            )
        cast.append((b.to(dtype), a.to(dtype)))
    left, right = declared.factor_kernel(cast, weights, **parameters)
    if (
        left.ndim != 2
        or right.ndim != 2
        or left.shape[0] != m
        or right.shape[1] != n
        or left.shape[1] != right.shape[0]
    ):
        raise ValueError(
            f"the factor kernel of {declared.name!r} returned B {tuple(left.shape)} and A {tuple(right.shape)}, "
            f"not m × r and r × n with (m, n) = ({m}, {n})"
        )
    return left, right


def merge_factors(
    method: str,
    factors: Sequence[tuple[torch.Tensor, torch.Tensor]],
    weights: Sequence[float] | None = None,
    *,
    rank: int | None = None,
    **parameters: Any,
) -> core.Factors:
    """Merge LoRA factors ``[(B_t, A_t)]`` of one weight; returns (B, A) with B @ A = the merged delta.

    `method`: any method whose plugin declares a factor kernel; built in: ``task_arithmetic`` (Σ w_t B_t A_t,
    rank Σ r_t, no SVD; parameter `normalize`), ``tsv``, ``iso_c`` and ``iso_cts`` (equal to `core.tsv_merge` /
    `iso_c_merge` / `iso_cts_merge` of the deltas w_t·B_t A_t; parameters `rank_rtol`, the low-rank rule, and
    for Iso-CTS `common_space_fraction`). `weights` default to 1. `rank` keeps the top `rank` singular triplets
    of the result (an approximation: `truncate` reports the discarded energy); None keeps it exact. Computed in
    fp32 (fp64 for fp64 inputs); the SVD methods return B carrying the singular values and A with orthonormal rows.

    Example:
        >>> b, a = merge_factors("tsv", [(torch.randn(6, 2), torch.randn(2, 5)), (torch.randn(6, 1), torch.randn(1, 5))])
        >>> b.shape, a.shape
        (torch.Size([6, 3]), torch.Size([3, 5]))
    """
    left, right = run_kernel(factor_declaration(method), factors, weights, parameters)
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
