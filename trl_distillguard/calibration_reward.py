"""`CalibrationReward`: the cross-tokenizer calibration reward r_cal = stopgrad[log q(y|x) - log pi(y|x)] / |y|.

q is a small frozen *proxy student* that scores the completion **text** with its own tokenizer (and chat
template), so teacher and proxy may have different vocabularies. The exact proxy input, so anyone can recompute it:

- plain-text prompt: ``proxy_tokenizer(prompt)["input_ids"] + proxy_tokenizer(completion,
  add_special_tokens=False)["input_ids"]``;
- conversational prompt: the prompt part is ``proxy_tokenizer.apply_chat_template(messages,
  add_generation_prompt=True)`` (tokenized without extra special tokens); the completion is the last message's
  content, tokenized as above;
- plus the proxy's EOS token when the completion ended with one of the policy's EOS tokens.

log q(y|x) is the sum of the proxy's log-probabilities of the completion tokens (and that EOS). log pi(y|x) is the
sum of the policy's log-probabilities of its own completion tokens (``completion_ids``, EOS included), at the
sampling temperature; with ``policy_tokenization="canonical"``, of the policy tokenizer's own tokenization of the
completion text instead (a sampled token path is not always the one re-encoding gives, and the proxy always scores
the canonical one: this removes that bias at the cost of one no-grad policy forward over the rows that differ). `normalization` divides both by the completion's UTF-8 byte length (default,
tokenizer-independent), by the proxy's completion-token count (EOS included), or not at all.

Example:
    >>> from distill_ortho_merge.testing import make_student, tokenizer_b
    >>> tok = tokenizer_b()  # a proxy is a causal LM or the path of one
    >>> reward = CalibrationReward(make_student(tok), tok, mode="proxy_logprob")
    >>> [round(r, 1) for r in reward(prompts=["2+2="], completions=[" 4"], completion_ids=[[17]])]
    [-3.2]
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from distill_ortho_merge.tokenization import eos_token_ids, prompt_token_ids, right_pad
from trl_distillguard.proxy_loading import load_proxy_model, load_proxy_tokenizer

logger = logging.getLogger(__name__)

NORMALIZATIONS = ("bytes", "tokens", "none")
MODES = ("log_ratio", "proxy_logprob")
POLICY_TOKENIZATIONS = ("sampled", "canonical")


# ------------------------------------------------------------------------------------- pure-torch core
def completion_logprobs(
    model: torch.nn.Module,
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    *,
    pad_token_id: int = 0,
    batch_size: int = 16,
    temperature: float = 1.0,
) -> list[float]:
    """Sum of ``log p(token | prefix)`` over ``sequence[prompt_length:]`` for each sequence, in float32.

    Batched with right padding (so the padded forward equals the unpadded one for a causal LM) and, where the
    model supports it, ``logits_to_keep`` so only positions that predict completion tokens are projected.

    Example:
        >>> from distill_ortho_merge.testing import make_student, tokenizer_b
        >>> model = make_student(tokenizer_b())
        >>> logp = torch.log_softmax(model(torch.tensor([[5, 6, 7]])).logits[0], -1)
        >>> reference = (logp[0, 6] + logp[1, 7]).item()  # log p(6|5) + log p(7|5,6)
        >>> abs(completion_logprobs(model, [[5, 6, 7]], [1])[0] - reference) < 1e-5
        True
    """
    out: list[float] = []
    device = next(model.parameters()).device
    for start in range(0, len(sequences), batch_size):
        seqs = [list(s) for s in sequences[start : start + batch_size]]
        plens = list(prompt_lengths[start : start + batch_size])
        if any(p < 1 for p in plens):
            raise ValueError(
                "completion_logprobs: every sequence needs at least one prompt token to condition on"
            )
        ids, mask = right_pad(seqs, pad_token_id)
        width = ids.shape[1]
        keep = width - min(plens) + 1  # positions min(plens)-1 .. width-1 predict every completion token
        ids, mask = ids.to(device), mask.to(device)
        try:
            logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
        except TypeError:  # models without `logits_to_keep`
            logits = model(input_ids=ids, attention_mask=mask).logits
        logits = logits[:, -keep:].float()
        logps = torch.log_softmax(logits / temperature, dim=-1)
        offset = width - keep  # absolute position of logits[:, 0]
        for i, (s, p) in enumerate(zip(seqs, plens, strict=True)):
            if len(s) == p:
                out.append(0.0)
                continue
            targets = torch.tensor(s[p:], dtype=torch.long, device=device)
            rows = logps[i, p - 1 - offset : len(s) - 1 - offset]
            out.append(rows.gather(-1, targets[:, None]).sum().item())
    return out


def calibration_value(
    proxy_logp: float, policy_logp: float | None, denominator: float, mode: str = "log_ratio"
) -> float:
    """r = (log q - log pi) / denominator for ``mode="log_ratio"``, log q / denominator for ``"proxy_logprob"``.

    Example:
        >>> calibration_value(-6.0, -2.0, 4.0)
        -1.0
    """
    if mode == "proxy_logprob":
        return proxy_logp / denominator
    if policy_logp is None:
        raise ValueError("calibration_value: mode='log_ratio' needs the policy log-probability")
    return (proxy_logp - policy_logp) / denominator


# --------------------------------------------------------------------------------------- the reward
def _completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        return content if isinstance(content, str) else ""
    return ""


class CalibrationReward:
    """A TRL reward callable returning the calibration reward of each completion (see the module docstring).

    Args:
        proxy_model: the frozen proxy student: a causal LM, or a local path to one.
        proxy_tokenizer: its tokenizer (or a path); defaults to the proxy model's path.
        normalization: ``"bytes"`` (default), ``"tokens"`` or ``"none"``.
        mode: ``"log_ratio"`` (log q - log pi, needs the policy) or ``"proxy_logprob"`` (log q only).
        batch_size: sequences per proxy (and policy) forward.
        policy_eos_token_ids: the policy's EOS ids (set by `bind_policy` or by `DistillGuardTrainer`); a completion
            whose last id is one of them gets the proxy's EOS appended.
        policy_tokenization: ``"sampled"`` (default: log pi of the sampled ids) or ``"canonical"`` (log pi of the
            policy tokenizer's re-encoding of the completion text, + the sampled EOS; needs a bound policy).
        trust_remote_code: passed when loading the proxy from a path.

    In a stock ``GRPOTrainer`` call ``reward.bind_policy(trainer)`` (or ``bind_policy(model, tokenizer)``) after
    building the trainer; ``DistillGuardTrainer`` feeds it GRPO's own policy log-probs instead.

    Example:
        >>> from distill_ortho_merge.testing import make_student, make_teacher, tokenizer_a, tokenizer_b
        >>> tok_a, tok_b = tokenizer_a(), tokenizer_b()
        >>> cal = CalibrationReward(make_student(tok_b), tok_b)
        >>> cal.bind_policy(make_teacher(tok_a), tok_a)  # in a stock GRPOTrainer: cal.bind_policy(trainer)
        >>> ids = tok_a(" 4", add_special_tokens=False)["input_ids"]
        >>> len(cal(prompts=["2+2="], completions=[" 4"], completion_ids=[ids]))
        1
    """

    def __init__(
        self,
        proxy_model: torch.nn.Module | str | Path,
        proxy_tokenizer: Any = None,
        *,
        normalization: str = "bytes",
        mode: str = "log_ratio",
        batch_size: int = 16,
        policy_eos_token_ids: Sequence[int] | None = None,
        trust_remote_code: bool = False,
        policy_tokenization: str = "sampled",
    ) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization={normalization!r} is unknown; choose one of {', '.join(NORMALIZATIONS)}"
            )
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is unknown; choose one of {', '.join(MODES)}")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        check_policy_tokenization(policy_tokenization, mode)
        self.normalization, self.mode, self.batch_size = normalization, mode, batch_size
        self.policy_tokenization = policy_tokenization
        self.proxy = load_proxy_model(proxy_model, trust_remote_code=trust_remote_code)
        if proxy_tokenizer is None:
            proxy_tokenizer = (
                proxy_model
                if isinstance(proxy_model, (str, Path))
                else getattr(self.proxy, "name_or_path", "")
            )
        self.proxy_tokenizer = load_proxy_tokenizer(proxy_tokenizer, trust_remote_code=trust_remote_code)
        self.policy_eos_token_ids = set(policy_eos_token_ids or ())
        self.__name__ = "calibration"  # TRL names reward columns and metrics after it
        self._policy: dict[str, Any] | None = None
        self._policy_logps: list[float | None] | None = None

    # -- policy ---------------------------------------------------------------------------------------
    def bind_policy(
        self, model_or_trainer: Any, tokenizer: Any = None, *, temperature: float | None = None
    ) -> None:
        """Let the reward compute log pi itself (one batched no-grad forward per call) in a stock GRPOTrainer.

        Pass the trainer (its model, tokenizer, EOS ids and temperature are used), or a model and its tokenizer.
        """
        if hasattr(model_or_trainer, "processing_class") and hasattr(model_or_trainer, "model"):
            trainer = model_or_trainer
            tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
            self._policy = {"trainer": trainer, "model": None, "tokenizer": tokenizer}
            self.policy_eos_token_ids = set(
                getattr(trainer, "eos_token_ids", None) or [tokenizer.eos_token_id]
            )
            temperature = temperature if temperature is not None else getattr(trainer, "temperature", 1.0)
        else:
            if tokenizer is None:
                raise ValueError(
                    "bind_policy(model, tokenizer): the policy's tokenizer is required with a bare model"
                )
            self._policy = {"trainer": None, "model": model_or_trainer, "tokenizer": tokenizer}
            self.policy_eos_token_ids = set(eos_token_ids(model_or_trainer, tokenizer))
        self._policy["temperature"] = float(temperature if temperature is not None else 1.0)

    @contextlib.contextmanager
    def using_policy_logps(self, logps: Sequence[float | None]) -> Iterator[None]:
        """Within the block, use these per-completion log pi sums (in call order) instead of a policy forward."""
        self._policy_logps = list(logps)
        try:
            yield
        finally:
            self._policy_logps = None

    def _policy_logprobs(self, prompts: list, completion_ids: list[list[int]]) -> list[float]:
        if self._policy is None:
            raise RuntimeError(
                "CalibrationReward(mode='log_ratio') has no policy: call reward.bind_policy(trainer) after building "
                "a GRPOTrainer, use DistillGuardTrainer, or use mode='proxy_logprob'"
            )
        model = self._policy["model"] or self._policy["trainer"].model
        tok = self._policy["tokenizer"]
        prompt_ids = [prompt_token_ids(tok, p, "policy tokenizer") for p in prompts]
        was_training = model.training
        model.eval()  # no dropout: the score of the sampled text, not a noisy estimate
        try:
            with torch.no_grad():
                return completion_logprobs(
                    model,
                    [p + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)],
                    [len(p) for p in prompt_ids],
                    pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else 0,
                    batch_size=self.batch_size,
                    temperature=self._policy["temperature"],
                )
        finally:
            model.train(was_training)

    # -- scoring --------------------------------------------------------------------------------------
    def proxy_inputs(self, prompt: Any, completion: Any, ended_with_eos: bool) -> tuple[list[int], int]:
        """The proxy's input ids for one (prompt, completion) and the prompt length (the documented convention)."""
        return self._proxy_inputs_batch([prompt], [completion], [ended_with_eos])[0]

    def _proxy_inputs_batch(
        self, prompts: list, completions: list, ended: list[bool]
    ) -> list[tuple[list[int], int]]:
        """`proxy_inputs` for many rows (the one home of the convention): one tokenizer call for the completions,
        each distinct prompt once."""
        tok = self.proxy_tokenizer
        cache: dict[str, list[int]] = {}
        prompt_ids = []
        for prompt in prompts:  # GRPO repeats each prompt num_generations times
            key = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, default=str)
            if key not in cache:
                cache[key] = prompt_token_ids(tok, prompt, "proxy tokenizer")
            prompt_ids.append(cache[key])
        texts = [_completion_text(c) for c in completions]
        completion_ids = tok(texts, add_special_tokens=False)["input_ids"]
        return [
            (p + list(c) + ([tok.eos_token_id] if e else []), len(p))
            for p, c, e in zip(prompt_ids, completion_ids, ended, strict=True)
        ]

    def __call__(
        self,
        prompts: list,
        completions: list,
        completion_ids: list[list[int]] | None = None,
        log_metric: Any = None,
        **kwargs: Any,
    ) -> list[float | None]:
        n = len(completions)
        if len(prompts) != n:
            raise ValueError(f"CalibrationReward: {len(prompts)} prompts for {n} completions")
        ids_list = [list(c) for c in completion_ids] if completion_ids is not None else [[] for _ in range(n)]
        texts = [_completion_text(c) for c in completions]
        # Unscorable: nothing to score, or text that does not round-trip as valid UTF-8.
        scorable = [bool(t) and "\ufffd" not in t for t in texts]
        ended = [bool(ids) and ids[-1] in self.policy_eos_token_ids for ids in ids_list]
        idx = [i for i in range(n) if scorable[i]]
        rewards: list[float | None] = [None] * n
        if not idx:
            self._log(log_metric, n, [], [], [])
            return rewards
        self._place_proxy()
        inputs = self._proxy_inputs_batch(
            [prompts[i] for i in idx], [completions[i] for i in idx], [ended[i] for i in idx]
        )
        with torch.no_grad():
            proxy_lp = completion_logprobs(
                self.proxy,
                [s for s, _ in inputs],
                [p for _, p in inputs],
                pad_token_id=self.proxy_tokenizer.pad_token_id,
                batch_size=self.batch_size,
            )
        policy_lp: list[float | None] = [None] * len(idx)
        if self.mode == "log_ratio":
            if self._policy_logps is not None:
                if len(self._policy_logps) != n:
                    raise ValueError(
                        f"CalibrationReward: {len(self._policy_logps)} policy log-probs for {n} completions"
                    )
                policy_lp = [self._policy_logps[i] for i in idx]
            else:
                policy_lp = self._policy_logprobs([prompts[i] for i in idx], [ids_list[i] for i in idx])
            if self.policy_tokenization == "canonical":
                self._rescore_canonical(prompts, texts, ids_list, ended, idx, policy_lp)
        denominators = []
        for k, i in enumerate(idx):
            den = self._denominator(texts[i], len(inputs[k][0]) - inputs[k][1])
            denominators.append(den)
            if self.mode == "log_ratio" and policy_lp[k] is None:
                continue  # the trainer has no valid policy log-prob for this completion: unscorable
            value = calibration_value(proxy_lp[k], policy_lp[k], den, self.mode)
            if math.isfinite(value):
                rewards[i] = value
        self._log(log_metric, n, proxy_lp, policy_lp, denominators)
        return rewards

    def _rescore_canonical(
        self,
        prompts: list,
        texts: list[str],
        ids_list: list,
        ended: list[bool],
        idx: list[int],
        policy_lp: list,
    ) -> None:
        """Replace log pi, in place, by that of the canonical re-tokenization where the sampled ids differ."""
        if self._policy is None:
            raise RuntimeError(
                "CalibrationReward(policy_tokenization='canonical') needs the policy: call reward.bind_policy(...)"
            )
        tok = self._policy["tokenizer"]
        canonical = tok([texts[i] for i in idx], add_special_tokens=False)["input_ids"]
        redo = []
        for k, i in enumerate(idx):
            canonical[k] = list(canonical[k]) + ids_list[i][-1:] * ended[i]  # keep the EOS actually sampled
            if canonical[k] != ids_list[i]:
                redo.append(k)
        if redo:
            logps = self._policy_logprobs([prompts[idx[k]] for k in redo], [canonical[k] for k in redo])
            for k, lp in zip(redo, logps, strict=True):
                policy_lp[k] = lp

    def _denominator(self, text: str, proxy_tokens: int) -> float:
        if self.normalization == "bytes":
            return float(len(text.encode("utf-8")))
        if self.normalization == "tokens":
            return float(max(proxy_tokens, 1))
        return 1.0

    def _log(self, log_metric: Any, n: int, proxy_lp: list, policy_lp: list, dens: list) -> None:
        if not callable(log_metric):
            return
        log_metric("calibration/unscorable_frac", (n - len(proxy_lp)) / max(n, 1))
        if proxy_lp:
            log_metric(
                "calibration/proxy_logp", sum(q / d for q, d in zip(proxy_lp, dens, strict=True)) / len(dens)
            )
        pol = [(p, d) for p, d in zip(policy_lp, dens, strict=True) if p is not None]
        if pol:
            log_metric("calibration/policy_logp", sum(p / d for p, d in pol) / len(pol))

    def _place_proxy(self) -> None:
        """Keep the proxy frozen, in eval mode, on the policy's device."""
        self.proxy.eval()
        target = None
        if self._policy is not None:
            model = self._policy["model"] or self._policy["trainer"].model
            target = next(model.parameters()).device
        if target is not None and next(self.proxy.parameters()).device != target:
            self.proxy.to(target)

    def to(self, device: torch.device | str) -> CalibrationReward:
        """Move the proxy to `device` (the trainer does this for you)."""
        self.proxy.to(device)
        return self


def check_policy_tokenization(value: str, mode: str) -> None:
    """Validate ``policy_tokenization`` (one line naming the field).

    Example:
        >>> check_policy_tokenization("canonical", "log_ratio")
    """
    if value not in POLICY_TOKENIZATIONS:
        raise ValueError(
            f"policy_tokenization={value!r} is unknown; choose one of {', '.join(POLICY_TOKENIZATIONS)}"
        )
    if value == "canonical" and mode != "log_ratio":
        raise ValueError("policy_tokenization='canonical' rescoring log pi needs mode='log_ratio'")
