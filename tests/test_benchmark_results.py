"""Every committed benchmark table is the render of its committed JSON by the script that wrote it (no table is
edited by hand), and every results JSON names the command that produced it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# results file stem -> the benchmark script whose `render_markdown(report)` wrote its .md
RENDERED_BY_SCRIPT = {
    "calibration_overhead": "calibration_overhead",
    "canonical_bias": "canonical_bias",
    "lora_merge": "lora_merge",
    "model_load": "model_load",
    "merge_speed": "merge_speed",
    "multiprocess": "multiprocess_equivalence",
    "orthoreg_cost": "orthoreg_cost",
}


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    paths = [str(ROOT / "tests"), str(ROOT / "benchmarks")]  # tiny fixtures; the scripts' shared modules
    sys.path[:0] = paths
    try:
        spec.loader.exec_module(module)
    finally:
        for path in paths:
            sys.path.remove(path)
    return module


@pytest.mark.parametrize("stem, script", sorted(RENDERED_BY_SCRIPT.items()))
def test_committed_table_is_the_render_of_the_committed_json(stem, script):
    report = json.loads((RESULTS / f"{stem}.json").read_text())
    assert load_script(script).render_markdown(report) == (RESULTS / f"{stem}.md").read_text()


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


@pytest.mark.parametrize(
    "folder", ["efficacy_orthoreg", "efficacy_orthoreg/smollm2", "efficacy_orthoreg/smollm2-open"]
)
def test_efficacy_orthoreg_table_is_the_render_of_its_json(folder):
    folder = RESULTS / folder
    results = json.loads((folder / "results.json").read_text())
    methods = tuple(next(iter(next(iter(results["modes"].values())).values()))["methods"])
    assert load_script("efficacy_report").render_md(results, methods) == (folder / "results.md").read_text()
