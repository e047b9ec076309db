"""Pure-torch cores of TSV-M, Iso-C and Iso-CTS (no mergekit import): one home per formula.

Every function takes the task deltas Δ_t = w_t·(θ_t − θ₀) of one 2-D weight and returns `merged`; the caller
forms θ = θ₀ + α·merged. Arithmetic follows the official code of TSV-M (Gargiulo et al., CVPR 2025) and of
Iso-C / Iso-CTS (Marczak et al., ICML 2025): SVDs in float32 with ``full_matrices=False``, and polar(X) = P·Q, the
nearest orthogonal matrix, from svd(X) = P·Σ·Q.

**One home per formula.** The methods themselves (`tsv_factors`, `iso_c_factors`, `iso_cts_common`,
`iso_cts_factors`) take SVD triplets and return factors (L, R) with merged = L @ R. The dense functions get the
triplets from `svd` of the deltas and multiply; the LoRA merge (`mergekit_plugins.lora`) gets them from
`factor_svd` of the adapters' factors and keeps the factors.

**Low-rank rule.** An SVD's null-space singular vectors are arbitrary. Keeping them would give Iso-C's mean
singular value to hundreds of arbitrary directions and make TSV-M orthogonalise real directions against
arbitrary ones. So only singular triplets whose value exceeds ``rank_rtol × scale`` take part, where `scale` is
the largest singular value of the matrix being decomposed (Δ_t for TSV-M, M = ΣΔ_t for Iso-C and the common
space of Iso-CTS) and ‖Δ_t‖_F for the Iso-CTS residuals R_t (which may be pure round-off). Full-rank inputs keep
every triplet and give exactly the published algorithms; with the rule, the merge is orthogonally equivariant
(merging Q·Δ_t·R gives Q·merged·R) for rank-deficient inputs too. Means of singular values are taken over the
kept triplets.

Example:
    >>> import torch
    >>> deltas = [torch.randn(6, 4, dtype=torch.float64) for _ in range(2)]
    >>> tsv_merge(deltas).shape, tsv_k(4, 2), iso_cts_split(768, 8, 0.8)
    (torch.Size([6, 4]), 2, (616, 19))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Default relative tolerance of the low-rank rule (a triplet counts if σ > rank_rtol · scale).
DEFAULT_RANK_RTOL = 1e-5

#: Thin SVDs of clearly rectangular matrices go through a QR of the long side first (see `svd`). False gives
#: plain `torch.linalg.svd` everywhere (the benchmark compares both).
QR_PRECONDITION = True

#: (L, R) with merged = L @ R: what the method formulas return (dense callers multiply, LoRA keeps them).
Factors = tuple[torch.Tensor, torch.Tensor]


def tsv_k(r: int, num_tasks: int) -> int:
    """TSV-M's triplets per task, k = ⌊r / T⌋ (0 when r < T).

    Example:
        >>> tsv_k(768, 8), tsv_k(3, 8)
        (96, 0)
    """
    return r // num_tasks


def iso_cts_split(r: int, num_tasks: int, common_space_fraction: float = 0.8) -> tuple[int, int]:
    """Iso-CTS's (k_c, s): common-space size and task-specific triplets per task, with k_c + T·s = r.

    k_c = ⌊r f⌋; k_c = r − round((r − k_c)/T)·T (Python's half-to-even round, as the official code);
    s = (r − k_c)/T. If rounding would make k_c negative (tiny r, small f), s = ⌊r/T⌋ instead.

    Example:
        >>> iso_cts_split(768, 8), iso_cts_split(50, 8)
        ((616, 19), (42, 1))
    """
    k_c = int(r * common_space_fraction)
    k_c = r - round((r - k_c) / num_tasks) * num_tasks
    if k_c < 0:
        k_c = r - (r // num_tasks) * num_tasks
    return k_c, (r - k_c) // num_tasks


def numerical_rank(s: torch.Tensor, scale: torch.Tensor | float, rank_rtol: float) -> int:
    """How many of the descending singular values `s` exceed ``rank_rtol · scale``.

    Example:
        >>> numerical_rank(torch.tensor([2.0, 1.0, 1e-9]), 2.0, 1e-5)
        2
    """
    return int((s > rank_rtol * float(scale)).sum())


def svd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD ``x = U diag(S) Vh`` (batched over leading dims), like ``torch.linalg.svd(x, full_matrices=False)``.

    For a clearly rectangular matrix (long side ≥ 1.5 × short side) it factors the long side by QR first and
    decomposes the small square R: backward stable like the plain SVD (no Gram matrix, nothing squared), and
    2–3× faster on CPU for 576 × 1536 weights (measured in benchmarks/merge_speed.py).

    Example:
        >>> x = torch.randn(3, 8, dtype=torch.float64)
        >>> u, s, vh = svd(x)
        >>> torch.allclose(u @ torch.diag(s) @ vh, x)
        True
    """
    m, n = x.shape[-2:]
    if QR_PRECONDITION and n >= 1.5 * m:
        q, r = torch.linalg.qr(x.mT)  # x = Rᵀ Qᵀ
        u, s, wh = _plain_svd(r.mT)
        return u, s, wh @ q.mT
    if QR_PRECONDITION and m >= 1.5 * n:
        q, r = torch.linalg.qr(x)  # x = Q R
        w, s, vh = _plain_svd(r)
        return q @ w, s, vh
    return _plain_svd(x)


def _plain_svd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    try:
        return torch.linalg.svd(x, full_matrices=False)
    except torch.linalg.LinAlgError:
        if x.dtype == torch.float64:
            raise
        # LAPACK's gesdd occasionally fails to converge in fp32 on matrices with many (nearly) repeated singular
        # values, e.g. the almost orthonormal U_cat of unrelated tasks; fp64 converges there.
        u, s, vh = torch.linalg.svd(x.double(), full_matrices=False)
        return u.to(x.dtype), s.to(x.dtype), vh.to(x.dtype)


def polar(x: torch.Tensor) -> torch.Tensor:
    """The orthogonal polar factor P·Q of ``svd(x) = P Σ Q`` (the nearest matrix with orthonormal rows/cols).

    Example:
        >>> q = polar(torch.randn(5, 3, dtype=torch.float64))
        >>> torch.allclose(q.T @ q, torch.eye(3, dtype=torch.float64))
        True
    """
    p, _, q = svd(x)
    return p @ q


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """fp64 stays fp64 (tests); everything else is computed in fp32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _stack(deltas: Sequence[torch.Tensor]) -> torch.Tensor:
    if not deltas:
        raise ValueError("at least one task delta is required")
    dtype = compute_dtype(deltas[0])
    return torch.stack([d.to(dtype) for d in deltas])


def mean_delta(deltas: Sequence[torch.Tensor]) -> torch.Tensor:
    """The rule for every non-matrix tensor: the mean of the task deltas.

    Example:
        >>> mean_delta([torch.ones(2), 3 * torch.ones(2)])
        tensor([2., 2.])
    """
    return _stack(deltas).mean(0)


#: A thin SVD ``(U, S, Vh)`` with descending S, as returned by `svd` and `factor_svd`.
Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def factor_svd(b: torch.Tensor, a: torch.Tensor) -> Triplets:
    """Thin SVD of ``b @ a`` (b: m × r, a: r × n) without forming it, in O((m + n)·r²).

    With b = Q_b R_b and aᵀ = Q_a R_a (thin QR), b a = Q_b (R_b R_aᵀ) Q_aᵀ: the SVD of the small core gives
    the SVD of the product (the factor-space route of LoRA merging). r = 0 gives empty triplets.

    Example:
        >>> b, a = torch.randn(9, 2, dtype=torch.float64), torch.randn(2, 7, dtype=torch.float64)
        >>> u, s, vh = factor_svd(b, a)
        >>> s.shape, torch.allclose(u @ torch.diag(s) @ vh, b @ a)
        (torch.Size([2]), True)
    """
    m, n = b.shape[0], a.shape[1]
    if b.shape[1] == 0:
        return b.new_zeros(m, 0), b.new_zeros(0), b.new_zeros(0, n)
    q_b, r_b = torch.linalg.qr(b)
    q_a, r_a = torch.linalg.qr(a.mT)
    u, s, vh = _plain_svd(r_b @ r_a.mT)
    return q_b @ u, s, vh @ q_a.mT


def tsv_factors(svds: Sequence[Triplets], k: int, rank_rtol: float = DEFAULT_RANK_RTOL) -> Factors:
    """TSV-M from each task's SVD: (L, R) with merged = L @ R = polar(U_cat)·diag(s_cat)·polar(V_cat).

    Each task contributes its top min(k, numerical rank) triplets. Zero-padded columns of the official U_cat
    multiply zero singular values, so only the kept columns are formed (identical result when they have full
    column rank). Shared by the dense `tsv_merge` and the factor-space LoRA merge.

    Example:
        >>> left, right = tsv_factors([svd(torch.eye(3, dtype=torch.float64))] * 2, k=1)
        >>> left.shape, right.shape
        (torch.Size([3, 2]), torch.Size([2, 3]))
    """
    us, ss, vs = [], [], []
    for u, s, vh in svds:
        keep = min(k, numerical_rank(s, s[0], rank_rtol)) if s.numel() else 0
        us.append(u[:, :keep])
        ss.append(s[:keep])
        vs.append(vh[:keep])
    u_cat, s_cat, v_cat = torch.cat(us, 1), torch.cat(ss), torch.cat(vs, 0)
    if s_cat.numel() == 0:
        return u_cat, v_cat
    return polar(u_cat) * s_cat, polar(v_cat)


def iso_c_factors(svd_sum: Triplets, rank_rtol: float = DEFAULT_RANK_RTOL) -> Factors:
    """Iso-C from the SVD U S Vᵀ of M = ΣΔ_t: (L, R) = (mean(S)·U, Vᵀ) over the numerical rank of M.

    Example:
        >>> left, right = iso_c_factors(svd(torch.diag(torch.tensor([3.0, 1.0]))))
        >>> left @ right
        tensor([[2., 0.],
                [0., 2.]])
    """
    u, s, vh = svd_sum
    rho = numerical_rank(s, s[0], rank_rtol) if s.numel() else 0
    if rho == 0:
        return u[:, :0], vh[:0]
    return s[:rho].mean() * u[:, :rho], vh[:rho]


def iso_cts_common(svd_sum: Triplets, k_c: int, rank_rtol: float = DEFAULT_RANK_RTOL) -> Triplets:
    """Iso-CTS's common space: the top min(k_c, numerical rank) triplets of the SVD of M = ΣΔ_t.

    Example:
        >>> [t.shape for t in iso_cts_common(svd(torch.eye(4)), k_c=3)]
        [torch.Size([4, 3]), torch.Size([3]), torch.Size([3, 4])]
    """
    u, s, vh = svd_sum
    k_c = min(k_c, numerical_rank(s, s[0], rank_rtol)) if s.numel() else 0
    return u[:, :k_c], s[:k_c], vh[:k_c]


def iso_cts_factors(
    common: Triplets,
    residual_svds: Sequence[Triplets],
    scales: Sequence[float],
    s_task: int,
    rank_rtol: float = DEFAULT_RANK_RTOL,
) -> Factors:
    """Iso-CTS from the common space and the SVDs of the residuals R_t = Δ_t − U_c U_cᵀ Δ_t: each task's top
    min(s_task, numerical rank) triplets (scale ‖Δ_t‖_F), task blocks first and common block last;
    (L, R) = (mean(S_cat)·polar(U_cat), polar(V_cat)).

    Example:
        >>> common = iso_cts_common(svd(torch.eye(4, dtype=torch.float64)), k_c=4)
        >>> left, right = iso_cts_factors(common, [], [], s_task=0)
        >>> torch.allclose(left @ right, torch.eye(4, dtype=torch.float64))
        True
    """
    us, ss, vs = [], [], []
    for (ru, rs, rvh), scale in zip(residual_svds, scales, strict=True):
        keep = min(s_task, numerical_rank(rs, scale, rank_rtol))
        us.append(ru[:, :keep])
        ss.append(rs[:keep])
        vs.append(rvh[:keep])
    u_c, s_c, v_c = common
    u_cat, s_cat, v_cat = torch.cat([*us, u_c], 1), torch.cat([*ss, s_c]), torch.cat([*vs, v_c], 0)
    if s_cat.numel() == 0:
        return u_cat, v_cat
    return s_cat.mean() * polar(u_cat), polar(v_cat)


def tsv_merge(deltas: Sequence[torch.Tensor], rank_rtol: float = DEFAULT_RANK_RTOL) -> torch.Tensor:
    """TSV-M: each task's top-k triplets (k = ⌊r/T⌋), merged = polar(U_cat)·diag(s_cat)·polar(V_cat)
    (`tsv_factors`). k = 0 (r < T) gives a zero matrix.

    Example:
        >>> tsv_merge([torch.eye(3), torch.eye(3)]).shape
        torch.Size([3, 3])
    """
    d = _stack(deltas)
    num_tasks, m, n = d.shape
    k = tsv_k(min(m, n), num_tasks)
    if k == 0:
        return d.new_zeros(m, n)
    u, s, vh = svd(d)  # batched over tasks
    left, right = tsv_factors(list(zip(u, s, vh, strict=True)), k, rank_rtol)
    return left @ right if left.shape[1] else d.new_zeros(m, n)


def iso_c_merge(deltas: Sequence[torch.Tensor], rank_rtol: float = DEFAULT_RANK_RTOL) -> torch.Tensor:
    """Iso-C: M = ΣΔ_t = U S Vᵀ; merged = mean(S)·U Vᵀ over the numerical rank of M (`iso_c_factors`).

    Example:
        >>> torch.linalg.svdvals(iso_c_merge([torch.diag(torch.tensor([3.0, 1.0]))]))
        tensor([2., 2.])
    """
    m_sum = _stack(deltas).sum(0)
    left, right = iso_c_factors(svd(m_sum), rank_rtol)
    return left @ right if left.shape[1] else torch.zeros_like(m_sum)


def iso_cts_merge(
    deltas: Sequence[torch.Tensor],
    common_space_fraction: float = 0.8,
    rank_rtol: float = DEFAULT_RANK_RTOL,
) -> torch.Tensor:
    """Iso-CTS: top-k_c of svd(ΣΔ_t) as the common space, each task's top-s triplets of its residual
    R_t = Δ_t − U_c U_cᵀ Δ_t, task blocks first and common block last; merged =
    mean(S_cat)·polar(U_cat)·polar(V_cat) (`iso_cts_common`, `iso_cts_factors`).

    Under the low-rank rule, when the tasks' ranks add up to at most k_c (small-rank LoRA task vectors), the
    common space already holds every task direction, no residual remains and the result equals `iso_c_merge`.

    Example:
        >>> iso_cts_merge([torch.randn(5, 4), torch.randn(5, 4)]).shape
        torch.Size([5, 4])
    """
    d = _stack(deltas)
    num_tasks, m, n = d.shape
    k_c, s_task = iso_cts_split(min(m, n), num_tasks, common_space_fraction)
    u, s, vh = svd(d.sum(0))
    common = iso_cts_common((u, s, vh), k_c, rank_rtol)
    u_c, k_c = common[0], common[0].shape[1]
    residuals: list[Triplets] = []
    if s_task > 0:
        if u.shape[1] == m:
            # m ≤ n: U is a full basis of ℝ^m, so R_t = B·(Bᵀ Δ_t) with B = U[:, k_c:], and the SVD of the small
            # (m − k_c) × n matrix Bᵀ Δ_t gives R_t's triplets (same math, far fewer flops).
            basis = u[:, k_c:]
            ru, rs, rvh = svd(basis.T @ d)
            ru = basis @ ru
        else:
            ru, rs, rvh = svd(d - u_c @ (u_c.T @ d))
        residuals = list(zip(ru, rs, rvh, strict=True))
    scales = [float(torch.linalg.matrix_norm(d[t])) for t in range(num_tasks)] if residuals else []
    left, right = iso_cts_factors(common, residuals, scales, s_task, rank_rtol)
    return left @ right if left.shape[1] else d.new_zeros(m, n)
