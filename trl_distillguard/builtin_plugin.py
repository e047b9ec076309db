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
