"""The knob study's student cells, run by `distillguard report` (`trl_distillguard.report.run_report`): one report
call per (attacker, seed) with every teacher variant, student, recipe and gold reference of the sweep, into
`<workdir>/<setting>-<tag>/suite/<attacker>-seed<k>` (suffixed with the logit recipes' settings where they are
not `DistillConfig`'s defaults, e.g. `t1_3x-seed0-lambda0-beta0`); each cell is then filed under the study's own
cache key (`<variant>/seed<k>/<attacker>/<student>/<recipe id>`) that `efficacy_knob_render.py` reads. Results
already in the study's cache are copied into the report's cell cache first, so they are not run again.

What the report path does as the study's own loop did: the same prompts per seed (train rows shuffled by the
seed, cycled for a `_<k>x` budget), the same sampling call (seed, batch 64, `max_new_tokens`), the same
`distill` settings and seed, greedy scoring on the same test rows. What differs: `gold-traces` students train on
one fixed random-format trace per train prompt (the report's `gold-completions` column) instead of a fresh draw
per seed; the warm-up is `min(20, distill_steps // 10)` for every budget (the study used the budget's own steps,
the same for `--distill_steps` ≥ 200).

Example:
    >>> GOLD_NAMES["direct"], knob_key("eta-1_beta0.1_steps60", 0, "t1", "a", "sft")
    ('answers', 'eta-1_beta0.1_steps60/seed0/t1/a/sft')
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from efficacy_knob_task import format_of, task_formats, write_jsonl
from knob_tasks import TASKS, item_of

from trl_distillguard.attackers import resolve_attacker
from trl_distillguard.distill_config import DistillConfig
from trl_distillguard.report import run_report
from trl_distillguard.report_cells import Cell, grid, read_json, write_json
from trl_distillguard.report_config import ReportConfig

GOLD_NAMES = {"direct": "answers", "traces": "completions"}  # the study's gold references -> the report's


def knob_key(variant_id: str, seed: int, attacker: str, student: str, recipe_id: str) -> str:
    """The study's cache key of one student cell."""
    return f"{variant_id}/seed{seed}/{attacker}/{student}/{recipe_id}"


def _variant_of(teacher: str) -> str:
    for gold, name in GOLD_NAMES.items():
        if teacher == f"gold-{name}":
            return f"gold-{gold}"
    return teacher


def suite_rows(knob) -> tuple[Path, Path]:
    """The train rows (with one gold trace per prompt of a `knob_tasks` task, for `gold-traces`) and test rows as
    files. The real setting's chat prompts (`--real_dataset` other than `addition`) have no traces."""
    rng = random.Random(0)
    task, formats = TASKS[knob.a.task], task_formats(knob.a.task)
    train = []
    for r in knob.train_rows:
        text = isinstance(r["prompt"], str)
        train.append(
            r | ({"completion": task.trace(item_of(r["prompt"]), rng.choice(formats))} if text else {})
        )
    return write_jsonl(train, knob.base / "suite_train.jsonl"), write_jsonl(
        knob.test_rows, knob.base / "suite_test.jsonl"
    )


def suite_dir(knob, attacker: str, seed: int) -> Path:
    """One (attacker, seed)'s report folder: one per logit setting too, since sweeps run side by side and a report
    refuses a folder that holds another `distill` setting."""
    return knob.work / "suite" / f"{attacker}-seed{seed}{knob.logit_suffix()}"


def suite_distill(knob) -> dict[str, Any]:
    """The report's shared `distill` fields: the study's student training settings."""
    a = knob.a
    return {
        "max_steps": a.distill_steps, "per_device_train_batch_size": 16, "learning_rate": a.distill_lr,
        "max_completion_length": a.max_new_tokens, "generation_batch_size": 64,
        "on_policy_fraction": a.logit_on_policy, "divergence_beta": a.logit_beta,
        "trainer_kwargs": {"lr_scheduler_type": "cosine", "warmup_steps": min(20, a.distill_steps // 10)},
    }  # fmt: skip


def suite_config(knob, attacker: str, seed: int, variants: list[str], students: list[str], recipes: list[str],
                 gold: list[str]) -> ReportConfig:  # fmt: skip
    """One report call: every variant's teacher of this seed (built if missing), the students, recipes, gold."""
    a = knob.a
    train, test = suite_rows(knob)
    teachers = {v: str(knob.teacher_path(v, seed)) for v in dict.fromkeys(["original", *variants])}
    return ReportConfig(
        teachers=teachers, baseline_teacher="original",
        students={s: str(knob.models[f"student_{s}_init"]) for s in students}, recipes=recipes,
        attackers=[attacker], gold=[GOLD_NAMES[g] for g in gold], seeds=1, seed=seed,
        attack_prompts=a.n_distill, train_dataset=str(train), eval_dataset=str(test), verifier="math_answer",
        distill=suite_distill(knob), eval_max_new_tokens=a.max_new_tokens, eval_batch_size=64,
        evaluate_initial_students=False, output_dir=str(suite_dir(knob, attacker, seed)), shard=a.shard,
    )  # fmt: skip


def _key_of(knob, cell: Cell) -> str:
    return knob_key(knob.variant_id(_variant_of(cell.teacher)), cell.seed, cell.attacker, cell.student,
                    knob.recipe_id(cell.recipe))  # fmt: skip


def _teacher_score(knob, variant: str, seed: int) -> float | None:
    path = knob.cache / knob.variant_id(variant) / knob.teacher_seed(variant, seed) / "teacher.json"
    return json.loads(path.read_text())["teacher_score"] if path.exists() else None


def _seed_from_study(knob, cfg: ReportConfig, cells: list[Cell]) -> None:
    # a cell the study's cache already holds is copied into the report's cache: not run again
    out = Path(cfg.output_dir)
    for cell in cells:
        path = knob.cache / f"{_key_of(knob, cell)}.json"
        if (out / cell.relpath).exists() or not path.exists():
            continue
        done = json.loads(path.read_text())
        attacker = resolve_attacker(cell.attacker)
        write_json(out / cell.relpath, {
            **cell.key(), "student_score": done["score"], "score": done["score"],
            "teacher_score": None if cell.is_gold else _teacher_score(knob, cell.teacher, cell.seed),
            "train_samples": done["n_train"], **attacker.settings(), "teacher_sample_accuracy":
            done.get("teacher_sample_accuracy"), "final_loss": done.get("final_loss"), "note": None, "source": "the study's cache",
            "teacher_path": None if cell.is_gold else cfg.teachers[cell.teacher],
            "student_path": cfg.students[cell.student], "examples": done.get("examples", []),
            "format_mix_train": done.get("format_mix_train"),
        })  # fmt: skip


def _measures(knob):
    answer_of = {json.dumps(r["prompt"]): r["answer"] for r in knob.train_rows}

    def extras(cell: Cell, train: list[dict[str, Any]]) -> dict[str, Any]:
        texts = [s["completion"] for s in train]
        fmts = [format_of(t, knob.a.task) for t in texts]
        mix = {f: fmts.count(f) / max(1, len(texts)) for f in (*task_formats(knob.a.task), "other")}
        gold_ok = None
        if cell.is_gold and train:  # the gold data's own accuracy (the report scores teachers' samples only)
            ok = knob.verifier(prompts=[s["prompt"] for s in train], completions=texts,
                               answer=[answer_of[json.dumps(s["prompt"])] for s in train])  # fmt: skip
            gold_ok = sum(map(bool, ok)) / len(ok)
        return {"format_mix_train": mix, "gold_sample_accuracy": gold_ok}

    return extras


def _file(knob, c: dict[str, Any]) -> dict[str, Any]:
    """File one finished report cell under the study's key (unless filed already); the filed result."""
    key = _key_of(knob, Cell(c["teacher"], c["student"], c["recipe"], c["attacker"], c["seed"]))
    path = knob.cache / f"{key}.json"
    if not path.exists():
        dcfg = DistillConfig(**suite_distill(knob), recipe=c["recipe"])
        knob.write_cached(key, {
            "score": c["student_score"], "n_train": c["train_samples"],
            "teacher_sample_accuracy": c["teacher_sample_accuracy"] if c["teacher_sample_accuracy"] is not None
            else c.get("gold_sample_accuracy"),
            "format_mix_train": c["format_mix_train"], "final_loss": c["final_loss"], "recipe": c["recipe"],
            "on_policy_fraction": dcfg.on_policy_fraction, "divergence_beta": dcfg.divergence_beta,
            "examples": c["examples"], "key": key, "seconds": c.get("seconds"), "note": c.get("note"),
        })  # fmt: skip
    return json.loads(path.read_text())


def run_cells(knob, attacker: str, seed: int, variants: list[str], students: list[str], recipes: list[str],
              gold: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    """Run (or reuse) one (attacker, seed)'s cells through the report and file each under the study's key."""
    cfg = suite_config(knob, attacker, seed, variants, students, recipes, gold)
    _seed_from_study(knob, cfg, grid(cfg))
    report = run_report(cfg, cell_extras=_measures(knob))
    return [_file(knob, c) for c in report["cells"] if (c["attacker"], c["seed"]) == (attacker, seed)]


def file_finished(knob, attacker: str, seed: int, variants: list[str], students: list[str], recipes: list[str],
                  gold: list[str]) -> list[str]:  # fmt: skip
    """File the cells an unfinished (or running) report of this (attacker, seed) has finished, without running
    anything or building a teacher (`--render_only`); the keys filed now. A report writes each cell whole when it
    is done, so a stopped run's finished cells become visible without waiting for its last cell."""
    out = suite_dir(knob, attacker, seed)
    # the report's own grid of this (attacker, seed); only the cells' names are read, so no model path is needed
    names = ReportConfig(teachers=dict.fromkeys(["original", *variants], ""), students=dict.fromkeys(students, ""),
                         recipes=recipes, attackers=[attacker], gold=[GOLD_NAMES[g] for g in gold], seeds=1,
                         seed=seed)  # fmt: skip
    filed = []
    for cell in grid(names):
        done = read_json(out / cell.relpath)
        if done is not None and not (knob.cache / f"{_key_of(knob, cell)}.json").exists():
            filed.append(_file(knob, done)["key"])
    return filed
