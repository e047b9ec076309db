"""One command-line convention for `distillguard`, `peft-orthoreg` and `mergekit-plugins`.

Bad input or usage raises `InputError` and ends as one line on stderr with exit status 2; any other failure ends
as one line with exit status 1 (the traceback only with `DOM_TRACEBACK=1`); Ctrl-C ends as one line with status
130 (outputs are staged, so nothing partial is left). `--help` / `--version` are each parser's own.

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


class InputError(ValueError):
    """Bad user input: the CLI prints its one-line message and exits with status 2.

    Example:
        >>> str(InputError("eval dataset: the prompt set is empty"))
        'eval dataset: the prompt set is empty'
    """


def run_cli(
    fn: Callable[[], int],
    prog: str,
    on_interrupt: Callable[[], str] | None = None,
    runtime_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Run a command body under the convention above; `prog` is the full command name (e.g. "mergekit-plugins
    yaml"). `on_interrupt()` may add a hint to the Ctrl-C line (e.g. the resume command). Exceptions of
    `runtime_errors` become one line and status 1; anything else propagates (a bug deserves its traceback).

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
        first = (str(err).strip().splitlines() or [""])[0]
        print(f"{prog}: error: {type(err).__name__}: {first}", file=sys.stderr)
        return 1


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
