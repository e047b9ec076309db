"""The same concepts behave the same in the three command lines: `--help`, `--version`, the overwrite flag, the
flag style of each (TRL's snake_case for distillguard and peft-orthoreg, mergekit-yaml's kebab-case for
mergekit-plugins), and exit codes (bad input 2, a runtime failure 1, each one line)."""

from __future__ import annotations

import re

import pytest

from distill_ortho_merge.cli import run_cli
from distill_ortho_merge.errors import InputError
from mergekit_plugins import cli as merge_cli
from peft_orthoreg import cli as orthoreg_cli
from trl_distillguard import cli as guard_cli

MAINS = {
    "distillguard": guard_cli.main,
    "peft-orthoreg": orthoreg_cli.main,
    "mergekit-plugins": merge_cli.main,
}
# every subcommand that writes a directory, and its overwrite flag
WRITERS = {
    ("distillguard", "calibrate"): "--overwrite_output_dir",
    ("distillguard", "distill"): "--overwrite_output_dir",
    ("distillguard", "report"): "--overwrite_output_dir",
    ("distillguard", "diagnose"): "--overwrite_output_dir",
    ("peft-orthoreg", "diagnose"): "--overwrite_output_dir",
    ("peft-orthoreg", "export"): "--overwrite_output_dir",
    ("peft-orthoreg", "train"): "--overwrite_output_dir",
    ("mergekit-plugins", "yaml"): "--overwrite",
    ("mergekit-plugins", "lora-merge"): "--overwrite",
    ("mergekit-plugins", "search-alpha"): "--overwrite",
}


def call(main, argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse / TrlParser end --help and --version this way
        code = exc.code or 0
    return code, capsys.readouterr().out


@pytest.mark.parametrize("prog", sorted(MAINS))
def test_help_and_version_exit_0(prog, capsys):
    code, out = call(MAINS[prog], ["--version"], capsys)
    assert code == 0 and re.fullmatch(rf"{prog} \S+\n", out), out
    code, out = call(MAINS[prog], ["--help"], capsys)
    assert code == 0 and "usage:" in out.lower()


def options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", text))


@pytest.mark.parametrize(("prog", "sub"), sorted(WRITERS))
def test_every_directory_writer_has_its_overwrite_flag_in_its_style(prog, sub, capsys):
    code, out = call(MAINS[prog], [sub, "--help"], capsys)
    assert code == 0 and WRITERS[prog, sub] in options(out), out
    ours = options(out)
    if prog == "peft-orthoreg" and sub != "train":  # TRL style: snake_case (train's help is TrlParser's own)
        assert not [o for o in ours if "-" in o[2:]], ours
    if prog == "mergekit-plugins" and sub != "yaml":  # mergekit-yaml style (yaml's help is mergekit's own)
        assert not [o for o in ours if "_" in o], ours


def test_peft_orthoreg_accepts_the_kebab_case_and_older_spellings(tmp_path, capsys):
    parser = orthoreg_cli.build_parser()
    for flags in (["--output_dir", "d"], ["--output-dir", "d"], ["--out", "d"]):
        args = parser.parse_args(["export", "x", "--base", "b", *flags, "--save-task-vector", "t"])
        assert (args.output_dir, args.save_task_vector, args.overwrite_output_dir) == ("d", "t", False)
    args = parser.parse_args(["diagnose", "x", "--output_dir", "d", "--overwrite_output_dir", "true"])
    assert args.overwrite_output_dir is True
    assert orthoreg_cli.main(["diagnose", "x"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "peft-orthoreg diagnose: error: --output_dir: required (the directory to write)"
    )


def test_only_input_errors_are_exit_2_and_a_bug_like_value_error_is_exit_1(capsys):
    def deep_value_error():
        import torch

        torch.zeros(2, 3) @ torch.zeros(2, 3)  # a shape bug: RuntimeError
        return 0

    def value_error():
        raise ValueError("math domain error\nsecond line")

    assert run_cli(deep_value_error, "peft-orthoreg export") == 1
    assert run_cli(value_error, "peft-orthoreg export") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith("peft-orthoreg export: error: ValueError: math domain error (")
    assert run_cli(lambda: (_ for _ in ()).throw(InputError("--base: x")), "p") == 2
    assert capsys.readouterr().err == "p: error: --base: x\n"


def test_a_value_error_from_inside_peft_orthoreg_export_is_a_runtime_failure(tmp_path, monkeypatch, capsys):
    from peft_orthoreg import diagnostics

    def broken(path, base=None):
        raise ValueError("expected scalar type Float but found Half")  # what torch raises on a dtype bug

    monkeypatch.setattr(diagnostics, "load_input", broken)
    argv = ["export", str(tmp_path / "a"), "--base", str(tmp_path / "b"), "--output_dir", str(tmp_path / "o")]
    assert orthoreg_cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ValueError: expected scalar type Float but found Half" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lora-merge", "{tmp}/missing.yaml", "{tmp}/o"], "missing.yaml"),  # LoraMergeError
        (["search-alpha", "{tmp}/missing.yaml", "--eval", "m:f"], "missing.yaml"),  # SearchError
        (["yaml", "{tmp}/bad.yaml", "{tmp}/o"], "needs `base_model`"),  # ConfigError
        (["search-alpha", "{tmp}/bad.yaml", "--eval", "m:f"], "needs `base_model`"),
    ],
)
def test_mergekit_plugins_input_errors_are_one_line_exit_2_through_run_cli(argv, message, tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("merge_method: tsv\nmodels: [{model: a}]\n")
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert merge_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith(f"mergekit-plugins {argv[0]}: error: ") and message in err[0]
    ), err


def test_peft_orthoreg_and_distillguard_input_errors_are_one_line_exit_2(tmp_path, capsys):
    argv = [
        "export",
        str(tmp_path / "nothing"),
        "--base",
        str(tmp_path / "b"),
        "--output_dir",
        str(tmp_path / "o"),
    ]
    (tmp_path / "nothing").mkdir()
    assert orthoreg_cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a task vector, PEFT adapter or safetensors model directory" in err[0]
    assert guard_cli.main(["distill", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"distillguard distill: error: {tmp_path / 'missing.yaml'}: cannot read (No such file or directory)"
    ]


def test_every_package_error_is_an_input_error():
    from distill_ortho_merge.models import ModelError
    from mergekit_plugins.evals import EvalSpecError
    from mergekit_plugins.lora.config import LoraMergeError
    from mergekit_plugins.search import SearchError
    from mergekit_plugins.yaml_command import ConfigError
    from peft_orthoreg.errors import MissingInputError, OrthoRegInputError, OutputExistsError

    errors = (ModelError, EvalSpecError, LoraMergeError, SearchError, ConfigError, OrthoRegInputError)
    assert all(issubclass(e, InputError) for e in (*errors, MissingInputError, OutputExistsError))
    assert issubclass(MissingInputError, FileNotFoundError) and issubclass(OutputExistsError, FileExistsError)


def test_a_value_error_from_training_or_merging_is_exit_1_not_2(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from mergekit_plugins.lora import merge
    from trl_distillguard import calibrate

    def broken(*args, **kwargs):
        raise ValueError("Expected input batch_size (4) to match target batch_size (3).")  # torch's wording

    monkeypatch.setattr(calibrate, "calibrate", broken)
    tiny = Path(__file__).resolve().parents[1] / "examples" / "configs" / "tiny.yaml"
    assert guard_cli.main(["calibrate", "--config", str(tiny), "--output_dir", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "distillguard calibrate: error: ValueError: Expected input batch_size"
    )
    monkeypatch.setattr(merge, "lora_merge", broken)
    assert merge_cli.main(["lora-merge", str(tmp_path / "c.yaml"), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "mergekit-plugins lora-merge: error: ValueError: Expected input"
    )
