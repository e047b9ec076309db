"""`search-alpha` / `single-scores` with the ready evaluator (a verifier's greedy accuracy on JSONL tasks), on the
tiny models `examples/data/merge_tiny.py` writes; default outputs go under --output-dir."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
import yaml

from mergekit_plugins import cli

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "calibrate_tiny.jsonl"


@pytest.fixture(scope="module")
def merge_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    models = runpy.run_path(str(ROOT / "examples" / "data" / "merge_tiny.py"))["build"](
        root / "models", steps=12
    )
    config = yaml.safe_load((ROOT / "examples" / "configs" / "merge_tsv.yaml").read_text())
    config["base_model"] = str(models / "base")
    for m in config["models"]:
        m["model"] = str(models / Path(m["model"]).name)
    path = root / "merge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_single_scores_then_search_alpha(merge_config, tmp_path, capsys):
    out = tmp_path / "o"
    data = ["--eval-data", f"task_math={DATA}", "--eval-data", f"task_code={DATA}"]
    common = [
        str(merge_config),
        "--eval",
        "math_answer",
        *data,
        "--max-new-tokens",
        "4",
        "--output-dir",
        str(out),
    ]
    assert cli.main(["single-scores", *common]) == 0
    single = json.loads((out / "single.json").read_text())
    assert set(single) == {"task_math", "task_code"}
    for v in single.values():  # two named numbers and the counts behind them
        assert 0.0 <= v["exact_accuracy"] <= v["mean_score"] <= 1.0 and v["n_scored"] == v["n_items"] == 16
        assert v["exact_accuracy"] == v["n_exact"] / v["n_scored"]
    assert cli.main(["search-alpha", *common, "--grid", "0.5,1.0", "--no-progress"]) == 0
    report = json.loads((out / "search_alpha.json").read_text())
    assert [r["alpha"] for r in report["results"]] == [0.5, 1.0]
    for r in report["results"]:
        assert (
            set(r["scores"]) == set(r["exact_accuracy"]) == set(r["mean_score"]) == {"task_math", "task_code"}
        )
        assert r["scores"] == r["mean_score"]  # the default criterion; `scores` keeps its meaning
        assert set(r["task_mean"]) == {"exact_accuracy", "mean_score"}
    assert report["criterion"] == "mean score" and "dense" in report["route"]
    assert (out / "search_alpha.png").is_file()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--eval", "math_answer", "--eval-data", "oops"], "--eval-data 'oops': expected TASK=FILE.jsonl"),
        (["--eval", "math_answer"], "give the tasks' data with --eval-data"),
        (
            ["--eval", "math_answer", "--eval-data", "task_math=/no/such.jsonl"],
            "--eval-data task_math=/no/such",
        ),
        (["--eval", "m:f", "--eval-data", f"task_math={DATA}"], "--eval-data is for a verifier --eval"),
        (["--eval", "math_answer", "--eval-data", f"other={DATA}"], "no task is named after a model"),
    ],
)
def test_bad_eval_options_are_one_line(args, needle, merge_config, tmp_path, capsys):
    assert cli.main(["single-scores", str(merge_config), *args, "--output-dir", str(tmp_path / "o")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mergekit-plugins")]
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists()
