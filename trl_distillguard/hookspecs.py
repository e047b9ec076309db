"""Hook specifications of `trl_distillguard`: what a plugin may provide.

Task verifiers, prompt datasets and instruction checks are shared by every package: register those through
`distill_ortho_merge.hookspecs`. This group is for TRL reward functions that only calibration uses.

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
    """Return TRL reward functions this plugin provides, as a mapping name -> reward (or a list of named items)."""


@hookspec
def trl_distillguard_attackers() -> dict[str, Any] | list[Any]:
    """Return distillation attackers for `distillguard report`, as a mapping name -> `Attacker` (or a list of
    `Attacker`s, named by their `name`). An attacker decides the training data of a student; subclass
    `trl_distillguard.attackers.Attacker` and override `train_samples` (e.g. best-of-n, paraphrasing)."""
