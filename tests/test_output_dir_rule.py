"""The output-directory rule of every command that writes a directory, in all three command lines.

An occupied output is refused before any work unless the command's overwrite flag is given; an output that is,
lies inside or contains a path the same run reads is refused with the flag too. Either way: exit 2, one line on
stderr, nothing on disk changed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from lora_fixtures import ADAPTERS, config, make_adapter, save_base

from distill_ortho_merge.errors import InputError
from distill_ortho_merge.outputs import check_not_input, check_output_dir
from mergekit_plugins import cli as merge_cli
from peft_orthoreg import cli as orthoreg_cli
from trl_distillguard import cli as guard_cli

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"
TRL = "--overwrite_output_dir true"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with its content: what a refused command must leave as it was."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def world(tmp_path, teacher_dir, student_dir) -> Path:
    """Tiny models, stand-ins for the adapters (refused before they are read), data and an occupied directory."""
    shutil.copytree(teacher_dir, tmp_path / "teacher")
    shutil.copytree(student_dir, tmp_path / "student")
    shutil.copytree(student_dir, tmp_path / "proxy")
    for name in ("adapter_a", "adapter_b", "busy"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(f'{{"name": "{name}"}}')
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prompts.jsonl").write_text('{"prompt": "1+1=", "answer": "2"}\n')
    merge = {"merge_method": "tsv", "base_model": str(tmp_path / "teacher")}
    merge["models"] = [{"model": str(tmp_path / n)} for n in ("adapter_a", "adapter_b")]
    (tmp_path / "merge.yaml").write_text(yaml.safe_dump(merge))
    return tmp_path


def guard_args(command: str, w: Path) -> list[str]:
    teacher, student, data = w / "teacher", w / "student", w / "data" / "prompts.jsonl"
    if command == "calibrate":
        return ["--config", str(CONFIGS / "tiny.yaml"), "--model_name_or_path", str(teacher),
                "--proxy_model_name_or_path", str(w / "proxy"), "--dataset_name", str(data)]  # fmt: skip
    if command == "report":
        return ["--config", str(CONFIGS / "report_tiny.yaml"), "--teachers", json.dumps({"original": str(teacher)}),
                "--students", json.dumps({"s": str(student)}), "--proxy_model_name_or_path", str(w / "proxy"),
                "--train_dataset", str(data), "--eval_dataset", str(data)]  # fmt: skip
    return ["--config", str(CONFIGS / f"{command}_tiny.yaml"), "--teacher_model_name_or_path", str(teacher),
            "--student_model_name_or_path", str(student), "--dataset_name_or_path", str(data)]  # fmt: skip


def command_line(command: str, w: Path, out: Path, overwrite: bool) -> tuple[object, list[str], str, str]:
    """(main, argv, program name, overwrite flag in the message) of `command` writing to `out`."""
    if command.startswith("distillguard "):
        sub = command.split()[1]
        argv = [sub, *guard_args(sub, w), "--output_dir", str(out), "--overwrite_output_dir", str(overwrite)]
        return guard_cli.main, argv, command, TRL
    if command == "peft-orthoreg train":
        argv = [
            "train",
            "--model_name_or_path",
            str(w / "teacher"),
            "--dataset",
            str(w / "data" / "prompts.jsonl"),
        ]
        return (
            orthoreg_cli.main,
            [*argv, "--output_dir", str(out), "--overwrite_output_dir", str(overwrite)],
            command,
            TRL,
        )
    if command.startswith("peft-orthoreg "):
        sub = command.split()[1]
        argv = [sub, str(w / "adapter_a"), "--base", str(w / "teacher"), "--output_dir", str(out)]
        return orthoreg_cli.main, argv + ["--overwrite_output_dir"] * overwrite, command, TRL
    sub = command.split()[1]
    flag = ["--overwrite"] * overwrite
    if sub == "yaml":
        return merge_cli.main, ["yaml", str(w / "merge.yaml"), str(out), *flag], command, "--overwrite"
    argv = ["search-alpha", str(w / "merge.yaml"), "--eval", "math_answer", "--save-best", str(out)]
    return merge_cli.main, argv + ["--output-dir", str(w / "sweep"), *flag], command, "--overwrite"


COMMANDS = [
    "distillguard calibrate",
    "distillguard distill",
    "distillguard report",
    "distillguard diagnose",
    "peft-orthoreg diagnose",
    "peft-orthoreg export",
    "peft-orthoreg train",
    "mergekit-plugins yaml",
    "mergekit-plugins search-alpha",  # --save-best
]
# (output, overwrite flag, expected message): occupied; the model it reads, inside it, a folder holding its inputs
CASES = {
    "occupied": ("busy", False, "pass {flag}"),
    "is an input": ("teacher", True, "is input"),
    "inside an input": ("teacher/sub", True, "lies inside input"),
    "contains an input": (".", True, "contains input"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", COMMANDS)
def test_every_directory_writer_follows_the_rule(command, case, world, capsys):
    rel, overwrite, message = CASES[case]
    main, argv, prog, flag = command_line(command, world, world / rel, overwrite)
    before = snapshot(world)
    capsys.readouterr()
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    assert message.format(flag=flag) in err[0], err[0]
    assert snapshot(world) == before and not list(world.parent.glob(f".{world.name}*"))


def test_an_empty_output_directory_is_taken_and_an_unrelated_one_is_replaced_with_the_flag(tmp_path):
    (tmp_path / "empty").mkdir()
    assert check_output_dir(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x").write_text("x")
    assert check_output_dir(tmp_path / "old", overwrite=True, inputs=[tmp_path / "elsewhere"]).name == "old"
    # names that are not local paths (built-in models, hub ids) and mergekit's model+lora references
    (tmp_path / "m").mkdir()
    (tmp_path / "l").mkdir()
    check_not_input(tmp_path / "new", ["smollm2-135m-instruct", None, f"{tmp_path / 'm'}+{tmp_path / 'l'}"])
    with pytest.raises(InputError, match="is input"):
        check_not_input(tmp_path / "l", [f"{tmp_path / 'm'}+{tmp_path / 'l'}"])


def test_a_symlinked_output_pointing_at_an_input_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "model")
    with pytest.raises(InputError, match="is input"):
        check_output_dir(tmp_path / "link", overwrite=True, inputs=[tmp_path / "model"])


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, student_dir):
    root = tmp_path_factory.mktemp("rule_lora")
    base = save_base(student_dir, root / "base", torch.float32)
    return base, [make_adapter(base, root / n, seed=i, **ADAPTERS[n]) for i, n in enumerate(("a", "b"))]


@pytest.mark.parametrize("target", ["adapter", "inside adapter", "base", "parent", "occupied"])
def test_lora_merge_never_replaces_an_input_adapter(target, adapters, tmp_path, capsys):
    base, (a, b) = adapters
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(base, [a, b], "tsv")))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    out, flag, message = {
        "adapter": (a, ["--overwrite"], f"is input {a}"),
        "inside adapter": (a / "merged", ["--overwrite"], f"lies inside input {a}"),
        "base": (base, ["--overwrite"], f"is input {base}"),
        "parent": (a.parent, ["--overwrite"], "contains input"),
        "occupied": (tmp_path / "busy", [], "exists and is not empty (pass --overwrite)"),
    }[target]
    before = {p: p.stat().st_mtime_ns for p in (*a.iterdir(), *b.iterdir(), *base.iterdir())}
    capsys.readouterr()
    assert merge_cli.main(["lora-merge", str(cfg), str(out), "--no-progress", *flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and err[0].startswith("mergekit-plugins lora-merge: error: OUT_DIR: ")
        and message in err[0]
    )
    assert {p: p.stat().st_mtime_ns for p in before} == before and not (a / "merged").exists()
    assert (tmp_path / "busy" / "keep.txt").read_text() == "x"


def test_lora_merge_overwrite_replaces_an_unrelated_output(adapters, tmp_path, capsys):
    base, (a, b) = adapters
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(base, [a, b], "tsv")))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("x")
    assert (
        merge_cli.main(["lora-merge", str(cfg), str(tmp_path / "out"), "--no-progress", "--overwrite"]) == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]


def test_search_outputs_never_replace_the_config(world, capsys):
    cfg = world / "merge.yaml"
    before = snapshot(world)
    for sub, option in (("search-alpha", "--output-json"), ("single-scores", "--output-json")):
        assert merge_cli.main([sub, str(cfg), "--eval", "m:f", option, str(cfg)]) == 2
        assert f"{option}: {cfg} is input {cfg}" in capsys.readouterr().err
    assert snapshot(world) == before


def test_export_task_vector_and_model_outputs_may_not_overlap(world, capsys):
    out = world / "exported"
    argv = ["export", str(world / "adapter_a"), "--base", str(world / "teacher"), "--output_dir", str(out)]
    assert orthoreg_cli.main([*argv, "--save_task_vector", str(out / "tv")]) == 2
    assert "save_task_vector: " in capsys.readouterr().err and not out.exists()
