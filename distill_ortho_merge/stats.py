"""Statistics over seeds, shared by `distillguard report` and the benchmarks: mean ± sample std, Welch's and
the paired t-test with two-sided p-values from the Student-t CDF (regularised incomplete beta function, pure
Python: no scipy needed), Pearson's r, a seeded percentile bootstrap interval of a difference of means, and Holm's
step-down adjustment of a family of p-values.

Standard library only.

Example:
    >>> compare([0.8, 0.9, 0.85], [0.2, 0.3, 0.1])["n"]
    [3, 3]
"""

from __future__ import annotations

import math
import random
from typing import Any


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; 0 for one value).

    Example:
        >>> mean_std([1.0, 3.0])
        (2.0, 1.4142135623730951)
    """
    m = sum(xs) / len(xs)
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0


def _betacf(a: float, b: float, x: float) -> float:
    # Lentz's continued fraction for the incomplete beta function (Numerical Recipes §6.4).
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b).

    Example:
        >>> round(betainc(2.0, 3.0, 0.4), 6)  # 1 - sum_{k<2} C(4,k) 0.4^k 0.6^(4-k)
        0.5248
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def welch(x: list[float], y: list[float]) -> dict[str, float]:
    """Welch's t-test of mean(x) − mean(y): t, Welch–Satterthwaite df and the two-sided p-value.

    Example:
        >>> round(welch([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])["p"], 4)
        0.0213
    """
    (mx, sx), (my, sy) = mean_std(x), mean_std(y)
    vx, vy = sx**2 / len(x), sy**2 / len(y)
    if len(x) < 2 or len(y) < 2 or vx + vy == 0:
        return {"t": math.nan, "df": math.nan, "p": math.nan}
    t = (mx - my) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    return {"t": t, "df": df, "p": betainc(df / 2, 0.5, df / (df + t * t))}


def bootstrap_ci(x: list[float], y: list[float], n: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of mean(x) − mean(y), resampling each group's seeds.

    Example:
        >>> bootstrap_ci([1.0, 1.0], [0.0, 0.0])
        (1.0, 1.0)
    """
    rng = random.Random(seed)
    diffs = sorted(
        sum(rng.choices(x, k=len(x))) / len(x) - sum(rng.choices(y, k=len(y))) / len(y) for _ in range(n)
    )
    return diffs[int(0.025 * n)], diffs[int(0.975 * n) - 1]


def paired(x: list[float], y: list[float]) -> dict[str, Any]:
    """Paired t-test of mean(x − y), one pair per seed: diff, t, df = n − 1 and the two-sided p (NaN below two
    pairs or when every difference is the same).

    Example:
        >>> round(paired([0.6, 0.8, 0.8], [0.5, 0.6, 0.7])["diff"], 4)
        0.1333
    """
    if len(x) != len(y):
        raise ValueError(f"paired: {len(x)} vs {len(y)} values; pair them by seed")
    d = [a - b for a, b in zip(x, y, strict=True)]
    md, sd = mean_std(d)
    if len(d) < 2 or sd == 0:
        return {"diff": md, "t": math.nan, "df": math.nan, "p": math.nan, "n": len(d)}
    t = md / (sd / math.sqrt(len(d)))
    df = len(d) - 1
    return {"diff": md, "t": t, "df": df, "p": betainc(df / 2, 0.5, df / (df + t * t)), "n": len(d)}


def pearson(x: list[float], y: list[float]) -> dict[str, Any]:
    """Pearson's r between paired values with the two-sided p of the t-test of r = 0 (t = r √(n−2) / √(1−r²),
    df = n − 2); NaN below three pairs or when either side is constant.

    Example:
        >>> round(pearson([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])["r"], 4)
        0.8
    """
    if len(x) != len(y):
        raise ValueError(f"pearson: {len(x)} vs {len(y)} values; they must be pairs")
    n = len(x)
    if n < 3:
        return {"r": math.nan, "p": math.nan, "n": n}
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return {"r": math.nan, "p": math.nan, "n": n}
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    df = n - 2
    t2 = r * r * df / (1 - r * r) if abs(r) < 1 else math.inf
    return {"r": r, "p": 0.0 if math.isinf(t2) else betainc(df / 2, 0.5, df / (df + t2)), "n": n}


def compare(x: list[float], y: list[float]) -> dict[str, Any]:
    """Difference of means x − y with its bootstrap 95 % interval and Welch's t-test.

    Example:
        >>> compare([1.0, 1.0], [0.0, 0.0])["ci95"]
        [1.0, 1.0]
    """
    lo, hi = bootstrap_ci(x, y)
    return {"diff": mean_std(x)[0] - mean_std(y)[0], "ci95": [lo, hi], **welch(x, y), "n": [len(x), len(y)]}


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values, in the input's order: compare each adjusted p with the
    family's α (e.g. 0.05) to control the chance of any false claim among them. NaN (no test) stays NaN and is not
    counted in the family.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
    """
    order = sorted((i for i, p in enumerate(ps) if not math.isnan(p)), key=lambda i: ps[i])
    out, running = list(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * ps[i]))  # adjusted p never falls with rank
        out[i] = running
    return out
