"""One command-line convention for `distillguard`, `peft-orthoreg` and `mergekit-plugins`.

Flag styles follow each command's framework. `distillguard` follows TRL (`TrlParser`: snake_case options, a YAML
`--config`, `--output_dir`); `peft-orthoreg` follows TRL too (PEFT has no command line and trains with TRL), the
kebab-case spellings accepted as `TrlParser` accepts them; `mergekit-plugins` follows `mergekit-yaml`
(kebab-case options, positional CONFIG and OUT). The same concepts behave the same in all three: `--help` and
`--version` exit 0; the overwrite flag is `--overwrite_output_dir` in the TRL-style commands (as TRL and
transformers name it) and `--overwrite` in `mergekit-plugins`; every command that writes a directory follows one
output-directory rule (`distill_ortho_merge.outputs.check_output_dir`: an occupied output is refused unless the
overwrite flag is given, a path the run reads is never replaced).

Bad input or usage raises `InputError` (`distill_ortho_merge.errors`; each package subclasses it) and ends as one
line on stderr with exit status 2; any other failure ends as one line with exit status 1 (the traceback only
with `DOM_TRACEBACK=1`); Ctrl-C ends as one line with status 130 (outputs are staged, so nothing partial is left). `--help` / `--version` are each parser's own.

Example:
    >>> def body():
    ...     raise InputError("recipe: 'x' is not a recipe")
    >>> run_cli(body, "distillguard distill")  # stderr: "distillguard distill: error: recipe: 'x' is not a recipe"
    2
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from distill_ortho_merge.errors import InputError

__all__ = ["InputError", "one_line", "print_plugins", "run_cli"]


def run_cli(
    fn: Callable[[], int],
    prog: str,
    on_interrupt: Callable[[], str] | None = None,
    runtime_errors: tuple[type[BaseException], ...] = (Exception,),
) -> int:
    """Run a command body under the convention above; `prog` is the full command name (e.g. "mergekit-plugins
    yaml"). `on_interrupt()` may add a hint to the Ctrl-C line (e.g. the resume command). `InputError` (and its
    subclasses) alone is bad input (status 2); exceptions of `runtime_errors` (default: any other `Exception`,
    a `ValueError` from inside torch included) become one line and status 1.

    Example:
        >>> run_cli(lambda: 0, "peft-orthoreg plugins")
        0
    """
    try:
        return int(fn() or 0)
    except InputError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = on_interrupt() if on_interrupt else ""
        print(f"{prog}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except runtime_errors as err:
        if os.environ.get("DOM_TRACEBACK") == "1":
            traceback.print_exc()
        print(f"{prog}: error: {one_line(err)} (DOM_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


def one_line(exc: BaseException) -> str:
    """A short, single-line description of an exception (pydantic errors condensed to their first message).

    Example:
        >>> one_line(RuntimeError("CUDA out of memory." + chr(10) + "Tried to allocate 2 GiB"))
        'RuntimeError: CUDA out of memory.'
    """
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            return f"{loc + ': ' if loc else ''}{first.get('msg')}"
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def print_plugins(items: Mapping[str, Any], details: Callable[[Any], str] | None = None) -> int:
    """The `plugins` listing of every CLI: one line per item, `name<TAB>distribution<TAB>plugin`, and a fourth
    column `details(item.obj)` where given (e.g. what the item declares it can do).

    Example:
        >>> from types import SimpleNamespace
        >>> print_plugins({"tsv": SimpleNamespace(distribution="distill-ortho-merge", plugin="builtin")})  # doctest: +NORMALIZE_WHITESPACE
        tsv distill-ortho-merge builtin
        0
    """
    for name, item in sorted(items.items()):
        extra = f"\t{details(item.obj)}" if details is not None else ""
        print(f"{name}\t{item.distribution}\t{item.plugin}{extra}")
    return 0
