"""Every input of `distillguard report` checked before any work: models, datasets, verifier, attackers, gold
columns, recipes against tokenizers, and the output directory (continue the same settings, refuse others).

Example:
    >>> s = settings_of(ReportConfig(teachers={"a": "x"}, seeds=3))
    >>> "seeds" in s, s["verifier"]
    (False, 'math_answer')
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_ortho_merge.cli import InputError
from distill_ortho_merge.evaluate import check_gold, load_rows, prompts_of
from distill_ortho_merge.outputs import check_not_input
from trl_distillguard.attackers import Attacker, resolve_attacker
from trl_distillguard.distill import check_byte_level, check_shared_vocab
from trl_distillguard.loading import check_causal_lm, resolve_model_path
from trl_distillguard.plugins import resolve_reward
from trl_distillguard.report_cells import Cell, read_json, write_json
from trl_distillguard.report_config import ReportConfig

SUITE = "suite.json"
# Fields that pick cells or only change the rendering: a run with other values continues the same output_dir.
_NOT_SETTINGS = {"teachers", "students", "recipes", "attackers", "gold", "seeds", "seed", "baseline_teacher",
                 "original_teacher", "shard", "output_dir", "overwrite_output_dir", "save_students",
                 "proxy_model_name_or_path", "require_heldout_student", "evaluate_initial_students",
                 "verdict_ratio"}  # fmt: skip


def settings_of(cfg: ReportConfig) -> dict[str, Any]:
    """The fields every cell depends on (datasets, verifier, distillation and evaluation settings)."""
    return json.loads(json.dumps({k: v for k, v in cfg.to_dict().items() if k not in _NOT_SETTINGS}))


@dataclass
class Inputs:
    """What the checks resolved: model paths per seed, rows, verifier, attackers.

    Example:
        >>> Inputs({"t": {0: "t0"}}, {"s": "s0"}, [], [], None, {}, 8, False).n_prompts
        8
    """

    teacher_paths: dict[str, dict[int, str]]
    student_paths: dict[str, str]
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    verifier: Any
    attackers: dict[str, Attacker]
    n_prompts: int
    train_has_gold: bool
    notes: list[str] = field(default_factory=list)


def _resolve_teachers(cfg: ReportConfig) -> dict[str, dict[int, str]]:
    resolved: dict[str, str] = {}
    out: dict[str, dict[int, str]] = {}
    for name, spec in cfg.teachers.items():
        out[name] = {}
        for seed in cfg.seed_list:
            path = spec.replace("{seed}", str(seed))
            if path not in resolved:
                role = f"teacher {name}" + (f" (seed {seed})" if path != spec else "")
                resolved[path] = resolve_model_path(path, role)
                check_causal_lm(resolved[path], role)
            out[name][seed] = resolved[path]
    return out


def _check_gold_columns(cfg: ReportConfig, rows: list[dict[str, Any]]) -> None:
    columns = {"answers": cfg.gold_answer_column, "completions": cfg.gold_completion_column}
    for gold in cfg.gold:
        col = columns[gold]
        missing = next((i for i, r in enumerate(rows) if r.get(col) in (None, "")), None)
        if missing is not None:
            raise InputError(
                f"gold: {gold} needs the column {col!r} in train_dataset {cfg.train_dataset} (row {missing} lacks "
                f"it); set gold_{gold[:-1]}_column or drop {gold!r} from gold"
            )
    if "answers" in cfg.gold:
        try:
            cfg.gold_answer_template.format(answer=rows[0][cfg.gold_answer_column])
        except (KeyError, IndexError, ValueError) as err:
            raise InputError(
                f"gold_answer_template: {cfg.gold_answer_template!r} ({err}); use {{answer}}"
            ) from None


def _check_recipes(
    cfg: ReportConfig, teacher_paths: dict[str, dict[int, str]], student_paths: dict[str, str]
):
    """Every (teacher, student, recipe) must be runnable before any work starts."""
    from transformers import AutoTokenizer

    if set(cfg.recipes) <= {"sft"}:
        return
    toks: dict[str, Any] = {}
    tok = lambda p: toks.setdefault(p, AutoTokenizer.from_pretrained(p))  # noqa: E731
    teachers = {(t, p) for t, by_seed in teacher_paths.items() for p in by_seed.values()}
    for t, t_path in sorted(teachers):
        for s, s_path in student_paths.items():
            if "kd" in cfg.recipes:
                try:
                    check_shared_vocab(tok(t_path), tok(s_path))
                except InputError as err:
                    raise InputError(f"student {s!r}, teacher {t!r}: {err}") from None
            if "uld" in cfg.recipes:
                check_byte_level(tok(t_path), f"teacher {t!r}")
                check_byte_level(tok(s_path), f"student {s!r}")


def check_inputs(cfg: ReportConfig) -> Inputs:
    """Resolve and check every input; a one-line `InputError` names the first bad one. Loads no weights.

    Example:
        >>> check_inputs(ReportConfig(teachers={"a": "x"}, attackers="t1,best_of_4", students={"s": "y"},
        ...              train_dataset="t.jsonl", eval_dataset="e.jsonl", output_dir="out"))
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: attackers: unknown attacker 'best_of_4' (built-in: greedy, t07, t1, t1_correct, t1_2x, t1_3x, or t<T>[_correct][_<k>x])
    """
    for name in ("teachers", "students", "train_dataset", "eval_dataset", "output_dir"):
        if not getattr(cfg, name):
            raise InputError(f"{name}: required")
    attackers = {n: resolve_attacker(n) for n in cfg.attackers}
    verifier = resolve_reward(cfg.verifier, "verifier")
    train_rows = load_rows(cfg.train_dataset, "train_dataset")
    prompts_of(train_rows, cfg.prompt_column, "train_dataset")
    eval_rows = load_rows(cfg.eval_dataset, "eval_dataset")[: cfg.max_eval_examples]
    check_gold(eval_rows, verifier, cfg.verifier, cfg.prompt_column)
    try:
        check_gold(train_rows, verifier, cfg.verifier, cfg.prompt_column)
        train_has_gold = True
    except InputError as err:
        train_has_gold = False
        correct = [n for n, a in attackers.items() if a.correct_only]
        if correct:
            raise InputError(f"attackers {', '.join(correct)}: keep verified samples only, but train_dataset "
                             f"{cfg.train_dataset} has no gold answers ({str(err).split(': ', 1)[-1]})") from None  # fmt: skip
    _check_gold_columns(cfg, train_rows)
    cfg.distill_config(recipe=cfg.recipes[0])  # the shared distill fields, checked early
    teacher_paths = _resolve_teachers(cfg)
    student_paths = {n: resolve_model_path(p, f"student {n}") for n, p in cfg.students.items()}
    for n, p in student_paths.items():
        check_causal_lm(p, f"student {n}")
    if cfg.proxy_model_name_or_path:
        cfg.proxy_model_name_or_path = resolve_model_path(
            cfg.proxy_model_name_or_path, "proxy_model_name_or_path"
        )
    _check_recipes(cfg, teacher_paths, student_paths)
    inputs = [cfg.train_dataset, cfg.eval_dataset, cfg.proxy_model_name_or_path, *student_paths.values()]
    inputs += [p for by_seed in teacher_paths.values() for p in by_seed.values()]
    check_not_input(cfg.output_dir, inputs, what="output_dir")  # the output-directory rule, resume or not
    return Inputs(teacher_paths, student_paths, train_rows, eval_rows, verifier, attackers,
                  cfg.attack_prompts or len(train_rows), train_has_gold)  # fmt: skip


def check_output_dir(cfg: ReportConfig, inputs: Inputs, cells: list[Cell]) -> str:
    """`fresh`, `resume` (the same settings: cached cells are kept) or `overwrite`; a one-line `InputError` when
    `output_dir` holds something else and overwriting was not asked for. Writes nothing.

    Example:
        >>> check_output_dir(ReportConfig(output_dir="/no/such/report"), None, [])
        'fresh'
    """
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output_dir: {out} is a file")
    if not out.exists() or not any(out.iterdir()):
        return "fresh"
    if cfg.overwrite_output_dir:
        return "overwrite"
    again = "pass --overwrite_output_dir true to start afresh, or choose another output_dir"
    suite = read_json(out / SUITE)
    if suite is None:
        raise InputError(f"output_dir: {out} is not empty and holds no report: {again}")
    settings = settings_of(cfg)
    differ = sorted(
        k for k in settings.keys() | suite["settings"].keys() if settings.get(k) != suite["settings"].get(k)
    )
    if differ:
        raise InputError(
            f"output_dir: {out} holds a report of other settings ({', '.join(differ)} differ): {again}"
        )
    for cell in cells:
        cached = read_json(out / cell.relpath)
        if cached is None:
            continue
        want = (
            None if cell.is_gold else inputs.teacher_paths[cell.teacher][cell.seed],
            inputs.student_paths[cell.student],
        )
        if (cached["teacher_path"], cached["student_path"]) != want:
            raise InputError(
                f"output_dir: cell {cell.relpath} was run with teacher {cached['teacher_path']} and student "
                f"{cached['student_path']}, the config now names {want[0]} and {want[1]}: {again}"
            )
    return "resume"


def start_output_dir(cfg: ReportConfig, state: str) -> Path:
    """Create (or, for `overwrite`, empty) `output_dir` and record its settings.

    Example:
        >>> import tempfile
        >>> out = start_output_dir(ReportConfig(output_dir=tempfile.mkdtemp() + "/rep"), "fresh")
        >>> sorted(p.name for p in out.iterdir())
        ['suite.json']
    """
    out = Path(cfg.output_dir)
    if state == "overwrite":
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / SUITE).exists():  # shards starting together write the same content, each atomically
        write_json(out / SUITE, {"settings": settings_of(cfg)})
    return out
