"""CalibrationReward: recomputed by hand on the tiny teacher (tokenizer A) / proxy (tokenizer B) fixtures."""

from __future__ import annotations

import math

import pytest
import torch
from references import slow_logprob
from transformers import AutoModelForCausalLM, AutoTokenizer

from trl_distillguard.calibration_reward import CalibrationReward, completion_logprobs


@pytest.fixture(scope="module")
def models(teacher_dir, student_dir):
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()
    tok_a = AutoTokenizer.from_pretrained(teacher_dir)
    proxy = AutoModelForCausalLM.from_pretrained(student_dir).eval()
    tok_b = AutoTokenizer.from_pretrained(student_dir)
    return teacher, tok_a, proxy, tok_b


PROMPTS = ["What is 12 + 30?", "Reverse abc:", "the teacher"]
COMPLETIONS = [" The answer is 42. #### 42", " cba.", " learns from the student model"]


def test_completion_logprobs_matches_slow_reference(models):
    teacher, tok_a, _, _ = models
    seqs = [tok_a(p + c)["input_ids"] for p, c in zip(PROMPTS, COMPLETIONS)]
    plens = [len(tok_a(p)["input_ids"]) for p in PROMPTS]
    fast = completion_logprobs(
        teacher, seqs, plens, pad_token_id=tok_a.pad_token_id, batch_size=2, temperature=0.7
    )
    slow = [slow_logprob(teacher, s, p, 0.7) for s, p in zip(seqs, plens)]
    assert fast == pytest.approx(slow, abs=1e-4)


@pytest.mark.parametrize("normalization", ["bytes", "tokens", "none"])
def test_log_ratio_recomputed_by_hand(models, student_dir, normalization):
    """Different tokenizers: the policy scores its own ids (A), the proxy its own tokenization of the text (B)."""
    teacher, tok_a, proxy, tok_b = models
    reward = CalibrationReward(student_dir, normalization=normalization, batch_size=2)
    reward.bind_policy(teacher, tok_a)
    # completion ids as TRL gives them: the policy's tokens, EOS appended for the first two (ended), not the third
    eos_a = tok_a.eos_token_id
    completion_ids = [tok_a(c, add_special_tokens=False)["input_ids"] for c in COMPLETIONS]
    completion_ids[0] += [eos_a]
    completion_ids[1] += [eos_a]
    metrics = {}
    got = reward(
        prompts=PROMPTS, completions=COMPLETIONS, completion_ids=completion_ids, log_metric=metrics.setdefault
    )
    assert tok_a.get_vocab() != tok_b.get_vocab()
    for i, (p, c, cids) in enumerate(zip(PROMPTS, COMPLETIONS, completion_ids)):
        # proxy: prompt with tokenizer B (its defaults), completion without specials, + B's EOS when A's EOS ended it
        b_prompt = tok_b(p)["input_ids"]
        b_comp = tok_b(c, add_special_tokens=False)["input_ids"] + ([tok_b.eos_token_id] if i < 2 else [])
        log_q = slow_logprob(proxy, b_prompt + b_comp, len(b_prompt))
        a_prompt = tok_a(p)["input_ids"]
        log_pi = slow_logprob(teacher, a_prompt + cids, len(a_prompt))
        den = {"bytes": len(c.encode("utf-8")), "tokens": len(b_comp), "none": 1}[normalization]
        assert got[i] == pytest.approx((log_q - log_pi) / den, abs=1e-4)
    assert set(metrics) >= {
        "calibration/proxy_logp",
        "calibration/policy_logp",
        "calibration/unscorable_frac",
    }
    assert metrics["calibration/unscorable_frac"] == 0.0


def test_conversational_prompts_use_the_proxy_chat_template(models, student_dir):
    teacher, tok_a, proxy, tok_b = models
    reward = CalibrationReward(student_dir, mode="proxy_logprob", normalization="none")
    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    completion = [{"role": "assistant", "content": "4"}]
    got = reward(prompts=[prompt], completions=[completion], completion_ids=[[5]])
    text = tok_b.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|assistant|>")
    b_prompt = tok_b(text, add_special_tokens=False)["input_ids"]
    b_comp = tok_b("4", add_special_tokens=False)["input_ids"]  # no policy EOS known -> no EOS appended
    assert got[0] == pytest.approx(slow_logprob(proxy, b_prompt + b_comp, len(b_prompt)), abs=1e-4)


def test_conversational_prompts_with_a_template_less_proxy_are_an_error(student_dir):
    tok = AutoTokenizer.from_pretrained(student_dir)
    tok.chat_template = None
    reward = CalibrationReward(student_dir, tok, mode="proxy_logprob")
    with pytest.raises(ValueError, match="chat template"):
        reward(
            prompts=[[{"role": "user", "content": "hi"}]],
            completions=[[{"role": "assistant", "content": "x"}]],
        )


class BytePriceLM(torch.nn.Module):
    """A proxy whose log-prob of every token is exactly -bytes(token) * log(512), whatever the vocabulary.

    The leftover probability mass goes to a sink (the pad token), so each row is a normalised distribution.
    Any tokenization of a text then has log q = -bytes(text) * log(512).
    """

    def __init__(self, tokenizer):
        super().__init__()
        vocab = len(tokenizer)
        nbytes = torch.tensor(
            [len(tokenizer.decode([i]).encode("utf-8")) for i in range(vocab)], dtype=torch.float64
        )
        special = torch.tensor([i in tokenizer.all_special_ids for i in range(vocab)])
        logp = -nbytes * math.log(512.0)
        logp[special] = -math.inf
        logp[tokenizer.eos_token_id] = math.log(0.01)
        mass = logp.exp().sum().item()
        assert mass < 1
        logp[tokenizer.pad_token_id] = math.log(1 - mass)
        self.register_buffer("row", logp.float())
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, **kwargs):
        class Out:
            pass

        out = Out()
        out.logits = self.row.expand(*input_ids.shape, -1).clone()
        return out


def test_bytes_normalisation_is_tokenizer_independent(tokenizer_a, tokenizer_b):
    prompt, text = "Question:", " the student learns what the teacher knows, 12 + 30 = 42"
    got = {}
    for name, tok in {"A": tokenizer_a, "B": tokenizer_b}.items():
        n_tokens = len(tok(text, add_special_tokens=False)["input_ids"])
        for norm in ("bytes", "tokens"):
            reward = CalibrationReward(BytePriceLM(tok), tok, normalization=norm, mode="proxy_logprob")
            got[name, norm] = (reward(prompts=[prompt], completions=[text])[0], n_tokens)
    # Same text, two tokenizations with different token counts ...
    assert got["A", "bytes"][1] != got["B", "bytes"][1]
    # ... per byte: identical, and equal to the model's exact per-byte price
    assert got["A", "bytes"][0] == pytest.approx(-math.log(512.0), rel=1e-5)
    assert got["B", "bytes"][0] == pytest.approx(got["A", "bytes"][0], rel=1e-5)
    # ... per token: depends on the tokenizer
    assert got["A", "tokens"][0] != pytest.approx(got["B", "tokens"][0], rel=1e-3)


def test_unscorable_completions_are_none_and_counted(models, student_dir):
    teacher, tok_a, _, _ = models
    reward = CalibrationReward(student_dir)
    reward.bind_policy(teacher, tok_a)
    eos = tok_a.eos_token_id
    metrics = {}
    got = reward(
        prompts=["a", "b", "c", "d"],
        completions=[
            "",
            "",
            "bad \ufffd bytes",
            " fine",
        ],  # empty / only-special (decoded to "") / invalid UTF-8
        completion_ids=[[], [eos], [300, 301], tok_a(" fine", add_special_tokens=False)["input_ids"]],
        log_metric=metrics.setdefault,
    )
    assert got[:3] == [None, None, None]
    assert isinstance(got[3], float) and math.isfinite(got[3])
    assert metrics["calibration/unscorable_frac"] == pytest.approx(0.75)
    # all unscorable: no crash, no NaN
    assert reward(prompts=["a"], completions=[""], completion_ids=[[]]) == [None]


def test_unbound_log_ratio_is_a_clear_error(student_dir):
    reward = CalibrationReward(student_dir)
    with pytest.raises(RuntimeError, match="bind_policy"):
        reward(prompts=["a"], completions=["b"], completion_ids=[[1]])


def test_policy_logps_from_the_trainer_are_used(student_dir):
    reward = CalibrationReward(student_dir, normalization="none")
    with reward.using_policy_logps([-1.0, -2.0]):
        with_pi = reward(prompts=["a", "b"], completions=["x", "y"], completion_ids=[[1], [2]])
    q_only = CalibrationReward(student_dir, mode="proxy_logprob", normalization="none")(
        prompts=["a", "b"], completions=["x", "y"]
    )
    assert with_pi == pytest.approx([q_only[0] + 1.0, q_only[1] + 2.0])
    with reward.using_policy_logps([-1.0, None]):  # no valid policy log-prob -> unscorable, not a crash
        partial = reward(prompts=["a", "b"], completions=["x", "y"], completion_ids=[[1], [2]])
    assert partial[0] == pytest.approx(with_pi[0]) and partial[1] is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"normalization": "chars"}, "normalization='chars'"),
        ({"mode": "kl"}, "mode='kl'"),
    ],
)
def test_bad_options(student_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CalibrationReward(student_dir, **kwargs)


def test_bad_proxy_paths(tmp_path, teacher_dir):
    with pytest.raises(ValueError, match="proxy_model_name_or_path: .* does not exist"):
        CalibrationReward(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="proxy_model_name_or_path: cannot load a causal LM"):
        CalibrationReward(str(tmp_path / "empty"))
    from transformers import DistilBertConfig  # an encoder: no causal-LM head exists for it

    DistilBertConfig(n_layers=1, dim=16, hidden_dim=32, n_heads=2).save_pretrained(tmp_path / "encoder")
    with pytest.raises(ValueError, match="proxy_model_name_or_path: cannot load a causal LM from .*encoder"):
        CalibrationReward(str(tmp_path / "encoder"))


def test_proxy_tokenizer_without_pad_is_fixed_without_eos_is_an_error(student_dir):
    tok = AutoTokenizer.from_pretrained(student_dir)
    tok.pad_token = None
    reward = CalibrationReward(student_dir, tok)
    assert reward.proxy_tokenizer.pad_token_id == tok.eos_token_id
    tok2 = AutoTokenizer.from_pretrained(student_dir)
    tok2.eos_token = None
    with pytest.raises(ValueError, match="no eos_token"):
        CalibrationReward(student_dir, tok2)


def test_proxy_is_frozen_and_in_eval(student_dir):
    reward = CalibrationReward(student_dir)
    assert not reward.proxy.training
    assert not any(p.requires_grad for p in reward.proxy.parameters())


def test_proxy_loads_whole_under_fsdp_ram_efficient_loading_and_zero3_is_refused(student_dir, monkeypatch):
    import os

    import transformers
    import transformers.integrations

    # RAM-efficient loading (weights on rank 0 only, broadcast by FSDP to what it wraps) is for the policy: the
    # replicated proxy is loaded with it off, on every rank, and the launch's setting is restored afterwards.
    seen = []
    load = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(os.environ.get("FSDP_CPU_RAM_EFFICIENT_LOADING"))
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "true")
    proxy = CalibrationReward(str(student_dir)).proxy
    assert seen == ["false"] and os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    on_disk = transformers.AutoModelForCausalLM.from_pretrained(str(student_dir))
    assert all(torch.equal(a, b) for a, b in zip(proxy.state_dict().values(), on_disk.state_dict().values()))
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    monkeypatch.setattr(transformers.integrations, "is_deepspeed_zero3_enabled", lambda: True)
    with pytest.raises(ValueError, match="ZeRO-3 would partition the proxy.*use FSDP2"):
        CalibrationReward(str(student_dir))
