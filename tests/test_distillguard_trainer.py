"""DistillGuardTrainer on the tiny fixtures: end to end (both signs of η), rewards recomputed by hand, policy
log-probs taken from GRPO's own pass (never two forwards), checkpoint/resume, PEFT LoRA, with_orthoreg."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from datasets import Dataset
from references import slow_logprob
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill_ortho_merge import testing as tiny
from distill_ortho_merge.verifiers import math_answer
from trl_distillguard import CalibrationReward, DistillGuardConfig, DistillGuardTrainer

# Same token length under tokenizer A (6 tokens): no prompt padding, so the hand recomputation is unpadded.
PROMPTS = ["What is 7 + 8?", "What is 33 + 14?"]
ANSWERS = ["15", "47"]


def dataset(n: int = 8) -> Dataset:
    return Dataset.from_dict(
        {"prompt": [PROMPTS[i % 2] for i in range(n)], "answer": [ANSWERS[i % 2] for i in range(n)]}
    )


def non_ascii_ids() -> list[int]:
    """Tokens of tokenizer A that decode to non-ASCII (a lone byte >= 128) or are specials other than EOS.

    A random tiny model samples them often, and a completion with invalid UTF-8 is (rightly) unscorable; the
    tests suppress them at sampling time so that most completions are scorable text.
    """
    tok = tiny.tokenizer_a()
    return [
        i
        for i in range(len(tok))
        if (i in tok.all_special_ids and i != tok.eos_token_id) or not tok.decode([i]).isascii()
    ]


SUPPRESS = non_ascii_ids()


def config(tmp_path, **overrides) -> DistillGuardConfig:
    base = dict(
        generation_kwargs={"suppress_tokens": SUPPRESS},
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        seed=0,
        distillability=1.0,
        disable_tqdm=True,
    )
    base.update(overrides)
    return DistillGuardConfig(**base)


@pytest.fixture
def calls(monkeypatch) -> list[tuple]:
    """Every CalibrationReward call as (prompts, completions, completion_ids, rewards), in call order."""
    recorded = []
    original = CalibrationReward.__call__

    def spy(self, prompts, completions, completion_ids=None, **kwargs):
        out = original(self, prompts, completions, completion_ids=completion_ids, **kwargs)
        recorded.append((list(prompts), list(completions), [list(c) for c in completion_ids], out))
        return out

    monkeypatch.setattr(CalibrationReward, "__call__", spy)
    return recorded


@pytest.mark.parametrize("eta", [1.0, -1.0])
def test_end_to_end_both_signs(tmp_path, teacher_dir, student_dir, eta):
    args = config(tmp_path, proxy_model_name_or_path=str(student_dir), distillability=eta)
    trainer = DistillGuardTrainer(
        str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset()
    )
    assert trainer.reward_func_names == ["math_answer", "calibration"]
    assert trainer.reward_weights.tolist() == [1.0, eta]
    assert trainer.args.multi_objective_aggregation == "normalize_then_sum" and trainer.beta == 0.1
    assert args.reward_weights is None  # the caller's config is untouched
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 2
    for h in logs:
        assert math.isfinite(h["rewards/calibration/mean"])
        assert math.isfinite(h["calibration/proxy_logp"]) and math.isfinite(h["calibration/policy_logp"])
        assert h["calibration/distillability"] == eta
        assert "kl" in h  # the anchor is active
    # aligned generation/optimisation: GRPO computes no old log-probs, so one extra forward per generation batch
    assert trainer.calibration_policy_forwards == 2
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.named_parameters())


@pytest.mark.parametrize("steps_per_generation, extra_forwards", [(1, 2), (2, 0)])
def test_rewards_recomputed_by_hand(
    tmp_path, teacher_dir, student_dir, calls, steps_per_generation, extra_forwards
):
    """The calibration reward of the first generation batch (initial weights) equals (log q - log pi) / bytes
    recomputed from scratch; with steps_per_generation=2 GRPO computes old_per_token_logps itself and the trainer
    reuses them (zero extra forwards); otherwise it runs exactly one extra forward per generation batch."""
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()
    proxy = AutoModelForCausalLM.from_pretrained(student_dir).eval()
    tok_a, tok_b = AutoTokenizer.from_pretrained(teacher_dir), AutoTokenizer.from_pretrained(student_dir)
    args = config(
        tmp_path,
        proxy_model_name_or_path=str(student_dir),
        per_device_train_batch_size=2,
        steps_per_generation=steps_per_generation,
        max_steps=2,
        max_completion_length=8,
    )
    trainer = DistillGuardTrainer(
        str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset()
    )
    trainer.train()
    assert trainer.calibration_policy_forwards == extra_forwards
    prompts, completions, completion_ids, rewards = calls[0]
    eos = tok_a.eos_token_id
    checked = 0
    for p, c, cids, r in zip(prompts, completions, completion_ids, rewards):
        if r is None:
            assert c == ""
            continue
        a_prompt = tok_a(p)["input_ids"]
        log_pi = slow_logprob(teacher, a_prompt + cids, len(a_prompt))
        b_prompt = tok_b(p)["input_ids"]
        b_comp = tok_b(c, add_special_tokens=False)["input_ids"] + (
            [tok_b.eos_token_id] if cids[-1] == eos else []
        )
        log_q = slow_logprob(proxy, b_prompt + b_comp, len(b_prompt))
        assert r == pytest.approx((log_q - log_pi) / len(c.encode("utf-8")), abs=1e-3)
        checked += 1
    assert checked >= 2


def trainer_with_proxy_object(tmp_path, teacher_dir, student_dir, **overrides):
    """A one-step trainer whose proxy comes as a model object (and its tokenizer as a path)."""
    proxy = AutoModelForCausalLM.from_pretrained(student_dir)
    trainer = DistillGuardTrainer(
        str(teacher_dir),
        reward_funcs=[math_answer],
        args=config(tmp_path, max_steps=1, **overrides),
        train_dataset=dataset(),
        proxy_model=proxy,
        proxy_tokenizer=str(student_dir),
    )
    return trainer, proxy


def test_eta_zero_is_plain_grpo_with_calibration_logged(tmp_path, teacher_dir, student_dir):
    """η = 0 with a proxy given as an object: weight 0 (plain GRPO advantages), calibration still logged."""
    trainer, proxy = trainer_with_proxy_object(tmp_path, teacher_dir, student_dir, distillability=0.0)
    assert trainer.calibration.proxy is proxy and not proxy.training
    assert trainer.reward_weights.tolist() == [1.0, 0.0]
    trainer.train()
    assert "calibration/proxy_logp" in trainer.state.log_history[0]


def test_proxy_object_with_nonzero_eta(tmp_path, teacher_dir, student_dir):
    """η != 0 with the proxy given only as an object (no proxy_model_name_or_path): weights [1, η], it trains."""
    trainer, proxy = trainer_with_proxy_object(
        tmp_path, teacher_dir, student_dir, proxy_model_name_or_path=None, distillability=-1.0
    )
    assert trainer.calibration.proxy is proxy
    assert trainer.reward_weights.tolist() == [1.0, -1.0]
    trainer.train()
    assert math.isfinite(trainer.state.log_history[0]["rewards/calibration/mean"])


def test_no_proxy_and_eta_zero_adds_no_reward(tmp_path, teacher_dir):
    args = config(tmp_path, distillability=0.0, max_steps=1)
    trainer = DistillGuardTrainer(
        str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset()
    )
    assert trainer.calibration is None and trainer.reward_func_names == ["math_answer"]


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"distillability": float("nan")}, "distillability must be a finite number"),
        ({"distillability": float("inf")}, "distillability must be a finite number"),
        ({"calibration_mode": "kl"}, "calibration_mode='kl'"),
        ({"calibration_normalization": "chars"}, "calibration_normalization='chars'"),
        ({"num_generations": 1, "per_device_train_batch_size": 2}, "at least 2 generations"),
    ],
)
def test_config_bad_input(tmp_path, student_dir, overrides, match):
    kwargs = {"proxy_model_name_or_path": str(student_dir), **overrides}
    with pytest.raises(ValueError, match=match):
        config(tmp_path, **kwargs)


def test_trainer_bad_input(tmp_path, teacher_dir, student_dir):
    args = config(
        tmp_path, proxy_model_name_or_path=None, distillability=-1.0
    )  # the config alone cannot tell
    with pytest.raises(ValueError, match="distillability != 0 needs a proxy student"):
        DistillGuardTrainer(str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset())
    args = config(tmp_path, proxy_model_name_or_path=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="proxy_model_name_or_path: .*nope does not exist"):
        DistillGuardTrainer(str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset())
    args = config(tmp_path, proxy_model_name_or_path=str(student_dir), reward_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="reward_weights"):
        DistillGuardTrainer(str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset())


def test_checkpoint_and_resume_continue_the_same_curve(tmp_path, teacher_dir, student_dir):
    common = dict(proxy_model_name_or_path=str(student_dir), max_steps=4, save_strategy="steps", save_steps=2)
    full = DistillGuardTrainer(
        str(teacher_dir),
        reward_funcs=[math_answer],
        args=config(tmp_path / "a", **common),
        train_dataset=dataset(),
    )
    full.train()
    ckpt = tmp_path / "a" / "out" / "checkpoint-2"
    assert (ckpt / "trainer_state.json").exists()
    resumed = DistillGuardTrainer(
        str(teacher_dir),
        reward_funcs=[math_answer],
        args=config(tmp_path / "b", **common),
        train_dataset=dataset(),
    )
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.state.global_step == 4
    curve = {h["step"]: h for h in full.state.log_history if "loss" in h}
    again = {h["step"]: h for h in resumed.state.log_history if "loss" in h}
    assert sorted(again) == [1, 2, 3, 4]  # steps 1-2 come from the checkpoint's trainer_state
    for step in (3, 4):
        for key in ("loss", "rewards/calibration/mean", "calibration/proxy_logp"):
            assert again[step][key] == pytest.approx(curve[step][key], rel=1e-4, abs=1e-5), (step, key)


def test_peft_lora_policy(tmp_path, teacher_dir, student_dir):
    from peft import LoraConfig

    args = config(tmp_path, proxy_model_name_or_path=str(student_dir), distillability=-1.0)
    trainer = DistillGuardTrainer(
        str(teacher_dir),
        reward_funcs=[math_answer],
        args=args,
        train_dataset=dataset(),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    assert trainer.ref_model is None  # the anchor is the adapter-disabled model
    lora_before = {k: v.clone() for k, v in trainer.model.named_parameters() if "lora_B" in k}
    trainer.train()
    assert any(
        not torch.equal(lora_before[k], v) for k, v in trainer.model.named_parameters() if "lora_B" in k
    )
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert all(math.isfinite(h["rewards/calibration/mean"]) and "kl" in h for h in logs)


def test_composes_with_orthoreg(tmp_path, teacher_dir, student_dir):
    from peft import LoraConfig

    import peft_orthoreg as orthoreg

    trainer_cls = orthoreg.with_orthoreg(DistillGuardTrainer)
    args = config(tmp_path, proxy_model_name_or_path=str(student_dir), max_steps=1)
    trainer = trainer_cls(
        str(teacher_dir),
        reward_funcs=[math_answer],
        args=args,
        train_dataset=dataset(),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
        orthoreg_weight=1.0,
    )
    trainer.train()
    log = trainer.state.log_history[0]
    assert math.isfinite(log["orthoreg"]) and math.isfinite(log["rewards/calibration/mean"])


def test_calibration_reward_in_a_stock_grpo_trainer(tmp_path, teacher_dir, student_dir, calls):
    """`CalibrationReward` + `bind_policy(trainer)` in TRL's own GRPOTrainer gives the hand-recomputed reward."""
    from trl import GRPOConfig, GRPOTrainer

    cal = CalibrationReward(str(student_dir))
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        max_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        reward_weights=[1.0, -1.0],
        multi_objective_aggregation="normalize_then_sum",
        generation_kwargs={"suppress_tokens": SUPPRESS},
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        str(teacher_dir), reward_funcs=[math_answer, cal], args=args, train_dataset=dataset()
    )
    cal.bind_policy(trainer)
    trainer.train()
    assert "calibration/proxy_logp" in trainer.state.log_history[0]
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()
    proxy = AutoModelForCausalLM.from_pretrained(student_dir).eval()
    tok_a, tok_b = AutoTokenizer.from_pretrained(teacher_dir), AutoTokenizer.from_pretrained(student_dir)
    prompts, completions, completion_ids, rewards = calls[0]
    scored = [
        (p, c, i, r) for p, c, i, r in zip(prompts, completions, completion_ids, rewards) if r is not None
    ]
    assert scored
    for p, c, cids, r in scored:
        a_prompt, b_prompt = tok_a(p)["input_ids"], tok_b(p)["input_ids"]
        b_comp = tok_b(c, add_special_tokens=False)["input_ids"]
        b_comp += [tok_b.eos_token_id] if cids[-1] == tok_a.eos_token_id else []
        log_q = slow_logprob(proxy, b_prompt + b_comp, len(b_prompt))
        log_pi = slow_logprob(teacher, a_prompt + cids, len(a_prompt))
        assert r == pytest.approx((log_q - log_pi) / len(c.encode("utf-8")), abs=1e-3)


def test_policy_logps_source_order_old_then_sampling_then_forward():
    """GRPO's old_per_token_logps win (masked to each completion's length), then a backend's sampling log-probs;
    only without both does the trainer run its own forward."""
    trainer = DistillGuardTrainer.__new__(DistillGuardTrainer)  # only the bookkeeping is exercised
    ids = [[5, 6, 7], [8]]
    old = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -99.0, -99.0]])  # -99: padding beyond the completion
    trainer._dg_batch = {"completion_ids": ids, "old_logps": old, "sampling_logps": [[-0.5] * 3, [-0.5]]}
    trainer.mask_truncated_completions = False
    assert trainer._policy_sequence_logps(ids) == [-6.0, -4.0]
    # mask_truncated_completions: GRPO's pass masked truncated completions out of attention -> unscorable
    trainer.mask_truncated_completions, trainer.eos_token_ids = True, [7]
    trainer._tokenizer = type("Tok", (), {"pad_token_id": 0})()
    assert trainer._policy_sequence_logps(ids) == [-6.0, None]
    trainer._dg_batch = {
        "completion_ids": ids,
        "old_logps": None,
        "sampling_logps": [[-0.5, None, -1.0], [-2.0]],
    }
    assert trainer._policy_sequence_logps(ids) == [None, -2.0]  # a token vLLM could not score
    with pytest.raises(RuntimeError, match="did not see generated"):
        trainer._policy_sequence_logps([[1]])


def test_conversational_prompts(tmp_path, teacher_dir, student_dir):
    """Chat prompts (built-in `arithmetic_chat`): the proxy scores them through its own chat template."""
    from distill_ortho_merge.data import load_prompt_dataset

    args = config(tmp_path, proxy_model_name_or_path=str(student_dir), max_steps=1)
    data = load_prompt_dataset("arithmetic_chat", size=4)
    trainer = DistillGuardTrainer(str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=data)
    trainer.train()
    log = trainer.state.log_history[0]
    assert math.isfinite(log["calibration/proxy_logp"]) and log["calibration/unscorable_frac"] < 1.0


def test_proxy_equal_to_teacher_gives_zero_reward_on_canonical_tokenizations(tmp_path, teacher_dir, calls):
    """Consistency of the two scoring paths: with the teacher as its own proxy (same tokenizer), every completion whose
    sampled ids are the canonical tokenization of its text gets r = 0 (up to float error) — prompt ids, EOS handling
    and normalisation agree between GRPO's policy log-probs and the proxy's."""
    tok = AutoTokenizer.from_pretrained(teacher_dir)
    args = config(
        tmp_path,
        proxy_model_name_or_path=str(teacher_dir),
        max_steps=1,
        max_completion_length=3,
        per_device_train_batch_size=16,
        num_generations=4,
    )
    DistillGuardTrainer(
        str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset()
    ).train()
    canonical = 0
    for _, completions, ids, rewards in calls[:1]:  # the first batch: policy == proxy weights
        for c, cids, r in zip(completions, ids, rewards):
            body = cids[:-1] if cids and cids[-1] == tok.eos_token_id else cids
            if r is not None and tok(c, add_special_tokens=False)["input_ids"] == body:
                assert r == pytest.approx(0.0, abs=1e-5), (c, cids)
                canonical += 1
    assert canonical >= 1


def test_proxy_logprob_mode_needs_no_policy_forward(tmp_path, teacher_dir, student_dir):
    args = config(
        tmp_path, proxy_model_name_or_path=str(student_dir), calibration_mode="proxy_logprob", max_steps=1
    )
    trainer = DistillGuardTrainer(
        str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset()
    )
    trainer.train()
    assert trainer.calibration_policy_forwards == 0
    log = trainer.state.log_history[0]
    assert "calibration/policy_logp" not in log and math.isfinite(log["calibration/proxy_logp"])
    # the reward is log q per byte: the logged mean reward equals the logged proxy log-prob mean
    assert log["rewards/calibration/mean"] == pytest.approx(log["calibration/proxy_logp"], rel=1e-4)


def test_checkpointing_on_trains_without_transformers_deprecation_noise(tmp_path, teacher_dir, student_dir):
    """TRL's generation and no-grad passes toggle checkpointing through names transformers ≥ 5.25 deprecates; the
    user set nothing deprecated, so training does not repeat those warnings every step."""
    args = config(tmp_path, proxy_model_name_or_path=str(student_dir), distillability=-1.0)
    args.activation_checkpointing = True  # GRPOConfig's default, as a GPU user gets it
    trainer = DistillGuardTrainer(
        str(teacher_dir), reward_funcs=[math_answer], args=args, train_dataset=dataset()
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train()
    assert trainer.model.is_activation_checkpointing
    noise = [
        str(w.message) for w in caught if "checkpointing" in str(w.message) and "deprecated" in str(w.message)
    ]
    assert noise == []
