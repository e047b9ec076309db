"""The built-in plugin of `peft_orthoreg`, registered through the same entry-point group as any third-party one."""

from __future__ import annotations

from typing import Any

from peft_orthoreg.hookspecs import hookimpl


@hookimpl
def peft_orthoreg_regularizers() -> dict[str, Any]:
    """The regularisers (callables of a model returning a scalar loss tensor) that ship with this project."""
    return {}
