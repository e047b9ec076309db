"""The pure-torch OrthoReg core: every fast form against the dense reference, values and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from peft_orthoreg.orthoreg import (
    check_estimator,
    check_norm,
    check_weight,
    dense_orthoreg_loss,
    factor_orthoreg_loss,
    safe_sqrt,
)


def svd_reference(delta: torch.Tensor, squared: bool) -> torch.Tensor:
    """Obvious, independent form: G's eigenvalues are the squared singular values of ΔW (k of them)."""
    sigma = torch.linalg.svdvals(delta.double())
    value = ((sigma**2 - 1) ** 2).sum()
    return value if squared else value.sqrt()


SHAPES = [(7, 4), (4, 9), (6, 6), (1, 5), (5, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("squared", [False, True])
def test_dense_matches_singular_value_form(shape, squared):
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.7
    got = dense_orthoreg_loss([delta], squared=squared)
    torch.testing.assert_close(got, svd_reference(delta, squared), rtol=1e-10, atol=1e-10)
    # And a sum over several matrices is the sum of the terms.
    other = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    both = dense_orthoreg_loss([delta, other], squared=squared)
    torch.testing.assert_close(both, svd_reference(delta, squared) + svd_reference(other, squared))


def _cases():
    for m, n in [(7, 4), (4, 9), (6, 6)]:
        for r in range(1, min(m, n) + 1):
            yield m, n, r


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("rslora", [False, True])
def test_factor_form_values_and_gradients_match_dense(dtype, squared, rslora):
    tol = {"rtol": 1e-9, "atol": 1e-9} if dtype == torch.float64 else {"rtol": 2e-4, "atol": 2e-4}
    gen = torch.Generator().manual_seed(1)
    for m, n, r in _cases():
        alpha = 3.0
        s = alpha / math.sqrt(r) if rslora else alpha / r  # s ≠ 1
        a = (torch.randn(r, n, generator=gen, dtype=dtype) * 0.5).requires_grad_()
        b = (torch.randn(m, r, generator=gen, dtype=dtype) * 0.5).requires_grad_()
        fast = factor_orthoreg_loss([(a, b, s)], squared=squared)
        ga, gb = torch.autograd.grad(fast, [a, b])
        a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
        ref = dense_orthoreg_loss([s * b2 @ a2], squared=squared)
        ra, rb = torch.autograd.grad(ref, [a2, b2])
        torch.testing.assert_close(fast, ref, **tol, msg=f"value m={m} n={n} r={r}")
        torch.testing.assert_close(ga, ra, **tol, msg=f"grad A m={m} n={n} r={r}")
        torch.testing.assert_close(gb, rb, **tol, msg=f"grad B m={m} n={n} r={r}")


def test_factor_form_rank_above_k_and_several_layers():
    gen = torch.Generator().manual_seed(2)
    layers = [
        (
            torch.randn(6, 3, generator=gen, dtype=torch.float64),
            torch.randn(4, 6, generator=gen, dtype=torch.float64),
            0.3,
        ),
        (
            torch.randn(2, 5, generator=gen, dtype=torch.float64),
            torch.randn(8, 2, generator=gen, dtype=torch.float64),
            2.0,
        ),
    ]
    fast = factor_orthoreg_loss(layers)
    ref = dense_orthoreg_loss([s * b @ a for a, b, s in layers])
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


def test_lora_init_value_is_sqrt_k_with_zero_gradient():
    a = torch.randn(4, 10).requires_grad_()
    b = torch.zeros(6, 4).requires_grad_()
    value = factor_orthoreg_loss([(a, b, 2.0)])
    assert value.item() == pytest.approx(math.sqrt(6))
    value.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    assert a.grad.abs().max() == 0 and b.grad.abs().max() == 0


def test_sqrt_gradient_is_guarded_where_G_equals_I():
    # Dense: orthonormal rows give G = I exactly.
    delta = torch.eye(3, 5, dtype=torch.float64).requires_grad_()
    value = dense_orthoreg_loss([delta])
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(delta.grad).all() and delta.grad.abs().max() == 0
    # Factor form: r = k and s·B·A with orthonormal factors.
    a = torch.eye(3, 5, dtype=torch.float64).requires_grad_()
    b = torch.eye(4, 3, dtype=torch.float64).requires_grad_()
    value = factor_orthoreg_loss([(a, b, 1.0)])
    assert value.item() == pytest.approx(1.0)  # k = 4 > r = 3: one zero eigenvalue of G left, ‖G − I‖ = 1
    b3 = torch.eye(3, dtype=torch.float64).requires_grad_()
    value = factor_orthoreg_loss([(a, b3, 1.0)])
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(a.grad).all() and torch.isfinite(b3.grad).all()
    # Plain sqrt would give inf·0 = NaN here; the guard gives 0, and matches sqrt elsewhere.
    x = torch.tensor([0.0, 4.0], requires_grad=True)
    safe_sqrt(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.25]


@pytest.mark.parametrize("shape", [(6, 9), (9, 6)])
def test_hutchinson_is_unbiased_for_value_and_gradient(shape):
    gen = torch.Generator().manual_seed(3)
    delta = (torch.randn(shape, generator=gen, dtype=torch.float64) * 0.4).requires_grad_()
    exact = dense_orthoreg_loss([delta], squared=True)
    exact_grad = torch.autograd.grad(exact, delta)[0]
    n = 400
    values, grads = [], []
    for seed in range(n):
        est = dense_orthoreg_loss([delta], squared=True, estimator="hutchinson", probes=2, seed=seed)
        values.append(est.detach())
        grads.append(torch.autograd.grad(est, delta)[0])
    values, grads = torch.stack(values), torch.stack(grads)
    # Within 5 standard errors of the exact value (the test can fail: a biased estimator would).
    assert abs(values.mean() - exact.detach()) < 5 * values.std() / math.sqrt(n)
    z = (grads.mean(0) - exact_grad).abs() / (grads.std(0) / math.sqrt(n) + 1e-12)
    assert z.max() < 6
    # The exact mean is far from zero, so a zero estimator would fail the check above.
    assert exact.item() > 10 * values.std().item() / math.sqrt(n)


def test_hutchinson_is_seeded_and_many_probes_converge():
    delta = torch.randn(5, 8, generator=torch.Generator().manual_seed(4))
    one = dense_orthoreg_loss([delta], estimator="hutchinson", probes=3, seed=7)
    again = dense_orthoreg_loss([delta], estimator="hutchinson", probes=3, seed=7)
    other = dense_orthoreg_loss([delta], estimator="hutchinson", probes=3, seed=8)
    assert one.item() == again.item() and one.item() != other.item()
    many = dense_orthoreg_loss([delta], estimator="hutchinson", probes=20000, seed=0)
    assert many.item() == pytest.approx(dense_orthoreg_loss([delta]).item(), rel=0.03)


def test_bad_inputs_raise_one_line_errors_naming_the_field():
    with pytest.raises(ValueError, match="orthoreg_norm='l2'"):
        check_norm("l2")
    for bad in (-1.0, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="orthoreg_weight"):
            check_weight(bad)
    with pytest.raises(ValueError, match="orthoreg_estimator='svd'"):
        check_estimator("svd", 1)
    with pytest.raises(ValueError, match="orthoreg_probes=0"):
        dense_orthoreg_loss([torch.ones(2, 2)], estimator="hutchinson", probes=0)
    with pytest.raises(ValueError, match="2-D"):
        dense_orthoreg_loss([torch.ones(2, 2, 2)])
    assert check_norm("fro") is False and check_norm("fro_squared") is True
    assert check_weight(0) == 0.0


def test_full_precision_under_autocast():
    # Trainers run compute_loss under autocast: the Gram products must not drop to bf16.
    gen = torch.Generator().manual_seed(6)
    a, b = torch.randn(4, 48, generator=gen), torch.randn(40, 4, generator=gen) * 0.3
    delta = torch.randn(24, 40, generator=gen) * 0.2
    exact = [factor_orthoreg_loss([(a, b, 0.7)]), dense_orthoreg_loss([delta])]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = [factor_orthoreg_loss([(a, b, 0.7)]), dense_orthoreg_loss([delta])]
    for got, want in zip(under, exact, strict=True):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
