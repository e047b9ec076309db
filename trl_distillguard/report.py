"""`distillguard report`: does a calibrated teacher make students learn better (distillable) or worse
(undistillable)? Runs every recipe for every (teacher, student, seed), evaluates every teacher and student on the
held-out set with the verifier, and writes `report.json`, `report.md` and `report.png`.

Columns of the table: teacher score; student score per recipe (mean ± sample std over seeds); Δ = student score
minus the same student/recipe distilled from the original teacher (mean over seeds); distillability index =
student score / teacher score.

Example:
    $ distillguard report --config examples/configs/report_tiny.yaml --seeds 3
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from distill_ortho_merge.cli import InputError, run_cli
from distill_ortho_merge.evaluate import check_gold, evaluate, load_rows, prompts_of
from distill_ortho_merge.outputs import atomic_output_dir, check_output_dir, json_safe
from trl_distillguard.distill import check_byte_level, check_shared_vocab, distill, sample_teacher
from trl_distillguard.loading import check_causal_lm, load_causal_lm, resolve_model_path
from trl_distillguard.plugins import resolve_reward
from trl_distillguard.report_config import ReportConfig


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value).

    Example:
        >>> mean_std([1.0, 3.0])
        (2.0, 1.4142135623730951)
    """
    n = len(values)
    mean = sum(values) / n
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0)


def _weights_digest(path: str) -> str | None:
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def _same_model(a: str, b: str, digest: Callable[[str], str | None] = _weights_digest) -> bool:
    if Path(a).resolve() == Path(b).resolve():
        return True
    da, db = digest(a), digest(b)
    return da is not None and da == db


def heldout_warnings(cfg: ReportConfig) -> list[str]:
    """Warn (do not fail) when students equal the calibration proxy and none is held out.

    Example:
        >>> heldout_warnings(ReportConfig(students={"s": "x"}))  # no proxy given: nothing to flag
        []
    """
    if not cfg.proxy_model_name_or_path:
        return []
    # The proxy is compared with every student (and students may repeat): read each model's weights once.
    digest = functools.cache(_weights_digest)
    same = [n for n, p in cfg.students.items() if _same_model(p, cfg.proxy_model_name_or_path, digest)]
    out = [f"student {n!r} is identical to the calibration proxy: its scores say nothing about held-out students"
           for n in same]  # fmt: skip
    if cfg.require_heldout_student and len(same) == len(cfg.students):
        out.append(
            "no held-out student: every student is the calibration proxy; add another architecture/tokenizer"
        )
    for message in out:
        warnings.warn(message, UserWarning, stacklevel=2)
    return out


def _validate(cfg: ReportConfig) -> None:
    for name in ("teachers", "students", "train_dataset", "eval_dataset", "output_dir"):
        if not getattr(cfg, name):
            raise InputError(f"{name}: required")


def _check_recipes(cfg: ReportConfig, tokenizers: dict[str, Any], teacher_names: list[str]) -> None:
    """Every (teacher, student, recipe) must be runnable before any work starts."""
    for t in teacher_names:
        for s in cfg.students:
            t_tok, s_tok = tokenizers[f"teacher:{t}"], tokenizers[f"student:{s}"]
            if "kd" in cfg.recipes:
                try:
                    check_shared_vocab(t_tok, s_tok)
                except InputError as err:
                    raise InputError(f"student {s!r}, teacher {t!r}: {err}") from None
            if "uld" in cfg.recipes:
                for tok, role in ((t_tok, f"teacher {t!r}"), (s_tok, f"student {s!r}")):
                    check_byte_level(tok, role)


@contextlib.contextmanager
def only_our_progress_bar() -> Iterator[None]:
    """Within the block, transformers' and datasets' own bars (loading weights, writing shards, dataset maps) are
    off, so a report shows one bar; their previous state is restored after."""
    import datasets
    from transformers.utils import logging as hf_logging

    states = (hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled())
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if states[0]:
            hf_logging.enable_progress_bar()
        if states[1]:
            datasets.enable_progress_bars()


def run_report(cfg: ReportConfig) -> dict[str, Any]:
    """Run the whole grid and write the report files into `cfg.output_dir`; returns the report as a dict.

    Example:
        >>> # run_report(ReportConfig(teachers={"original": "t0", "calibrated": "t1"}, students={"s": "s0"},
        >>> #                       train_dataset="train.jsonl", eval_dataset="eval.jsonl", output_dir="rep"))
    """
    from transformers import AutoTokenizer

    _validate(cfg)
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir)  # before any work
    # Built-in names and *.gguf files become local directories (converted once) before anything compares paths.
    cfg.teachers = {n: resolve_model_path(p, f"teacher {n}") for n, p in cfg.teachers.items()}
    cfg.students = {n: resolve_model_path(p, f"student {n}") for n, p in cfg.students.items()}
    if cfg.proxy_model_name_or_path:
        cfg.proxy_model_name_or_path = resolve_model_path(
            cfg.proxy_model_name_or_path, "proxy_model_name_or_path"
        )
    started = time.perf_counter()
    verifier = resolve_reward(cfg.verifier, "verifier")
    train_prompts = prompts_of(
        load_rows(cfg.train_dataset, "train_dataset"), cfg.prompt_column, "train_dataset"
    )
    eval_rows = load_rows(cfg.eval_dataset, "eval_dataset")[: cfg.max_eval_examples]
    check_gold(eval_rows, verifier, cfg.verifier, cfg.prompt_column)
    base = cfg.distill_config(recipe=cfg.recipes[0])  # validates the shared distill fields early
    notes = heldout_warnings(cfg)
    models = {f"teacher:{n}": p for n, p in cfg.teachers.items()} | {
        f"student:{n}": p for n, p in cfg.students.items()
    }
    tokenizers = {}
    for key, path in models.items():
        role = key.replace(":", " ")
        check_causal_lm(path, role)
        tokenizers[key] = AutoTokenizer.from_pretrained(path)
    _check_recipes(cfg, tokenizers, list(cfg.teachers))

    eval_kwargs = dict(prompt_column=cfg.prompt_column, max_new_tokens=cfg.eval_max_new_tokens,
                       batch_size=cfg.eval_batch_size, temperature=cfg.eval_temperature)  # fmt: skip
    report: dict[str, Any] = {
        "config": cfg.to_dict(),
        "warnings": notes,
        "teachers": {},
        "students": {},
        "runs": [],
    }
    with (
        contextlib.ExitStack() as stack,
        atomic_output_dir(cfg.output_dir, overwrite=cfg.overwrite_output_dir) as out,
    ):
        if cfg.evaluate_initial_students:
            for s_name, s_path in cfg.students.items():
                model, tok = load_causal_lm(s_path, f"student {s_name}")
                res = evaluate(model, tok, eval_rows, verifier, desc=f"eval student {s_name}", **eval_kwargs)
                report["students"][s_name] = {"path": s_path, "initial_score": res.score}
        grid = [
            (t, seed, s, r)
            for t in cfg.teachers
            for seed in cfg.seed_list
            for s in cfg.students
            for r in cfg.recipes
        ]
        bar = tqdm(total=len(grid), desc="distil + evaluate")
        stack.enter_context(only_our_progress_bar())
        for t_name, t_path in cfg.teachers.items():
            teacher = load_causal_lm(t_path, f"teacher {t_name}")
            bar.set_postfix_str(f"eval teacher {t_name}")
            res = evaluate(*teacher, eval_rows, verifier, desc=None, **eval_kwargs)  # one bar: the outer one
            report["teachers"][t_name] = {"path": t_path, "score": res.score, "examples": res.completions[:3]}
            for seed in cfg.seed_list:
                samples = None
                if any(r != "kd" for r in cfg.recipes):
                    samples = sample_teacher(
                        *teacher, train_prompts, num_samples=base.num_samples_per_prompt,
                        temperature=base.sample_temperature, max_new_tokens=base.max_completion_length,
                        batch_size=base.generation_batch_size, seed=seed, desc=None,
                    )  # fmt: skip
                for s_name, s_path in cfg.students.items():
                    for recipe in cfg.recipes:
                        bar.set_postfix_str(f"{t_name}/{s_name}/{recipe}/seed {seed}")
                        run_dir = out / "students" / t_name / s_name / recipe / f"seed{seed}"
                        dcfg = cfg.distill_config(
                            recipe=recipe, teacher_model_name_or_path=t_path, student_model_name_or_path=s_path,
                            dataset_name_or_path=cfg.train_dataset, output_dir=str(run_dir), seed=seed,
                            prompt_column=cfg.prompt_column,
                        )  # fmt: skip
                        run_samples = [{"prompt": p} for p in train_prompts] if recipe == "kd" else samples
                        distill(dcfg, samples=run_samples, teacher=teacher, quiet=True)
                        summary = json.loads((run_dir / "distill.json").read_text())
                        model, tok = load_causal_lm(str(run_dir), "distilled student")
                        res = evaluate(model, tok, eval_rows, verifier, desc=None, **eval_kwargs)
                        report["runs"].append({
                            "teacher": t_name, "student": s_name, "recipe": recipe, "seed": seed, "score": res.score,
                            "final_loss": summary["final_loss"], "train_seconds": summary["seconds"],
                            "examples": res.completions[:2],
                        })  # fmt: skip
                        if not cfg.save_students:
                            shutil.rmtree(run_dir, ignore_errors=True)
                        bar.update(1)
        bar.close()
        if not cfg.save_students:
            shutil.rmtree(out / "students", ignore_errors=True)
        report["summary"] = summarize(report, cfg.original_teacher)
        report["seconds"] = round(time.perf_counter() - started, 1)
        (out / "report.json").write_text(json.dumps(json_safe(report), indent=2, allow_nan=False))
        (out / "report.md").write_text(render_markdown(report, cfg))
        plot_report(report, out / "report.png")
    return report


def summarize(report: dict[str, Any], original: str) -> list[dict[str, Any]]:
    """One row per (teacher, student, recipe): scores over seeds, Δ against the original teacher, index.

    Example:
        >>> runs = [{"teacher": "t", "student": "s", "recipe": "sft", "score": 0.5}]
        >>> summarize({"teachers": {"t": {"score": 1.0}}, "runs": runs}, "t")[0]["distillability_index"]
        0.5
    """
    groups: dict[tuple[str, str, str], list[float]] = {}
    for run in report["runs"]:
        groups.setdefault((run["teacher"], run["student"], run["recipe"]), []).append(run["score"])
    rows = []
    for (t, s, r), scores in groups.items():
        mean, std = mean_std(scores)
        base = groups.get((original, s, r))
        t_score = report["teachers"][t]["score"]
        rows.append({
            "teacher": t, "student": s, "recipe": r, "teacher_score": t_score, "student_mean": mean,
            "student_std": std, "n_seeds": len(scores), "scores": scores,
            "delta_vs_original": mean - mean_std(base)[0] if base else float("nan"),
            "distillability_index": mean / t_score if t_score else float("nan"),
        })  # fmt: skip
    return rows


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_markdown(report: dict[str, Any], cfg: ReportConfig) -> str:
    """The report table (plus initial student scores, warnings and the settings) as Markdown.

    Example:
        >>> # print(render_markdown(report, cfg))  # the table of report.md
    """
    lines = [
        "# Distillability report",
        "",
        f"Verifier `{cfg.verifier}` on {cfg.eval_dataset} (greedy={cfg.eval_temperature == 0}); "
        f"seeds {cfg.seed_list}; recipes {', '.join(cfg.recipes)}; original teacher `{cfg.original_teacher}`.",
        "",
        "| teacher | teacher score | student | recipe | student score (mean ± std) | Δ vs original | distillability index |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["summary"]:
        delta = row["delta_vs_original"]
        lines.append(
            f"| {row['teacher']} | {_fmt(row['teacher_score'])} | {row['student']} | {row['recipe']} | "
            f"{_fmt(row['student_mean'])} ± {_fmt(row['student_std'])} (n={row['n_seeds']}) | "
            f"{'—' if row['teacher'] == cfg.original_teacher else ('n/a' if math.isnan(delta) else f'{delta:+.3f}')} | "
            f"{_fmt(row['distillability_index'], 2)} |"
        )
    if report["students"]:
        lines += ["", "Students before distillation: " + ", ".join(
            f"`{n}` {_fmt(v['initial_score'])}" for n, v in report["students"].items()) + "."]  # fmt: skip
    for w in report["warnings"]:
        lines.append(f"\n> warning: {w}")
    lines += ["", f"Distillation settings: `{json.dumps(cfg.distill)}`.", ""]
    return "\n".join(lines)


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: one group per (student, recipe) plus the teachers' own scores, one bar per teacher; error
    bars are the seed std and black dots the single seeds (seed scores can be bimodal).

    Example:
        >>> # plot_report(report, Path("report.png"))
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teachers = list(report["teachers"])
    groups = ["teacher itself"] + list(
        dict.fromkeys(f"{r['student']}\n{r['recipe']}" for r in report["summary"])
    )
    width = 0.8 / max(1, len(teachers))
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(groups) + 1), 3.8))
    for i, t in enumerate(teachers):
        means, stds, seeds = [report["teachers"][t]["score"]], [0.0], [[]]
        for g in groups[1:]:
            row = next(
                (r for r in report["summary"] if r["teacher"] == t and f"{r['student']}\n{r['recipe']}" == g),
                None,
            )
            means.append(row["student_mean"] if row else float("nan"))
            stds.append(row["student_std"] if row else 0.0)
            seeds.append(row["scores"] if row and len(row["scores"]) > 1 else [])
        xs = [j + (i - (len(teachers) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=t)
        for x, points in zip(xs, seeds, strict=True):
            ax.scatter([x] * len(points), points, s=9, color="black", zorder=3)
    for k, v in enumerate(report["students"].values()):
        label = "students before distillation" if k == 0 else None
        ax.axhline(v["initial_score"], ls=":", lw=1, color="gray", label=label)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("verifier score (held-out)")
    tops = [max([r["student_mean"] + r["student_std"], *r["scores"]]) for r in report["summary"]]
    tops += [v["score"] for v in report["teachers"].values()]
    tops = [t for t in tops if t == t]  # drop NaN
    ax.set_ylim(0, min(1.05, 1.25 * max(tops)) if tops and max(tops) > 0 else 1.05)
    ax.set_title("Teacher and distilled-student scores (mean ± std; dots: seeds)", fontsize=10)
    ax.legend(title="teacher", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    """`distillguard report --config report.yaml [--seeds 3] [--field value ...]`.

    Example:
        >>> # main(["--config", "examples/configs/report_tiny.yaml", "--seeds", "3"])  # 0, or 2 on bad input
    """
    from trl import TrlParser

    from trl_distillguard.config_file import parse_config

    def body() -> int:
        try:
            (cfg,) = parse_config(TrlParser((ReportConfig,), prog="distillguard report"), argv)
        except ValueError as err:
            raise InputError(str(err)) from None
        report = run_report(cfg)
        print(render_markdown(report, cfg))
        print(f"wrote {Path(cfg.output_dir) / 'report.json'}, report.md, report.png")
        return 0

    return run_cli(body, "distillguard report")
