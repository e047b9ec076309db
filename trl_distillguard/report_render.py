"""`report.md`, `report.png` and `budget.png` of `distillguard report`, rendered from the report dict alone (so
a committed `report.json` re-renders anywhere).

Example:
    >>> fmt(None), fmt(0.12345), fmt(float("nan"))
    ('n/a', '0.123', 'n/a')
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table; `n/a` for None and NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    return "n/a" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{p:.3g}"


def render_markdown(report: dict[str, Any], cfg: Any = None) -> str:
    """The report as Markdown: the verdict, the comparisons with the baseline teacher, every group's scores.
    (`cfg` is unused: the settings are in `report["config"]`; a report written before attackers existed renders
    in its own older layout.)

    Example:
        >>> render_markdown({"config": {"verifier": "v", "eval_dataset": "e", "baseline_teacher": "b", "distill": {}},
        ...                  "verdict": ["`c`: ..."], "comparisons": [], "summary": [], "students": {},
        ...                  "warnings": [], "cells": []}).splitlines()[0]
        '# Distillability report'
    """
    if "cells" not in report:
        return _legacy_markdown(report)
    c = report["config"]
    lines = ["# Distillability report", "", "## Verdict", ""]
    lines += [f"- {v}" for v in report["verdict"]] or ["- nothing to compare yet (one teacher, or no cells)."]
    lines += [
        "",
        f"Verifier `{c['verifier']}` on {c['eval_dataset']} (greedy evaluation); baseline teacher "
        f"`{c['baseline_teacher']}`; {len(report['cells'])} cells.",
        "",
        "## Against the baseline teacher",
        "",
        "| teacher | student | recipe | attacker | n | student score (mean ± std) | baseline | diff [95 % CI] | "
        "Welch p | ratio | transfer (vs baseline) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["comparisons"]:
        lo, hi = r["ci95"]
        lines.append(
            f"| {r['teacher']} | {r['student']} | {r['recipe']} | {r['attacker']} | {r['n']} | "
            f"{fmt(r['mean'])} ± {fmt(r['std'])} | {fmt(r['baseline_mean'])} ± {fmt(r['baseline_std'])} | "
            f"{fmt(r['diff'], 3)} [{fmt(lo)}, {fmt(hi)}] | {_p(r['welch_p'])} | {fmt(r['ratio'], 2)} | "
            f"{fmt(r['transfer'], 2)} ({fmt(r['baseline_transfer'], 2)}) |"
        )
    lines += [
        "",
        "## Every group",
        "",
        "| teacher | teacher score | student | recipe | attacker | student score (mean ± std) | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["summary"]:
        lines.append(
            f"| {r['teacher']} | {fmt(r['teacher_score'])} | {r['student']} | {r['recipe']} | {r['attacker']} | "
            f"{fmt(r['student_mean'])} ± {fmt(r['student_std'])} | {', '.join(map(str, r['seeds']))} |"
        )
    notes = [x for x in report["cells"] if x.get("note")]
    if notes:
        lines += ["", f"{len(notes)} cell(s) trained nothing: " + "; ".join(
            f"{x['teacher']}/{x['student']}/{x['recipe']}/{x['attacker']}/seed {x['seed']}: {x['note']}"
            for x in notes[:5]) + ("; ..." if len(notes) > 5 else "") + "."]  # fmt: skip
    if report["students"]:
        lines += ["", "Students before distillation: " + ", ".join(
            f"`{n}` {fmt(v['initial_score'])}" for n, v in report["students"].items()) + "."]  # fmt: skip
    lines += [f"\n> warning: {w}" for w in report["warnings"]]
    lines += [
        "",
        "ratio = student score / the baseline teacher's students' score; transfer = student score / its own "
        "teacher's score (mean over seeds, paired by seed with the baseline's); std has ddof 1; the 95 % "
        "interval is a percentile bootstrap over seeds.",
        "",
        f"Distillation settings: `{json.dumps(c['distill'])}`.",
        "",
    ]
    return "\n".join(lines)


def _legacy_markdown(report: dict[str, Any]) -> str:
    # reports written before attackers and comparisons: runs + summary per (teacher, student, recipe)
    c = report["config"]
    lines = [
        "# Distillability report",
        "",
        f"Verifier `{c['verifier']}` on {c['eval_dataset']} (greedy={c['eval_temperature'] == 0}); "
        f"seeds {list(range(c['seed'], c['seed'] + c['seeds']))}; recipes {', '.join(c['recipes'])}; "
        f"original teacher `{c['original_teacher']}`.",
        "",
        "| teacher | teacher score | student | recipe | student score (mean ± std) | Δ vs original | distillability index |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["summary"]:
        delta = row["delta_vs_original"]
        original = row["teacher"] == c["original_teacher"]
        lines.append(
            f"| {row['teacher']} | {fmt(row['teacher_score'])} | {row['student']} | {row['recipe']} | "
            f"{fmt(row['student_mean'])} ± {fmt(row['student_std'])} (n={row['n_seeds']}) | "
            f"{'—' if original else ('n/a' if delta is None else f'{delta:+.3f}')} | "
            f"{fmt(row['distillability_index'], 2)} |"
        )
    if report["students"]:
        lines += ["", "Students before distillation: " + ", ".join(
            f"`{n}` {fmt(v['initial_score'])}" for n, v in report["students"].items()) + "."]  # fmt: skip
    for w in report["warnings"]:
        lines.append(f"\n> warning: {w}")
    lines += ["", f"Distillation settings: `{json.dumps(c['distill'])}`.", ""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: one group per (student, recipe, attacker) plus the teachers' own scores, one bar per teacher
    (gold references included); error bars are the seed std, black dots the single seeds.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "report.png"
        >>> plot_report({"summary": [], "teachers": {"a": {"score": 0.5}}, "students": {}}, path); path.exists()
        True
    """
    plt = _pyplot()
    rows = report["summary"]
    teachers = list(dict.fromkeys(r["teacher"] for r in rows)) or list(report["teachers"])
    label = lambda r: f"{r['student']}\n{r['recipe']}\n{r['attacker']}"  # noqa: E731
    groups = ["teacher itself", *dict.fromkeys(label(r) for r in rows)]
    width = 0.8 / max(1, len(teachers))
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(groups) + 1.5), 4))
    for i, t in enumerate(teachers):
        own = (report["teachers"].get(t) or {}).get("score")
        means, stds, seeds = [own if own is not None else math.nan], [0.0], [[]]
        for g in groups[1:]:
            row = next((r for r in rows if r["teacher"] == t and label(r) == g), None)
            means.append(row["student_mean"] if row else math.nan)
            stds.append(row["student_std"] if row else 0.0)
            seeds.append(row["scores"] if row and len(row["scores"]) > 1 else [])
        xs = [j + (i - (len(teachers) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=t)
        for x, points in zip(xs, seeds, strict=True):
            ax.scatter([x] * len(points), points, s=9, color="black", zorder=3)
    for k, v in enumerate(report["students"].values()):
        ax.axhline(
            v["initial_score"], ls=":", lw=1, color="gray", label="students before" if k == 0 else None
        )
    ax.set_xticks(range(len(groups)), groups, fontsize=7)
    ax.set_ylabel("verifier score (held-out)")
    tops = [max([r["student_mean"] + r["student_std"], *r["scores"]]) for r in rows]
    tops += [v["score"] for v in report["teachers"].values() if v.get("score") is not None]
    tops = [t for t in tops if t == t]
    ax.set_ylim(0, min(1.05, 1.25 * max(tops)) if tops and max(tops) > 0 else 1.05)
    ax.set_title("Student score per attacker and teacher (mean ± std; dots: seeds)", fontsize=10)
    ax.legend(title="teacher", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def budget_families(report: dict[str, Any]) -> dict[tuple, list[tuple[int, str]]]:
    """Attackers that differ only in budget: (temperature, correct_only) -> [(budget, attacker)], two or more.

    Example:
        >>> cells = [{"attacker": a, "temperature": t, "correct_only": False, "budget": b}
        ...          for a, t, b in (("t1", 1.0, 1), ("t1_3x", 1.0, 3), ("greedy", 0.0, 1))]
        >>> budget_families({"cells": cells})
        {(1.0, False): [(1, 't1'), (3, 't1_3x')]}
    """
    fams: dict[tuple, set[tuple[int, str]]] = {}
    for c in report["cells"]:
        if c.get("budget") is not None:
            fams.setdefault((c["temperature"], c["correct_only"]), set()).add((c["budget"], c["attacker"]))
    return {k: sorted(v) for k, v in fams.items() if len({b for b, _ in v}) > 1}


def plot_budget(report: dict[str, Any], path: Path) -> bool:
    """Student score against the attacker's budget (× prompts and steps), one line per teacher, one panel per
    (student, recipe, attacker family); False (nothing drawn) when no attackers differ only in budget.

    Example:
        >>> plot_budget({"cells": [], "summary": []}, Path("budget.png"))
        False
    """
    fams = budget_families(report)
    if not fams:
        return False
    plt = _pyplot()
    rows = report["summary"]
    panels = [
        (s, r, fam) for fam in fams for s, r in dict.fromkeys((x["student"], x["recipe"]) for x in rows)
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 1.5, 3.4), squeeze=False)
    for ax, (student, recipe, fam) in zip(axes[0], panels, strict=True):
        for t in dict.fromkeys(x["teacher"] for x in rows):
            pts = [
                (b, x) for b, a in fams[fam] for x in rows
                if (x["teacher"], x["student"], x["recipe"], x["attacker"]) == (t, student, recipe, a)
            ]  # fmt: skip
            if pts:
                ax.errorbar([b for b, _ in pts], [x["student_mean"] for _, x in pts],
                            yerr=[x["student_std"] for _, x in pts], marker="o", capsize=3, label=t)  # fmt: skip
        temp, correct = fam
        ax.set_title(f"{student}, {recipe}, T={temp:g}{' correct only' if correct else ''}", fontsize=9)
        ax.set_xlabel("budget (× prompts and steps)")
        ax.set_xticks(sorted({b for b, _ in fams[fam]}))
    axes[0][0].set_ylabel("student score (held-out)")
    axes[0][-1].legend(title="teacher", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
