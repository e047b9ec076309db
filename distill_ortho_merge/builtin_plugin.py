"""The built-in plugin of the shared task layer, registered through the same entry-point group as any third-party one.

Example:
    >>> from distill_ortho_merge.plugins import registry
    >>> registry()["math_answer"].builtin
    True
"""

from __future__ import annotations

from typing import Any

from distill_ortho_merge.hookspecs import hookimpl


@hookimpl
def distill_ortho_merge_verifiers() -> dict[str, Any]:
    """The task verifiers (TRL reward callables) that ship with this project; see `distill_ortho_merge.verifiers`."""
    from distill_ortho_merge.verifiers import VERIFIERS

    return dict(VERIFIERS)


@hookimpl
def distill_ortho_merge_datasets() -> dict[str, Any]:
    """The generated built-in prompt sets (`arithmetic`, `arithmetic_chat`); see `distill_ortho_merge.data`."""
    from distill_ortho_merge.data import BUILTIN_DATASETS

    return dict(BUILTIN_DATASETS)


@hookimpl
def distill_ortho_merge_instruction_checks() -> dict[str, Any]:
    """The IFEval checks and the IFBench subset that ship with this project (`distill_ortho_merge.verifiers`)."""
    from distill_ortho_merge.verifiers.instructions import INSTRUCTION_CHECKERS

    return dict(INSTRUCTION_CHECKERS)
