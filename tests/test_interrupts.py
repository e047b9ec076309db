"""Ctrl-C: one line (exit 130) at any moment, also while the command is still importing its frameworks; an
interrupted calibration that saved no checkpoint leaves nothing behind, and the same command runs again."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from trl_distillguard import cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "configs" / "tiny.yaml"


def test_ctrl_c_while_importing_is_one_line(monkeypatch, capsys):
    real = importlib.import_module

    def slow_import(name, *args):
        if name == "trl_distillguard.calibrate":
            raise KeyboardInterrupt  # as if Ctrl-C hit inside `import trl`
        return real(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", slow_import)
    assert cli.main(["calibrate", "--config", str(TINY)]) == 130
    assert capsys.readouterr().err == "distillguard calibrate: interrupted\n"


# Put first on a child's PYTHONPATH as `sitecustomize`: `import trl` touches MARKER, then sleeps, so a SIGINT sent
# once MARKER exists lands inside the framework import (a fixed 1.5 s assumed the import was still running)
SLOW_TRL_IMPORT = """
import importlib.abc, pathlib, sys, time
class SlowTrl(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "trl":
            pathlib.Path(MARKER).touch()
            time.sleep(120)
        return None
sys.meta_path.insert(0, SlowTrl())
"""


def test_sigint_during_startup_of_the_real_command(tmp_path):
    """A real process, SIGINT while it is importing TRL: one line, exit 130, nothing written."""
    hook, run, marker = tmp_path / "hook", tmp_path / "run", tmp_path / "importing-trl"
    hook.mkdir()
    run.mkdir()
    (hook / "sitecustomize.py").write_text(f"MARKER = {str(marker)!r}\n{SLOW_TRL_IMPORT}")
    env = {**os.environ, "PYTHONPATH": f"{hook}{os.pathsep}{ROOT}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "trl_distillguard.cli", "calibrate", "--config", str(TINY),
         "--output_dir", str(run / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=run,
        # as in a terminal: a job started in the background (`cmd &` in a script, as CI may be) inherits SIGINT
        # ignored, and so would the child, which then never sees the signal (the "Ctrl-C flake")
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate(timeout=120)[1][-2000:]  # the command reached `import trl`
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    # 130, or, rarely under load, death by the signal itself after the line was printed (a shell shows 130 too);
    # the one line and the empty folder are the contract either way
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err[-2000:])
    assert lines == ["distillguard calibrate: interrupted"], err[-2000:]
    assert list(run.iterdir()) == []


def test_interrupted_run_without_checkpoint_is_removed(tmp_path, monkeypatch, capsys):
    import trl_distillguard.calibrate as calibrate

    out = tmp_path / "cal"
    partial = out.with_name("cal.partial")

    def interrupted(script, args, model_args):
        partial.mkdir()
        (partial / "trainer_state.json.tmp").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(calibrate, "calibrate", interrupted)
    assert cli.main(["calibrate", "--config", str(TINY), "--output_dir", str(out)]) == 130
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "distillguard calibrate: interrupted; no checkpoint was saved; run the same command again to start over"
    )
    assert not partial.exists()


def test_rerun_removes_a_partial_folder_without_checkpoint_and_names_a_real_one(tmp_path):
    """A partial folder left by a killed process (no Ctrl-C handler ran): without a checkpoint it is removed; with
    checkpoints the error names the latest one, not `checkpoint-N`."""
    from distill_ortho_merge.cli import InputError
    from trl_distillguard.calibrate import _check_output_dir

    out = tmp_path / "cal"
    partial = tmp_path / "cal.partial"
    partial.mkdir()
    assert _check_output_dir(out, None) == partial and not partial.exists()
    for n in (2, 10):
        (partial / f"checkpoint-{n}").mkdir(parents=True)
    try:
        _check_output_dir(out, None)
    except InputError as err:
        assert f"--resume_from_checkpoint {partial}/checkpoint-10," in str(err)
    else:
        raise AssertionError("a partial run with checkpoints must not be removed")
    assert (partial / "checkpoint-2").is_dir()
