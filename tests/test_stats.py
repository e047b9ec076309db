"""`distill_ortho_merge.stats` against slow obvious references (numerical integration of the beta and t densities,
exhaustive bootstrap) and, where scipy is installed, against scipy."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

from distill_ortho_merge import stats

X, Y = [0.5, 0.52, 0.61, 0.4], [0.3, 0.1, 0.2]


def _integrate(f, lo: float, hi: float, n: int = 20_000) -> float:
    h = (hi - lo) / n  # Simpson's rule
    return h / 3 * sum((1 if i in (0, n) else 4 if i % 2 else 2) * f(lo + i * h) for i in range(n + 1))


def _t_two_sided(t: float, df: float) -> float:
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    return 2 * _integrate(lambda s: c * (1 + s * s / df) ** (-(df + 1) / 2), abs(t), abs(t) + 400, 200_000)


def test_mean_std_is_the_sample_std():
    xs = [0.1, 0.4, 0.35, 0.8]
    m = sum(xs) / 4
    assert stats.mean_std(xs) == pytest.approx((m, math.sqrt(sum((x - m) ** 2 for x in xs) / 3)))
    assert stats.mean_std([2.0]) == (2.0, 0.0)


@pytest.mark.parametrize(("a", "b", "x"), [(2.0, 3.0, 0.4), (1.5, 0.5, 0.9), (7.3, 0.5, 0.2)])
def test_betainc_matches_integrated_density(a, b, x):
    beta = math.exp(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    ref = _integrate(lambda t: t ** (a - 1) * (1 - t) ** (b - 1) / beta, 1e-12, x)
    assert stats.betainc(a, b, x) == pytest.approx(ref, abs=2e-4)


def test_welch_matches_integrated_t_density():
    (mx, sx), (my, sy) = stats.mean_std(X), stats.mean_std(Y)
    vx, vy = sx**2 / 4, sy**2 / 3
    t = (mx - my) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / 3 + vy**2 / 2)
    got = stats.welch(X, Y)
    assert got["t"] == pytest.approx(t) and got["df"] == pytest.approx(df)
    assert got["p"] == pytest.approx(_t_two_sided(t, df), abs=1e-4)
    assert math.isnan(stats.welch([1.0], [2.0, 3.0])["p"])


def test_paired_matches_integrated_t_density():
    x, y = [0.61, 0.72, 0.70, 0.55], [0.50, 0.60, 0.66, 0.52]
    d = [a - b for a, b in zip(x, y, strict=True)]
    md, sd = stats.mean_std(d)
    t = md / (sd / 2)
    got = stats.paired(x, y)
    assert got["diff"] == pytest.approx(md) and got["t"] == pytest.approx(t) and got["df"] == 3
    assert got["p"] == pytest.approx(_t_two_sided(t, 3), abs=1e-4)
    assert math.isnan(stats.paired([1.0], [2.0])["p"]) and math.isnan(
        stats.paired([1.0, 2.0], [0.0, 1.0])["p"]
    )
    with pytest.raises(ValueError, match="pair them by seed"):
        stats.paired([1.0, 2.0], [1.0])


def test_pearson_matches_corrcoef_and_integrated_t_density():
    x, y = [0.1, 0.4, 0.35, 0.8, 0.6, 0.2, 0.9], [0.2, 0.3, 0.5, 0.7, 0.4, 0.1, 0.6]
    r = torch.corrcoef(torch.tensor([x, y], dtype=torch.float64))[0, 1].item()
    t = r * math.sqrt(5) / math.sqrt(1 - r * r)
    got = stats.pearson(x, y)
    assert got["r"] == pytest.approx(r) and got["p"] == pytest.approx(_t_two_sided(t, 5), abs=1e-4)
    assert got["n"] == 7 and stats.pearson(x, [-v for v in y])["r"] == pytest.approx(-r)
    assert math.isnan(stats.pearson([1.0, 2.0], [1.0, 2.0])["r"]) and math.isnan(
        stats.pearson(x, [1.0] * 7)["p"]
    )
    with pytest.raises(ValueError, match="must be pairs"):
        stats.pearson([1.0, 2.0, 3.0], [1.0])


def test_bootstrap_ci_matches_the_exhaustive_bootstrap_distribution():
    # With 3 + 2 values every resample is one of 3^3 · 2^2 equally likely draws: the exact percentiles.
    x, y = [0.8, 0.9, 0.6], [0.2, 0.5]
    exact = sorted(
        sum(a) / 3 - sum(b) / 2
        for a in itertools.product(x, repeat=3)
        for b in itertools.product(y, repeat=2)
    )
    lo, hi = stats.bootstrap_ci(x, y, n=40_000, seed=1)
    # the sampled 2.5 % / 97.5 % points fall within a few exact quantile steps of the exact ones
    k_lo, k_hi = int(0.025 * len(exact)), int(0.975 * len(exact)) - 1
    assert exact[max(0, k_lo - 4)] <= lo <= exact[k_lo + 4]
    assert exact[k_hi - 4] <= hi <= exact[min(len(exact) - 1, k_hi + 4)]
    assert stats.bootstrap_ci(x, y, seed=3) == stats.bootstrap_ci(x, y, seed=3)  # seeded


def test_compare_is_diff_interval_and_welch():
    got = stats.compare(X, Y)
    assert got["diff"] == pytest.approx(sum(X) / 4 - sum(Y) / 3) and got["n"] == [4, 3]
    assert got["ci95"] == list(stats.bootstrap_ci(X, Y)) and got["p"] == stats.welch(X, Y)["p"]


try:
    import scipy.stats as scipy_stats
except ImportError:  # the references above still check every formula
    scipy_stats = None


@pytest.mark.skipif(scipy_stats is None, reason="scipy not installed")
@pytest.mark.parametrize("seed", range(5))
def test_tests_match_scipy(seed):
    rng = random.Random(seed)
    x = [rng.random() for _ in range(rng.randint(2, 9))]
    y = [rng.random() * 0.7 for _ in range(rng.randint(2, 9))]
    ref = scipy_stats.ttest_ind(x, y, equal_var=False)
    got = stats.welch(x, y)
    assert got["t"] == pytest.approx(ref.statistic) and got["p"] == pytest.approx(ref.pvalue, rel=1e-7)
    y2 = [v + rng.gauss(0, 0.1) for v in x]
    ref = scipy_stats.ttest_rel(x, y2)
    assert stats.paired(x, y2)["p"] == pytest.approx(ref.pvalue, rel=1e-7)
    if len(x) >= 3:
        ref = scipy_stats.pearsonr(x, y2)
        got = stats.pearson(x, y2)
        assert got["r"] == pytest.approx(ref.statistic) and got["p"] == pytest.approx(ref.pvalue, rel=1e-6)
    a, b = rng.uniform(0.3, 9.0), rng.uniform(0.3, 9.0)
    assert stats.betainc(a, b, 0.37) == pytest.approx(scipy_stats.beta.cdf(0.37, a, b), rel=1e-9)
    assert stats.mean_std(x)[1] == pytest.approx(scipy_stats.tstd(x))


def _holm_rejects(ps: list[float], alpha: float) -> set[int]:
    """Holm's procedure as written: walk the p-values from the smallest, reject while p_(k) ≤ α / (m − k), stop at
    the first that is not."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    rejected = set()
    for k, i in enumerate(order):
        if ps[i] > alpha / (len(ps) - k):
            break
        rejected.add(i)
    return rejected


@pytest.mark.parametrize("seed", range(5))
def test_holm_adjusted_p_is_the_smallest_alpha_the_procedure_rejects_at(seed):
    rng = random.Random(seed)
    ps = [rng.random() ** 3 for _ in range(rng.randint(1, 9))]
    adjusted = stats.holm(ps)
    # just below and above every threshold where the answer could change (at it, p·m vs α/m differ in the last bit)
    cuts = sorted({min(1.0, p * m) for p in ps for m in range(1, len(ps) + 1)})
    for alpha in [c * f for c in cuts for f in (0.999, 1.001)]:
        assert {i for i, q in enumerate(adjusted) if q <= alpha} == _holm_rejects(ps, alpha), (ps, alpha)


def test_holm_skips_missing_tests_and_keeps_the_order():
    adjusted = stats.holm([math.nan, 0.04, 0.01])
    assert math.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.04, 0.02])
