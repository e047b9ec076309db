"""The built-in plugin of `trl_distillguard`, registered through the same entry-point group as any third-party one."""

from __future__ import annotations

from typing import Any

from trl_distillguard.hookspecs import hookimpl


@hookimpl
def trl_distillguard_rewards() -> dict[str, Any]:
    """The reward functions (TRL reward callables, or verifiers) that ship with this project."""
    return {}
