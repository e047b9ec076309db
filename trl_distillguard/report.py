"""`distillguard report`: a distillation attack suite. How much of a teacher can a determined attacker distil, and
did calibration change that? Every (teacher, student, recipe, attacker, seed) is one cell: the attacker builds the
training data (see `attackers.py`), `distill` trains the student, the verifier scores it greedily on the held-out
set. Gold references train students on the dataset's own answers or completions. Every other teacher is compared
with the baseline teacher (`report_stats.py`) and `report.json`, `report.md` (verdict first), `report.png` and
`budget.png` are written into `output_dir`.

Each cell is cached in `output_dir/cells/` as it completes: the same command continues where it stopped and
re-renders; `--shard i/n` splits the cells among n processes sharing `output_dir`.

Example:
    $ distillguard report --config examples/configs/report_tiny.yaml --seeds 3
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from distill_ortho_merge.cli import InputError, run_cli
from distill_ortho_merge.outputs import json_safe, staged_file
from distill_ortho_merge.stats import mean_std
from trl_distillguard.attackers import Attacker
from trl_distillguard.report_cells import Cell, TeacherSamples, grid, read_json, shard, write_json
from trl_distillguard.report_config import ReportConfig
from trl_distillguard.report_inputs import Inputs, check_inputs, check_output_dir, start_output_dir
from trl_distillguard.report_render import budget_families, plot_budget, plot_report, render_markdown
from trl_distillguard.report_stats import comparisons, summarize, untaught, verdict

__all__ = ["heldout_warnings", "main", "mean_std", "render_markdown", "run_report"]


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


@contextlib.contextmanager
def only_our_progress_bar() -> Iterator[None]:
    """Within the block, transformers' and datasets' own bars (loading weights, writing shards, dataset maps) are
    off, so a report shows one bar; their previous state is restored after.

    Example:
        >>> from transformers.utils import logging as hf_logging
        >>> with only_our_progress_bar():
        ...     hf_logging.is_progress_bar_enabled()
        False
    """
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


class _Suite:
    """One run of the suite over `output_dir`: cached teacher and initial-student scores, one cell at a time."""

    def __init__(
        self, cfg: ReportConfig, inputs: Inputs, out: Path, cell_extras: CellExtras | None = None
    ) -> None:
        self.cfg, self.inputs, self.out, self.cell_extras = cfg, inputs, out, cell_extras
        self.base = cfg.distill_config(recipe=cfg.recipes[0])
        self.eval_kwargs = dict(prompt_column=cfg.prompt_column, max_new_tokens=cfg.eval_max_new_tokens,
                                batch_size=cfg.eval_batch_size, temperature=cfg.eval_temperature, desc=None)  # fmt: skip
        self._teacher_scores: dict[str, dict[str, Any]] = {}
        self.sampling_passes = 0

    def evaluate(self, model, tok):
        from distill_ortho_merge.evaluate import evaluate

        return evaluate(model, tok, self.inputs.eval_rows, self.inputs.verifier, **self.eval_kwargs)

    def initial_scores(self) -> None:
        from trl_distillguard.loading import load_causal_lm

        for name, path in self.inputs.student_paths.items():
            file = self.out / "initial" / f"{name}.json"
            if read_json(file) is None:
                res = self.evaluate(*load_causal_lm(path, f"student {name}"))
                write_json(file, {"path": path, "initial_score": res.score,
                                  "initial_exact_accuracy": res.exact_accuracy})  # fmt: skip

    def teacher_score(self, name: str, seed: int, path: str, teacher) -> dict[str, Any]:
        file = self.out / "teachers" / name / f"seed{seed}.json"
        cached = read_json(file)
        if cached is None or cached["path"] != path:
            if path not in self._teacher_scores:  # one teacher for every seed: evaluated once
                res = self.evaluate(*teacher)
                self._teacher_scores[path] = {
                    "path": path,
                    "score": res.score,  # the mean verifier score; exact_accuracy: full credit only
                    "exact_accuracy": res.exact_accuracy,
                    "examples": res.completions[:3],
                }
            cached = self._teacher_scores[path]
            write_json(file, cached)
        return cached

    def gold(self, teacher: str) -> Callable[[dict[str, Any]], Any] | None:
        if teacher == "gold-answers":
            return lambda r: self.cfg.gold_answer_template.format(answer=r[self.cfg.gold_answer_column])
        if teacher == "gold-completions":
            return lambda r: r[self.cfg.gold_completion_column]
        return None

    def run_group(self, teacher_name: str, seed: int, cells: list[Cell], bar) -> None:
        """The cells of one (teacher, seed): the teacher is loaded, scored and sampled once for all of them."""
        from trl_distillguard.distill import sample_teacher
        from trl_distillguard.loading import load_causal_lm

        gold = self.gold(teacher_name)
        path = None if gold else self.inputs.teacher_paths[teacher_name][seed]
        teacher = None if gold else load_causal_lm(path, f"teacher {teacher_name}")
        t_score = None if gold else self.teacher_score(teacher_name, seed, path, teacher)["score"]
        sample = None if gold else functools.partial(
            sample_teacher, *teacher, max_new_tokens=self.base.max_completion_length,
            batch_size=self.base.generation_batch_size, desc=None,
        )  # fmt: skip
        data = TeacherSamples(
            teacher, self.inputs.train_rows, self.inputs.n_prompts, seed, verifier=self.inputs.verifier,
            sample=sample, batch_size=self.base.generation_batch_size, prompt_column=self.cfg.prompt_column, gold=gold,
        )  # fmt: skip
        attackers = {c.attacker: self.inputs.attackers[c.attacker] for c in cells}
        # one pass per temperature serves every built-in attacker (a plugin's attacker samples as it needs)
        data.prefetch(
            [(a.temperature, data.n_prompts * a.budget) for a in attackers.values() if type(a) is Attacker]
        )
        train = {name: a.train_samples(data) for name, a in attackers.items()}
        for cell in cells:
            bar.set_postfix_str(f"{cell.teacher}/{cell.student}/{cell.recipe}/{cell.attacker}/seed {seed}")
            record = self.run_cell(cell, attackers[cell.attacker], train[cell.attacker], data, path, teacher)
            write_json(self.out / cell.relpath, record | {"teacher_score": t_score})
            bar.update(1)
        self.sampling_passes += data.passes

    def run_cell(self, cell: Cell, attacker: Attacker, train, data: TeacherSamples, t_path, teacher) -> dict:
        from trl_distillguard.distill import distill
        from trl_distillguard.loading import load_causal_lm

        started = time.perf_counter()
        s_path = self.inputs.student_paths[cell.student]
        steps = self.base.max_steps * attacker.budget
        scratch = (
            self.out / ".scratch" / f"{cell.teacher}-{cell.student}-{cell.recipe}-{cell.attacker}-{cell.seed}"
        )
        _remove_leftovers(scratch)  # of this cell's interrupted run (each cell belongs to one shard)
        summary: dict[str, Any] = {}
        note = None
        if train:
            dcfg = self.cfg.distill_config(
                recipe=cell.recipe, teacher_model_name_or_path=t_path or s_path, student_model_name_or_path=s_path,
                dataset_name_or_path=self.cfg.train_dataset, output_dir=str(scratch), seed=cell.seed,
                prompt_column=self.cfg.prompt_column, sample_temperature=attacker.temperature, max_steps=steps,
            )  # fmt: skip
            # a gold reference has no teacher model; its recipe is sft, which never uses one
            distill(dcfg, samples=train, teacher=teacher or (None, None), quiet=True)
            summary = json.loads((scratch / "distill.json").read_text())
            model, tok = load_causal_lm(str(scratch), "distilled student")
        else:
            note = "no training sample (a correct-only attacker with no correct teacher sample): the untrained student is evaluated"
            model, tok = load_causal_lm(s_path, f"student {cell.student}")
        res = self.evaluate(model, tok)
        if self.cfg.save_students and train:
            dest = self.out / "models" / cell.relpath.removeprefix("cells/").removesuffix(".json")
            shutil.rmtree(dest, ignore_errors=True)
            dest.parent.mkdir(parents=True, exist_ok=True)
            scratch.rename(dest)
        shutil.rmtree(scratch, ignore_errors=True)
        accuracy = None
        if (
            type(attacker) is Attacker
            and self.inputs.train_has_gold
            and cell.teacher.startswith("gold-") is False
        ):
            ok = data.verify(data.teacher_samples(attacker.temperature, data.n_prompts * attacker.budget))
            accuracy = sum(bool(x) for x in ok) / len(ok) if ok else None
        extras = self.cell_extras(cell, train) if self.cell_extras else {}
        return extras | {
            **cell.key(), "student_score": res.score, "score": res.score,
            "student_exact_accuracy": res.exact_accuracy, "train_samples": len(train),
            **attacker.settings(), "prompts": data.n_prompts * attacker.budget, "steps": steps if train else 0,
            "teacher_sample_accuracy": accuracy, "final_loss": summary.get("final_loss"),
            "train_seconds": summary.get("seconds"), "seconds": round(time.perf_counter() - started, 2),
            "note": note, "teacher_path": t_path, "student_path": s_path, "examples": res.completions[:2],
        }  # fmt: skip


CellExtras = Callable[[Cell, list[dict[str, Any]]], dict[str, Any]]


def _remove_leftovers(scratch: Path) -> None:
    """Remove a cell's scratch folder and the staging siblings (`.NAME.partial-*`) a killed run leaves beside it."""
    shutil.rmtree(scratch, ignore_errors=True)
    for staging in scratch.parent.glob(f".{scratch.name}.partial-*"):
        shutil.rmtree(staging, ignore_errors=True)


def run_report(cfg: ReportConfig, cell_extras: CellExtras | None = None) -> dict[str, Any]:
    """Run this shard's missing cells, then render every cached cell of the grid into `cfg.output_dir`; returns
    the report as a dict. Bad input is a one-line `InputError` before anything is written. `cell_extras(cell,
    train_samples)` may add fields of its own to every cell it runs (e.g. a study's measures of the samples).

    Example:
        >>> run_report(ReportConfig(teachers={"a": "x"}))
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: students: required
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    inputs = check_inputs(cfg)
    cells = grid(cfg)
    state = check_output_dir(cfg, inputs, cells)
    inputs.notes = heldout_warnings(dataclasses.replace(cfg, students=inputs.student_paths))
    out = start_output_dir(cfg, state)
    suite = _Suite(cfg, inputs, out, cell_extras)
    mine = shard(cells, *cfg.shard_index)
    todo = [c for c in mine if not (out / c.relpath).exists()]
    with only_our_progress_bar():
        if cfg.evaluate_initial_students:
            suite.initial_scores()
        bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="cells", unit="cell")
        groups: dict[tuple[str, int], list[Cell]] = {}
        for c in todo:
            groups.setdefault((c.teacher, c.seed), []).append(c)
        for (teacher, seed), group in groups.items():
            suite.run_group(teacher, seed, group, bar)
        bar.close()
    with contextlib.suppress(OSError):  # only when empty: other shards may still be training in it
        (out / ".scratch").rmdir()
    report = build_report(cfg, out, cells, inputs.notes)
    report["run"] = {"cells_run": len(todo), "sampling_passes": suite.sampling_passes,
                     "shard": cfg.shard or "1/1", "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    write_report(report, out)
    return report


def build_report(cfg: ReportConfig, out: Path, cells: list[Cell], notes: list[str]) -> dict[str, Any]:
    """The report of every cell of `cells` cached under `out` (a partial report until every shard is done).

    Example:
        >>> import tempfile
        >>> cfg = ReportConfig(teachers={"a": "x"}, students={"s": "y"})
        >>> report = build_report(cfg, Path(tempfile.mkdtemp()), grid(cfg), [])
        >>> report["complete"], report["cells_missing"], report["verdict"]
        (False, 1, [])
    """
    done = [c for c in (read_json(out / cell.relpath) for cell in cells) if c is not None]
    teachers: dict[str, Any] = {}
    for name in cfg.teachers:
        runs = {s: read_json(out / "teachers" / name / f"seed{s}.json") for s in cfg.seed_list}
        runs = {s: r for s, r in runs.items() if r is not None}
        scores = [r["score"] for r in runs.values()]
        teachers[name] = {
            "path": cfg.teachers[name], "score": mean_std(scores)[0] if scores else None,
            "scores": {str(s): r["score"] for s, r in runs.items()},
            "examples": next(iter(runs.values()))["examples"] if runs else [],
        }  # fmt: skip
    students = {n: read_json(out / "initial" / f"{n}.json") for n in cfg.students}
    comps = comparisons(done, cfg.baseline_teacher)
    summary = summarize(done, cfg.baseline_teacher)
    before = {n: v["initial_score"] for n, v in students.items() if v is not None}
    return {
        "config": cfg.to_dict(), "warnings": [*notes, *untaught(summary, before, cfg.baseline_teacher)],
        "complete": len(done) == len(cells),
        "cells_missing": len(cells) - len(done), "teachers": teachers,
        "students": {n: v for n, v in students.items() if v is not None}, "cells": done, "comparisons": comps,
        "summary": summary,
        "verdict": verdict(comps, teachers, cfg.baseline_teacher, cfg.verdict_ratio),
    }  # fmt: skip


def write_report(report: dict[str, Any], out: Path) -> None:
    """`report.json`, `report.md`, `report.png` and (attackers differing only in budget) `budget.png`.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> cfg = ReportConfig(teachers={"a": "x"}, students={"s": "y"}, eval_dataset="e.jsonl")
        >>> write_report(build_report(cfg, out, grid(cfg), []), out)
        >>> sorted(p.name for p in out.iterdir())
        ['report.json', 'report.md', 'report.png']
    """
    with staged_file(out / "report.json") as tmp:
        tmp.write_text(json.dumps(json_safe(report), indent=2, allow_nan=False))
    with staged_file(out / "report.md") as tmp:
        tmp.write_text(render_markdown(report))
    with staged_file(out / "report.png") as tmp:
        plot_report(report, tmp)
    if budget_families(report):
        with staged_file(out / "budget.png") as tmp:
            plot_budget(report, tmp)
    else:
        (out / "budget.png").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    """`distillguard report --config report.yaml [--seeds 3] [--field value ...]`.

    Example:
        >>> main(["--config", "no/such/report.yaml"])  # bad input: one line on stderr, exit status 2
        2
    """
    from trl import TrlParser

    from trl_distillguard.config_file import parse_config

    def body() -> int:
        try:
            (cfg,) = parse_config(TrlParser((ReportConfig,), prog="distillguard report"), argv)
        except ValueError as err:
            raise InputError(str(err)) from None
        report = run_report(cfg)
        print(render_markdown(report))
        out = Path(cfg.output_dir)
        print(
            f"wrote {out / 'report.json'}, report.md, report.png"
            + (", budget.png" if (out / "budget.png").exists() else "")
        )
        if not report["complete"]:
            print(f"{report['cells_missing']} of {len(report['cells']) + report['cells_missing']} cells are not done "
                  "yet (other shards, or an interrupted run): run the same command again to continue")  # fmt: skip
        return 0

    return run_cli(body, "distillguard report")
