"""The documentation site (mkdocs.yml, docs/) stays true to the code.

- A code block whose first line names a project file (`# examples/...py`) is that file, verbatim, and the file
  exists — in README.md and in every page.
- Every command a guide shows names a real subcommand and existing files.
- The API pages cover every name in the packages' `__all__`; every page is in the navigation.
- `mkdocs build --strict` passes (slow; needs the `docs` extra).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("distill_ortho_merge", "trl_distillguard", "peft_orthoreg", "mergekit_plugins")
CLIS = {
    "distillguard": "trl_distillguard",
    "peft-orthoreg": "peft_orthoreg",
    "mergekit-plugins": "mergekit_plugins",
}
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
QUOTED = re.compile(r"# ((?:examples|benchmarks|docs)/\S+\.(?:yaml|yml|py|toml|json))")


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "notes" not in p.relative_to(DOCS).parts)


def blocks(path: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", [ROOT / "README.md", *pages()], ids=lambda p: str(p.relative_to(ROOT)))
def test_quoted_files_exist_and_match(path):
    for _, body in blocks(path):
        first, _, rest = body.partition("\n")
        match = QUOTED.fullmatch(first.strip())
        if match:
            quoted = ROOT / match.group(1)
            assert quoted.is_file(), f"{path.name} quotes {match.group(1)}, which does not exist"
            text = quoted.read_text(encoding="utf-8")
            # A file that starts with its own path line is quoted whole; any other file after that line.
            assert (body if text.startswith(first + "\n") else rest) == text, (
                f"{path.name}'s copy of {match.group(1)} differs"
            )


def subcommands(cli: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", f"{CLIS[cli]}.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return set(re.findall(r"^\s{2,4}([a-z][a-z-]+)\s", proc.stdout, re.M))


def guide_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in sorted((DOCS / "guides").glob("*.md")):
        for lang, body in blocks(path):
            if lang == "bash":
                text = body.replace("\\\n", " ")
                out += [
                    (path.name, shlex.split(line, comments=True))
                    for line in text.splitlines()
                    if line.strip()
                ]
    return out


def test_guide_commands_name_real_subcommands_and_files():
    known = {cli: subcommands(cli) for cli in CLIS}
    for page, argv in guide_commands():
        if not argv:
            continue
        if argv[0] in CLIS:
            assert argv[1] in known[argv[0]], f"{page}: `{argv[0]} {argv[1]}` is not a subcommand"
        if argv[:2] == ["torchrun", "--nproc_per_node"] and "-m" in argv:
            module = argv[argv.index("-m") + 1]
            assert importlib.util.find_spec(module), f"{page}: no module {module}"
        for arg in argv:
            if re.fullmatch(r"(examples|benchmarks)/[\w/.-]+\.(py|yaml|yml|jsonl|toml)", arg):
                assert (ROOT / arg).exists(), f"{page}: {arg} does not exist"


def test_api_pages_cover_every_public_name():
    hooks = load_hooks()
    api_text = {p: (DOCS / "api" / f"{p}.md").read_text(encoding="utf-8") for p in PACKAGES}
    for package in PACKAGES:
        assert f"<!-- api-reference: {package} -->" in api_text[package], (
            f"api/{package}.md lists no public names"
        )
        module = importlib.import_module(package)
        names = [n for n in module.__all__ if not n.startswith("__")]
        resolved = hooks.api_names(package)
        assert [name for name, _ in resolved] == names
        for name, path in resolved:  # the generated `::: path` is where the object really lives
            module_name, _, qualname = path.rpartition(".")
            assert getattr(importlib.import_module(module_name), qualname) is getattr(module, name)


def test_every_page_is_in_the_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def walk(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    nav = set(walk(config["nav"]))
    on_disk = {p.relative_to(DOCS).as_posix() for p in pages()}
    assert nav == on_disk


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocstrings", reason="needs the docs extra: pip install -e '.[docs]'")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "peft_orthoreg" / "index.html").is_file()


def inline_python(path: Path) -> list[str]:
    """The Python blocks of a page that do not quote a file: each must run on its own."""
    return [
        body for lang, body in blocks(path) if lang == "python" and not QUOTED.fullmatch(body.split("\n")[0])
    ]


@pytest.mark.parametrize("path", [ROOT / "README.md", *pages()], ids=lambda p: str(p.relative_to(ROOT)))
def test_inline_python_blocks_run(path, tmp_path):
    for body in inline_python(path):
        proc = subprocess.run(
            [sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"{path.name}: a Python block fails:\n{body}\n{proc.stderr[-2000:]}"


def workdir(tmp_path: Path) -> Path:
    """A scratch copy of examples/ (the guides' commands write next to it), with tests/ for the fixture builders."""
    work = tmp_path / "work"
    ignore = shutil.ignore_patterns("calibrate_tiny", "report_tiny", "smollm2", "__pycache__")
    shutil.copytree(ROOT / "examples", work / "examples", ignore=ignore)
    (work / "tests").symlink_to(ROOT / "tests")
    return work


def run_script(work: Path, script: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, script], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{script} fails:\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_guide_scripts_run_as_written(tmp_path):
    """The guides' Python programs (examples/guides/), after the fixture builders the guides name."""
    work = workdir(tmp_path)
    run_script(work, "examples/data/calibrate_tiny.py")
    out = run_script(work, "examples/guides/calibrate.py")
    assert "rewards/calibration/mean" in out and (work / "out/calibrate_py/teacher/config.json").is_file()
    run_script(work, "examples/data/merge_tiny.py")
    out = run_script(work, "examples/guides/orthoreg_lora.py")
    assert out.count("orthoreg per step") == 3
    for task in ("task_math", "task_code", "task_chat"):
        assert (work / "adapters" / task / "adapter_config.json").is_file()
        assert (work / "models" / f"{task}_orthoreg" / "config.json").is_file()


@pytest.mark.slow
def test_more_guide_scripts_run_as_written(tmp_path):
    work = workdir(tmp_path)
    run_script(work, "examples/data/calibrate_tiny.py")
    assert "rewards/calibration/mean" in run_script(work, "examples/guides/calibrate_stock_trl.py")
    run_script(work, "examples/data/merge_tiny.py")
    out = run_script(work, "examples/guides/orthoreg_full.py")
    assert "orthoreg per step" in out and "‖τ‖" in out


# Guides whose every command runs offline on the tiny fixtures, in order, in a fresh copy of examples/.
RUNNABLE_GUIDES = ("calibrate", "distil-report", "orthoreg", "merging", "lora-merge")


@pytest.mark.slow
@pytest.mark.parametrize("guide", RUNNABLE_GUIDES)
def test_guide_commands_run_as_written(guide, tmp_path):
    work = workdir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for lang, body in blocks(DOCS / "guides" / f"{guide}.md"):
        if lang != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            proc = subprocess.run(
                ["bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=900
            )
            assert proc.returncode == 0, f"{guide}.md: `{line}` fails:\n{proc.stderr[-3000:]}"
