"""The numbers of `distillguard report`, computed from its cells: per-group summaries, every teacher's comparison
with the baseline teacher (mean ± std, difference, bootstrap interval, Welch's p, ratio, transfer ratio paired by
seed), and the verdict worded from them.

Example:
    >>> cells = [{"teacher": t, "student": "s", "recipe": "sft", "attacker": "t1", "seed": k,
    ...           "student_score": v, "teacher_score": 1.0} for t, k, v in
    ...          [("base", 0, 0.8), ("base", 1, 0.6), ("cal", 0, 0.2), ("cal", 1, 0.4)]]
    >>> row = comparisons(cells, "base")[0]
    >>> row["teacher"], round(row["diff"], 6), round(row["ratio"], 4), row["n"]
    ('cal', -0.4, 0.4286, 2)
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from distill_ortho_merge.stats import bootstrap_ci, mean_std, paired, welch

GROUP = ("teacher", "student", "recipe", "attacker")


def _groups(cells: list[dict[str, Any]]) -> dict[tuple, dict[int, dict[str, Any]]]:
    out: dict[tuple, dict[int, dict[str, Any]]] = defaultdict(dict)
    for c in cells:
        out[tuple(c[k] for k in GROUP)][c["seed"]] = c
    return out


def _transfer(cell: dict[str, Any]) -> float | None:
    t = cell.get("teacher_score")
    return cell["student_score"] / t if t else None


def summarize(cells: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """One row per (teacher, student, recipe, attacker): scores over seeds, Δ against the baseline teacher's
    same (student, recipe, attacker), and the distillability index (mean student score / mean teacher score).

    Example:
        >>> cells = [{"teacher": "t", "student": "s", "recipe": "sft", "attacker": "t1", "seed": 0,
        ...           "student_score": 0.5, "teacher_score": 1.0}]
        >>> summarize(cells, "t")[0]["distillability_index"]
        0.5
    """
    groups = _groups(cells)
    rows = []
    for key, by_seed in groups.items():
        scores = [by_seed[s]["student_score"] for s in sorted(by_seed)]
        t_scores = [
            by_seed[s]["teacher_score"] for s in sorted(by_seed) if by_seed[s]["teacher_score"] is not None
        ]
        mean, std = mean_std(scores)
        base = groups.get((baseline, *key[1:]))
        t_mean = mean_std(t_scores)[0] if t_scores else None
        rows.append({
            **dict(zip(GROUP, key, strict=True)), "teacher_score": t_mean, "student_mean": mean, "student_std": std,
            "n_seeds": len(scores), "seeds": sorted(by_seed), "scores": scores,
            "delta_vs_original": mean - mean_std([c["student_score"] for c in base.values()])[0] if base else None,
            "distillability_index": mean / t_mean if t_mean else None,
        })  # fmt: skip
    return rows


def comparisons(cells: list[dict[str, Any]], baseline: str, bootstrap_seed: int = 0) -> list[dict[str, Any]]:
    """Every other teacher (gold references included) against the baseline teacher, per (student, recipe,
    attacker): the contract's `n, mean, std, baseline_mean, baseline_std, diff, ci95, welch_p, ratio`, plus the
    mean transfer ratios (student / its own teacher's score) and their paired difference over the shared seeds."""
    groups = _groups(cells)
    rows = []
    for key, by_seed in groups.items():
        teacher, rest = key[0], key[1:]
        base = groups.get((baseline, *rest))
        if teacher == baseline or not base:
            continue
        x = [by_seed[s]["student_score"] for s in sorted(by_seed)]
        y = [base[s]["student_score"] for s in sorted(base)]
        (mx, sx), (my, sy) = mean_std(x), mean_std(y)
        lo, hi = bootstrap_ci(x, y, seed=bootstrap_seed)
        shared = [s for s in sorted(by_seed) if s in base]
        tx = [_transfer(by_seed[s]) for s in shared]
        ty = [_transfer(base[s]) for s in shared]
        both = [(a, b) for a, b in zip(tx, ty, strict=True) if a is not None and b is not None]
        tr = paired([a for a, _ in both], [b for _, b in both]) if both else None
        rows.append({
            **dict(zip(GROUP, key, strict=True)), "baseline": baseline, "n": len(x), "baseline_n": len(y),
            "mean": mx, "std": sx, "baseline_mean": my, "baseline_std": sy, "diff": mx - my, "ci95": [lo, hi],
            "welch_p": welch(x, y)["p"], "ratio": mx / my if my else None,
            "transfer": mean_std([a for a, _ in both])[0] if both else None,
            "baseline_transfer": mean_std([b for _, b in both])[0] if both else None,
            "transfer_diff": tr["diff"] if tr else None, "transfer_p": tr["p"] if tr else None,
            "transfer_n": len(both),
        })  # fmt: skip
    return rows


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f} %"


def verdict(
    comps: list[dict[str, Any]], teachers: dict[str, Any], baseline: str, threshold: float
) -> list[str]:
    """One sentence per compared teacher, worded from the comparisons: the share of the baseline's student score
    its students reach under each attacker, whether that stays ≤ `threshold` under every one, the attacker that
    does best against it, how many differences are significant, and (with `gold-answers`) in how many its students
    fall below the students of the bare gold answers.

    Example:
        >>> comps = [{"teacher": "cal", "student": "s", "recipe": "sft", "attacker": a, "ratio": r, "diff": -0.3,
        ...           "welch_p": 0.01} for a, r in (("t1", 0.3), ("t1_3x", 0.6))]
        >>> verdict(comps, {"cal": {"score": 0.9}, "base": {"score": 1.0}}, "base", 0.5)[0][:61]
        '`cal` (teacher score 0.900 vs 1.000): its students reach 30 %'
    """
    by_teacher: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in comps:
        by_teacher[c["teacher"]].append(c)
    floor = {
        (c["student"], c["recipe"], c["attacker"]): c["mean"] for c in by_teacher.get("gold-answers", [])
    }
    lines = []
    for teacher, rows in by_teacher.items():
        ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
        if not ratios:
            lines.append(f"`{teacher}`: no ratio (the baseline's students score 0).")
            continue
        reach = (
            f"its students reach {_pct(min(ratios))}–{_pct(max(ratios))} of the `{baseline}` students' score"
        )
        if teacher.startswith("gold-"):
            what = "the gold answers" if teacher == "gold-answers" else "the dataset's gold completions"
            lines.append(f"`{teacher}` (students of {what}, not of a teacher): {reach}.")
            continue
        strongest = max((r for r in rows if r["ratio"] is not None), key=lambda r: r["ratio"])
        every = all(r <= threshold for r in ratios)
        sig = sum(1 for r in rows if r["welch_p"] is not None and r["welch_p"] < 0.05)
        t_score, b_score = (
            (teachers.get(teacher) or {}).get("score"),
            (teachers.get(baseline) or {}).get("score"),
        )
        scores = f" (teacher score {t_score:.3f} vs {b_score:.3f})" if t_score is not None and b_score else ""
        where = f"{strongest['attacker']} ({strongest['student']}, {strongest['recipe']})"
        keys = [(r["student"], r["recipe"], r["attacker"]) for r in rows]
        below = [k for k, r in zip(keys, rows, strict=True) if k in floor and r["mean"] < floor[k]]
        gold = (f"; below the gold-answers floor in {len(below)} of {sum(k in floor for k in keys)}"
                if any(k in floor for k in keys) else "")  # fmt: skip
        lines.append(
            f"`{teacher}`{scores}: {reach} over {len(rows)} (student, recipe, attacker) comparisons; "
            f"≤ {_pct(threshold)} under every attacker: **{'yes' if every else 'no'}**; strongest attacker against "
            f"it: {where}, {_pct(strongest['ratio'])}; differences significant at p < 0.05 (Welch): {sig} of "
            f"{len(rows)}{gold}."
        )
    return lines


def untaught(summary: list[dict[str, Any]], initial: dict[str, float], baseline: str) -> list[str]:
    """One warning per (student, recipe, attacker) whose baseline-teacher students end no better than the same
    student before distillation: the recipe taught nothing there, so the other teachers' ratios against it mean
    nothing. (A from-scratch student under GKD's mixed policy is the usual case: its own samples are noise.)

    Example:
        >>> rows = [{"teacher": "t", "student": "s", "recipe": "kd", "attacker": "t1", "student_mean": 0.0}]
        >>> untaught(rows, {"s": 0.0}, "t")[0][:57]
        '`t` → `s` (kd, t1): students end at 0.000, no better than'
    """
    lines = []
    for r in summary:
        before = initial.get(r["student"])
        if r["teacher"] == baseline and before is not None and r["student_mean"] <= before:
            hint = ("try distill: {on_policy_fraction: 0}, off-policy: a weak student's own samples teach it nothing"
                    if r["recipe"] != "sft" else "try more distill steps or a larger budget")  # fmt: skip
            lines.append(
                f"`{baseline}` → `{r['student']}` ({r['recipe']}, {r['attacker']}): students end at "
                f"{r['student_mean']:.3f}, no better than before distillation ({before:.3f}); this taught nothing, "
                f"so ratios against these students say nothing about the teachers; {hint}"
            )
    return lines
