"""Reading the YAML files users write (configs of every command), with one-line errors that point at the spot.

Example:
    >>> import yaml
    >>> try:
    ...     yaml.safe_load("a: [1")
    ... except yaml.YAMLError as exc:
    ...     print(yaml_error("c.yaml", exc))
    c.yaml:1:6: not valid YAML (expected ',' or ']', but got '<stream end>')
"""

from __future__ import annotations

import os
from typing import Any

from distill_ortho_merge.errors import InputError


def yaml_error(path: str | os.PathLike, exc: Exception) -> str:
    """`file:line:col: not valid YAML (problem)` for a YAML parse error, else `file: first line of the error`."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"{path}: {first}"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML ({problem})"


def read_yaml(path: str | os.PathLike, error: type[Exception] = InputError) -> Any:
    """The content of the YAML file `path`; an unreadable or invalid file raises `error` with one line.

    Example:
        >>> read_yaml("/no/such.yaml")
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: /no/such.yaml: cannot read (No such file or directory)
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise error(yaml_error(path, exc)) from None
