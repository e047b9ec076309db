"""Pure-torch metrics of the distillation traps (no TRL, PEFT or mergekit imports).

Each function is one formula; `diagnose.py` feeds them model outputs. Notation: p is the teacher's next-token
distribution at a position, q the student's; log-probabilities are natural logs (nats).

- tail noise (per position, teacher text): m_k = Σ_{v ∉ top-k(p)} p(v), H_tail = −Σ_{v ∉ top-k} (p(v)/m_k) log(p(v)/m_k)
- token KL (shared vocabulary): KL(a ‖ b) = Σ_v a(v) (log a(v) − log b(v))
- byte-aligned log-ratio (any two tokenizers): for each aligned byte span g (both tokenizers end a token there),
  r_g = Σ_{i∈g} log q(s_i | ·) − Σ_{j∈g} log p(t_j | ·); on the student's samples E[Σ_g r_g] = KL_seq(q ‖ p)
- exposure gap: L_on − L_off, the same per-byte loss on the student's own samples minus on the teacher's samples
- repeated n-gram rate: (N − U) / N over the N n-grams of a text with U distinct ones
- degenerate-token rate: fraction of tokens in a run of ≥ `min_run` identical tokens or in `bad_ids`
- overconfidence: mean over wrong answers of the mean (over tokens) max_v q(v | ·)
- self-correction: fraction of texts with a marker phrase whose last number after it differs from the last before

Example:
    >>> import torch
    >>> stats = tail_stats(torch.tensor([[0.0, 0.0, 0.0, 0.0]]), k=2)
    >>> round(float(stats["tail_mass"][0]), 3), round(float(stats["tail_entropy"][0]), 3)
    (0.5, 0.693)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

DEFAULT_MARKERS = ("wait", "let me re-check", "let me recheck", "let me double-check", "actually", "hmm")
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def tail_stats(logits: Tensor, k: int) -> dict[str, Tensor]:
    """Teacher tail mass outside its top-`k` and the entropy of the renormalised tail, per position.

    `logits`: (..., V). Returns tensors of shape (...): `tail_mass`, `tail_entropy` (0 where the tail is empty),
    `entropy` (of the whole distribution).

    Example:
        >>> import torch
        >>> float(tail_stats(torch.tensor([[10.0, 0.0, 0.0]]), k=1)["tail_mass"][0]) < 1e-3
        True
    """
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    logp = torch.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    k = min(k, p.shape[-1])
    in_top = torch.zeros_like(p, dtype=torch.bool).scatter(-1, p.topk(k, dim=-1).indices, True)
    # Summing the tail directly (not 1 − head) keeps tiny tails exact in float32.
    tail_p = p.masked_fill(in_top, 0.0)
    tail_mass = tail_p.sum(-1)
    plogp = torch.where(p > 0, p * logp, torch.zeros_like(p))
    tail_plogp = plogp.masked_fill(in_top, 0.0).sum(-1)
    # H(p_tail / m) = log m − (1/m) Σ_tail p log p
    safe_m = tail_mass.clamp_min(1e-30)
    tail_entropy = torch.where(
        tail_mass > 0, torch.log(safe_m) - tail_plogp / safe_m, torch.zeros_like(safe_m)
    )
    return {"tail_mass": tail_mass, "tail_entropy": tail_entropy.clamp_min(0.0), "entropy": -plogp.sum(-1)}


def token_kl(logp_a: Tensor, logp_b: Tensor) -> Tensor:
    """KL(a ‖ b) per position from log-probabilities over one shared vocabulary: (..., V) -> (...).

    Example:
        >>> import torch
        >>> lp = torch.log_softmax(torch.randn(3, 5), -1)
        >>> bool(token_kl(lp, lp).abs().max() < 1e-6)
        True
    """
    if logp_a.shape != logp_b.shape:
        raise ValueError(
            f"token_kl needs one shared vocabulary: shapes {tuple(logp_a.shape)} vs {tuple(logp_b.shape)}"
        )
    a = logp_a.float()
    return (a.exp() * (a - logp_b.float())).sum(-1)


def group_ids(groups: Sequence[Sequence[int]], n_tokens: int) -> Tensor:
    """Group index of every token from a list of token-index groups (GOLD's alignment format).

    Example:
        >>> group_ids([[0, 1], [2]], 3).tolist()
        [0, 0, 1]
    """
    ids = torch.full((n_tokens,), -1, dtype=torch.long)
    for g, members in enumerate(groups):
        ids[list(members)] = g
    if n_tokens and bool((ids < 0).any()):
        raise ValueError(f"alignment groups do not cover all {n_tokens} tokens")
    return ids


def grouped_log_ratio(
    student_logps: Tensor,
    teacher_logps: Tensor,
    student_groups: Sequence[Sequence[int]],
    teacher_groups: Sequence[Sequence[int]],
) -> Tensor:
    """Per aligned byte span g: Σ_{i∈g} log q(s_i) − Σ_{j∈g} log p(t_j). Shape (n_groups,).

    `student_logps` / `teacher_logps`: the log-probability of every token of the same text under each model's own
    tokenization; the groups come from a byte-offset alignment (TRL GOLD's `ULDLoss._align_by_byte_offsets`).

    Example:
        >>> import torch
        >>> grouped_log_ratio(torch.tensor([-1.0, -2.0]), torch.tensor([-2.5]), [[0, 1]], [[0]]).tolist()
        [-0.5]
    """
    if len(student_groups) != len(teacher_groups):
        raise ValueError(
            f"alignment has {len(student_groups)} student groups but {len(teacher_groups)} teacher groups"
        )
    n = len(student_groups)
    s = torch.zeros(n, dtype=torch.float64).index_add_(
        0, group_ids(student_groups, student_logps.numel()), student_logps.double().flatten()
    )
    t = torch.zeros(n, dtype=torch.float64).index_add_(
        0, group_ids(teacher_groups, teacher_logps.numel()), teacher_logps.double().flatten()
    )
    return s - t


def log_ratio_per_byte(student_logp: Tensor, teacher_logp: Tensor, n_bytes: Tensor) -> Tensor:
    """Sequence-level (log q(y) − log p(y)) / bytes(y); a sample mean over y ~ q estimates KL_seq(q ‖ p) per byte.

    Example:
        >>> import torch
        >>> log_ratio_per_byte(torch.tensor([-2.0]), torch.tensor([-4.0]), torch.tensor([4])).tolist()
        [0.5]
    """
    if bool((n_bytes <= 0).any()):
        raise ValueError("log_ratio_per_byte: every text needs at least one byte")
    return (student_logp.double() - teacher_logp.double()) / n_bytes.double()


def exposure_gap(loss_on_teacher_samples: Tensor, loss_on_student_samples: Tensor) -> dict[str, float]:
    """Off-policy instability: mean loss on the student's own samples minus on the teacher's (the exposure gap).

    Example:
        >>> import torch
        >>> exposure_gap(torch.tensor([1.0, 1.0]), torch.tensor([3.0]))["gap"]
        2.0
    """
    off = float(loss_on_teacher_samples.double().mean())
    on = float(loss_on_student_samples.double().mean())
    return {"off_policy": off, "on_policy": on, "gap": on - off, "ratio": on / off if off != 0 else math.nan}


def ngrams(tokens: Sequence, n: int) -> list[tuple]:
    """All contiguous n-grams of `tokens`.

    Example:
        >>> ngrams("a b c".split(), 2)
        [('a', 'b'), ('b', 'c')]
    """
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repeated_ngram_rate(tokens: Sequence, n: int = 3) -> float:
    """(N − U) / N: the fraction of n-gram occurrences that repeat an earlier one (0 when N = 0).

    Example:
        >>> repeated_ngram_rate("a b a b a b".split(), n=2)
        0.6
    """
    if n < 1:
        raise ValueError(f"ngram n must be >= 1, got {n}")
    grams = ngrams(list(tokens), n)
    return 0.0 if not grams else (len(grams) - len(set(grams))) / len(grams)


def degenerate_token_rate(token_ids: Sequence[int], min_run: int = 4, bad_ids: Iterable[int] = ()) -> float:
    """Fraction of tokens inside a run of ≥ `min_run` identical consecutive tokens, or in `bad_ids`.

    Example:
        >>> degenerate_token_rate([1, 2, 2, 2, 2, 3], min_run=4)
        0.6666666666666666
    """
    ids = torch.as_tensor(list(token_ids), dtype=torch.long)
    if ids.numel() == 0:
        return 0.0
    bad = torch.isin(ids, torch.as_tensor(list(bad_ids), dtype=torch.long))
    # Run lengths: split at changes, then paint every token with its run's length.
    values, counts = torch.unique_consecutive(ids, return_counts=True)
    run_len = torch.repeat_interleave(counts, counts)
    return float(((run_len >= min_run) | bad).double().mean())


def overconfidence(mean_max_probs: Sequence[float], correct: Sequence[bool]) -> dict[str, float | int]:
    """Mean (over completions) of the per-completion mean max-probability, on wrong and on right answers.

    Example:
        >>> overconfidence([0.9, 0.5], [False, True])["wrong"]
        0.9
    """
    if len(mean_max_probs) != len(correct):
        raise ValueError(f"{len(mean_max_probs)} confidences but {len(correct)} correctness labels")
    wrong = [c for c, ok in zip(mean_max_probs, correct, strict=True) if not ok]
    right = [c for c, ok in zip(mean_max_probs, correct, strict=True) if ok]
    nan = float("nan")
    return {
        "wrong": sum(wrong) / len(wrong) if wrong else nan,
        "right": sum(right) / len(right) if right else nan,
        "n_wrong": len(wrong),
        "n_right": len(right),
    }


def _last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def self_correction(texts: Sequence[str], markers: Sequence[str] = DEFAULT_MARKERS) -> dict[str, float | int]:
    """Self-correction: texts with a marker phrase (word-bounded, case-insensitive) and a changed final number.

    `changed` counts texts whose last number after the first marker differs from the last number before it.

    Example:
        >>> self_correction(["It is 5. Wait, it is 6.", "It is 5."])["changed_rate"]
        0.5
    """
    if not markers:
        raise ValueError("self_correction needs at least one marker phrase")
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(m) for m in markers) + r")\b", re.IGNORECASE)
    n_marker = n_changed = 0
    for text in texts:
        hit = pattern.search(text)
        if hit is None:
            continue
        n_marker += 1
        before, after = _last_number(text[: hit.start()]), _last_number(text[hit.end() :])
        n_changed += int(before is not None and after is not None and float(before) != float(after))
    n = len(texts)
    return {
        "marker_rate": n_marker / n if n else 0.0,
        "changed_rate": n_changed / n if n else 0.0,
        "changed_given_marker": n_changed / n_marker if n_marker else 0.0,
        "n_texts": n,
    }
