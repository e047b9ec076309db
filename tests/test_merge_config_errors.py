"""Merge configs with a mistyped model path, method or parameter: one line (exit 2) through `mergekit-plugins
yaml`, `search-alpha` and `single-scores`, before any model is read; built-in model names are resolved."""

from __future__ import annotations

import pytest
import yaml

from distill_ortho_merge import models as M
from mergekit_plugins import cli

BAD = [
    ({"merge_method": "tsvm"}, "merge_method 'tsvm' is unknown (closest: tsv"),
    ({"parameters": {"alpah": 1.0}}, "parameters.alpah is not a parameter of tsv (its parameters: "),
    ({"models": [{"model": "MODELS/task_cod"}]}, "models[0].model: MODELS/task_cod does not exist"),
    ({"base_model": "./nowhere/base"}, "base_model: ./nowhere/base does not exist"),
    (
        {"models": [{"model": "MODELS/a", "parameters": {"wieght": 0.5}}]},
        "models[0].parameters.wieght is not a parameter of tsv",
    ),
]
COMMANDS = [
    ["yaml", "{cfg}", "{out}"],
    ["search-alpha", "{cfg}", "--eval", "math_answer", "--eval-data", "a={data}", "--output-dir", "{out}"],
    ["single-scores", "{cfg}", "--eval", "math_answer", "--eval-data", "a={data}", "--output-dir", "{out}"],
]


def write(tmp_path, teacher_dir, edit):
    models = str(teacher_dir)
    config = {"merge_method": "tsv", "base_model": models, "models": [{"model": models}, {"model": models}]}
    config.update({k: yaml.safe_load(yaml.safe_dump(v).replace("MODELS", models)) for k, v in edit.items()})
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(yaml.safe_dump(config))
    data = tmp_path / "eval.jsonl"
    data.write_text('{"prompt": "What is 1 + 1?", "answer": "2"}\n')
    return cfg, data


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("edit,needle", BAD, ids=["method", "parameter", "model", "base", "model-parameter"])
def test_one_line_exit_2(command, edit, needle, teacher_dir, tmp_path, capsys):
    cfg, data = write(tmp_path, teacher_dir, edit)
    out = tmp_path / "out"
    argv = [a.format(cfg=cfg, out=out, data=data) for a in command]
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and needle.replace("MODELS", str(teacher_dir)) in err[0], err
    assert not out.exists()


def test_valid_parameters_of_a_mergekit_method_pass(teacher_dir, tmp_path):
    from mergekit_plugins.yaml_command import check_config

    cfg = {
        "merge_method": "ties",
        "base_model": str(teacher_dir),
        "models": [{"model": str(teacher_dir), "parameters": {"weight": 1.0, "density": 0.5}}],
        "parameters": {"normalize": True, "int8_mask": True},
    }
    check_config(cfg, "c.yaml")  # no error


def test_hub_ids_are_left_to_mergekit(tmp_path, monkeypatch):
    """`org/name` (no such local directory) is not path-like: mergekit decides (offline: its own error)."""
    from mergekit_plugins.yaml_command import looks_like_path

    monkeypatch.chdir(tmp_path)
    assert not looks_like_path("Qwen/Qwen2-0.5B")
    (tmp_path / "models").mkdir()
    assert looks_like_path("models/task_cod") and looks_like_path("../a") and looks_like_path("a/b/c")


def test_builtin_model_name_in_a_merge_config(teacher_dir, tmp_path, monkeypatch, capsys):
    """A built-in model name in `base_model` / `models[].model` reaches mergekit as its converted directory."""
    monkeypatch.setitem(M.BUILTIN_MODELS, "fake-1m", object())
    monkeypatch.setattr(M, "resolve_model", lambda ref, role: teacher_dir)
    cfg = tmp_path / "merge.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "merge_method": "task_arithmetic",
                "base_model": "fake-1m",
                "models": [{"model": "fake-1m", "parameters": {"weight": 0.5}}],
                "dtype": "float32",
            }
        )
    )
    assert cli.main(["yaml", str(cfg), str(tmp_path / "out"), "--quiet"]) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "config.json").is_file()
