"""The scale-free and inter-task OrthoReg forms: factor forms against dense references (values and gradients),
the dense forms against slow independent references, and the guards at ΔW = 0."""

from __future__ import annotations

import math

import pytest
import torch

from peft_orthoreg.orthoreg import (
    dense_flat_spectrum_loss,
    dense_inter_task_loss,
    dense_overlap_sq,
    dense_scale_free_loss,
    factor_flat_spectrum_loss,
    factor_inter_task_loss,
    factor_overlap_sq,
    factor_scale_free_loss,
)


def scale_free_reference(delta: torch.Tensor, squared: bool) -> torch.Tensor:
    """From the singular values: G's k eigenvalues σ_i² (zeros included), τ their mean."""
    sigma2 = torch.linalg.svdvals(delta.double()) ** 2
    k = min(delta.shape)
    sigma2 = torch.cat([sigma2, sigma2.new_zeros(k - sigma2.numel())])
    value = ((sigma2 / sigma2.mean() - 1) ** 2).sum()
    return value if squared else value.sqrt()


def overlap_reference(delta: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Through the Gram matrices: ‖ΔW ΔW_tᵀ‖² = tr(ΔWᵀΔW · ΔW_tᵀΔW_t), ‖ΔWᵀΔW_t‖² = tr(ΔWΔWᵀ · ΔW_tΔW_tᵀ)."""
    d, r = delta.double(), ref.double()
    rows = torch.trace((d.T @ d) @ (r.T @ r))
    cols = torch.trace((d @ d.T) @ (r @ r.T))
    return (rows + cols) / (r * r).sum()


SHAPES = [(7, 4), (4, 9), (6, 6), (1, 5), (5, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("squared", [False, True])
def test_dense_scale_free_matches_singular_value_form(shape, squared):
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.3
    got = dense_scale_free_loss([delta], squared=squared)
    torch.testing.assert_close(got, scale_free_reference(delta, squared), rtol=1e-10, atol=1e-10)
    # Scale-free: multiplying ΔW by any c ≠ 0 leaves the value unchanged.
    torch.testing.assert_close(dense_scale_free_loss([-17.0 * delta], squared=squared), got)


def _factor_cases():
    for m, n in [(7, 4), (4, 9), (6, 6)]:
        for r in range(1, min(m, n) + 2):  # includes r > k
            yield m, n, r


FACTOR_FORMS = {  # form -> (factor loss, dense loss (deltas, rank, squared), tolerance in float64, in float32)
    "scale_free": (factor_scale_free_loss, lambda d, r, sq: dense_scale_free_loss(d, squared=sq),
                   {"rtol": 1e-9, "atol": 1e-9}, {"rtol": 2e-4, "atol": 2e-4}),
    "flat_spectrum": (factor_flat_spectrum_loss, lambda d, r, sq: dense_flat_spectrum_loss(d, rank=r, squared=sq),
                      {"rtol": 1e-8, "atol": 1e-10}, {"rtol": 2e-4, "atol": 2e-5}),
}  # fmt: skip


@pytest.mark.parametrize("form", list(FACTOR_FORMS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("squared", [False, True])
def test_factor_forms_values_and_gradients_match_dense(form, dtype, squared):
    factor_loss, dense_loss, tol64, tol32 = FACTOR_FORMS[form]
    tol = tol64 if dtype == torch.float64 else tol32
    gen = torch.Generator().manual_seed(1)
    for m, n, r in _factor_cases():  # r > k: flat_spectrum's X has zero eigenvalues the dense form pads
        s = 3.0 / r
        a = (torch.randn(r, n, generator=gen, dtype=dtype) * 0.5).requires_grad_()
        b = (torch.randn(m, r, generator=gen, dtype=dtype) * 0.5).requires_grad_()
        fast = factor_loss([(a, b, s)], squared=squared)
        ga, gb = torch.autograd.grad(fast, [a, b])
        a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
        ref = dense_loss([s * b2 @ a2], r, squared)
        ra, rb = torch.autograd.grad(ref, [a2, b2])
        torch.testing.assert_close(fast, ref, **tol, msg=f"value m={m} n={n} r={r}")
        torch.testing.assert_close(ga, ra, **tol, msg=f"grad A m={m} n={n} r={r}")
        torch.testing.assert_close(gb, rb, **tol, msg=f"grad B m={m} n={n} r={r}")


def test_scale_free_gradient_never_pushes_the_norm():
    # Scale invariance ⇒ ⟨∇f, ΔW⟩ = 0: the term cannot lower itself by growing ‖ΔW‖ (the paper's form can).
    gen = torch.Generator().manual_seed(2)
    delta = (torch.randn(5, 8, generator=gen, dtype=torch.float64) * 0.1).requires_grad_()
    grad = torch.autograd.grad(dense_scale_free_loss([delta]), delta)[0]
    assert abs(float((grad * delta.detach()).sum())) < 1e-10 * float(grad.norm() * delta.detach().norm())
    assert grad.norm() > 1e-3  # and it is not trivially zero


@pytest.mark.parametrize("loss", [factor_scale_free_loss, factor_flat_spectrum_loss])
def test_factor_forms_are_zero_with_zero_gradient_at_lora_init(loss):
    a = torch.randn(3, 6, dtype=torch.float64).requires_grad_()
    b = torch.zeros(4, 3, dtype=torch.float64).requires_grad_()
    for squared in (False, True):
        value = loss([(a, b, 2.0)], squared=squared)
        ga, gb = torch.autograd.grad(value, [a, b])
        assert value.item() == 0.0 and ga.abs().max() == 0 and gb.abs().max() == 0


def test_scale_free_is_zero_with_zero_gradient_at_zero_update():
    d = torch.zeros(4, 6, dtype=torch.float64, requires_grad=True)
    value = dense_scale_free_loss([d])
    (g,) = torch.autograd.grad(value, d)
    assert value.item() == 0.0 and torch.isfinite(g).all() and g.abs().max() == 0
    # Isotropic updates (G ∝ I) are the minimum 0 — with the sqrt guarded there too.
    iso = (3 * torch.eye(4, 6, dtype=torch.float64)).requires_grad_()
    value = dense_scale_free_loss([iso])
    (g,) = torch.autograd.grad(value, iso)
    assert value.item() == pytest.approx(0.0, abs=1e-12) and torch.isfinite(g).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_dense_overlap_matches_gram_reference(shape):
    gen = torch.Generator().manual_seed(3)
    d = torch.randn(shape, generator=gen, dtype=torch.float64)
    ref = torch.randn(shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(dense_overlap_sq(d, ref), overlap_reference(d, ref), rtol=1e-10, atol=1e-10)
    # Disjoint row and column supports: no overlap; a reference of zeros contributes 0 (no NaN).
    e, f = torch.zeros(4, 6, dtype=torch.float64), torch.zeros(4, 6, dtype=torch.float64)
    e[:2, :3], f[2:, 3:] = 1.0, 1.0
    assert dense_overlap_sq(e, f).item() == 0.0 and dense_overlap_sq(e, e).item() > 0
    zero = torch.zeros(shape, dtype=torch.float64)
    d.requires_grad_()
    value = dense_overlap_sq(d, zero)
    (g,) = torch.autograd.grad(value, d)
    assert value.item() == 0.0 and g.abs().max() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("squared", [False, True])
def test_factor_inter_task_values_and_gradients_match_dense(dtype, squared):
    tol = {"rtol": 1e-9, "atol": 1e-9} if dtype == torch.float64 else {"rtol": 2e-4, "atol": 2e-4}
    gen = torch.Generator().manual_seed(4)
    for m, n, r in _factor_cases():
        rt = max(1, r - 1)  # the references' rank differs from the trained adapter's
        a = (torch.randn(r, n, generator=gen, dtype=dtype) * 0.5).requires_grad_()
        b = (torch.randn(m, r, generator=gen, dtype=dtype) * 0.5).requires_grad_()
        refs = [
            (
                torch.randn(rt, n, generator=gen, dtype=dtype),
                torch.randn(m, rt, generator=gen, dtype=dtype),
                s,
            )
            for s in (0.5, 2.0)
        ]
        refs = [(at.requires_grad_(), bt, s) for at, bt, s in refs]  # must still receive no gradient
        fast = factor_inter_task_loss([(a, b, 1.5)], [refs], squared=squared)
        ga, gb = torch.autograd.grad(fast, [a, b])
        assert all(at.grad is None for at, _, _ in refs)
        a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
        dense_refs = [s * bt @ at.detach() for at, bt, s in refs]
        ref = dense_inter_task_loss([1.5 * b2 @ a2], [dense_refs], squared=squared)
        ra, rb = torch.autograd.grad(ref, [a2, b2])
        torch.testing.assert_close(fast, ref, **tol, msg=f"value m={m} n={n} r={r}")
        torch.testing.assert_close(ga, ra, **tol, msg=f"grad A m={m} n={n} r={r}")
        torch.testing.assert_close(gb, rb, **tol, msg=f"grad B m={m} n={n} r={r}")
        # Sum over references inside the per-matrix root: the squared form is the plain sum of overlaps.
        if squared:
            total = sum(overlap_reference(1.5 * b.detach() @ a.detach(), d) for d in dense_refs)
            torch.testing.assert_close(fast.double(), total, **tol)


def test_inter_task_is_zero_with_zero_gradient_at_lora_init_and_several_layers_add():
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(2, 6, generator=gen, dtype=torch.float64).requires_grad_()
    b = torch.zeros(5, 2, dtype=torch.float64).requires_grad_()
    ref = (
        torch.randn(2, 6, generator=gen, dtype=torch.float64),
        torch.randn(5, 2, generator=gen, dtype=torch.float64),
        1.0,
    )
    value = factor_inter_task_loss([(a, b, 1.0)], [[ref]])
    ga, gb = torch.autograd.grad(value, [a, b])
    assert value.item() == 0.0 and ga.abs().max() == 0 and gb.abs().max() == 0
    # Two layers: the sum of the per-layer roots; a layer with no references adds nothing.
    b1 = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    one = factor_inter_task_loss([(a, b1, 1.0)], [[ref]])
    two = factor_inter_task_loss([(a, b1, 1.0), (a, b1, 1.0), (a, b1, 1.0)], [[ref], [ref], []])
    torch.testing.assert_close(two, 2 * one)
    expected = math.sqrt(float(overlap_reference(b1 @ a.detach(), ref[1] @ ref[0])))
    assert one.item() == pytest.approx(expected, rel=1e-10)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        dense_overlap_sq(torch.zeros(3, 4), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="do not match"):
        factor_overlap_sq(
            (torch.zeros(2, 4), torch.zeros(3, 2), 1.0), (torch.zeros(2, 5), torch.zeros(3, 2), 1.0)
        )
    with pytest.raises(ValueError, match="reference lists"):
        dense_inter_task_loss([torch.zeros(2, 2)], [])
