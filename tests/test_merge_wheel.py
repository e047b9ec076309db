"""Slow: build the wheel, install it into a fresh venv, run plain `mergekit-yaml` with `merge_method: tsv`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from merge_helpers import assert_merge_equals, reference_merge, save_task_models, write_config

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_install_makes_plain_mergekit_yaml_see_tsv(tmp_path, teacher_dir, make_finetuned_copies):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("distill_ortho_merge", "mergekit_plugins", "trl_distillguard", "peft_orthoreg"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
    )
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # The dependencies (torch, mergekit, ...) come from this environment as a plain path entry (its .pth
    # files, including our editable install's finder, are not processed there).
    (purelib / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], check=True)
    assert (purelib / "distill_ortho_merge_mergekit_plugins.pth").is_file()
    # `mergekit-yaml` exactly as pip would generate its console script.
    script = venv / "bin" / "mergekit-yaml"
    script.write_text(
        f"#!{python}\nimport sys\nfrom mergekit.scripts.run_yaml import main\nif __name__ == '__main__':\n"
        "    sys.exit(main())\n"
    )
    script.chmod(0o755)

    tasks = save_task_models(tmp_path / "tasks", teacher_dir, make_finetuned_copies, n=3)
    cfg = write_config(tmp_path / "c.yaml", "tsv", teacher_dir, tasks, alpha=0.8)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MERGEKIT_PLUGINS_AUTOLOAD")}
    where = subprocess.run(
        [str(python), "-c", "import mergekit_plugins; print(mergekit_plugins.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert where.startswith(str(venv))  # the wheel, not the source tree
    proc = subprocess.run(
        [str(script), str(cfg), str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_merge_equals(tmp_path / "out", reference_merge("tsv", teacher_dir, tasks, alpha=0.8))
    listing = subprocess.run(
        [str(venv / "bin" / "mergekit-plugins"), "list"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert any(line.startswith("tsv ") and "distill-ortho-merge" in line for line in listing.splitlines())
