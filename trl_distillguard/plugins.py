"""Plugin discovery for `trl_distillguard` (entry-point group `trl_distillguard`, pluggy).

Set `TRL_DISTILLGUARD_THIRD_PARTY=0` to load only this project's built-ins.

Example:
    >>> from trl_distillguard.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> all(registry()[n].distribution for n in names)
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from distill_ortho_merge.cli import InputError
from distill_ortho_merge.registry import PluginItem, PluginRegistry
from trl_distillguard import hookspecs

GROUP = "trl_distillguard"
THIRD_PARTY_ENV = "TRL_DISTILLGUARD_THIRD_PARTY"

plugin_registry = PluginRegistry(GROUP, hookspecs, "trl_distillguard_rewards", env_var=THIRD_PARTY_ENV)
# The same entry points and plugins, asked through the other hooks.
dataset_registry = PluginRegistry(GROUP, hookspecs, "trl_distillguard_datasets", env_var=THIRD_PARTY_ENV)
instruction_check_registry = PluginRegistry(
    GROUP, hookspecs, "trl_distillguard_instruction_checks", env_var=THIRD_PARTY_ENV
)


def load_plugins() -> list[str]:
    """Discover every plugin of the `trl_distillguard` group; idempotent. Returns the names of the items loaded."""
    return plugin_registry.load_plugins()


def registry() -> dict[str, PluginItem]:
    """Every item by name, with the plugin and the distribution that provided it."""
    return plugin_registry.registry()


def datasets() -> dict[str, Callable[[int, int], list[dict[str, Any]]]]:
    """Every registered prompt dataset: name -> factory(size, seed) -> rows.

    Example:
        >>> len(datasets()["arithmetic"](3, 0))
        3
    """
    return {name: item.obj for name, item in dataset_registry.registry().items()}


def instruction_checks() -> dict[str, Callable[..., bool]]:
    """Every registered IFEval-style check: instruction id -> check(response, **kwargs) -> bool.

    Example:
        >>> instruction_checks()["punctuation:no_comma"]("no commas here")
        True
    """
    return {name: item.obj for name, item in instruction_check_registry.registry().items()}


def resolve_reward(name: str, role: str = "reward_funcs") -> Callable[..., Any]:
    """A reward function (or verifier) by registry name, else by import path `module:attr` or `module.attr` (the
    attribute is used as is, as `trl grpo --reward_funcs` does); one-line `InputError`s name `role`.

    Example:
        >>> resolve_reward("qa_exact_match", "verifier")(prompts=["q"], completions=["Paris"], answer=["paris"])
        [1.0]
    """
    items = registry()
    if name in items:
        return items[name].obj
    module, sep, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if not sep:
        raise InputError(
            f"{role}: {name!r} is not a registered reward ({', '.join(sorted(items))}) nor a `module:attr` path"
        )
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"{role}: cannot import {name!r} ({type(exc).__name__}: {exc})") from None
