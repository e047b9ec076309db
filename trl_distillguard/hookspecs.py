"""Hook specifications of `trl_distillguard`: what a plugin may provide.

A plugin is any module or object with `@hookimpl` functions, registered under the entry-point group
`trl_distillguard` in its distribution's metadata, for example in pyproject.toml::

    [project.entry-points.trl_distillguard]
    my_plugin = "my_package.my_module"

and in `my_package/my_module.py`::

    from trl_distillguard.hookspecs import hookimpl

    @hookimpl
    def trl_distillguard_rewards():
        return {"my_item": my_item}
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("trl_distillguard")
hookimpl = pluggy.HookimplMarker("trl_distillguard")


@hookspec
def trl_distillguard_rewards() -> dict[str, Any] | list[Any]:
    """Return the reward functions (TRL reward callables, or verifiers) this plugin provides, as a mapping name -> item (or a list of named items)."""


@hookspec
def trl_distillguard_datasets() -> dict[str, Any]:
    """Return named prompt datasets, as a mapping name -> factory(size, seed) -> list of rows (each with a
    ``prompt`` and the gold columns its verifier reads); `load_dataset_rows(name)` finds them."""


@hookspec
def trl_distillguard_instruction_checks() -> dict[str, Any]:
    """Return IFEval-style checks, as a mapping instruction id -> check(response, **kwargs) -> bool; the
    `instruction_following` verifiers use them."""
