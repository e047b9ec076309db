"""Each first-hour mistake gets one line on stderr, exit status 2 and nothing partial on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mergekit_plugins import cli as merge_cli
from trl_distillguard import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "configs" / "tiny.yaml"


def one_error_line(capsys, prog: str) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(prog), err
    return err[0]


@pytest.mark.parametrize("command", ["calibrate", "distill", "report", "diagnose"])
def test_not_yaml_names_file_line_and_column(command, tmp_path, capsys):
    bad = tmp_path / "notes.yaml"
    bad.write_text("output_dir: out\nmodels: [a, b\n")
    assert cli.main([command, "--config", str(bad)]) == 2
    assert f"{bad}:3:1: not valid YAML" in one_error_line(capsys, f"distillguard {command}: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.yaml"]


def test_mergekit_plugins_not_yaml(tmp_path, capsys):
    bad = tmp_path / "merge.yaml"
    bad.write_text("merge_method: tsv\n  base_model: x\n")
    assert merge_cli.main(["yaml", str(bad), str(tmp_path / "out")]) == 2
    assert f"{bad}:2:13: not valid YAML" in one_error_line(capsys, "mergekit-plugins yaml: error:")
    assert not (tmp_path / "out").exists()


def test_config_key_typo_names_the_closest_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.read_text() + "learning_rte: 1.0e-4\n")
    assert cli.main(["calibrate", "--config", str(cfg)]) == 2
    line = one_error_line(capsys, "distillguard calibrate: error:")
    assert "unknown key 'learning_rte' (did you mean 'learning_rate'?)" in line
    assert cli.main(["distill", "--recipie", "sft"]) == 2
    assert "command line: unknown key 'recipie' (did you mean 'recipe'?)" in capsys.readouterr().err


def test_non_empty_output_dir_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    # the models do not exist: the output check must come first
    argv = ["--teacher_model_name_or_path", "/no/t", "--student_model_name_or_path", "/no/s",
            "--dataset_name_or_path", "x.jsonl", "--output_dir", str(out)]  # fmt: skip
    assert cli.main(["distill", *argv]) == 2
    assert "exists and is not empty (pass --overwrite_output_dir true)" in one_error_line(
        capsys, "distillguard"
    )
    assert cli.main(["calibrate", "--config", str(TINY), "--output_dir", str(out)]) == 2
    assert "exists and is not empty" in one_error_line(capsys, "distillguard calibrate")
    # the flag it suggests is accepted: the run gets past the output check (and stops at the missing dataset)
    argv = ["--config", str(TINY), "--output_dir", str(out), "--overwrite_output_dir", "true"]
    assert cli.main(["calibrate", *argv, "--dataset_name", str(tmp_path / "none.jsonl")]) == 2
    assert "dataset_name" in one_error_line(capsys, "distillguard calibrate")
    assert merge_cli.main(["yaml", str(ROOT / "examples/configs/merge_tsv.yaml"), str(out)]) == 2
    assert "exists and is not empty (pass --overwrite)" in one_error_line(capsys, "mergekit-plugins yaml")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_ctrl_c_is_one_line_with_the_resume_hint(capsys):
    from distill_ortho_merge.cli import run_cli

    def body() -> int:
        raise KeyboardInterrupt

    assert run_cli(body, "distillguard calibrate", on_interrupt=lambda: "resume with: x") == 130
    assert (
        one_error_line(capsys, "distillguard calibrate")
        == "distillguard calibrate: interrupted; resume with: x"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only defaults")
def test_cpu_settings_are_picked_without_an_accelerator(tmp_path):
    from trl import ModelConfig, TrlParser

    from trl_distillguard.calibrate import CalibrateArguments
    from trl_distillguard.config_file import parse_config
    from trl_distillguard.distillguard_config import DistillGuardConfig

    cfg = tmp_path / "c.yaml"
    lines = [line for line in TINY.read_text().splitlines() if not line.startswith(("use_cpu", "bf16"))]
    cfg.write_text("\n".join(lines) + "\n")
    parser = TrlParser((CalibrateArguments, DistillGuardConfig, ModelConfig))
    _, args, _ = parse_config(parser, ["--config", str(cfg)], cpu_defaults=True)
    assert args.use_cpu and not args.bf16


def test_empty_dataset_names_the_file(tmp_path):
    from distill_ortho_merge.cli import InputError
    from distill_ortho_merge.evaluate import load_rows

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match=f"eval dataset: {empty} has no rows"):
        load_rows(str(empty), "eval dataset")


def test_ia3_adapter_is_named(tmp_path, capsys):
    from peft_orthoreg.cli import main

    adapter = tmp_path / "ia3"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"peft_type": "IA3"}')
    shutil.copy(
        Path(__file__), adapter / "adapter_model.safetensors"
    )  # never read: the config is refused first
    assert (
        main(["export", str(adapter), "--base", str(tmp_path / "base"), "--out", str(tmp_path / "out")]) == 2
    )
    assert "peft_type is 'IA3'; only LORA adapters are read" in one_error_line(capsys, "peft-orthoreg")
    assert not (tmp_path / "out").exists()


def test_ctrl_c_in_the_other_clis(monkeypatch, capsys):
    import mergekit_plugins.listing as listing

    def boom():
        raise KeyboardInterrupt

    monkeypatch.setattr(listing, "format_methods", boom)
    assert merge_cli.main(["list"]) == 130
    assert one_error_line(capsys, "mergekit-plugins") == "mergekit-plugins list: interrupted"


def test_ctrl_c_during_calibrate_names_the_resume_command(tmp_path, monkeypatch, capsys):
    import trl_distillguard.calibrate as calibrate

    out = tmp_path / "cal"

    def interrupted(script, args, model_args):
        (out.with_name("cal.partial") / "checkpoint-2").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(calibrate, "calibrate", interrupted)
    assert cli.main(["calibrate", "--config", str(TINY), "--output_dir", str(out)]) == 130
    line = one_error_line(capsys, "distillguard calibrate: interrupted; resume with: distillguard calibrate")
    assert line.endswith(
        f"--output_dir {out} --resume_from_checkpoint {out.with_name('cal.partial')}/checkpoint-2"
    )
