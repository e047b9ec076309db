"""Trap metrics (trl_distillguard.traps) against slow, obvious references and constructed cases."""

from __future__ import annotations

import math

import pytest
import torch

from trl_distillguard import traps


def ref_tail(probs: list[float], k: int) -> tuple[float, float]:
    """Sort, drop the top k, renormalise, entropy: plain Python."""
    order = sorted(probs, reverse=True)
    tail = order[k:]
    m = sum(tail)
    if m == 0:
        return 0.0, 0.0
    return m, -sum((x / m) * math.log(x / m) for x in tail if x > 0)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_tail_stats_matches_reference(k):
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 9) * 2
    out = traps.tail_stats(logits, k)
    probs = torch.softmax(logits.double(), -1)
    for idx in [(0, 0), (1, 3), (2, 1)]:
        m, h = ref_tail(probs[idx].tolist(), k)
        assert out["tail_mass"][idx].item() == pytest.approx(m, abs=1e-6)
        assert out["tail_entropy"][idx].item() == pytest.approx(h, abs=1e-5)
        full = -sum(p * math.log(p) for p in probs[idx].tolist())
        assert out["entropy"][idx].item() == pytest.approx(full, abs=1e-5)


def test_tail_mass_orders_peaked_below_flat():
    vocab = 50
    flat = torch.zeros(vocab)
    peaked = torch.zeros(vocab)
    peaked[0] = 8.0
    out = traps.tail_stats(torch.stack([peaked, flat]), k=5)
    assert out["tail_mass"][0] < out["tail_mass"][1]
    assert out["tail_mass"][0].item() == pytest.approx(45 / (math.exp(8) + 49), rel=1e-5)
    # Flat: the tail is exactly uniform over the other 45 tokens.
    assert out["tail_mass"][1].item() == pytest.approx(45 / 50, abs=1e-6)
    assert out["tail_entropy"][1].item() == pytest.approx(math.log(45), abs=1e-5)


def test_tail_empty_when_k_covers_vocab():
    out = traps.tail_stats(torch.randn(2, 4), k=10)
    assert torch.all(out["tail_mass"] == 0) and torch.all(out["tail_entropy"] == 0)
    with pytest.raises(ValueError, match="top_k"):
        traps.tail_stats(torch.randn(2, 4), k=0)


def test_token_kl_reference_and_zero_for_identical():
    torch.manual_seed(1)
    a, b = torch.log_softmax(torch.randn(4, 7), -1), torch.log_softmax(torch.randn(4, 7), -1)
    ref = [sum(math.exp(x) * (x - y) for x, y in zip(ra, rb)) for ra, rb in zip(a.tolist(), b.tolist())]
    assert traps.token_kl(a, b).tolist() == pytest.approx(ref, abs=1e-6)
    assert traps.token_kl(a, a).abs().max() < 1e-7
    assert bool((traps.token_kl(a, b) > 0).all())
    with pytest.raises(ValueError, match="shared vocabulary"):
        traps.token_kl(a, b[:, :5])


def test_grouped_log_ratio_reference():
    s = torch.tensor([-0.5, -1.0, -0.25, -2.0])
    t = torch.tensor([-1.0, -0.75, -3.0])
    s_groups, t_groups = [[0, 1], [2], [3]], [[0], [1], [2]]
    ref = [(-0.5 - 1.0) - (-1.0), -0.25 + 0.75, -2.0 + 3.0]
    assert traps.grouped_log_ratio(s, t, s_groups, t_groups).tolist() == pytest.approx(ref)
    with pytest.raises(ValueError, match="groups"):
        traps.grouped_log_ratio(s, t, s_groups, t_groups[:2])
    with pytest.raises(ValueError, match="cover"):
        traps.grouped_log_ratio(s, t, [[0], [1], [2]], t_groups)


def test_log_ratio_per_byte_and_exposure_gap():
    out = traps.log_ratio_per_byte(
        torch.tensor([-3.0, -1.0]), torch.tensor([-1.0, -1.0]), torch.tensor([4, 2])
    )
    assert out.tolist() == [-0.5, 0.0]
    with pytest.raises(ValueError, match="byte"):
        traps.log_ratio_per_byte(torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([0]))
    gap = traps.exposure_gap(torch.tensor([0.5, 1.5]), torch.tensor([2.0, 4.0, 3.0]))
    assert gap == {"off_policy": 1.0, "on_policy": 3.0, "gap": 2.0, "ratio": 3.0}


def ref_repeated(tokens, n):
    seen, repeats, total = [], 0, 0
    for i in range(len(tokens) - n + 1):
        gram = tokens[i : i + n]
        total += 1
        if gram in seen:
            repeats += 1
        seen.append(gram)
    return repeats / total if total else 0.0


@pytest.mark.parametrize(
    "text,n,expected",
    [
        ("the cat sat on the mat", 2, 0.0),
        ("go go go go go", 1, 4 / 5),
        ("a b c a b c a b c", 3, 4 / 7),
        ("short", 3, 0.0),
    ],
)
def test_repeated_ngram_rate_exact(text, n, expected):
    tokens = text.split()
    assert traps.repeated_ngram_rate(tokens, n) == pytest.approx(expected)
    assert traps.repeated_ngram_rate(tokens, n) == pytest.approx(ref_repeated(tokens, n))


def test_degenerate_token_rate():
    assert traps.degenerate_token_rate([7, 7, 7, 7, 7, 1, 2, 3, 4, 5], min_run=4) == 0.5
    assert traps.degenerate_token_rate([7, 7, 7, 1], min_run=4) == 0.0
    assert traps.degenerate_token_rate([1, 2, 9, 3], min_run=4, bad_ids=[9]) == 0.25
    assert traps.degenerate_token_rate([], min_run=4) == 0.0
    # Reference: paint runs by hand.
    ids = [3, 3, 3, 3, 1, 1, 1, 1, 1, 2, 3]
    flags = [1] * 9 + [0, 0]
    assert traps.degenerate_token_rate(ids, min_run=4) == pytest.approx(sum(flags) / len(flags))


def test_overconfidence_splits_wrong_and_right():
    out = traps.overconfidence([0.9, 0.7, 0.2, 0.4], [False, False, True, True])
    assert out["wrong"] == pytest.approx(0.8) and out["right"] == pytest.approx(0.3)
    assert out["n_wrong"] == 2 and out["n_right"] == 2
    assert math.isnan(traps.overconfidence([0.5], [True])["wrong"])


def test_self_correction_counts_changed_answers():
    texts = [
        "The sum is 12. Wait, let me re-check: it is 13.",  # marker + changed
        "The sum is 12. Wait, yes it is 12.",  # marker, unchanged
        "The sum is 1,000. Actually 1000.",  # marker, same number written differently
        "The sum is 5.",  # no marker
        "Waiting room has 4 chairs, 5 chairs.",  # 'Waiting' is not the word 'wait'
    ]
    out = traps.self_correction(texts)
    assert out["marker_rate"] == pytest.approx(3 / 5)
    assert out["changed_rate"] == pytest.approx(1 / 5)
    assert out["changed_given_marker"] == pytest.approx(1 / 3)
