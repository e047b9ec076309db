"""The OrthoReg regulariser in pure torch (no PEFT / TRL imports): one home for every form of the formula.

For an update ΔW (m × n) let G be its smaller Gram matrix (ΔW ΔWᵀ if m < n, else ΔWᵀ ΔW), k = min(m, n).
The per-matrix term is ‖G − I_k‖_F (``norm="fro"``, the official code) or ‖G − I_k‖²_F (``"fro_squared"``,
the paper's text); the loss is the sum over matrices.

Three forms (one module each, re-exported here):
- dense (the reference, and the exact full-fine-tuning form): builds G, O(m·n·k);
- LoRA factor space, exact, for ΔW = s·B·A: with P = BᵀB, Q = AAᵀ (r × r) and X = s²PQ,
  ‖G − I_k‖²_F = tr((X − I_r)²) + (k − r), O(r²(m + n)); ΔW is never built. (Same as
  s⁴tr((PQ)²) − 2s²⟨P, Q⟩ + k, but subtracting I_r before squaring avoids cancellation when G ≈ I.)
- Hutchinson: ‖(G − I)Z‖²_F / p with p Rademacher probes Z (k × p), unbiased for the squared norm, O(p·m·n).

Further forms (``orthoreg_form``), each with a dense reference and an exact factor form:
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

from peft_orthoreg.orthoreg.common import (
    ESTIMATORS,
    FORMS,
    NORMS,
    check_estimator,
    check_form,
    check_norm,
    check_weight,
    safe_sqrt,
)
from peft_orthoreg.orthoreg.flat_spectrum import (
    dense_flat_spectrum_deviation_sq,
    dense_flat_spectrum_loss,
    factor_flat_spectrum_deviation_sq,
    factor_flat_spectrum_loss,
)
from peft_orthoreg.orthoreg.inter_task import (
    dense_inter_task_loss,
    dense_overlap_sq,
    factor_inter_task_loss,
    factor_overlap_sq,
)
from peft_orthoreg.orthoreg.paper import (
    dense_gram_deviation_sq,
    dense_orthoreg_loss,
    factor_gram_deviation_sq,
    factor_orthoreg_loss,
    hutchinson_gram_deviation_sq,
)
from peft_orthoreg.orthoreg.scale_free import (
    dense_scale_free_deviation_sq,
    dense_scale_free_loss,
    factor_scale_free_deviation_sq,
    factor_scale_free_loss,
)

__all__ = [
    "ESTIMATORS",
    "FORMS",
    "NORMS",
    "check_estimator",
    "check_form",
    "check_norm",
    "check_weight",
    "safe_sqrt",
    "dense_gram_deviation_sq",
    "factor_gram_deviation_sq",
    "hutchinson_gram_deviation_sq",
    "dense_orthoreg_loss",
    "factor_orthoreg_loss",
    "dense_scale_free_deviation_sq",
    "factor_scale_free_deviation_sq",
    "dense_scale_free_loss",
    "factor_scale_free_loss",
    "dense_flat_spectrum_deviation_sq",
    "factor_flat_spectrum_deviation_sq",
    "dense_flat_spectrum_loss",
    "factor_flat_spectrum_loss",
    "dense_overlap_sq",
    "factor_overlap_sq",
    "dense_inter_task_loss",
    "factor_inter_task_loss",
]
