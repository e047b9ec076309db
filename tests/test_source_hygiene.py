"""Static checks of the source tree: no commented-out doctest examples (they always pass), no import-path edits,
and no test importing benchmark code (what a test and a benchmark share lives in `distill_ortho_merge`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (
    "distill_ortho_merge",
    "trl_distillguard",
    "peft_orthoreg",
    "mergekit_plugins",
    "tests",
    "benchmarks",
)
COMMENTED_EXAMPLE = re.compile(r"^\s*>>> #")
PATH_EDIT = re.compile(r"\bsys\.path\b|syspath_prepend\(.*(ROOT|__file__|tests|benchmarks)")


def python_files() -> list[Path]:
    files = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")]
    files += list((ROOT / "examples").rglob("*.py")) + list(ROOT.glob("*.py"))
    return sorted(files)


def offending_lines(pattern: re.Pattern[str], skip: Path | None = None) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in python_files()
        if path != skip
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]


def test_the_scan_sees_the_tree():
    names = {p.relative_to(ROOT).as_posix() for p in python_files()}
    assert {"tests/conftest.py", "distill_ortho_merge/testing.py", "benchmarks/selfcheck.py"} <= names


def test_no_commented_out_doctest_examples():
    assert not offending_lines(COMMENTED_EXAMPLE), "make the example run on tiny inputs, or write prose"


def test_no_import_path_edits():
    # The pattern would match this file's own source: it is the one file not scanned.
    found = offending_lines(PATH_EDIT, skip=Path(__file__).resolve())
    assert not found, "import from distill_ortho_merge instead of editing the import path:\n" + "\n".join(
        found
    )


def test_the_path_edit_pattern_catches_the_usual_forms():
    for line in (
        "sys.path.insert(0, str(ROOT / 'tests'))",
        "sys.path[:0] = paths",
        'monkeypatch.syspath_prepend(str(ROOT / "tests"))',
    ):
        assert PATH_EDIT.search(line), line
    assert not PATH_EDIT.search(
        "monkeypatch.syspath_prepend(str(tmp_path))"
    )  # a plugin package made by a test


def benchmark_imports(path: Path) -> list[str]:
    """The benchmark modules `path` imports, by import statement or by file path (importlib, runpy)."""
    modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} | {"benchmarks"}
    source = path.read_text(encoding="utf-8")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in modules]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in modules:
            found.append(node.module)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            call = ast.get_source_segment(source, node) or ""
            if name in {"spec_from_file_location", "run_path", "import_module"} and "benchmarks" in call:
                found.append(call)
    return found


def test_no_test_imports_benchmark_code():
    found = {p.name: benchmark_imports(p) for p in (ROOT / "tests").glob("*.py")}
    assert not {k: v for k, v in found.items() if v}, "run the script or read its result files instead"


def test_the_benchmark_import_scan_catches_the_usual_forms(tmp_path):
    path = tmp_path / "t.py"
    path.write_text(
        "import lora_merge\nfrom merge_speed import loss_eval\nfrom distill_ortho_merge import testing\n"
        "spec = importlib.util.spec_from_file_location('m', ROOT / 'benchmarks' / 'model_load.py')\n"
    )
    found = benchmark_imports(path)
    assert found[:2] == ["lora_merge", "merge_speed"] and len(found) == 3 and "model_load.py" in found[2]


def unresolved_imports(path: Path) -> list[str]:
    """Module-level imports of a script that neither a sibling file nor the environment provides."""
    import importlib.util

    siblings = {p.stem for p in path.parent.glob("*.py")}
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module.split(".")[0])
    return [n for n in names if n not in siblings and importlib.util.find_spec(n) is None]


def test_every_script_import_resolves():
    # Scripts run as `python benchmarks/x.py` import their siblings by name and everything else from the
    # installed packages: a module moved into distill_ortho_merge must not leave a stale import behind.
    scripts = [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "examples").rglob("*.py")]
    found = {p.name: unresolved_imports(p) for p in scripts}
    assert not {k: v for k, v in found.items() if v}


def test_the_import_resolution_check_catches_a_stale_import(tmp_path):
    (tmp_path / "sibling.py").write_text("")
    (tmp_path / "script.py").write_text("import json\nimport sibling\nfrom run_record import git_commit\n")
    assert unresolved_imports(tmp_path / "script.py") == ["run_record"]
