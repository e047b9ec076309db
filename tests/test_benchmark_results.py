"""Every committed benchmark table is the render of its committed JSON by the script that wrote it (no table is
edited by hand), and every results JSON names the command that produced it. The benchmark scripts' own checks run
as `python benchmarks/selfcheck.py` in a subprocess: tests read result files, never import benchmark code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# Tables rendered by product code (checked below).
NOT_RENDERED_BY_SELFCHECK = ("report.md",)


@pytest.fixture(scope="module")
def selfcheck() -> dict[str, str]:
    """{check name: its result line} from one run of benchmarks/selfcheck.py."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "selfcheck.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = [line for line in out.stdout.splitlines() if line.startswith(("ok ", "skip ", "FAIL "))]
    lines = {line.split(":")[0].split(" ", 1)[1]: line for line in results}
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return lines


def test_benchmark_selfchecks_pass(selfcheck):
    assert len(selfcheck) >= 15
    failed = [line for line in selfcheck.values() if not line.startswith(("ok ", "skip "))]
    assert not failed, "\n".join(failed)


def test_the_knob_study_is_checked(selfcheck):
    # efficacy_knob_checks.py: the task, flags, cache, logit recipes, gold references and renderer of the
    # distillability-knob benchmark (its command line is test_efficacy_knob.py)
    knob = [name for name in selfcheck if name.startswith("knob_")]
    assert len(knob) >= 15 and "knob_checks_import" not in knob, sorted(selfcheck)


def test_every_committed_table_is_checked_against_its_json(selfcheck):
    tables = [
        str(p.relative_to(RESULTS))
        for p in RESULTS.rglob("*.md")
        if p.with_suffix(".json").exists() and not any(n in str(p) for n in NOT_RENDERED_BY_SELFCHECK)
    ]
    assert len(tables) >= 11
    for table in tables:
        assert selfcheck.get(f"table {table}", "").startswith("ok "), (table, selfcheck.get(f"table {table}"))


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in RESULTS.glob("*/report.json")))
def test_committed_report_table_is_the_render_of_its_json(folder):
    from trl_distillguard.report import render_markdown

    report = json.loads((RESULTS / folder / "report.json").read_text())
    assert render_markdown(report) == (RESULTS / folder / "report.md").read_text()


def test_every_results_json_records_its_command():
    # Every results file a run writes; a resumable benchmark's per-piece cache (cache/, sweeps/) is its input.
    files = [
        p
        for p in RESULTS.rglob("*.json")
        if p.name not in {"report.json", "diagnose.json"} and not {"cache", "sweeps"} & set(p.parts)
    ]
    assert files
    for path in files:
        data = json.loads(path.read_text())
        run = data.get("run", data)
        # A resumable benchmark records every invocation that added to its cache, each with its command.
        commands = (
            [run.get("command")]
            if "invocations" not in run
            else [i.get("command") for i in run["invocations"]]
        )
        assert commands and all(commands), (
            f"{path.relative_to(ROOT)} does not record the command that produced it"
        )
