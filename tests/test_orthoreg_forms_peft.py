"""PEFT glue of the OrthoReg forms: `orthoreg_form` / `orthoreg_reference_adapters` (validation, round trip),
the forms on PEFT's own ΔW against the dense references, the plugin hook, and `with_orthoreg` picking the form."""

from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from test_orthoreg_peft import peft_reference, randomise_b
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

import peft_orthoreg.hookspecs
import peft_orthoreg.plugins
from distill_ortho_merge.registry import PluginRegistry
from peft_orthoreg import OrthoLoraConfig, with_orthoreg
from peft_orthoreg.hookspecs import hookimpl
from peft_orthoreg.lora import flat_spectrum_loss, form_loss, inter_task_loss, scale_free_loss
from peft_orthoreg.orthoreg import dense_flat_spectrum_loss, dense_inter_task_loss, dense_scale_free_loss

TARGETS = ["q_proj", "o_proj", "down_proj", "embed_tokens"]  # tall, wide, square and an Embedding


def _trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


DENSE = {  # form -> (its PEFT loss, its dense reference at r = 4)
    "scale_free": (scale_free_loss, lambda deltas, squared: dense_scale_free_loss(deltas, squared=squared)),
    "flat_spectrum": (
        flat_spectrum_loss,
        lambda deltas, squared: dense_flat_spectrum_loss(deltas, 4, squared),
    ),
}


@pytest.mark.parametrize("form", list(DENSE))
@pytest.mark.parametrize("norm", ["fro", "fro_squared"])
def test_forms_on_peft_match_dense(teacher_dir, form, norm):
    peft_loss, dense_loss = DENSE[form]
    base = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float64)
    cfg = OrthoLoraConfig(r=4, lora_alpha=6, target_modules=TARGETS, orthoreg_weight=1.0, orthoreg_norm=norm,
                          orthoreg_form=form)  # fmt: skip
    torch.manual_seed(0)
    model = get_peft_model(base, cfg)
    assert peft_loss(model).item() == 0.0  # B = 0 at init: ΔW = 0
    randomise_b(model)
    params = _trainable(model)
    fast = form_loss(model, "default")  # picks the form from the config, through the plugin registry
    fast_grads = torch.autograd.grad(fast, params)
    ref = dense_loss(peft_reference(model, "default"), norm == "fro_squared")
    ref_grads = torch.autograd.grad(ref, params)
    assert fast.item() > 0
    torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-9)
    for g, r in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10)


def _with_references(teacher_dir, refs=("old1", "old2"), **extra):
    base = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float64)
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(r=3, lora_alpha=6, target_modules=TARGETS), adapter_name=refs[0])
    for name in refs[1:]:
        model.add_adapter(name, LoraConfig(r=2, lora_alpha=2, target_modules=["q_proj", "down_proj"]))
    cfg = OrthoLoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, orthoreg_weight=0.5, orthoreg_form="inter_task",
                          orthoreg_reference_adapters=list(refs), **extra)  # fmt: skip
    model.add_adapter("new", cfg)
    randomise_b(model)
    model.set_adapter("new")
    for n, p in model.named_parameters():
        p.requires_grad_(".new." in n)
    return model


def test_inter_task_on_peft_matches_dense(teacher_dir):
    model = _with_references(teacher_dir)
    params = _trainable(model)
    fast = form_loss(model, "new")
    fast_grads = torch.autograd.grad(fast, params)
    # Dense reference from PEFT's own get_delta_weight, layer by layer (old2 adapts only two module types).
    from peft.tuners.lora.layer import LoraLayer

    deltas, refs = [], []
    for m in model.modules():
        if isinstance(m, LoraLayer) and "new" in m.scaling:
            deltas.append(m.get_delta_weight("new"))
            refs.append([m.get_delta_weight(r).detach() for r in ("old1", "old2") if r in m.scaling])
    ref = dense_inter_task_loss(deltas, refs)
    ref_grads = torch.autograd.grad(ref, params)
    torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-9)
    for g, r in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10)
    assert fast.item() > 0 and max(g.abs().max().item() for g in fast_grads) > 1e-4
    # The references' weights get no gradient.
    assert all(p.grad is None for n, p in model.named_parameters() if ".old" in n)


def test_inter_task_reference_errors(teacher_dir):
    model = _with_references(teacher_dir)
    with pytest.raises(ValueError, match="orthoreg_reference_adapters: 'missing' is not another adapter"):
        inter_task_loss(model, "new", references=["missing"])
    with pytest.raises(ValueError, match="'new' is not another adapter"):
        inter_task_loss(model, "new", references=["new"])
    plain = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir), LoraConfig(target_modules=["q_proj"])
    )
    with pytest.raises(ValueError, match="has no orthoreg_reference_adapters"):
        inter_task_loss(plain, "default")


def test_config_validation():
    assert OrthoLoraConfig().orthoreg_form == "paper"  # the default is the existing form
    with pytest.raises(ValueError, match="orthoreg_form='nope'.*no item named 'nope'"):
        OrthoLoraConfig(orthoreg_form="nope")
    with pytest.raises(ValueError, match="orthoreg_form=3"):
        OrthoLoraConfig(orthoreg_form=3)
    with pytest.raises(ValueError, match="needs orthoreg_reference_adapters"):
        OrthoLoraConfig(orthoreg_weight=1.0, orthoreg_form="inter_task")
    with pytest.raises(ValueError, match="applies to 'inter_task' only"):
        OrthoLoraConfig(orthoreg_form="scale_free", orthoreg_reference_adapters=["a"])
    with pytest.raises(ValueError, match="must be a list of adapter names"):
        OrthoLoraConfig(orthoreg_form="inter_task", orthoreg_reference_adapters="a")


def test_new_fields_round_trip(teacher_dir, tmp_path):
    model = _with_references(teacher_dir, refs=("old1",), orthoreg_norm="fro_squared")
    model.save_pretrained(tmp_path / "adapters", selected_adapters=["new"])
    saved = json.loads((tmp_path / "adapters" / "new" / "adapter_config.json").read_text())
    assert saved["orthoreg_form"] == "inter_task" and saved["orthoreg_reference_adapters"] == ["old1"]
    back = OrthoLoraConfig.from_pretrained(tmp_path / "adapters" / "new")
    assert (
        back.orthoreg_form,
        back.orthoreg_reference_adapters,
        back.orthoreg_weight,
        back.orthoreg_norm,
    ) == (
        "inter_task",
        ["old1"],
        0.5,
        "fro_squared",
    )
    sf = OrthoLoraConfig(r=2, target_modules=["q_proj"], orthoreg_weight=0.1, orthoreg_form="scale_free")
    sf.save_pretrained(tmp_path / "sf")
    assert OrthoLoraConfig.from_pretrained(tmp_path / "sf").orthoreg_form == "scale_free"


def test_registry_has_the_forms_and_a_plugin_adds_one(teacher_dir, tmp_path, monkeypatch):
    items = peft_orthoreg.registry()
    assert {"paper", "scale_free", "inter_task"} <= set(items) and items["scale_free"].builtin

    calls = []

    def doubled(model, adapter_name=None, *, norm=None):
        calls.append(adapter_name)
        return 2 * scale_free_loss(model, adapter_name, norm=norm)

    class Plugin:
        @hookimpl
        def peft_orthoreg_regularizers(self):
            return {"doubled": doubled}

    reg = PluginRegistry(
        "peft_orthoreg", peft_orthoreg.hookspecs, "peft_orthoreg_regularizers", env_var="X_UNSET"
    )
    reg.register(Plugin(), name="third-party")
    monkeypatch.setattr(peft_orthoreg.plugins, "plugin_registry", reg)
    cfg = OrthoLoraConfig(
        r=2, lora_alpha=4, target_modules=["q_proj"], orthoreg_weight=0.3, orthoreg_form="doubled"
    )
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(teacher_dir), cfg)
    randomise_b(model)
    # with_orthoreg picks the configured form: the term it adds is λ · (the plugin's value).
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no")
    trainer = with_orthoreg(Trainer)(model=model, args=args)
    weighted, value = trainer.orthoreg_term()
    expected = 2 * scale_free_loss(model, "default").item()
    assert value == pytest.approx(expected, rel=1e-6) and weighted.item() == pytest.approx(
        0.3 * expected, rel=1e-6
    )
    assert calls and set(calls) == {"default"} and expected > 0


def test_full_ft_scale_free_form_and_errors(teacher_dir, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(teacher_dir)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no")
    cls = with_orthoreg(Trainer)
    trainer = cls(
        model=model,
        args=args,
        orthoreg_weight=2.0,
        orthoreg_form="scale_free",
        orthoreg_target_modules=["q_proj"],
    )
    with torch.no_grad():
        for _, p, _ in trainer._orthoreg_full:
            p.add_(torch.randn_like(p) * 0.01)
    weighted, value = trainer.orthoreg_term()
    deltas = [p.detach() - w0 for _, p, w0 in trainer._orthoreg_full]
    assert value == pytest.approx(dense_scale_free_loss(deltas).item(), rel=1e-5) and value > 0
    assert weighted.item() == pytest.approx(2 * value, rel=1e-5)
    with pytest.raises(ValueError, match="orthoreg_form='inter_task': full fine-tuning supports"):
        cls(model=model, args=args, orthoreg_weight=1.0, orthoreg_form="inter_task")
    with pytest.raises(ValueError, match="dense form of orthoreg_form='scale_free' implements 'exact' only"):
        cls(
            model=model,
            args=args,
            orthoreg_weight=1.0,
            orthoreg_form="scale_free",
            orthoreg_estimator="hutchinson",
        )
