"""`distillguard COMMAND --help` fits a screen: usage with --config, the command's own fields, where the
inherited TRL fields are documented; `--help_all` prints them all; `plugins --help` is help, not the listing."""

from __future__ import annotations

import pytest

from trl_distillguard import cli


@pytest.mark.parametrize(
    "command,own,inherited",
    [
        ("calibrate", "--distillability", "GRPOConfig"),
        ("distill", "--recipe", None),
        ("report", "--teachers", None),
        ("diagnose", "--teacher", None),
    ],
)
def test_help_fits_a_screen(command, own, inherited, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) < 50 and all(len(line) <= 120 for line in lines)
    assert (
        lines[0].startswith(f"usage: distillguard {command} --config FILE.yaml") and "--help_all" in lines[0]
    )
    assert own in out
    if inherited:
        assert f"every field of {inherited}" in out and "https://huggingface.co/docs/trl/" in out
        assert "--logging_steps" not in out  # inherited fields are not listed one by one


def test_help_all_prints_every_inherited_field(capsys):
    with pytest.raises(SystemExit):
        cli.main(["calibrate", "--help_all"])
    out = capsys.readouterr().out
    assert "--logging_steps" in out and "--distillability" in out and len(out.splitlines()) > 200


def test_plugins_help_is_help(capsys):
    assert cli.main(["plugins", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: distillguard plugins") and "math_answer" not in out
