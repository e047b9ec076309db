"""with_orthoreg: the term reaches the gradients as exactly λ·∇OrthoReg (under gradient accumulation) and is logged.

Each test runs one real optimizer step (two accumulated micro-batches) with λ = 0 and with λ > 0 and
captures the gradients just before the optimizer step; their difference must equal λ times the autograd
gradient of the dense reference `dense_orthoreg_loss`.
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from peft import get_peft_model
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from peft_orthoreg import OrthoLoraConfig, dense_orthoreg_loss, with_orthoreg
from peft_orthoreg.lora import iter_lora_factors

TEXTS = [f"What is {a} + {b}? The answer is {a + b}." for a, b in [(1, 2), (30, 4), (5, 66), (7, 8)]]
COMMON = dict(
    max_steps=1,
    per_device_train_batch_size=2,
    gradient_accumulation_steps=2,
    learning_rate=1e-3,
    max_grad_norm=0.0,  # no clipping: compare raw gradients
    bf16=False,
    use_cpu=True,
    report_to=[],
    logging_steps=1,
    save_strategy="no",
    seed=0,
    disable_tqdm=True,
)


class GradCapture(TrainerCallback):
    def __init__(self):
        self.grads = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def lora_model(teacher_dir, weight, seed=0):
    model = AutoModelForCausalLM.from_pretrained(teacher_dir)
    cfg = OrthoLoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "v_proj", "up_proj"],
        orthoreg_weight=weight,
    )
    torch.manual_seed(seed)  # LoRA's A init draws from the global generator
    peft_model = get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # B ≠ 0, so that ∇OrthoReg ≠ 0 (it vanishes at LoRA's init B = 0)
        for _, _, (_, b, _) in iter_lora_factors(peft_model):
            b.copy_(torch.randn(b.shape, generator=gen) * 0.3)
    return peft_model


def lora_reference_grads(peft_model, weight):
    """λ·∇ of the dense reference over ΔW = s·B·A, keyed like named_parameters."""
    params = dict(peft_model.named_parameters())
    names = {id(p): n for n, p in params.items()}
    leaves, deltas = {}, []
    for _, _, (a, b, s) in iter_lora_factors(peft_model):
        a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
        leaves[names[id(a)]], leaves[names[id(b)]] = a2, b2
        deltas.append(s * b2 @ a2)
    value = dense_orthoreg_loss(deltas)
    grads = torch.autograd.grad(weight * value, list(leaves.values()))
    return dict(zip(leaves, grads, strict=True)), value.item()


def assert_difference_is_reference(g0, g1, ref):
    assert set(ref) <= set(g0) and set(g0) == set(g1)
    for name in g0:
        expected = ref.get(name, torch.zeros_like(g0[name]))
        torch.testing.assert_close(g1[name] - g0[name], expected, rtol=1e-4, atol=1e-6, msg=name)
    assert max(r.abs().max().item() for r in ref.values()) > 1e-3  # the check is not vacuous


def lm_dataset(tokenizer):
    return Dataset.from_dict(dict(tokenizer(TEXTS)))


def run_trainer(cls, **kwargs):
    capture = GradCapture()
    trainer = cls(callbacks=[capture], **kwargs)
    trainer.train()
    return trainer, capture.grads


def logged(trainer, key="orthoreg"):
    return [h[key] for h in trainer.state.log_history if key in h]


class UnscaledTrainer(Trainer):
    loss_is_scaled_for_ga = False  # Trainer.training_step divides this loss (and our term) by the GA steps


@pytest.mark.parametrize("base_cls", [Trainer, UnscaledTrainer])
def test_trainer_lora_gradients_and_logging(teacher_dir, tokenizer_a, tmp_path, base_cls):
    weight = 0.7
    cls = with_orthoreg(base_cls)
    results = []
    for lam in (0.0, weight):
        model = lora_model(teacher_dir, lam)
        args = TrainingArguments(output_dir=str(tmp_path / f"t{lam}"), **COMMON)
        collator = DataCollatorForLanguageModeling(tokenizer_a, mlm=False)
        results.append(
            run_trainer(
                cls, model=model, args=args, train_dataset=lm_dataset(tokenizer_a), data_collator=collator
            )
        )
    ref, value = lora_reference_grads(lora_model(teacher_dir, weight), weight)
    assert_difference_is_reference(results[0][1], results[1][1], ref)
    for trainer, _ in results:  # λ = 0 still logs the (unweighted) value
        assert logged(trainer) == [pytest.approx(value, rel=1e-5)]


def test_sft_trainer_lora_gradients_and_logging(teacher_dir, tokenizer_a, tmp_path):
    from trl import SFTConfig, SFTTrainer

    weight = 1.3
    cls = with_orthoreg(SFTTrainer)
    results = []
    for lam in (0.0, weight):
        args = SFTConfig(output_dir=str(tmp_path / f"s{lam}"), max_length=32, **COMMON)
        data = Dataset.from_dict({"text": TEXTS})
        results.append(
            run_trainer(
                cls,
                model=lora_model(teacher_dir, lam),
                args=args,
                train_dataset=data,
                processing_class=tokenizer_a,
            )
        )
    ref, value = lora_reference_grads(lora_model(teacher_dir, weight), weight)
    assert_difference_is_reference(results[0][1], results[1][1], ref)
    assert logged(results[1][0]) == [pytest.approx(value, rel=1e-5)]


@pytest.mark.parametrize("trainer_name", ["GRPOTrainer", "DistillGuardTrainer"])
def test_grpo_trainer_lora_gradients_and_logging(teacher_dir, tokenizer_a, tmp_path, trainer_name):
    from trl import GRPOConfig, GRPOTrainer

    from trl_distillguard import DistillGuardConfig, DistillGuardTrainer

    def reward_len(completions, **kwargs):
        return [float(len(c)) for c in completions]

    weight = 0.5
    base_cls, config_cls = {
        "GRPOTrainer": (GRPOTrainer, GRPOConfig),
        "DistillGuardTrainer": (DistillGuardTrainer, DistillGuardConfig),  # η = 0: no proxy needed
    }[trainer_name]
    cls = with_orthoreg(base_cls)
    results = []
    for lam in (0.0, weight):
        args = config_cls(
            output_dir=str(tmp_path / f"g{lam}"),
            num_generations=2,
            max_completion_length=6,
            beta=0.0,
            **COMMON,
        )
        data = Dataset.from_dict({"prompt": TEXTS})
        results.append(
            run_trainer(
                cls,
                model=lora_model(teacher_dir, lam),
                reward_funcs=reward_len,
                args=args,
                train_dataset=data,
                processing_class=tokenizer_a,
            )
        )
    assert cls.loss_is_scaled_for_ga is True  # GRPO divides by the accumulation steps itself
    ref, value = lora_reference_grads(lora_model(teacher_dir, weight), weight)
    assert_difference_is_reference(results[0][1], results[1][1], ref)
    assert logged(results[1][0]) == [pytest.approx(value, rel=1e-5)]


def perturb(model):
    """The same seeded move of every weight, for the training runs and for the reference."""
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


@pytest.mark.parametrize("estimator", ["exact", "hutchinson"])
def test_full_finetuning_snapshots_w0_and_adds_the_dense_term(teacher_dir, tokenizer_a, tmp_path, estimator):
    weight, probes = 2.0, 3
    cls = with_orthoreg(Trainer)
    targets = ["q_proj", "down_proj"]
    results, trainers = [], []
    for lam in (0.0, weight):
        model = AutoModelForCausalLM.from_pretrained(teacher_dir)
        args = TrainingArguments(output_dir=str(tmp_path / f"f{lam}"), **COMMON)
        collator = DataCollatorForLanguageModeling(tokenizer_a, mlm=False)
        kw = dict(orthoreg_weight=lam, orthoreg_target_modules=targets, orthoreg_estimator=estimator)
        kw.update(orthoreg_probes=probes, orthoreg_snapshot_device="cpu")
        capture = GradCapture()
        trainer = cls(
            model=model,
            args=args,
            train_dataset=lm_dataset(tokenizer_a),
            data_collator=collator,
            callbacks=[capture],
            **kw,
        )
        perturb(model)  # away from W⁰ after the snapshot (at W = W⁰ the term's gradient is 0)
        trainer.train()
        results.append(capture.grads)
        trainers.append(trainer)
    names = [n for n, _, _ in trainers[1]._orthoreg_full]
    assert len(names) == 4 and all(
        ("q_proj" in n or "down_proj" in n) and n.endswith(".weight") for n in names
    )
    # Reference: the same perturbation applied to a fresh copy, W⁰ = the saved weights.
    base = AutoModelForCausalLM.from_pretrained(teacher_dir)
    moved = perturb(AutoModelForCausalLM.from_pretrained(teacher_dir))
    params, w0 = dict(moved.named_parameters()), dict(base.named_parameters())
    leaves = {n: params[n].detach().clone().requires_grad_() for n in names}
    deltas = [leaves[n] - w0[n].detach() for n in names]
    seed = 0 * 1_000_003 + 0 if estimator == "hutchinson" else None
    value = dense_orthoreg_loss(deltas, estimator=estimator, probes=probes, seed=seed)
    grads = torch.autograd.grad(weight * value, list(leaves.values()))
    assert_difference_is_reference(results[0], results[1], dict(zip(names, grads, strict=True)))
    assert logged(trainers[1]) == [pytest.approx(value.item(), rel=1e-5)]
    assert logged(trainers[0]) == []  # λ = 0 in full fine-tuning: no snapshot, no term


def test_bad_trainer_inputs_fail_before_training(teacher_dir, tokenizer_a, tmp_path):
    cls = with_orthoreg(Trainer)
    args = TrainingArguments(output_dir=str(tmp_path / "bad"), **COMMON)
    model = AutoModelForCausalLM.from_pretrained(teacher_dir)
    with pytest.raises(ValueError, match="orthoreg_weight=-1"):
        cls(model=model, args=args, orthoreg_weight=-1)
    with pytest.raises(ValueError, match="orthoreg_estimator='power'"):
        cls(model=model, args=args, orthoreg_weight=1.0, orthoreg_estimator="power")
    with pytest.raises(ValueError, match="orthoreg_probes=0"):
        cls(model=model, args=args, orthoreg_weight=1.0, orthoreg_estimator="hutchinson", orthoreg_probes=0)
    with pytest.raises(ValueError, match="orthoreg_norm='nuc'"):
        cls(model=model, args=args, orthoreg_weight=1.0, orthoreg_norm="nuc")
    with pytest.raises(
        ValueError, match=r"orthoreg_target_modules=\['nope'\] matches no trainable 2-D weight"
    ):
        cls(model=model, args=args, orthoreg_weight=1.0, orthoreg_target_modules=["nope"])
    with pytest.warns(UserWarning, match="OrthoReg is off"):
        cls(model=model, args=args)
    # DoRA on a PEFT model is refused when the trainer is built.
    from peft import LoraConfig

    dora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir),
        LoraConfig(r=2, target_modules=["q_proj"], use_dora=True),
    )
    with pytest.raises(ValueError, match="DoraLinearVariant"):
        cls(model=dora, args=args, orthoreg_weight=1.0)


def test_full_ft_target_selection(teacher_dir):
    from peft_orthoreg.trainer import select_full_ft_weights

    model = AutoModelForCausalLM.from_pretrained(teacher_dir)
    default = [n for n, _ in select_full_ft_weights(model)]
    # Every Linear weight (7 per layer × 2 layers + lm_head); norms and the embedding are not Linear.
    assert len(default) == 15 and "lm_head.weight" in default and "model.embed_tokens.weight" not in default
    regex = [n for n, _ in select_full_ft_weights(model, r"model\.layers\.1\.self_attn\.[qk]_proj")]
    assert regex == ["model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight"]
    # An explicit target may name a non-Linear 2-D weight; tied weights count once.
    model.lm_head.weight = model.model.embed_tokens.weight
    tied = [n for n, _ in select_full_ft_weights(model, ["embed_tokens", "lm_head"])]
    assert tied == ["model.embed_tokens.weight"]
    model.model.layers[0].self_attn.q_proj.weight.requires_grad_(False)  # frozen weights are not regularised
    assert "model.layers.0.self_attn.q_proj.weight" not in [n for n, _ in select_full_ft_weights(model)]


def test_zero3_and_fsdp1_are_refused_naming_fsdp2(teacher_dir, tmp_path):
    from types import SimpleNamespace

    from distill_ortho_merge.sharding import sharded_parameters

    zero = lambda stage: SimpleNamespace(  # noqa: E731 - a fake DeepSpeed trainer
        is_deepspeed_enabled=True,
        accelerator=SimpleNamespace(
            state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=stage))
        ),
    )
    plain = torch.nn.Linear(2, 2)
    assert sharded_parameters(SimpleNamespace(is_fsdp_enabled=True), plain) == "FSDP"
    assert sharded_parameters(zero(3), plain) == "DeepSpeed ZeRO-3"
    assert sharded_parameters(zero(2), plain) is None  # ZeRO-2 shards optimizer state, not parameters
    assert sharded_parameters(SimpleNamespace(), plain) is None
    # A ZeRO-3-partitioned parameter (DeepSpeed marks it with ds_numel) is refused by the trainer, LoRA and full FT,
    # naming FSDP2 (supported: tests/test_fsdp2_orthoreg.py).
    args = TrainingArguments(output_dir=str(tmp_path / "sharded"), **COMMON)
    for model, kwargs in (
        (lora_model(teacher_dir, 0.5), {}),
        (AutoModelForCausalLM.from_pretrained(teacher_dir), {"orthoreg_weight": 1.0}),
    ):
        next(p for p in model.parameters() if p.dim() == 2).ds_numel = 0
        with pytest.raises(ValueError, match=r"partitioned by DeepSpeed ZeRO-3 \(parameter .*use FSDP2"):
            with_orthoreg(Trainer)(model=model, args=args, **kwargs)
    from peft_orthoreg.trainer import _check_sharding

    fsdp1 = SimpleNamespace(
        accelerator=SimpleNamespace(state=SimpleNamespace(fsdp_plugin=SimpleNamespace(fsdp_version=1)))
    )
    with pytest.raises(ValueError, match="FSDP1 flattens parameters.*fsdp_version: 2"):
        _check_sharding(fsdp1, "FSDP")
