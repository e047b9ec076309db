"""PEFT glue: OrthoLoraConfig round-trips, orthoreg_loss against the dense reference on PEFT's own ΔW."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM

from peft_orthoreg import OrthoLoraConfig, dense_orthoreg_loss, orthoreg_loss


def randomise_b(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def peft_reference(model, adapter):
    """Dense reference over PEFT's own get_delta_weight (independent of our factor code)."""
    from peft.tuners.lora.layer import LoraLayer

    deltas = [
        m.get_delta_weight(adapter)
        for m in model.modules()
        if isinstance(m, LoraLayer) and adapter in m.scaling
    ]
    return deltas


@pytest.mark.parametrize("use_rslora", [False, True])
@pytest.mark.parametrize("norm", ["fro", "fro_squared"])
def test_orthoreg_loss_matches_dense_on_peft_deltas(teacher_dir, use_rslora, norm):
    base = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float64)
    cfg = OrthoLoraConfig(
        r=4,
        lora_alpha=6,
        use_rslora=use_rslora,
        target_modules=[
            "q_proj",
            "o_proj",
            "down_proj",
            "embed_tokens",
        ],  # tall, wide, square and an Embedding
        orthoreg_weight=1.0,
        orthoreg_norm=norm,
    )
    torch.manual_seed(0)
    model = get_peft_model(base, cfg)
    randomise_b(model)
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    fast = orthoreg_loss(model)
    fast_grads = torch.autograd.grad(fast, params)
    ref = dense_orthoreg_loss(peft_reference(model, "default"), squared=norm == "fro_squared")
    ref_grads = torch.autograd.grad(ref, params)
    torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-9)
    for g, r in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10)
    assert len(peft_reference(model, "default")) == 2 * 3 + 1  # 2 layers × 3 Linear + the embedding


def test_adapter_selection_and_trainable_only(teacher_dir):
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir), OrthoLoraConfig(r=2, target_modules=["q_proj"])
    )
    model.add_adapter("other", OrthoLoraConfig(r=3, target_modules=["v_proj"], orthoreg_norm="fro_squared"))
    randomise_b(model)
    one = orthoreg_loss(model, "default")
    other = orthoreg_loss(model, "other")  # uses that adapter's own norm
    torch.testing.assert_close(one, dense_orthoreg_loss(peft_reference(model, "default")))
    torch.testing.assert_close(other, dense_orthoreg_loss(peft_reference(model, "other"), squared=True))
    # None = every adapter whose LoRA weights are trainable: only the active "default" here.
    torch.testing.assert_close(orthoreg_loss(model), one)
    with pytest.raises(ValueError, match="no LoRA Linear/Embedding layers for adapter 'nope'"):
        orthoreg_loss(model, "nope")


def test_lora_init_gives_sqrt_k(teacher_dir):
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir), OrthoLoraConfig(r=2, target_modules=["q_proj"])
    )
    hidden = model.base_model.model.config.hidden_size  # q_proj is hidden × hidden here
    assert orthoreg_loss(model).item() == pytest.approx(2 * math.sqrt(hidden), rel=1e-6)


def test_config_round_trips(teacher_dir, tmp_path):
    cfg = OrthoLoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj"], orthoreg_weight=0.25, orthoreg_norm="fro_squared"
    )
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(teacher_dir), cfg)
    model.save_pretrained(tmp_path / "adapter")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (
        saved["peft_type"] == "LORA"
        and saved["orthoreg_weight"] == 0.25
        and saved["orthoreg_norm"] == "fro_squared"
    )
    assert not any(k.startswith("orthoreg") for k in saved.get("lora_variant", {}) or {})
    # Ours restores the fields.
    back = OrthoLoraConfig.from_pretrained(tmp_path / "adapter")
    assert type(back) is OrthoLoraConfig
    assert (back.orthoreg_weight, back.orthoreg_norm, back.r, back.lora_alpha) == (0.25, "fro_squared", 4, 8)
    # Stock PEFT loads it as plain LoRA (warning about the unknown keys), with the same weights.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stock = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(teacher_dir), tmp_path / "adapter"
        )
    assert type(stock.peft_config["default"]) is LoraConfig
    assert any("orthoreg_norm" in str(w.message) for w in caught)
    a = dict(model.named_parameters())
    for name, p in stock.named_parameters():
        if "lora_" in name:
            torch.testing.assert_close(p, a[name])
    # LoraConfig's own loader gives a LoraConfig as well.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert type(LoraConfig.from_pretrained(tmp_path / "adapter")) is LoraConfig


def test_bad_inputs(teacher_dir):
    with pytest.raises(ValueError, match="orthoreg_weight=-0.5"):
        OrthoLoraConfig(orthoreg_weight=-0.5)
    with pytest.raises(ValueError, match="orthoreg_weight=nan"):
        OrthoLoraConfig(orthoreg_weight=float("nan"))
    with pytest.raises(ValueError, match="orthoreg_norm='spectral'"):
        OrthoLoraConfig(orthoreg_norm="spectral")
    with pytest.raises(ValueError, match="use_dora"):
        OrthoLoraConfig(use_dora=True, orthoreg_weight=1.0)
    with pytest.raises(ValueError, match="no LoRA Linear/Embedding layers"):
        orthoreg_loss(AutoModelForCausalLM.from_pretrained(teacher_dir))
    with pytest.raises(ValueError, match="norm='l1'"):
        orthoreg_loss(nn.Linear(2, 2), norm="l1")
    dora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir),
        LoraConfig(r=2, target_modules=["q_proj"], use_dora=True),
    )
    with pytest.raises(ValueError, match="DoraLinearVariant"):
        orthoreg_loss(dora)
    conv = get_peft_model(nn.Sequential(nn.Conv2d(3, 4, 3)), LoraConfig(r=2, target_modules=["0"]))
    with pytest.raises(ValueError, match="'.*0' \\(Conv2d\\) is not a Linear/Embedding LoRA layer"):
        orthoreg_loss(conv)
