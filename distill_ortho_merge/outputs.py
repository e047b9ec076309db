"""Atomic outputs shared by the packages: write into a temporary sibling, move into place only on success.

Standard library only.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with staged_dir(root / "out") as tmp:
    ...     _ = (tmp / "a.txt").write_text("x")
    >>> (root / "out" / "a.txt").read_text(), sorted(p.name for p in root.iterdir())
    ('x', ['out'])
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from distill_ortho_merge.errors import InputError


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished directory into place, replacing `dst` (kept until the new one is in place)."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty directory to write `target`'s content into; it replaces `target` when the block succeeds.

    The directory has `target`'s basename (inside a hidden ``.NAME.partial-*`` sibling of `target`), so tools
    that record their output directory's name (mergekit's model card) name it correctly. The sibling is
    removed in every case: a failed block leaves `target` as it was.
    """
    target = Path(target)
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    (staging / target.name).mkdir(parents=True)
    try:
        yield staging / target.name
        replace_dir(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path of `target` (same suffix) to write; it replaces `target` on success.

    Example:
        >>> import tempfile
        >>> with staged_file(Path(tempfile.mkdtemp()) / "r.json") as tmp:
        ...     _ = tmp.write_text("{}")
        >>> tmp.exists(), tmp.with_name("r.json").read_text()
        (False, '{}')
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.partial-{uuid.uuid4().hex[:8]}{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


#: The overwrite flag of each command-line style, as its framework names it (TRL/transformers, mergekit).
TRL_OVERWRITE = "--overwrite_output_dir true"
MERGEKIT_OVERWRITE = "--overwrite"


@contextlib.contextmanager
def atomic_output_dir(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    inputs: Iterable[Any] = (),
    flag: str = TRL_OVERWRITE,
    what: str = "output_dir",
) -> Iterator[Path]:
    """`check_output_dir`, then yield a temporary sibling of `path` to write into; it replaces `path` only when
    the block succeeds.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_output_dir(root / "out") as tmp:
        ...     _ = (tmp / "a.txt").write_text("x")
        >>> (root / "out" / "a.txt").read_text()
        'x'
    """
    path = check_output_dir(path, overwrite, inputs=inputs, flag=flag, what=what)
    with staged_dir(path) as tmp:  # the project's one temp-sibling-then-rename mechanism
        yield tmp


def check_output_dir(
    path: str | os.PathLike,
    overwrite: bool = False,
    *,
    inputs: Iterable[Any] = (),
    flag: str = TRL_OVERWRITE,
    what: str = "output_dir",
) -> Path:
    """The output-directory rule of every command that writes a directory; call it before any work.

    `path` is refused with a one-line `InputError` (a) when it is occupied (a non-empty directory or a file)
    and `overwrite` is false — the message names `flag`, the command's overwrite flag — and (b), `overwrite` or
    not, when it is, lies inside, or contains one of `inputs` (the paths the same run reads; names that are not
    local paths, such as built-in model names, are skipped). `what` names the option in the message.

    Example:
        >>> import tempfile
        >>> model = Path(tempfile.mkdtemp())
        >>> check_output_dir(model.parent / "new-dir", inputs=[model, "builtin-name"]).name
        'new-dir'
        >>> check_output_dir(model / "sub", overwrite=True, inputs=[model])
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: output_dir: ... lies inside input ...; choose another directory
    """
    path = Path(path)
    check_not_input(path, inputs, what=what)
    occupied = (path.is_dir() and any(path.iterdir())) or (path.exists() and not path.is_dir())
    if occupied and not overwrite:
        raise InputError(f"{what}: {path} exists and is not empty (pass {flag})")
    return path


def check_not_input(path: str | os.PathLike, inputs: Iterable[Any], *, what: str = "output") -> Path:
    """`path`, or a one-line `InputError` when writing it could replace one of `inputs`: it is one of them, lies
    inside one, or contains one. Inputs that do not exist locally (built-in names, hub ids) are skipped; a
    mergekit ``model+lora`` reference counts as both paths.

    Example:
        >>> import tempfile
        >>> data = Path(tempfile.mkdtemp()) / "train.jsonl"
        >>> _ = data.write_text("{}")
        >>> check_not_input(data.parent, [data], what="--output-dir")
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: --output-dir: ... contains input ...; choose another directory
    """
    path = Path(path)
    out = path.resolve()
    for ref in _local_paths(inputs):
        src = ref.resolve()
        if out == src:
            relation = "is"
        elif out.is_relative_to(src):
            relation = "lies inside"
        elif src.is_relative_to(out):
            relation = "contains"
        else:
            continue
        raise InputError(f"{what}: {path} {relation} input {ref}; choose another directory")
    return path


def _local_paths(inputs: Iterable[Any]) -> Iterator[Path]:
    for ref in inputs:
        if ref is None or not isinstance(ref, (str, os.PathLike)) or not str(ref):
            continue
        parts = [Path(ref)]
        text = str(ref)
        if "+" in text and not Path(text).exists():  # mergekit's `model+lora` reference
            parts = [Path(p) for p in text.split("+") if p]
        yield from (p for p in parts if p.exists())


def json_safe(obj: Any) -> Any:
    """`obj` with tensors as lists and non-finite floats as None, so the file is strict JSON.

    Example:
        >>> json_safe({"a": float("nan"), "b": [1.0, float("inf")]})
        {'a': None, 'b': [1.0, None]}
    """
    if hasattr(obj, "tolist") and not isinstance(
        obj, (str, bytes)
    ):  # a tensor or an array (no torch import here)
        obj = obj.tolist()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)
