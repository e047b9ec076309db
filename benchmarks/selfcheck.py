"""Checks of the benchmark scripts themselves: every committed table is what its script renders from the committed
JSON (no table is edited by hand), the SmolLM2 setting's task registry and pilot behave as their results assume, and
the distillability-knob study's task, driver and renderer pass their checks (`efficacy_knob_checks.py`).

    python benchmarks/selfcheck.py              # one line per check: `ok NAME`, `skip NAME: why`, `FAIL NAME: what`
    python benchmarks/selfcheck.py --only knob  # the checks whose name contains `knob`
    python benchmarks/selfcheck.py --write      # re-render every table from its JSON (after a renderer change)

Exits 1 when a check fails. The test suite runs it in a subprocess (`tests/test_benchmark_results.py`): tests never
import benchmark code, and the scripts import their siblings as they do when run (this folder is on the path).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# results file stem -> the benchmark script whose `render_markdown(report)` wrote its .md
RENDERED_BY_SCRIPT = {
    "adapter_alpha_sweep/results": "adapter_alpha_sweep",
    "adapter_alpha_sweep_smollm2/results": "adapter_alpha_sweep",
    "calibration_overhead": "calibration_overhead",
    "canonical_bias": "canonical_bias",
    "efficacy_smollm2_cli/results": "efficacy_smollm2_cli",
    "lora_merge": "lora_merge",
    "model_load": "model_load",
    "merge_speed": "merge_speed",
    "multiprocess": "multiprocess_equivalence",
    "orthoreg_cost": "orthoreg_cost",
    "report_suite_speed/results": "report_suite_speed",
}
EFFICACY_FOLDERS = ("efficacy_orthoreg", "efficacy_orthoreg/smollm2", "efficacy_orthoreg/smollm2-open")
KNOB_FOLDERS = ("efficacy_knob", "efficacy_knob/real", "efficacy_knob_mul21", "efficacy_knob_real_mul21")


def _efficacy_md(results: dict) -> str:
    methods = tuple(next(iter(next(iter(results["modes"].values())).values()))["methods"])
    return importlib.import_module("efficacy_report").render_md(results, methods)


def _renderer(script: str, function: str = "render_markdown") -> Callable[[dict], str]:
    return lambda report: getattr(importlib.import_module(script), function)(report)  # imported when checked


def tables() -> Iterator[tuple[Path, Callable[[dict], str]]]:
    """(committed table, its renderer) for every table a script here renders."""
    for stem, script in sorted(RENDERED_BY_SCRIPT.items()):
        yield RESULTS / f"{stem}.md", _renderer(script)
    for folder in EFFICACY_FOLDERS:
        yield RESULTS / folder / "results.md", _efficacy_md
    yield RESULTS / "efficacy_orthoreg/task_pilot/results.md", _renderer("smollm2_task_pilot", "render_md")
    for folder in KNOB_FOLDERS:  # the knob study's tables (its figures are drawn from the same summary)
        yield RESULTS / folder / "results.md", _renderer("efficacy_knob_render", "markdown")


def table_matches(md: Path, render: Callable[[dict], str], write: bool) -> None:
    text = render(json.loads(md.with_suffix(".json").read_text()))
    if write:
        md.write_text(text)
    assert text == md.read_text(), (
        "differs from the render of its JSON (python benchmarks/selfcheck.py --write)"
    )


# ------------------------------------------------------------------ the SmolLM2 setting (efficacy_smollm2.py)
def check_first_task_set_keeps_its_data_seeds() -> None:
    # The committed `smollm2` results were produced when a task's seed was its position in this set: adding
    # tasks to the registry must not move them.
    setting = importlib.import_module("efficacy_smollm2")
    assert [setting._index(t) for t in setting.TASK_SETS["v1"]] == list(range(len(setting.TASK_SETS["v1"])))


def check_task_sets_name_four_distinct_known_tasks() -> None:
    setting = importlib.import_module("efficacy_smollm2")
    for name, tasks in setting.TASK_SETS.items():
        assert len(set(tasks)) == len(tasks) == 4, name
        assert set(tasks) <= set(setting.CONFIGS), name


def check_use_task_set_switches_the_tasks() -> None:
    setting = importlib.import_module("efficacy_smollm2")
    try:
        setting.use_task_set("open")
        assert setting.TASKS == setting.TASK_SETS["open"]
    finally:
        setting.use_task_set("v1")
    assert setting.TASKS == setting.TASK_SETS["v1"]


def check_training_questions_never_occur_in_an_evaluation_split() -> str | None:
    if importlib.util.find_spec("reasoning_gym") is None:
        return "reasoning_gym is not installed"
    setting = importlib.import_module("efficacy_smollm2")
    pool, setting.TRAIN_POOL = (
        setting.TRAIN_POOL,
        400,
    )  # a small pool: seconds, and the property is per question
    setting.train_items.cache_clear()
    try:
        for task in setting.TASK_SETS["open"]:
            train = {q for q, _ in setting.train_items(task)}
            assert len(train) > 100, task
            for kind in setting.SPLIT_SEED:
                assert not train & {q for q, _ in setting.eval_items(task, kind, 256)}, (task, kind)
    finally:
        setting.TRAIN_POOL = pool
        setting.train_items.cache_clear()
    return None


def check_pilot_answers_drop_the_padding() -> None:
    import torch

    pilot = importlib.import_module("smollm2_task_pilot")
    assert pilot.answers(torch.tensor([[-100, 5, 6, -100], [7, -100, -100, -100]])) == [(5, 6), (7,)]


def check_pilot_rejects_bad_arguments_in_one_line() -> None:
    pilot = importlib.import_module("smollm2_task_pilot")
    for argv, message in (
        (["--tasks", "chain_sum,nope"], "unknown --tasks nope"),
        (["--shard", "0/2"], "invalid --shard 0/2"),
    ):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert pilot.main(argv) == 2, argv
        assert message in err.getvalue() and err.getvalue().count("\n") == 1, err.getvalue()


def check_knob_floor_table_is_the_render_of_its_cache() -> str | None:
    """knob_floor*/results.md (one folder per student size) render from the committed per-cell JSON (the tables
    of a resumable sweep)."""
    folders = sorted(p for p in RESULTS.glob("knob_floor*") if (p / "cache").is_dir())
    if not folders:
        return "no knob_floor results committed"
    floor = importlib.import_module("knob_floor")
    for out in folders:
        if floor.render(out, floor.shown(out), floor.shown_budgets(out)) != (out / "results.md").read_text():
            raise AssertionError(
                f"{out.name}/results.md differs from the render of its cache (knob_floor.py --out {out} --render_only)"
            )
    return None


def knob_checks() -> list[tuple[str, Callable[[], str | None]]]:
    """The knob study's `check_knob_*` functions; a module that does not import is one failed check."""
    try:
        module = importlib.import_module("efficacy_knob_checks")
    except Exception as err:  # noqa: BLE001 - reported as a failed check like any other

        def failed_import(err: Exception = err) -> None:
            raise err

        return [("knob_checks_import", failed_import)]
    return [
        (name[len("check_") :], fn) for name, fn in vars(module).items() if name.startswith("check_knob_")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="re-render every table from its JSON")
    parser.add_argument(
        "--only", default="", metavar="TEXT", help="run only the checks whose name contains TEXT"
    )
    args = parser.parse_args(argv)
    checks: list[tuple[str, Callable[[], str | None]]] = [
        (
            f"table {md.relative_to(RESULTS)}",
            lambda md=md, render=render: table_matches(md, render, args.write),
        )
        for md, render in tables()
    ]
    checks += [(name[len("check_") :], fn) for name, fn in globals().items() if name.startswith("check_")]
    checks += knob_checks()
    checks = [(name, fn) for name, fn in checks if args.only in name]
    failed = 0
    for name, fn in checks:
        log = io.StringIO()  # what a check prints (trainers' logs) is shown only when it fails
        try:
            with contextlib.redirect_stdout(log):
                skipped = fn()
        except Exception as err:  # noqa: BLE001 - every check runs; each failure is reported
            failed += 1
            where = traceback.extract_tb(err.__traceback__)[-1]
            print(*log.getvalue().splitlines()[-20:], sep="\n")
            print(f"FAIL {name}: {type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})")
            continue
        print(f"skip {name}: {skipped}" if skipped else f"ok {name}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
