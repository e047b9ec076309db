"""The built-in plugin of `trl_distillguard`, registered through the same entry-point group as any third-party one.

Example:
    >>> from trl_distillguard.plugins import registry
    >>> registry()["math_answer"].builtin
    True
"""

from __future__ import annotations

from typing import Any

from trl_distillguard.hookspecs import hookimpl


@hookimpl
def trl_distillguard_rewards() -> dict[str, Any]:
    """The task verifiers (TRL reward callables) that ship with this project; see `trl_distillguard.verifiers`."""
    from trl_distillguard.verifiers import VERIFIERS

    return dict(VERIFIERS)


@hookimpl
def trl_distillguard_datasets() -> dict[str, Any]:
    """The generated built-in prompt sets (`arithmetic`, `arithmetic_chat`); see `trl_distillguard.data`."""
    from trl_distillguard.data import BUILTIN_DATASETS

    return dict(BUILTIN_DATASETS)


@hookimpl
def trl_distillguard_instruction_checks() -> dict[str, Any]:
    """The IFEval checks and the IFBench subset that ship with this project (`trl_distillguard.verifiers`)."""
    from trl_distillguard.verifiers.instructions import INSTRUCTION_CHECKERS

    return dict(INSTRUCTION_CHECKERS)
