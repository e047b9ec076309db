"""MkDocs hooks: publish the recorded benchmark results with the site and generate the API listings.

- `on_files`: every figure, rendered table and run record under `benchmarks/results/` (not the per-run caches)
  becomes part of the site under `results/`, so the study pages link to the very files the scripts wrote.
- `on_page_markdown`: a line `<!-- api-reference: PACKAGE -->` becomes one mkdocstrings block per name in
  `PACKAGE.__all__`, resolved to the module that defines it — the reference always covers the public API.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PUBLISHED = {".png", ".md", ".json"}
SKIPPED_DIRS = {"cache", "sweeps"}
API_MARKER = re.compile(r"^<!-- api-reference: ([\w.]+) -->$", re.M)


def results_files() -> list[Path]:
    """The files under benchmarks/results/ that the site publishes (relative to benchmarks/)."""
    out = []
    for path in sorted(RESULTS.rglob("*")):
        rel = path.relative_to(RESULTS)
        if path.is_file() and path.suffix in PUBLISHED and not SKIPPED_DIRS & set(rel.parts[:-1]):
            out.append(path.relative_to(RESULTS.parent))
    return out


def on_files(files, config):
    from mkdocs.structure.files import File  # here: the tests import this module without mkdocs

    for rel in results_files():
        files.append(
            File(rel.as_posix(), str(RESULTS.parent), config["site_dir"], config["use_directory_urls"])
        )
    return files


def api_names(package: str) -> list[tuple[str, str | None]]:
    """(public name, dotted path of its definition, None for a constant) for every name in `package.__all__`."""
    module = importlib.import_module(package)
    out = []
    for name in module.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        qualname = getattr(obj, "__qualname__", None)
        out.append((name, f"{obj.__module__}.{qualname}" if qualname else None))
    return out


def api_markdown(package: str) -> str:
    module = importlib.import_module(package)
    lines = []
    lines += [
        f"Every name below is importable from the package (`from {package} import NAME`); each heading says",
        "where it is defined.",
        "",
    ]
    if "__version__" in module.__all__:
        lines += [f"`{package}.__version__`: the installed distribution's version string.", ""]
    for name, path in api_names(package):
        if path is None:  # a constant: no docstring of its own
            lines += [f"`{package}.{name}` = `{getattr(module, name)!r}`", ""]
            continue
        lines += [f"::: {path}", ""]
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    return API_MARKER.sub(lambda m: api_markdown(m.group(1)), markdown)
