"""A third-party OrthoReg form, defined here, declares a LoRA factor form and a dense form; `with_orthoreg` runs the
dense form in full fine-tuning, `OrthoLoraConfig` and the listing read the same declaration."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from test_orthoreg_trainer import GradCapture, perturb  # the same capture and the same seeded move
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

import peft_orthoreg.plugins as P
from distill_ortho_merge.registry import PluginRegistry, PluginWarning
from peft_orthoreg import OrthoLoraConfig, cli, hookspecs, with_orthoreg
from peft_orthoreg.hookspecs import OrthoRegForm, hookimpl
from peft_orthoreg.lora import iter_lora_factors

TARGETS = ["q_proj", "down_proj"]
DIST = "update-norm-plugin"


def dense_update_norm(deltas, *, squared=False):
    """Σ_i ‖ΔW_i‖_F (or its square): a form a third-party package could ship."""
    per_matrix = [d.pow(2).sum() for d in deltas]
    return torch.stack([v if squared else v.sqrt() for v in per_matrix]).sum()


def factor_update_norm(model, adapter_name=None, *, norm=None):
    """The same over LoRA layers, ‖s·B·A‖²_F = s²·Σ (BᵀB) ⊙ (AAᵀ), from the factors."""
    values = [
        s**2 * ((b.T @ b) * (a @ a.T)).sum() for _, _, (a, b, s) in iter_lora_factors(model, adapter_name)
    ]
    return torch.stack([v if norm == "fro_squared" else v.sqrt() for v in values]).sum()


class UpdateNormPlugin:
    @hookimpl
    def peft_orthoreg_regularizers(self):
        return {
            "update_norm": OrthoRegForm(
                "update_norm", factor_loss=factor_update_norm, dense_loss=dense_update_norm
            ),
            "dense_only": OrthoRegForm("dense_only", dense_loss=dense_update_norm),
            "old_shape": factor_update_norm,  # a bare callable: a LoRA factor form only
            "broken": 42,
        }


@pytest.fixture
def third_party(monkeypatch):
    fresh = PluginRegistry(
        P.GROUP, hookspecs, P.plugin_registry.hook, env_var=P.THIRD_PARTY_ENV, coerce=P.as_form
    )
    fresh.register(UpdateNormPlugin(), name="update-norm", distribution=DIST)
    monkeypatch.setattr(P, "plugin_registry", fresh)
    with pytest.warns(
        PluginWarning, match="'broken' skipped: it is a int, not an OrthoRegForm or a callable"
    ):
        fresh.load_plugins()
    return fresh


def test_full_finetuning_runs_a_third_party_dense_form(third_party, teacher_dir, tokenizer_a, tmp_path):
    weight, grads, trainers = 0.5, [], []
    for lam in (0.0, weight):
        model = AutoModelForCausalLM.from_pretrained(teacher_dir)
        args = TrainingArguments(
            output_dir=str(tmp_path / f"f{lam}"),
            max_steps=1,
            per_device_train_batch_size=2,
            max_grad_norm=0.0,
            use_cpu=True,
            report_to=[],
            logging_steps=1,
            save_strategy="no",
            seed=0,
            disable_tqdm=True,
        )
        capture = GradCapture()
        texts = [f"What is {a} + {b}? The answer is {a + b}." for a, b in [(1, 2), (30, 4)]]
        trainer = with_orthoreg(Trainer)(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict(dict(tokenizer_a(texts))),
            data_collator=DataCollatorForLanguageModeling(tokenizer_a, mlm=False),
            callbacks=[capture],
            orthoreg_weight=lam,
            orthoreg_form="update_norm",
            orthoreg_target_modules=TARGETS,
        )
        perturb(model)  # away from W⁰ after the snapshot
        trainer.train()
        grads.append(capture.grads)
        trainers.append(trainer)
    # The term's gradient, λ·Σ ∇‖W − W⁰‖_F = λ·ΔW/‖ΔW‖, computed here from the same perturbation.
    names = [n for n, _, _ in trainers[1]._orthoreg_full]
    assert len(names) == 4
    w0 = dict(AutoModelForCausalLM.from_pretrained(teacher_dir).named_parameters())
    moved = dict(perturb(AutoModelForCausalLM.from_pretrained(teacher_dir)).named_parameters())
    for name in grads[0]:
        expected = torch.zeros_like(grads[0][name])
        if name in names:
            delta = (moved[name] - w0[name]).detach()
            expected = weight * delta / delta.norm()
        torch.testing.assert_close(grads[1][name] - grads[0][name], expected, rtol=1e-4, atol=1e-6, msg=name)
    value = sum(float((moved[n] - w0[n]).detach().norm()) for n in names)
    assert [h["orthoreg"] for h in trainers[1].state.log_history if "orthoreg" in h] == [pytest.approx(value)]


def test_the_declaration_decides_where_a_form_runs(third_party, teacher_dir, tmp_path, monkeypatch):
    model = AutoModelForCausalLM.from_pretrained(teacher_dir)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], save_strategy="no")
    cls = with_orthoreg(Trainer)
    with pytest.raises(
        ValueError, match="'old_shape': full fine-tuning supports 'dense_only', 'paper', 'scale_free'"
    ):
        cls(model=model, args=args, orthoreg_weight=1.0, orthoreg_form="old_shape")
    with pytest.raises(ValueError, match="dense form of orthoreg_form='update_norm' implements 'exact' only"):
        cls(
            model=model,
            args=args,
            orthoreg_weight=1.0,
            orthoreg_form="update_norm",
            orthoreg_estimator="hutchinson",
        )
    import peft_orthoreg.trainer

    monkeypatch.setattr(
        peft_orthoreg.trainer, "sharded_parameters", lambda trainer, model: "FSDP"
    )  # as FSDP2
    with pytest.raises(ValueError, match="'update_norm' has no implementation for parameters sharded across"):
        cls(model=model, args=args, orthoreg_weight=1.0, orthoreg_form="update_norm")
    with pytest.raises(ValueError, match="'dense_only' has no LoRA factor form"):
        OrthoLoraConfig(orthoreg_form="dense_only")
    assert OrthoLoraConfig(orthoreg_form="update_norm").orthoreg_form == "update_norm"
    assert OrthoLoraConfig(orthoreg_form="old_shape").orthoreg_form == "old_shape"
    with pytest.raises(ValueError, match="give a factor_loss, a dense_loss or both"):
        OrthoRegForm("nothing")
    with pytest.raises(ValueError, match="declaration is named 'y'"):
        P.as_form("x", OrthoRegForm("y", dense_loss=dense_update_norm))


def test_plugins_listing_shows_the_capabilities(third_party, capsys):
    assert cli.main(["plugins"]) == 0
    lines = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["update_norm"] == f"{DIST}\tupdate-norm\tLoRA factor form, dense form"
    assert lines["dense_only"] == f"{DIST}\tupdate-norm\tdense form"
    assert lines["old_shape"] == f"{DIST}\tupdate-norm\tLoRA factor form"
    assert lines["paper"].endswith("\tLoRA factor form, dense form (exact, hutchinson), row-sharded (FSDP2)")
    assert "broken" not in lines
