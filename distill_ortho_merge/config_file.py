"""Reading a YAML `--config` and flags of a TRL-style command with one-line errors, before TRL's parser sees them
(`distillguard` subcommands, `peft-orthoreg train`).

- a file that is not YAML: ``file:line:col: problem``; not a mapping: says so;
- an unknown key (YAML or ``--flag``): names it and the closest valid field;
- no accelerator: ``use_cpu: true`` and ``bf16: false`` unless the config or the command line sets them;
- ``-h`` / ``--help``: one screen (`short_help`); ``--help_all``: every field.

Example:
    >>> closest("learning_rte", ["learning_rate", "lr_scheduler_type"])
    'learning_rate'
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from distill_ortho_merge.cli import InputError
from distill_ortho_merge.devices import has_accelerator
from distill_ortho_merge.yaml_files import read_yaml


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name most like `name` (difflib), or None.

    Example:
        >>> closest("xyz", ["output_dir"]) is None
        True
    """
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return match[0] if match else None


def read_yaml_config(path: str) -> dict[str, Any]:
    """The YAML mapping in `path`; `InputError` with file:line:col when it is not YAML.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = (Path(d) / "c.yaml").write_text("learning_rate: 0.001")
        ...     read_yaml_config(f"{d}/c.yaml")
        {'learning_rate': 0.001}
    """
    config = read_yaml(path)
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a YAML mapping of field: value, got {type(config).__name__}")
    return config


def _field_names(parser: Any) -> set[str]:
    names = {"config", "env", "help"}
    for dtype in getattr(parser, "dataclass_types", ()):
        names.update(f.name for f in dataclasses.fields(dtype) if f.init)
    return names


def parse_config(parser: Any, argv: Sequence[str], *, cpu_defaults: bool = False) -> tuple[Any, ...]:
    """`parser.parse_args_and_config(argv)` (a TRL `TrlParser`) after the checks of the module docstring.

    Example:
        >>> import dataclasses
        >>> from trl import TrlParser
        >>> @dataclasses.dataclass
        ... class Args:
        ...     output_dir: str = "out"
        >>> parse_config(TrlParser((Args,)), ["--output_dir", "x"])
        (Args(output_dir='x'),)
        >>> parse_config(TrlParser((Args,)), ["--output_dri", "x"])
        Traceback (most recent call last):
        distill_ortho_merge.errors.InputError: command line: unknown key 'output_dri' (did you mean 'output_dir'?)
    """
    from distill_ortho_merge.short_help import maybe_print_help

    argv = list(argv)
    maybe_print_help(parser, argv)  # one screen; --help_all prints every inherited field too
    config: dict[str, Any] = {}
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise InputError("--config: give the path of a YAML file")
        config = read_yaml_config(argv[i + 1])
        where = argv[i + 1]
    valid = _field_names(parser)
    flags = [a[2:].split("=", 1)[0] for a in argv if a.startswith("--")]
    for key, origin in [*((k, where) for k in config), *((f, "command line") for f in flags)]:
        key = key.replace("-", "_")
        if key not in valid and not (key.startswith("no_") and key[3:] in valid):  # --no_x negates a bool
            hint = closest(key, valid)
            raise InputError(
                f"{origin}: unknown key {key!r}" + (f" (did you mean {hint!r}?)" if hint else "")
            )
    if cpu_defaults and not has_accelerator():
        given = set(config) | {f.replace("-", "_") for f in flags}
        argv += [
            arg for key, arg in (("use_cpu", "--use_cpu=true"), ("bf16", "--bf16=false")) if key not in given
        ]
    return parser.parse_args_and_config(argv)
