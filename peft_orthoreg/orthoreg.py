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

Two variants (``orthoreg_form``), each with a dense reference and an exact factor form:
- ``"scale_free"``: ‖G/τ − I_k‖ with τ = tr G / k (G's mean eigenvalue). The value does not change when ΔW is
  scaled, so its gradient is orthogonal to ΔW: unlike the paper's form it cannot lower the loss by inflating
  ‖ΔW‖ from 0. Factor space: ‖G/τ − I_k‖²_F = tr((X/τ − I_r)²) + (k − r) with τ = tr X / k. At ΔW = 0 the
  ratio is undefined; the term is defined as 0 there with a zero gradient (so LoRA starts from the task loss
  alone). Near 0 the gradient grows like 1/‖ΔW‖ (the value is scale-invariant); Adam-type optimisers bound the
  step, and λ sets how much the spectrum's isotropy weighs against the task.
- ``"inter_task"``: overlap with already-trained task vectors ΔW_t (fixed references), per matrix
  (‖ΔW ΔW_tᵀ‖²_F + ‖ΔWᵀ ΔW_t‖²_F) / ‖ΔW_t‖²_F, summed over the references: the energy of ΔW in the row and
  column spaces of each reference. It is quadratic in ΔW (0 with zero gradient at ΔW = 0, no push to grow) and
  gauge-free (it depends on ΔW only, not on how LoRA splits it into B·A). Factor space, with M = A A_tᵀ and
  N = Bᵀ B_t: s²s_t²(tr(P M P_t Mᵀ) + tr(Q N Q_t Nᵀ)) / (s_t² tr(P_t Q_t)), O(r²(m + n)). A reference with
  ΔW_t = 0 contributes 0.
- ``"flat_spectrum"`` (LoRA): the spread of the r nonzero eigenvalues of G around their mean,
  Σ_{i≤r} (λ_i − λ̄)² with λ̄ = tr G / r, r the adapter's rank. It asks only that the update use its r directions
  evenly (the isotropy Iso-C imposes after merging), not that G be I (the paper's form, which pushes ΔW to grow
  from 0) nor that the k − r missing directions exist (the scale-free form, dominated by them for a LoRA update).
  The value is quartic in ΔW (its root, the ``"fro"`` norm, is quadratic, like weight decay on the spectrum's
  uneven part): 0 with a zero gradient at ΔW = 0, no push to grow. Factor space: tr(D²) with D = X − (tr X / r) I_r.
  Dense: the top r eigenvalues of G (``rank`` defaults to k, where it is Σ_k (λ_i − λ̄)²).

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


def _check_factors(lora_A: torch.Tensor, lora_B: torch.Tensor) -> None:
    if lora_A.dim() != 2 or lora_B.dim() != 2 or lora_A.shape[0] != lora_B.shape[1]:
        raise ValueError(
            f"LoRA factors must be A (r × n) and B (m × r); got A {tuple(lora_A.shape)}, B {tuple(lora_B.shape)}"
        )


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


def _smaller_gram(d: torch.Tensor) -> torch.Tensor:
    return d @ d.T if d.shape[0] < d.shape[1] else d.T @ d


def _ratio_or_zero(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # num / den where den > 0, else 0 with a zero gradient (no NaN from the unused branch).
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.zeros_like(num))


def dense_scale_free_deviation_sq(delta: torch.Tensor) -> torch.Tensor:
    """‖G/τ − I_k‖²_F with τ = tr G / k, from a dense ΔW (m × n); 0 (zero gradient) when ΔW = 0.

    Example:
        >>> float(dense_scale_free_deviation_sq(3 * torch.eye(2, 4)))  # G = 9·I: isotropic, so 0
        0.0
    """
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
    with _no_autocast(delta):
        d = delta.to(_work_dtype(delta))
        gram = _smaller_gram(d)
        k = gram.shape[0]
        trace = torch.diagonal(gram).sum()
        ok = trace > 0
        scaled = gram * (k / torch.where(ok, trace, torch.ones_like(trace)))
        eye = torch.eye(k, dtype=gram.dtype, device=gram.device)
        return torch.where(ok, (scaled - eye).pow(2).sum(), torch.zeros_like(trace))


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
        a, b = lora_A.to(dtype), lora_B.to(dtype)
        r, k = a.shape[0], min(b.shape[0], a.shape[1])
        x = (b.T @ b) @ (a @ a.T)  # s² cancels in X/τ
        trace = torch.diagonal(x).sum()  # = ‖BA‖²_F ≥ 0
        ok = trace > 0
        dev = x * (k / torch.where(ok, trace, torch.ones_like(trace))) - torch.eye(
            r, dtype=dtype, device=x.device
        )
        return torch.where(ok, (dev * dev.T).sum() + (k - r), torch.zeros_like(trace))


def dense_flat_spectrum_deviation_sq(delta: torch.Tensor, rank: int | None = None) -> torch.Tensor:
    """Σ_{i≤r} (λ_i − λ̄)² over the r = ``rank`` largest eigenvalues λ_i of G, λ̄ their mean (r = k if None).

    Example:
        >>> float(dense_flat_spectrum_deviation_sq(torch.diag(torch.tensor([2.0, 1.0, 0.0])), rank=2))  # λ = 4, 1
        4.5
    """
    if delta.dim() != 2:
        raise ValueError(f"OrthoReg needs 2-D updates; got a tensor of shape {tuple(delta.shape)}")
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
        a, b = lora_A.to(dtype), lora_B.to(dtype)
        r = a.shape[0]
        x = (float(scaling) ** 2) * (b.T @ b) @ (a @ a.T)  # eigenvalues: G's r largest (zeros where rank < r)
        dev = x - (torch.diagonal(x).sum() / r) * torch.eye(r, dtype=dtype, device=x.device)
        return (dev * dev.T).sum()  # tr(D²) = Σ (λ_i − λ̄)²


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
        a, b = a.to(dtype), b.to(dtype)
        at, bt = at.detach().to(dtype), bt.detach().to(dtype)
        p, q, pt, qt = b.T @ b, a @ a.T, bt.T @ bt, at @ at.T
        m, n = a @ at.T, b.T @ bt  # r × r_t
        rows = (p @ m * (m @ pt)).sum()  # tr(P M P_t Mᵀ) = Σ (PM) ∘ (M P_t)
        cols = (q @ n * (n @ qt)).sum()  # tr(Q N Q_t Nᵀ)
        value = (float(s) ** 2) * (rows + cols)
        return _ratio_or_zero(value, (pt * qt).sum())  # ‖B_t A_t‖²_F = tr(P_t Q_t); s_t² cancels


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
