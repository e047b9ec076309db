"""What every benchmark's `run.json` records about the code and the machine that produced it (the code: the git
checkout this package is imported from).

Example:
    >>> len(git_commit().removesuffix("+dirty")) in (0, 40)
    True
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from distill_ortho_merge.outputs import staged_file

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """HEAD's full hash, with `+dirty` when tracked code differs from it (the run is then not reproducible from the
    hash alone; rendered results under `benchmarks/results/` do not count); "" outside a git checkout.

    Example:
        >>> git_commit() == "" or len(git_commit().removesuffix("+dirty")) == 40
        True
    """
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
        status = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 ":!benchmarks/results"],
                                capture_output=True, text=True)  # fmt: skip
    except OSError:  # no git on this machine
        return ""
    if head.returncode != 0:
        return ""
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def machine(threads: int | None = None) -> str:
    """The host, CPU, core count and torch version, and when given the torch threads the run used.

    Example:
        >>> "cores" in machine(1)
        True
    """
    import torch

    text = f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    return text + (f", torch threads {threads}" if threads is not None else "")


def versions() -> dict[str, str]:
    """The framework versions a run used: torch, transformers, trl.

    Example:
        >>> sorted(versions())
        ['torch', 'transformers', 'trl']
    """
    import torch
    import transformers
    import trl

    return {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__}


def write_files(out_dir: Path, files: dict[str, str]) -> None:
    """Write each `{name: text}` into `out_dir` through `outputs.staged_file`, so a reader never sees half a file.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> write_files(out, {"run.json": "{}"})
        >>> sorted(p.name for p in out.iterdir())
        ['run.json']
    """
    for name, text in files.items():
        with staged_file(out_dir / name) as tmp:
            tmp.write_text(text)
