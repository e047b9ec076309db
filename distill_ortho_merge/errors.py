"""The one base class for bad input, shared by the three packages (standard library only).

Each package subclasses `InputError` for its own refusals (`mergekit_plugins`: `ConfigError`, `SearchError`,
`LoraMergeError`, `EvalSpecError`; `peft_orthoreg`: `OrthoRegInputError`; the shared layer: `ModelError`), and
`distill_ortho_merge.cli.run_cli` maps it, and only it, to one line on stderr and exit status 2. It derives from
`ValueError`, so library callers that catch `ValueError` keep working.

Example:
    >>> class MyPluginError(InputError):
    ...     "Bad input to my plugin."
    >>> isinstance(MyPluginError("x"), ValueError)
    True
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the CLI prints its one-line message and exits with status 2.

    Example:
        >>> str(InputError("eval dataset: the prompt set is empty"))
        'eval dataset: the prompt set is empty'
    """
