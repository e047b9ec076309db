"""Aggregate the cached runs of `efficacy_orthoreg.py`: results.json, results.md (rendered from the JSON), the
bar chart of normalised accuracy per method × fine-tuning, the ξ heat maps, and run.json.

Statistics (`distill_ortho_merge.stats`): mean ± sample std over seeds; plain vs each variant under every merge method:
Welch's t statistic and degrees of freedom, its two-sided p-value and a bootstrap 95 % CI of the difference of
means (10,000 resamples, seeded); within a fine-tuning variant, each merge
method vs task arithmetic: a paired t-test over seeds (both merge the same task vectors, scored on the same items).

Example:
    >>> welch([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])["diff"]
    0.0
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from distill_ortho_merge import stats as bench_stats
from distill_ortho_merge.stats import mean_std


def _none_for_nan(result: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in result.items()}


def welch(a: list[float], b: list[float]) -> dict[str, Any]:
    """Welch's t-test of mean(b) − mean(a) with a bootstrap 95 % CI of that difference (missing values: None).

    Example:
        >>> welch([0.5, 0.6, 0.7], [0.7, 0.8, 0.9])["diff"] > 0
        True
    """
    return _none_for_nan(bench_stats.compare(b, a))


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """Paired t-test of b − a over seeds (missing values: None).

    Example:
        >>> round(paired([0.5, 0.6, 0.7], [0.6, 0.8, 0.8])["diff"], 4)
        0.1333
    """
    return _none_for_nan(bench_stats.paired(b, a))


def pooled_gap(merged: list[float], single: dict[str, dict], base: list[float]) -> float:
    """(Σ merged − Σ base) / (Σ single − Σ base) over the tasks (in task order, as the base accuracies).

    Example:
        >>> pooled_gap([0.5, 0.5], {"a": {"test": 1.0}, "b": {"test": 0.5}}, [0.0, 0.5])
        0.5
    """
    singles = [v["test"] for v in single.values()]
    gain = sum(singles) - sum(base)
    return (sum(merged) - sum(base)) / gain if gain else float("nan")


OPEN_ANSWER_MAX_MAJORITY = 0.1  # a task is "open-answer" when a constant answer scores below this on test


def collect(work: Path, variants: dict, methods: tuple[str, ...]) -> dict[str, Any]:
    """Every finished (mode, variant, seed) from the cache, aggregated."""
    base_path, majority_path = work / "base_acc.json", work / "majority_acc.json"
    out: dict[str, Any] = {
        "base_acc": json.loads(base_path.read_text()) if base_path.exists() else None,
        "modes": {},
    }
    open_tasks: list[str] = []
    if majority_path.exists() and out["base_acc"]:
        out["majority_acc"] = json.loads(majority_path.read_text())
        out["open_answer_max_majority"] = OPEN_ANSWER_MAX_MAJORITY
        out["open_answer_tasks"] = open_tasks = [
            t for t in out["base_acc"] if out["majority_acc"][t] < OPEN_ANSWER_MAX_MAJORITY
        ]
        if len(open_tasks) == len(out["base_acc"]):
            open_tasks = []  # every task is open-answer: the main tables already are the open-answer tables
    open_index = [list(out["base_acc"]).index(t) for t in open_tasks]  # base_acc: the order of test_acc lists
    for mode_dir in sorted(p for p in work.iterdir() if p.is_dir()) if work.exists() else []:
        mode = mode_dir.name
        rows = {}
        for variant in variants:
            seeds = sorted((mode_dir / variant).glob("seed*/merge.json"))
            if not seeds:
                continue
            per_seed = []
            for path in seeds:
                merge = json.loads(path.read_text())
                tasks = sorted(path.parent.glob("*.json"))
                singles = {p.stem: json.loads(p.read_text()) for p in tasks if p.stem not in ("merge", "xi")}
                per_seed.append({"seed": path.parent.name, "merge": merge, "single": singles})
            agg: dict[str, Any] = {"seeds": [s["seed"] for s in per_seed]}
            single = [statistics.fmean(v["test"] for v in s["single"].values()) for s in per_seed]
            agg["single_test"] = mean_std(single)
            for key in ("mean_tau_norm", "mean_abs_cos", "mean_effective_rank"):
                agg[key] = mean_std([s["merge"][key] for s in per_seed])
            agg["methods"] = {}
            base_test = [out["base_acc"][t]["test"] for t in out["base_acc"]] if out["base_acc"] else None
            for m in methods:
                agg["methods"][m] = {
                    key: mean_std([s["merge"]["merges"][m][key] for s in per_seed])
                    for key in ("abs", "norm", "gap_closed", "alpha")
                }
                if base_test is not None:  # pooled over tasks: stable where a single-task gain is ≈ 0
                    agg["methods"][m]["gap_closed_pooled"] = mean_std(
                        [
                            pooled_gap(s["merge"]["merges"][m]["test_acc"], s["single"], base_test)
                            for s in per_seed
                        ]
                    )
                agg["methods"][m]["norm_per_seed"] = [s["merge"]["merges"][m]["norm"] for s in per_seed]
                if open_tasks:  # merged / single over the tasks a constant answer cannot pass
                    agg["methods"][m]["norm_open_per_seed"] = [
                        statistics.fmean(
                            s["merge"]["merges"][m]["test_acc"][i] / max(s["single"][t]["test"], 1e-9)
                            for i, t in zip(open_index, open_tasks, strict=True)
                        )
                        for s in per_seed
                    ]
                    agg["methods"][m]["norm_open"] = mean_std(agg["methods"][m]["norm_open_per_seed"])
            agg["per_seed"] = per_seed
            ta = agg["methods"]["task_arithmetic"]["norm_per_seed"] if "task_arithmetic" in methods else None
            if ta is not None:
                agg["paired_vs_task_arithmetic"] = {
                    m: paired(ta, agg["methods"][m]["norm_per_seed"])
                    for m in methods
                    if m != "task_arithmetic"
                }
            rows[variant] = agg
        if rows:
            plain = rows.get("plain")
            for variant, agg in rows.items():
                if plain is not None and variant != "plain":
                    agg["welch_vs_plain"] = {
                        m: welch(plain["methods"][m]["norm_per_seed"], agg["methods"][m]["norm_per_seed"])
                        for m in methods
                    }
                    if open_tasks:
                        agg["welch_vs_plain_open"] = {
                            m: welch(
                                plain["methods"][m]["norm_open_per_seed"],
                                agg["methods"][m]["norm_open_per_seed"],
                            )
                            for m in methods
                        }
            out["modes"][mode] = rows
    return out


def _p(p: float | None) -> str:
    return "–" if p is None else f"{p:.3f}"


def _f(ms: tuple[float, float] | list[float], digits: int = 3) -> str:
    return f"{ms[0]:.{digits}f} ± {ms[1]:.{digits}f}"


SETTING_TITLES = {
    "tiny": "tiny setting",
    "smollm2": "SmolLM2-135M-Instruct, 4 reasoning_gym tasks, LoRA",
    "smollm2-open": "SmolLM2-135M-Instruct, 4 open-answer reasoning_gym tasks, LoRA",
}


def render_md(results: dict[str, Any], methods: tuple[str, ...]) -> str:
    run = results["run"]
    setting = run.get("setting", "tiny")  # runs before the smollm2 setting existed recorded none
    lines = [f"# OrthoReg and merge methods: efficacy ({SETTING_TITLES.get(setting, setting)})", ""]
    # the last render's commit; each invocation below shows the commit it started at, where recorded
    lines += [f"Git commit `{run['git_commit']}`; {run['machine']}.", ""]
    lines += ["Commands (each invocation resumes from the cache):", ""]
    for i in run["invocations"]:
        commit = f"commit {i['git_commit'][:10]}, " if i.get("git_commit") else ""
        lines.append(f"- `{i['command']}` ({commit}{i['wall_s']} s, finished {i['finished']})")
    lines.append("")
    if results["base_acc"]:
        base = results["base_acc"]
        lines += [
            "Base model test accuracy: " + ", ".join(f"{t} {v['test']:.3f}" for t, v in base.items()),
            "",
        ]
    for mode, rows in results["modes"].items():
        lines += [
            f"## {mode}",
            "",
            "Normalised test accuracy (merged / single-task), mean ± std over seeds:",
            "",
        ]
        lines += ["| fine-tuning | seeds | single | " + " | ".join(methods) + " |"]
        lines += ["|---|---|---|" + "---|" * len(methods)]
        for variant, agg in rows.items():
            cells = [_f(agg["methods"][m]["norm"]) for m in methods]
            lines += [
                f"| {variant} | {len(agg['seeds'])} | {_f(agg['single_test'])} | " + " | ".join(cells) + " |"
            ]
        if setting != "tiny":  # per task: is every task learned, and how far above the base?
            tasks = list(rows[next(iter(rows))]["per_seed"][0]["single"])
            base = results["base_acc"] or {}
            lines += [
                "",
                "Single-task test accuracy per task (mean over seeds; base model in the header):",
                "",
            ]
            lines += ["| fine-tuning | " + " | ".join(f"{t} (base {base[t]['test']:.2f})" if t in base else t
                                                    for t in tasks) + " |", "|---|" + "---|" * len(tasks)]  # fmt: skip
            for variant, agg in rows.items():
                cells = [statistics.fmean(s["single"][t]["test"] for s in agg["per_seed"]) for t in tasks]
                lines += [f"| {variant} | " + " | ".join(f"{c:.3f}" for c in cells) + " |"]
            if results.get("majority_acc"):
                maj = results["majority_acc"]
                lines += ["| *constant answer (training majority)* | " + " | ".join(f"{maj[t]:.3f}" for t in tasks) + " |"]  # fmt: skip
        lines += ["", "Task arithmetic in detail (α chosen on validation):", ""]
        lines += ["| fine-tuning | merged abs | merged norm | gap closed (pooled) | α | ‖τ‖ | mean \\|cos\\| | eff. rank | Δ norm vs plain (95 % CI) | Welch t (df) | p |"]  # fmt: skip
        lines += ["|---|---|---|---|---|---|---|---|---|---|---|"]
        for variant, agg in rows.items():
            ta = agg["methods"]["task_arithmetic"]
            # results written before every method was compared hold only task arithmetic's test, under its own key
            w = agg.get("welch_vs_plain", {}).get(
                "task_arithmetic", agg.get("welch_vs_plain_task_arithmetic")
            )
            wcells = ["", "", ""]
            if w:
                df = f"{w['df']:.1f}" if w["df"] is not None else "–"
                p = f"{w['p']:.3f}" if w["p"] is not None else "–"
                wcells = [
                    f"{w['diff']:+.3f} ({w['ci95'][0]:+.3f}, {w['ci95'][1]:+.3f})",
                    "– (–)" if w["t"] in (None, 0) else f"{w['t']:.2f} ({df})",  # a single seed
                    p,
                ]
            lines += [
                f"| {variant} | {_f(ta['abs'])} | {_f(ta['norm'])} | {_f(ta.get('gap_closed_pooled', ta['gap_closed']))} | "
                f"{_f(ta['alpha'], 2)} | "
                f"{_f(agg['mean_tau_norm'], 2)} | {_f(agg['mean_abs_cos'], 4)} | {_f(agg['mean_effective_rank'], 1)} | "
                + " | ".join(wcells)
                + " |"
            ]
        lines += ["", "Merged absolute test accuracy per method:", ""]
        lines += ["| fine-tuning | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for variant, agg in rows.items():
            lines += [f"| {variant} | " + " | ".join(_f(agg["methods"][m]["abs"]) for m in methods) + " |"]
        if all("gap_closed_pooled" in agg["methods"][m] for agg in rows.values() for m in methods):
            lines += ["", "Gap closed (pooled) per method:", ""]
            lines += ["| fine-tuning | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
            for variant, agg in rows.items():
                cells = [_f(agg["methods"][m]["gap_closed_pooled"]) for m in methods]
                lines += [f"| {variant} | " + " | ".join(cells) + " |"]
        if any("welch_vs_plain" in agg for agg in rows.values()):
            lines += [
                "",
                "Each variant vs plain, per method (Δ normalised accuracy, Welch's t-test over seeds: p):",
                "",
            ]
            lines += ["| fine-tuning | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
            for variant, agg in rows.items():
                if "welch_vs_plain" in agg:
                    w = agg["welch_vs_plain"]
                    lines += [f"| {variant} | " + " | ".join(f"{w[m]['diff']:+.3f} (p {_p(w[m]['p'])})"
                                                              for m in methods) + " |"]  # fmt: skip
        if results.get("open_answer_tasks") and all(
            "norm_open" in agg["methods"][methods[0]] for agg in rows.values()
        ):
            open_tasks = ", ".join(results["open_answer_tasks"])
            lines += [
                "",
                f"Normalised test accuracy on the open-answer tasks only ({open_tasks}: a constant answer "
                f"scores < {results['open_answer_max_majority']} there), mean ± std; Δ vs plain (Welch p):",
                "",
            ]
            lines += ["| fine-tuning | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
            for variant, agg in rows.items():
                w = agg.get("welch_vs_plain_open", {})
                lines += [
                    f"| {variant} | "
                    + " | ".join(
                        _f(agg["methods"][m]["norm_open"])
                        + (f" ({w[m]['diff']:+.3f}, p {_p(w[m]['p'])})" if w else "")
                        for m in methods
                    )
                    + " |"
                ]
        if all("paired_vs_task_arithmetic" in agg for agg in rows.values()):
            others = [m for m in methods if m != "task_arithmetic"]
            lines += ["", "Each merge method vs task arithmetic on the same task vectors (Δ normalised accuracy, "
                          "paired t-test over seeds: p):", ""]  # fmt: skip
            lines += ["| fine-tuning | " + " | ".join(others) + " |", "|---|" + "---|" * len(others)]
            for variant, agg in rows.items():
                pv = agg["paired_vs_task_arithmetic"]
                lines += [f"| {variant} | " + " | ".join(f"{pv[m]['diff']:+.3f} (p {_p(pv[m]['p'])})"
                                                          for m in others) + " |"]  # fmt: skip
        lines += [""]
    if results.get("xi"):
        lines += ["## Weight disentanglement ξ(α₁, α₂) (LoRA, seed 0; lower = more disentangled)", ""]
        lines += ["| fine-tuning | mean ξ over the grid | ξ(1, 1) |", "|---|---|---|"]
        for variant, x in results["xi"].items():
            flat = [v for row in x["xi"] for v in row]
            i1 = x["grid"].index(1.0)
            lines += [f"| {variant} | {statistics.fmean(flat):.3f} | {x['xi'][i1][i1]:.3f} |"]
        lines += ["", "![ξ heat maps](xi.png)", ""]
    lines += ["![normalised accuracy](bars.png)", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], methods: tuple[str, ...], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(results["modes"])
    if modes:
        panels = [
            ("norm", "normalised test accuracy", (0, 1.1)),
            ("gap_closed_pooled", "gap closed (pooled)", None),
        ]
        fig, axes = plt.subplots(2, len(modes), figsize=(7 * len(modes), 7), squeeze=False)
        for col, mode in enumerate(modes):
            rows = results["modes"][mode]
            width = 0.8 / len(rows)
            for row, (key, label, ylim) in enumerate(panels):
                ax = axes[row][col]
                for i, (variant, agg) in enumerate(rows.items()):
                    ms = [agg["methods"][m].get(key, (math.nan, 0.0)) for m in methods]
                    xs = [j + i * width for j in range(len(methods))]
                    ax.bar(xs, [m[0] for m in ms], width, yerr=[m[1] for m in ms], label=variant, capsize=2)
                ax.set_xticks([j + 0.4 - width / 2 for j in range(len(methods))], methods)
                ax.set_ylabel(label)
                if ylim:
                    ax.set_ylim(*ylim)
                ax.set_title(f"{mode}: merge of K = 4 task vectors (mean ± std over seeds)")
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "bars.png", dpi=90)
        plt.close(fig)
    xi = results.get("xi") or {}
    shown = list(xi)  # every variant with a ξ grid, plain first (the order of the fine-tuning table)
    if shown:
        ncols = min(4, len(shown))
        nrows = math.ceil(len(shown) / ncols)
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(3.4 * ncols + 1, 3.2 * nrows), squeeze=False, layout="constrained"
        )
        vmax = max(v for s in shown for row in xi[s]["xi"] for v in row)
        for ax in axes.flat[len(shown) :]:
            ax.axis("off")
        for i, (ax, variant) in enumerate(zip(axes.flat, shown, strict=False)):
            x = xi[variant]
            im = ax.imshow(x["xi"], origin="lower", vmin=0, vmax=vmax, cmap="viridis")
            ticks = range(len(x["grid"]))
            ax.set_xticks(ticks, x["grid"], fontsize=7)
            ax.set_yticks(ticks, x["grid"], fontsize=7)
            ax.set_xlabel(f"α₂ ({x['tasks'][1]})")
            if i % ncols == 0:  # one y label per row: every grid has the same α axes
                ax.set_ylabel(f"α₁ ({x['tasks'][0]})")
            ax.set_title(f"ξ, LoRA {variant}")
        fig.colorbar(im, ax=axes.ravel().tolist())
        fig.savefig(out / "xi.png", dpi=90)
        plt.close(fig)


def render(
    work: Path, out: Path, variants: dict, methods: tuple[str, ...], hp: dict, run: dict, invocation: dict
) -> None:
    """Write results.json, results.md, bars.png, xi.png and run.json under `out` (each file replaced atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    run_path = out / "run.json"
    previous = json.loads(run_path.read_text()) if run_path.exists() else {}
    run = {**run, "invocations": [*previous.get("invocations", []), invocation], "hyperparameters": hp}
    run["wall_s_total"] = round(sum(i["wall_s"] for i in run["invocations"]), 1)
    results = collect(work, variants, methods)
    results["xi"] = {
        v: json.loads(p.read_text())
        for v in variants
        if (p := work / "lora" / v / "seed0" / "xi.json").exists()
    }
    results["run"] = run
    run["finetune_seconds_total"] = round(
        sum(
            single.get("seconds", 0.0)
            for rows in results["modes"].values()
            for agg in rows.values()
            for seed in agg["per_seed"]
            for single in seed["single"].values()
        ),
        1,
    )
    for name, text in (
        ("run.json", json.dumps(run, indent=1)),
        ("results.json", json.dumps(results, indent=1)),
        ("results.md", render_md(results, methods)),
    ):
        tmp = out / f".{name}.tmp-{os.getpid()}"
        tmp.write_text(text)
        os.replace(tmp, out / name)
    plot(results, methods, out)
