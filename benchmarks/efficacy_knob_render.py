"""Statistics, tables and the figure of `efficacy_knob.py`, rendered from its cached per-run JSON files only.

    python benchmarks/efficacy_knob.py --render_only   # results.json, results.md, knob.png from the cache

Headline comparisons (per attacker and student, over seeds): η < 0 vs the η = 0 control and η > 0 vs the control
and the original teacher: difference of means, a 95 % bootstrap interval of it (10,000 resamples of the seeds) and
Welch's t-test (two-sided p from the Student-t CDF via the regularised incomplete beta function).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from efficacy_knob_args import ATTACKERS, real_task

from distill_ortho_merge.stats import compare, holm, mean_std, pearson

GOAL_TEACHER_KEEP = 0.95  # undistillable: teacher keeps ≥ 95 % of the original's score ...
GOAL_STUDENT_RATIO = 0.50  # ... and students reach ≤ 50 % of the η = 0 control's students
GOAL_GAIN = 0.03  # distillable: η > 0 students beat η = 0 and original by ≥ 3 points, significant (p < 0.05)


def load(cache: Path) -> tuple[dict, dict]:
    """(teachers, students) from the cache: teachers[variant] = [per-seed results];
    students[(attacker, student, variant)] = [per-seed results], a student distilled by a logit recipe named
    `student+recipe` (e.g. `a+kd`), by `sft` plainly (`a`)."""
    teachers: dict[str, list] = {}
    students: dict[tuple[str, str, str], list] = {}
    for f in sorted(cache.rglob("*.json")):
        r = json.loads(f.read_text())
        parts = r["key"].split("/")
        if parts[-1] == "teacher":
            teachers.setdefault(parts[0], []).append(r)
        else:
            variant, _seed, attacker, student, recipe = parts
            student = student if recipe == "sft" else f"{student}+{recipe}"
            students.setdefault((attacker, student, variant), []).append(r)
    return teachers, students


def is_gold(variant: str) -> bool:
    """A gold reference (`gold-direct`, `gold-traces`): students of the task's gold data, no teacher."""
    return variant.startswith("gold-")


def eta_of(variant: str) -> float | None:
    if variant == "original" or is_gold(variant):
        return None
    return float(variant.split("_")[0].removeprefix("eta"))


def group_of(variant: str) -> str:
    """The calibration settings a variant was run with ("beta0.1_steps60[_reward-NAME]"); "" for the original and
    the gold references."""
    return "" if eta_of(variant) is None else variant.split("_", 1)[1]


def control_of(variant: str, known=()) -> str:
    """The η = 0 control with the same β and calibration steps: the variant's own if it was run (a reward variant
    that changes how rewards are aggregated changes the η = 0 run too), else the one every reward variant shares."""
    own = "eta0_" + group_of(variant)
    return own if own in known else "eta0_" + group_of(variant).split("_reward-")[0]


def _order(variants) -> list[str]:
    """Grouped by calibration settings, then by η (the gold references and the original first)."""
    return sorted(set(variants), key=lambda v: (group_of(v), -math.inf if eta_of(v) is None else eta_of(v),
                                                 not is_gold(v), v))  # fmt: skip


def scores_by_variant(students: dict) -> dict[tuple[str, str], dict[str, list[float]]]:
    """students[(attacker, student, variant)] regrouped as {(attacker, student): {variant: [per-seed scores]}}."""
    out: dict[tuple[str, str], dict[str, list[float]]] = {}
    for (a, s, v), rs in sorted(students.items()):
        out.setdefault((a, s), {})[v] = [r["score"] for r in rs]
    return out


def summarize(teachers: dict, students: dict) -> dict[str, Any]:
    t_rows = {}
    for v, rs in teachers.items():
        t_rows[v] = {k: mean_std([r[k] for r in rs]) for k in ("teacher_score", "teacher_score_t1", "mean_bytes_t1",
                                                              "kl_to_original_per_token", "kl_to_original_on_policy",
                                                              "exposure_gap_per_token",
                                                              "tail_mass",
                                                              "repeated_ngram_rate") if all(r.get(k) is not None for r in rs)}  # fmt: skip
        t_rows[v]["n"] = len(rs)
        mixes = [r["format_mix_t1"] for r in rs]
        t_rows[v]["format_mix_t1"] = {f: sum(m[f] for m in mixes) / len(mixes) for f in mixes[0]}
    s_rows = {f"{a}|{s}|{v}": {"scores": [r["score"] for r in rs], "seeds": [r["key"].split("/")[1] for r in rs],
                               "mean_std": mean_std([r["score"] for r in rs])}
              for (a, s, v), rs in students.items()}  # fmt: skip
    tests, goals = [], {"undistillable": [], "distillable": []}
    orig = t_rows.get("original", {}).get("teacher_score", (math.nan,))[0]
    for (a, s), by_v in scores_by_variant(students).items():
        for v in _order(by_v):
            eta, control = eta_of(v), control_of(v, by_v)
            if control not in by_v or eta in (None, 0):
                continue
            row = {
                "attacker": a,
                "student": s,
                "variant": v,
                "vs": control,
                **compare(by_v[v], by_v[control]),
            }
            tests.append(row)
            if eta < 0:
                keep = t_rows.get(v, {}).get("teacher_score", (math.nan,))[0] / orig if orig else math.nan
                ratio = (
                    mean_std(by_v[v])[0] / mean_std(by_v[control])[0]
                    if mean_std(by_v[control])[0]
                    else math.nan
                )
                goals["undistillable"].append({"attacker": a, "student": s, "variant": v, "teacher_keep": keep,
                                               "student_ratio": ratio,
                                               "met": keep >= GOAL_TEACHER_KEEP and ratio <= GOAL_STUDENT_RATIO})  # fmt: skip
            else:
                vs_orig = compare(by_v[v], by_v["original"]) if "original" in by_v else None
                tests.append({"attacker": a, "student": s, "variant": v, "vs": "original", **(vs_orig or {})})
                met = all(c and c["diff"] >= GOAL_GAIN and c["p"] < 0.05 for c in (row, vs_orig))
                goals["distillable"].append({"attacker": a, "student": s, "variant": v, "met": bool(met)})
    # every headline claim of the sweep is one family: Holm's adjustment says which survive testing them all
    for t, p in zip(tests, holm([t.get("p", math.nan) for t in tests]), strict=True):
        if "p" in t:
            t["p_holm"] = p
    return {"teachers": t_rows, "students": s_rows, "tests": tests, "goals": goals,
            "transfer": transfer(teachers, students), "proxy_signal": proxy_signal(teachers, students),
            "vs_gold": vs_gold(students), "format_signal": format_signal(students)}  # fmt: skip


def format_signal(students: dict) -> list[dict[str, Any]]:
    """What makes a teacher's samples learnable for a student? Per attacker and student, across every student result
    (each teacher variant, gold reference and seed): Pearson's r between the share of each trace format in the
    student's training samples and the student's score."""
    rows = []
    for a, st in sorted({(a, st) for a, st, _ in students}):
        rs = [r for (aa, ss, _), group in students.items() if (aa, ss) == (a, st) for r in group
              if r.get("format_mix_train")]  # fmt: skip
        if len(rs) >= 3:
            fmts = list(rs[0]["format_mix_train"])
            rows.append({"attacker": a, "student": st, "n": len(rs),
                         **{f: pearson([r["format_mix_train"][f] for r in rs], [r["score"] for r in rs])
                            for f in fmts}})  # fmt: skip
    return rows


def vs_gold(students: dict) -> list[dict[str, Any]]:
    """Each teacher's students against the gold references' students of the same attacker budget (Welch): is a
    calibrated teacher harder to learn from than the bare answers any teacher that answers right gives away
    (`gold-direct`), is the control as easy as the gold traces (`gold-traces`)?"""
    rows = []
    for (a, s), by_v in scores_by_variant(students).items():
        golds = [g for g in _order(by_v) if is_gold(g)]
        for v in (v for v in _order(by_v) if not is_gold(v)):
            for gold in golds:
                rows.append(
                    {"attacker": a, "student": s, "variant": v, "vs": gold, **compare(by_v[v], by_v[gold])}
                )
    return rows


def _with_teacher(teachers: dict, students: dict):
    """(attacker, student, variant, teacher result, student score) for every student result whose teacher was
    scored, paired by seed (the original teacher, scored once, serves every seed)."""
    by_seed = {(v, r["key"].split("/")[1]): r for v, rs in teachers.items() for r in rs}
    for (a, st, v), rs in students.items():
        for r in rs:
            t = by_seed.get((v, "all" if v == "original" else r["key"].split("/")[1]))
            if t is not None:
                yield a, st, v, t, r["score"]


def proxy_signal(teachers: dict, students: dict) -> list[dict[str, Any]]:
    """Does the proxy's view of a teacher predict how well students learn from it? Per attacker and student,
    across every calibrated teacher (each η and seed, controls included): Pearson's r between the calibration
    reward at the end of calibration (mean of log q − log π of the last logged steps: how much less likely the proxy
    finds the teacher's samples than the teacher does) and the student's transfer ratio (score / teacher score)."""
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for a, st, _, t, score in _with_teacher(teachers, students):
        log = t.get("calibration_last_log") or {}
        if "rewards/calibration/mean" in log and t["teacher_score"]:
            points.setdefault((a, st), []).append(
                (log["rewards/calibration/mean"], score / t["teacher_score"])
            )
    rows = []
    for (a, st), pts in sorted(points.items()):
        if len(pts) >= 3:
            rows.append({"attacker": a, "student": st, **pearson([x for x, _ in pts], [y for _, y in pts]),
                         "calibration_reward_range": [min(x for x, _ in pts), max(x for x, _ in pts)]})  # fmt: skip
    return rows


def transfer(teachers: dict, students: dict) -> list[dict[str, Any]]:
    """How much of its own teacher's skill a student gets: student score / that teacher's greedy score, paired by
    seed (the original teacher serves every seed), and this ratio's difference from the η = 0 control's, per
    attacker, student and calibrated variant. A knob that makes a teacher *harder to learn from* lowers the ratio;
    one that only makes the teacher worse leaves it where it was."""
    ratios: dict[tuple[str, str, str], list[float]] = {}
    for a, st, v, t, score in _with_teacher(teachers, students):
        if t["teacher_score"]:  # a teacher at 0 has nothing to pass on: no ratio
            ratios.setdefault((a, st, v), []).append(score / t["teacher_score"])
    rows = []
    order = _order(v for _, _, v in ratios)
    for (a, st, v), xs in sorted(ratios.items(), key=lambda kv: (kv[0][:2], order.index(kv[0][2]))):
        control = control_of(v, {vv for aa, ss, vv in ratios if (aa, ss) == (a, st)})
        vs = compare(xs, ratios[(a, st, control)]) if eta_of(v) and (a, st, control) in ratios else None
        rows.append({"attacker": a, "student": st, "variant": v, "ratio": mean_std(xs), "n": len(xs),
                     "vs": control if vs else None, **({"diff": vs["diff"], "p": vs["p"]} if vs else {})})  # fmt: skip
    return rows


def _f(x, d: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else _f(p)


def _comparison(t: dict, with_holm: bool = False) -> str:
    """One row of a comparison table: attacker, student, teacher, vs, Δ mean, bootstrap CI, Welch p, (Holm p,) n."""
    holm_p = f" {_p(t['p_holm'])} |" if with_holm else ""
    return (f"| {t['attacker']} | {t['student']} | {t['variant']} | {t['vs']} | {t['diff']:+.3f} | "
            f"[{t['ci95'][0]:+.3f}, {t['ci95'][1]:+.3f}] | {_p(t['p'])} |{holm_p} {t['n'][0]}/{t['n'][1]} |")  # fmt: skip


def _ms(p, d: int = 3) -> str:
    return f"{_f(p[0], d)} ± {_f(p[1], d)}" if p else "n/a"


def markdown(res: dict[str, Any]) -> str:
    s = res["summary"]
    run = res["run"]
    protocol = run.get("protocol", {})
    setting, data = protocol.get("setting", "tiny"), protocol.get("real_dataset", "addition")
    # tiny setting: the addition sweep's protocol predates the task field; real setting: the dataset names the task
    task = real_task(data) if setting == "real" else protocol.get("task", "add21")
    items = ("sums" if task == "add21" else f"`{task}` items") if task else f"`{data}` prompts"
    mixes = [t["format_mix_t1"] for t in s["teachers"].values() if t.get("format_mix_t1")]
    mix_names = "/".join(f.split("_")[0] for f in mixes[0]) if mixes else "–"
    lines = [f"# Distillability knob: efficacy ({setting} setting)", "",
             f"Rendered from {res['n_cached']} cached runs by `{run['command']}` (commit {run['git_commit'][:10]}, "
             f"{run['machine']}). Scores: `math_answer`, greedy, {res['n_test']} held-out {items}. mean ± std over "
             "seeds.",
             "", "Recorded sweep invocations (each resumes the same cache): " + ("; ".join(
                 f"`{w['command']}` (commit {w['git_commit'][:10]}, started {w['started']}, {w['wall_s']:.0f} s)"
                 for w in run.get("sweeps", [])) or "none") + ".",
             "", "## Teachers", "",
             "| teacher | n | greedy score | T=1 score | KL(teacher ‖ original) / token | same, on the original's samples | "
             "exposure gap / token | "
             f"tail mass (top-10) | repeated 3-gram rate | bytes (T=1) | format mix T=1 ({mix_names}) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for v in _order(s["teachers"]):
        t = s["teachers"][v]
        mix = "/".join(f"{100 * x:.0f}" for x in t["format_mix_t1"].values())
        lines.append(f"| {v} | {t['n']} | {_ms(t.get('teacher_score'))} | {_ms(t.get('teacher_score_t1'))} | "
                     f"{_ms(t.get('kl_to_original_per_token'), 4)} | {_ms(t.get('kl_to_original_on_policy'), 4)} | "
                     f"{_ms(t.get('exposure_gap_per_token'), 4)} | "
                     f"{_ms(t.get('tail_mass'), 4)} | "
                     f"{_ms(t.get('repeated_ngram_rate'))} | {_ms(t.get('mean_bytes_t1'), 1)} | {mix} |")  # fmt: skip
    lines += ["", "KL per token, exact (shared vocabulary), from `distillguard diagnose` with the original as the "
              "student: on the teacher's own T=1 samples (what an attacker trains on) and on the original's; the "
              "exposure gap is the second minus the first (n/a: not recorded for every seed)."]  # fmt: skip
    if not s["students"]:  # a sweep stopped after its teachers: no empty tables
        lines += [
            "",
            "## Students",
            "",
            "No student cell is cached yet; the student tables appear as cells complete.",
        ]
        return "\n".join(lines) + "\n"
    variants = _order(k.split("|")[2] for k in s["students"])
    lines += ["", "## Students (recipe sft; `+kd` / `+uld`: that logit recipe)", "", "| attacker | student | " + " | ".join(variants) + " |",
              "|---|---|" + "---|" * len(variants)]  # fmt: skip
    for a, st in sorted({tuple(k.split("|")[:2]) for k in s["students"]}):
        cells = []
        for v in variants:
            row = s["students"].get(f"{a}|{st}|{v}")
            cells.append(f"{_ms(row['mean_std'])} (n={len(row['scores'])})" if row else "—")
        lines.append(f"| {a} | {st} | " + " | ".join(cells) + " |")
    lines += ["", "## Headline comparisons", "",
              "Holm p: Holm's step-down adjustment over every row of this table, the sweep's family of headline "
              "claims (a claim holds at 5 % if its Holm p < 0.05 however many rows there are).", "",
              "| attacker | student | teacher | vs | Δ mean | 95 % bootstrap CI | Welch p | Holm p | n |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for t in s["tests"]:
        if "diff" not in t:
            continue
        lines.append(_comparison(t, with_holm=True))
    if s.get("vs_gold"):
        lines += ["", "## Against the gold references (students of the task's gold data, same prompts and budget)", "",
                  "`gold-direct`: bare `#### N` answers, the least a teacher that answers right gives away; "
                  "`gold-traces`: the gold traces the original teacher learnt from.", "",
                  "| attacker | student | teacher | vs | Δ mean | 95 % bootstrap CI | Welch p | n |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for t in s["vs_gold"]:
            lines.append(_comparison(t))
    lines += ["", "## Transfer: student score / its own teacher's greedy score", "",
              "Paired by seed. A teacher made harder to learn *from* lowers this ratio; a teacher that is merely "
              "worse leaves it unchanged (its students follow it down).", "",
              "| attacker | student | teacher | ratio | n | Δ vs η = 0 control | Welch p |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for t in s.get("transfer", []):
        diff = f"{t['diff']:+.3f}" if "diff" in t else "—"
        lines.append(f"| {t['attacker']} | {t['student']} | {t['variant']} | {_ms(t['ratio'])} | {t['n']} | {diff} | "
                     f"{_f(t.get('p'))} |")  # fmt: skip
    if s.get("format_signal"):
        fmts = [k for k in s["format_signal"][0] if k not in ("attacker", "student", "n")]
        lines += ["", "## What the students learn from: the trace formats of their training samples", "",
                  "Across every student of an attacker (each teacher, gold reference and seed): Pearson's r between "
                  "the share of each format in the student's training samples and its score (p in brackets).", "",
                  "| attacker | student | students | " + " | ".join(fmts) + " |", "|---|---|---|" + "---|" * len(fmts)]  # fmt: skip
        for t in s["format_signal"]:
            cells = [f"{_f(t[f]['r'], 2)} ({_p(t[f]['p'])})" for f in fmts]
            lines.append(f"| {t['attacker']} | {t['student']} | {t['n']} | " + " | ".join(cells) + " |")
    lines += ["", "## Does the proxy predict the students?", "",
              "Across every calibrated teacher (each η and seed, η = 0 controls included): Pearson's r between the "
              "calibration reward at the end of calibration (log q − log π of the proxy vs the teacher on the "
              "teacher's own samples, mean of the last logged steps) and the student's transfer ratio above; p of "
              "the t-test of r = 0.", "",
              "| attacker | student | teachers | r | p | calibration reward range |", "|---|---|---|---|---|---|"]  # fmt: skip
    for t in s.get("proxy_signal", []):
        lo, hi = t["calibration_reward_range"]
        lines.append(f"| {t['attacker']} | {t['student']} | {t['n']} | {_f(t['r'], 2)} | {_p(t['p'])} | "
                     f"{lo:.3f} … {hi:.3f} |")  # fmt: skip
    lines += ["", "## Goals", "",
              f"Undistillable: teacher ≥ {GOAL_TEACHER_KEEP:.0%} of the original's score and students ≤ "
              f"{GOAL_STUDENT_RATIO:.0%} of the η = 0 control's. Distillable: η > 0 students ≥ {100 * GOAL_GAIN:.0f} "
              "points above both η = 0 and the original, Welch p < 0.05.", "",
              "| goal | attacker | student | teacher | detail | met |", "|---|---|---|---|---|---|"]  # fmt: skip
    for g in s["goals"]["undistillable"]:
        lines.append(
            f"| undistillable | {g['attacker']} | {g['student']} | {g['variant']} | teacher keeps "
            f"{_f(g['teacher_keep'], 2)}, students {_f(g['student_ratio'], 2)}× control | {g['met']} |"
        )
    for g in s["goals"]["distillable"]:
        lines.append(
            f"| distillable | {g['attacker']} | {g['student']} | {g['variant']} | see comparisons | {g['met']} |"
        )
    return "\n".join(lines) + "\n"


def sft_keys(students: dict) -> list[list[str]]:
    """The summary's student keys "attacker|student|variant" of `sft` students (a logit recipe's is "a+kd"), split."""
    return [k.split("|") for k in students if "+" not in k.split("|")[1]]


def eta_panels(keys: list[list[str]]) -> list[str]:
    """The calibration settings (`group_of`) worth a score-vs-η panel: those run with at least two η ≠ 0 (the
    others are single points, in the tables)."""
    etas: dict[str, set[float]] = {}
    for _, _, v in keys:
        if group_of(v) and eta_of(v):
            etas.setdefault(group_of(v), set()).add(eta_of(v))
    return sorted(g for g, e in etas.items() if len(e) >= 2)


def eta_students(keys: list[list[str]], rows: list[str]) -> list[str]:
    """The students worth a column of score-vs-η panels: those with a calibrated teacher (η ≠ 0) in one of the
    `rows`; every student when none has (a column of the original alone says nothing about η)."""
    drawn = sorted({st for _, st, v in keys if eta_of(v) and group_of(v) in rows})
    return drawn or sorted({st for _, st, _ in keys})


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported when a figure is drawn, not with this module)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def plot(res: dict[str, Any], path: Path) -> None:
    """Student score vs η: a row per calibration setting with ≥ 2 η values, a column per `sft` student with a
    calibrated teacher on one of those rows (`eta_students`), a line per attacker (the original teacher at the
    left, the η = 0 control at 0); the gold references' `t1` scores as grey horizontal lines (dotted:
    gold-direct, dash-dot: gold-traces)."""
    plt = _pyplot()
    s = res["summary"]["students"]
    keys = sft_keys(s)
    rows = eta_panels(keys) or [""]
    studs = eta_students(keys, rows) or [""]
    known = {v for *_, v in keys}
    fig, axes = plt.subplots(
        len(rows), len(studs), figsize=(5.5 * len(studs), 3.8 * len(rows)), squeeze=False
    )
    for row, g in zip(axes, rows, strict=True):
        control = control_of(f"eta1_{g}", known) if g else ""
        on_panel = {v for v in known if v in ("original", control) or (g and group_of(v) == g)}
        etas = sorted({eta_of(v) for v in on_panel if eta_of(v) is not None} | {0.0})
        x_orig = etas[0] - 1.5
        for ax, st in zip(row, studs, strict=True):
            attackers = sorted({a for a, ss, v in keys if ss == st and v in on_panel})
            for i, a in enumerate(attackers):
                pts = sorted((x_orig if eta_of(v) is None else eta_of(v), *s[f"{a}|{st}|{v}"]["mean_std"])
                             for aa, ss, v in keys if (aa, ss) == (a, st) and v in on_panel)  # fmt: skip
                xs = [x + 0.05 * (i - len(attackers) / 2) for x, *_ in pts]
                ax.errorbar(xs, [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3, label=a)
            for gold, style in (("gold-direct", ":"), ("gold-traces", "-.")):
                if f"t1|{st}|{gold}" in s:
                    ax.axhline(s[f"t1|{st}|{gold}"]["mean_std"][0], color="grey", linestyle=style,
                               label=f"{gold} (t1)")  # fmt: skip
            ax.set_xticks(
                [x_orig, *etas], ["orig", *[f"{e:+g}" if e else "0\ncontrol" for e in etas]], fontsize=8
            )
            ax.set_xlabel("η (calibrated teacher)")
            ax.set_ylabel("student score (held-out, greedy)")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"student {st}, calibration {g or 'n/a'}", fontsize=10)
            if attackers:
                ax.legend(fontsize=7)
    _save(fig, path)


# the T = 1 attackers that keep every sample, by their prompt/step multiplier: t1 1, t1_2x 2, t1_3x 3
BUDGETS = {a: mult for a, (temp, correct_only, mult) in ATTACKERS.items() if temp == 1.0 and not correct_only}


def plot_budget(res: dict[str, Any], path: Path) -> bool:
    """Student score vs the attacker's budget (T = 1 samples and steps, 1×/2×/3×), one panel per `sft` student,
    one line per teacher with at least two budgets; the gold references dashed. False (nothing drawn) if no teacher
    has two budgets."""
    s = res["summary"]["students"]
    keys = [k for k in sft_keys(s) if k[0] in BUDGETS]
    budgets: dict[tuple[str, str], set[str]] = {}
    for a, st, v in keys:
        budgets.setdefault((st, v), set()).add(a)
    lines = {sv for sv, attackers in budgets.items() if len(attackers) >= 2}
    if not lines:
        return False
    plt = _pyplot()
    studs = sorted({st for st, _ in lines})
    fig, axes = plt.subplots(1, len(studs), figsize=(5.5 * len(studs), 4.2), squeeze=False)
    for ax, st in zip(axes[0], studs, strict=True):
        for v in _order(v for ss, v in lines if ss == st):
            pts = [(BUDGETS[a], *s[f"{a}|{st}|{v}"]["mean_std"]) for a in BUDGETS if f"{a}|{st}|{v}" in s]
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3,
                        linestyle="--" if is_gold(v) else "-", label=v)  # fmt: skip
        ax.set_xticks(list(BUDGETS.values()), [f"{m}×" for m in BUDGETS.values()])
        ax.set_xlabel("attacker budget (T = 1 samples and steps)")
        ax.set_ylabel("student score (held-out, greedy)")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"student {st}", fontsize=10)
        ax.legend(fontsize=7)
    _save(fig, path)
    return True


def plot_transfer(teachers: dict, students: dict, path: Path) -> None:
    """Each student's score against its own teacher's greedy score (one point per variant, seed, attacker and
    student), coloured by η; on the diagonal a student learns all of its teacher's skill."""
    fig, ax = _pyplot().subplots(figsize=(4.8, 4.4))
    for label, keep, colour in (("original", lambda e: e is None, "black"), ("η = 0 control", lambda e: e == 0, "tab:blue"),
                                ("η < 0", lambda e: e is not None and e < 0, "tab:red"),
                                ("η > 0", lambda e: e is not None and e > 0, "tab:green")):  # fmt: skip
        pts = [
            (t["teacher_score"], score)
            for _, _, v, t, score in _with_teacher(teachers, students)
            if keep(eta_of(v))
        ]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=22, color=colour, label=label, alpha=0.8)
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    ax.set_xlabel("teacher score (held-out, greedy)")
    ax.set_ylabel("its student's score")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    if ax.get_legend_handles_labels()[0]:  # a panel with no points has nothing to label
        ax.legend(fontsize=8)
    ax.set_title("each student against its own teacher (dotted: equal)", fontsize=10)
    _save(fig, path)


def render(out: Path, cache: Path, run: dict[str, Any]) -> dict[str, Any]:
    """Write results.json, results.md, knob.png and run.json into `out` from the JSON files under `cache`."""
    out.mkdir(parents=True, exist_ok=True)
    teachers, students = load(cache)
    if not teachers and not students:
        return {}
    res = {"run": run, "n_cached": sum(map(len, teachers.values())) + sum(map(len, students.values())),
           "n_test": run["protocol"]["n_test"], "summary": summarize(teachers, students)}  # fmt: skip
    for name, text in (("results.json", json.dumps(res, indent=1, allow_nan=True)), ("results.md", markdown(res)),
                       ("run.json", json.dumps(run, indent=1))):  # fmt: skip
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out / name)
    plot(res, out / "knob.png")
    plot_transfer(teachers, students, out / "transfer.png")
    plot_budget(res, out / "budget.png")
    return res
