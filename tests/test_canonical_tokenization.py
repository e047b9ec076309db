"""CalibrationReward(policy_tokenization="canonical"): log pi of the policy tokenizer's own re-encoding of the
completion text, so that a sampled token path that re-encoding never produces does not bias the reward. Checked
against the unpadded loop reference, with the tiny teacher as its own proxy (where the reward must be 0)."""

from __future__ import annotations

import pytest
from references import slow_logprob
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_distillguard.calibration_reward import CalibrationReward
from trl_distillguard.distillguard_config import DistillGuardConfig

PROMPTS = ["What is 12 + 30?", "Reverse abc:"]
COMPLETIONS = [" The answer is 42. #### 42", " cba. the teacher"]


def split_one_token(tok, ids: list[int]) -> list[int]:
    """A non-canonical path for the same text: the first multi-character token replaced by its characters."""
    vocab = tok.get_vocab()
    for k, i in enumerate(ids):
        piece = tok.convert_ids_to_tokens(i)
        if len(piece) > 1 and all(ch in vocab for ch in piece):
            return ids[:k] + [vocab[ch] for ch in piece] + ids[k + 1 :]
    raise AssertionError("no splittable token")


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    return AutoModelForCausalLM.from_pretrained(teacher_dir).eval(), AutoTokenizer.from_pretrained(
        teacher_dir
    )


@pytest.mark.parametrize("policy_tokenization", ["sampled", "canonical"])
def test_teacher_as_its_own_proxy(teacher_dir, teacher, policy_tokenization):
    model, tok = teacher
    eos = tok.eos_token_id
    canonical = [tok(c, add_special_tokens=False)["input_ids"] + [eos] for c in COMPLETIONS]
    sampled = [
        split_one_token(tok, canonical[0][:-1]) + [eos],
        canonical[1],
    ]  # row 0 non-canonical, row 1 not
    assert tok.decode(sampled[0], skip_special_tokens=True) == COMPLETIONS[0] and sampled[0] != canonical[0]
    reward = CalibrationReward(teacher_dir, policy_tokenization=policy_tokenization)
    reward.bind_policy(model, tok)
    got = reward(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=sampled)
    for i, (p, c) in enumerate(zip(PROMPTS, COMPLETIONS)):
        prompt = tok(p)["input_ids"]
        log_q = slow_logprob(model, prompt + canonical[i], len(prompt))
        scored = canonical[i] if policy_tokenization == "canonical" else sampled[i]
        log_pi = slow_logprob(model, prompt + scored, len(prompt))
        assert got[i] == pytest.approx((log_q - log_pi) / len(c.encode()), abs=1e-5)
    assert got[1] == pytest.approx(0.0, abs=1e-5)  # canonical sample: no bias either way
    if policy_tokenization == "canonical":
        assert got[0] == pytest.approx(0.0, abs=1e-5)
    else:
        assert abs(got[0]) > 1e-3  # the bias this option removes


def test_canonical_needs_a_policy_and_log_ratio(teacher_dir):
    reward = CalibrationReward(teacher_dir, policy_tokenization="canonical")
    with reward.using_policy_logps([-1.0]), pytest.raises(RuntimeError, match="bind_policy"):
        reward(prompts=PROMPTS[:1], completions=[" 4"], completion_ids=[[1, 2]])
    with pytest.raises(ValueError, match="policy_tokenization='oops' is unknown"):
        CalibrationReward(teacher_dir, policy_tokenization="oops")
    with pytest.raises(ValueError, match="needs mode='log_ratio'"):
        CalibrationReward(teacher_dir, mode="proxy_logprob", policy_tokenization="canonical")
    with pytest.raises(ValueError, match="policy_tokenization='x' is unknown"):
        DistillGuardConfig(output_dir="unused", use_cpu=True, bf16=False, calibration_policy_tokenization="x")


def test_trainer_rescores_canonically(tmp_path, teacher_dir, teacher):
    """DistillGuardTrainer passes calibration_policy_tokenization='canonical' on and binds itself as the policy (the
    rescoring itself is checked against the reference above); with the teacher as its own proxy every calibration
    reward of step 1 is 0."""
    from test_distillguard_trainer import config, dataset

    from trl_distillguard import DistillGuardTrainer

    rewards = []
    args = config(
        tmp_path, proxy_model_name_or_path=str(teacher_dir), calibration_policy_tokenization="canonical",
        max_steps=1, beta=0.0,
    )  # fmt: skip
    trainer = DistillGuardTrainer(str(teacher_dir), reward_funcs=[], args=args, train_dataset=dataset())
    assert trainer.calibration.policy_tokenization == "canonical"
    assert trainer.calibration._policy["trainer"] is trainer
    original = trainer.calibration.__call__

    def spy(*a, **k):
        out = original(*a, **k)
        rewards.extend(r for r in out if r is not None)
        return out

    trainer.calibration.__call__ = spy
    trainer.reward_funcs[-1] = spy
    trainer.train()
    assert rewards and max(abs(r) for r in rewards) < 1e-4
