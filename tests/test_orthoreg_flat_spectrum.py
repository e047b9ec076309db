"""The flat-spectrum OrthoReg form: the dense form against a singular-value reference, its behaviour along ΔW, and
the PEFT glue (with_orthoreg, the config round trip). The factor form against the dense one (values and gradients)
and zero at LoRA init: test_orthoreg_forms.py; PEFT's own ΔW against the dense form: test_orthoreg_forms_peft.py."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model
from test_orthoreg_peft import randomise_b
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

import peft_orthoreg
from peft_orthoreg import OrthoLoraConfig, with_orthoreg
from peft_orthoreg.lora import flat_spectrum_loss
from peft_orthoreg.orthoreg import (
    dense_flat_spectrum_deviation_sq,
    dense_flat_spectrum_loss,
    dense_orthoreg_loss,
)


def flat_reference(delta: torch.Tensor, rank: int | None, squared: bool) -> torch.Tensor:
    """From the singular values: the r largest σ_i² (zeros where ΔW has fewer), their spread around the mean."""
    sigma2 = (torch.linalg.svdvals(delta.double()) ** 2).tolist()
    r = rank or min(delta.shape)
    top = (sorted(sigma2, reverse=True) + [0.0] * r)[:r]
    mean = sum(top) / r
    value = torch.tensor(sum((x - mean) ** 2 for x in top), dtype=torch.float64)
    return value if squared else value.sqrt()


@pytest.mark.parametrize("shape", [(7, 4), (4, 9), (6, 6), (1, 5)])
@pytest.mark.parametrize("rank", [None, 1, 2, 3, 8])
@pytest.mark.parametrize("squared", [False, True])
def test_dense_flat_spectrum_matches_singular_value_form(shape, rank, squared):
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.7
    got = dense_flat_spectrum_loss([delta], rank=rank, squared=squared)
    torch.testing.assert_close(got, flat_reference(delta, rank, squared), rtol=1e-10, atol=1e-12)


def test_flat_spectrum_is_zero_for_even_directions():
    # Rank 2 with two equal singular values: flat at rank 2 (whatever the scale), not at rank 3. (Zero with a zero
    # gradient at LoRA's B = 0: test_orthoreg_forms.py, beside the scale-free form.)
    q = torch.linalg.qr(torch.randn(6, 2, dtype=torch.float64)).Q
    even = (5.0 * torch.linalg.qr(torch.randn(4, 2, dtype=torch.float64)).Q @ q.T).requires_grad_()
    value = dense_flat_spectrum_loss([even], rank=2)
    (g,) = torch.autograd.grad(value, even)
    assert value.item() == pytest.approx(0.0, abs=1e-9) and torch.isfinite(g).all()
    assert dense_flat_spectrum_loss([even.detach()], rank=3).item() > 1.0


def test_flat_spectrum_gradient_shrinks_never_grows_the_update():
    # The squared value is homogeneous of degree 4: ⟨∇f, ΔW⟩ = 4f ≥ 0, so a descent step never grows ‖ΔW‖ —
    # unlike the paper's form, whose gradient near ΔW = 0 points to larger updates (⟨∇f, ΔW⟩ < 0).
    delta = (torch.randn(5, 8, dtype=torch.float64) * 0.1).requires_grad_()
    value = dense_flat_spectrum_loss([delta], rank=3, squared=True)
    (grad,) = torch.autograd.grad(value, delta)
    assert float((grad * delta.detach()).sum()) == pytest.approx(4 * value.item(), rel=1e-8) and value > 0
    (paper,) = torch.autograd.grad(dense_orthoreg_loss([delta], squared=True), delta)
    assert float((paper * delta.detach()).sum()) < 0


def test_bad_rank_is_refused():
    for rank in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="rank="):
            dense_flat_spectrum_deviation_sq(torch.zeros(3, 4), rank=rank)


def test_flat_spectrum_config_round_trip_registry_and_trainer(teacher_dir, tmp_path):
    cfg = OrthoLoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], orthoreg_weight=0.3,
                          orthoreg_form="flat_spectrum")  # fmt: skip
    cfg.save_pretrained(tmp_path / "cfg")
    assert OrthoLoraConfig.from_pretrained(tmp_path / "cfg").orthoreg_form == "flat_spectrum"
    assert peft_orthoreg.registry()["flat_spectrum"].builtin
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(teacher_dir), cfg)
    randomise_b(model)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no")
    weighted, value = with_orthoreg(Trainer)(model=model, args=args).orthoreg_term()
    expected = flat_spectrum_loss(model, "default").item()
    assert expected > 0 and value == pytest.approx(expected, rel=1e-6)
    assert weighted.item() == pytest.approx(0.3 * expected, rel=1e-6)
