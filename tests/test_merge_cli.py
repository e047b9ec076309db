"""`mergekit-plugins yaml` bad input (one line, nothing left behind) and `search-alpha` end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from merge_helpers import (
    assert_merge_equals,
    reference_merge,
    save_task_models,
    state_dict,
    write_config,
)
from safetensors.torch import load_file, save_file

from mergekit_plugins import cli
from mergekit_plugins.search import search_alpha
from mergekit_plugins.search_config import SearchAlphaConfig, parse_grid

UP = "model.layers.0.mlp.up_proj.weight"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tasks(tmp_path_factory, teacher_dir, make_finetuned_copies):
    return save_task_models(tmp_path_factory.mktemp("tasks"), teacher_dir, make_finetuned_copies, n=2)


def edited_copy(src, dst, edit):
    shutil.copytree(src, dst)
    sd = load_file(dst / "model.safetensors")
    edit(sd)
    save_file(sd, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def run_bad(capsys, tmp_path, cfg):
    rc = cli.main(["yaml", str(cfg), str(tmp_path / "out"), "--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mergekit-plugins")]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name == "out" or ".partial-" in p.name]
    return rc, err, leftovers


@pytest.mark.parametrize(
    "method,params,needle",
    [
        ("tsv", {"alpha": 0}, "parameters.alpha must be a finite number > 0"),
        ("iso_c", {"alpha": -1.5}, "parameters.alpha must be a finite number > 0"),
        ("tsv", {"alpha": float("nan")}, "parameters.alpha must be a finite number > 0"),
        (
            "iso_cts",
            {"common_space_fraction": 1.0},
            "parameters.common_space_fraction must be strictly between",
        ),
        (
            "iso_cts",
            {"common_space_fraction": 0.0},
            "parameters.common_space_fraction must be strictly between",
        ),
    ],
)
def test_bad_parameters(method, params, needle, tasks, teacher_dir, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", method, teacher_dir, tasks, **params)
    rc, err, left = run_bad(capsys, tmp_path, cfg)
    assert rc == 2 and len(err) == 1 and needle in err[0] and left == []


def test_no_base_model(tasks, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", "iso_c", None, tasks)
    rc, err, left = run_bad(capsys, tmp_path, cfg)
    assert rc == 2 and "needs `base_model`" in err[0] and left == []


def test_shape_mismatch_names_the_tensor(tasks, teacher_dir, tmp_path, capsys):
    bad = edited_copy(tasks[1], tmp_path / "bad", lambda sd: sd.__setitem__(UP, sd[UP][:, :5].clone()))
    cfg = write_config(tmp_path / "c.yaml", "tsv", teacher_dir, [tasks[0], bad])
    rc, err, left = run_bad(capsys, tmp_path, cfg)
    assert rc == 1 and len(err) == 1 and UP in err[0] and "mismatch" in err[0] and left == []


def test_missing_tensor_names_the_tensor_and_model(tasks, teacher_dir, tmp_path, capsys):
    bad = edited_copy(tasks[1], tmp_path / "bad", lambda sd: sd.pop(UP))
    cfg = write_config(tmp_path / "c.yaml", "iso_cts", teacher_dir, [tasks[0], bad])
    rc, err, left = run_bad(capsys, tmp_path, cfg)
    assert rc == 1 and UP in err[0] and str(bad) in err[0] and left == []


def test_non_float_tensors_are_refused():
    from mergekit.merge_methods.base import TensorGroup

    from mergekit_plugins import core
    from mergekit_plugins.methods import merge_group

    group = TensorGroup.from_tensors([torch.ones(3, 3, dtype=torch.int64)] * 2, base_index=0, name="w.int")
    with pytest.raises(TypeError, match="tensor w.int is torch.int64, not floating point"):
        merge_group(group, core.tsv_merge, method="tsv", weight={1: 1.0}, alpha=1.0, svd_embeddings=False)


def test_failed_merge_keeps_an_existing_output(tasks, teacher_dir, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("old")
    cfg = write_config(tmp_path / "c.yaml", "tsv", teacher_dir, tasks, alpha=-1)
    assert cli.main(["yaml", str(cfg), str(tmp_path / "out"), "--overwrite"]) == 2  # alpha < 0: bad input
    assert (tmp_path / "out" / "keep.txt").read_text() == "old"


def test_mergekit_usage_errors_keep_mergekits_exit_code(capsys):
    assert cli.main(["yaml", "--help"]) == 0
    assert "--cuda" in capsys.readouterr().out
    assert cli.main(["yaml", "only-config.yaml"]) == 2  # click's usage error code, like mergekit-yaml


# ---- search-alpha --------------------------------------------------------------------------------------
TARGET = {}


def peaked_eval(model, tokenizer):
    """Scores peak where the up-projection equals TARGET[UP] (set by the test); a second task is flat."""
    w = dict(model.named_parameters())[UP].detach().double()
    assert tokenizer is not None
    return {"peak": float(-((w - TARGET[UP]) ** 2).sum()), "flat": 1.0}


def returns_list(model, tokenizer):
    return [1.0]


def test_search_alpha_tsv_end_to_end(tasks, teacher_dir, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "tsv", teacher_dir, tasks, alpha=0.3)
    TARGET[UP] = reference_merge("tsv", teacher_dir, tasks, alpha=1.7)[UP]
    out = SearchAlphaConfig(
        config=str(cfg),
        eval="test_merge_cli:peaked_eval",
        output_json=str(tmp_path / "r" / "alpha.json"),
        save_best=str(tmp_path / "best"),
        progress=False,
    )
    report = search_alpha(out)
    assert (
        report["parameter"] == "alpha"
        and report["grid"] == parse_grid("0.1:3.0:0.1")
        and len(report["grid"]) == 30
    )
    assert report["best"]["alpha"] == pytest.approx(1.7)
    on_disk = json.loads((tmp_path / "r" / "alpha.json").read_text())
    assert [r["alpha"] for r in on_disk["results"]] == report["grid"]
    assert on_disk["saved"] == str(tmp_path / "best")  # the JSON on disk records the saved merge
    # each α's score is the evaluation of θ₀ + α·reference(Δs), computed independently here
    for r in on_disk["results"][::7]:
        w = reference_merge("tsv", teacher_dir, tasks, alpha=r["alpha"])[UP]
        assert r["scores"]["peak"] == pytest.approx(float(-((w - TARGET[UP]) ** 2).sum()), rel=1e-4, abs=1e-9)
    assert (tmp_path / "r" / "alpha.png").stat().st_size > 1000
    assert_merge_equals(tmp_path / "best", reference_merge("tsv", teacher_dir, tasks, alpha=1.7))


def test_search_alpha_task_arithmetic_with_single_task_scores(tasks, teacher_dir, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "task_arithmetic", teacher_dir, tasks, weights=[1.0, 1.0])
    TARGET[UP] = reference_merge("task_arithmetic", teacher_dir, tasks, alpha=0.35)[UP]
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"peak": 2.0, "flat": 4.0}))
    rc = cli.main(
        ["search-alpha", str(cfg), "--eval", "test_merge_cli:peaked_eval", "--single-task-scores", str(single),
         "--output-json", str(tmp_path / "ta.json"), "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    report = json.loads((tmp_path / "ta.json").read_text())
    assert report["parameter"] == "lambda" and len(report["grid"]) == 21 and report["grid"][-1] == 1.0
    assert report["best"]["alpha"] == pytest.approx(0.35)
    r = report["results"][0]
    assert r["normalized"]["flat"] == pytest.approx(0.25) and r["mean"] == pytest.approx(
        (r["scores"]["peak"] / 2.0 + 0.25) / 2
    )
    # λ = 0 is the base model itself
    w0 = state_dict(teacher_dir)[UP].double()
    assert r["scores"]["peak"] == pytest.approx(float(-((w0 - TARGET[UP]) ** 2).sum()), rel=1e-5)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--grid", ""], "--grid: grid '' is empty"),
        (["--grid", "0:1:0.5"], "--grid: tsv needs alpha > 0"),
        (["--grid", "1:x:2"], "--grid: grid '1:x:2': expected start:stop:step"),
        (["--eval", "no_such_module_xyz:f"], "cannot be imported: ModuleNotFoundError"),
        (["--eval", "test_merge_cli"], "expected a verifier name (instruction_following, "),
        (["--eval", "test_merge_cli:returns_list"], "returned list at α=1.0; expected {task: score}"),
    ],
)
def test_search_alpha_bad_input(args, needle, tasks, teacher_dir, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", "tsv", teacher_dir, tasks)
    argv = ["search-alpha", str(cfg), "--eval", "test_merge_cli:peaked_eval", "--grid", "1.0"]
    argv += ["--output-json", str(tmp_path / "x.json"), "--no-progress"]
    for i in range(0, len(args), 2):
        argv[argv.index(args[i]) + 1] = args[i + 1]
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mergekit-plugins")]
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "x.json").exists()


def test_search_alpha_refuses_nonlinear_methods(tasks, teacher_dir, tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", "slerp", teacher_dir, tasks[:1], t=0.5)
    assert cli.main(["search-alpha", str(cfg), "--eval", "test_merge_cli:peaked_eval"]) == 2
    assert "not of the form θ₀ + α·merged" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["merge_tsv", "merge_iso_c", "merge_iso_cts"])
def test_example_configs_are_valid(name):
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge_methods import get

    from mergekit_plugins.plugins import load_plugins
    from mergekit_plugins.yaml_command import check_config

    load_plugins()
    path = ROOT / "examples" / "configs" / f"{name}.yaml"
    config = yaml.safe_load(path.read_text())
    check_config(config, where=str(path))
    parsed = MergeConfiguration.model_validate(config)
    spec = get(parsed.merge_method).spec
    known = {p.name: p for p in spec.parameters}
    for key, value in (config.get("parameters") or {}).items():
        known[key].validate(value)
    for model in config["models"]:
        for key, value in (model.get("parameters") or {}).items():
            known[key].validate(value)


def test_kernel_failures_name_the_tensor():
    from mergekit.merge_methods.base import TensorGroup

    from mergekit_plugins.methods import merge_group

    def broken(deltas):
        raise torch.linalg.LinAlgError("did not converge")

    group = TensorGroup.from_tensors(
        [torch.zeros(4, 4), torch.ones(4, 4)], base_index=0, name="layers.3.o_proj"
    )
    with pytest.raises(RuntimeError, match=r"iso_c: merging tensor layers.3.o_proj failed: did not converge"):
        merge_group(group, broken, method="iso_c", weight={1: 1.0}, alpha=1.0, svd_embeddings=False)
