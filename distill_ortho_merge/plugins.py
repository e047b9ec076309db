"""Plugin discovery for the shared task layer (entry-point group `distill_ortho_merge`, pluggy): verifiers,
prompt datasets and instruction checks, used by all three packages.

Set `DISTILL_ORTHO_MERGE_THIRD_PARTY=0` to load only this project's built-ins.

Example:
    >>> from distill_ortho_merge.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> registry()["math_answer"].builtin
    True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from distill_ortho_merge import hookspecs
from distill_ortho_merge.errors import InputError
from distill_ortho_merge.registry import PluginItem, PluginRegistry

GROUP = "distill_ortho_merge"
THIRD_PARTY_ENV = "DISTILL_ORTHO_MERGE_THIRD_PARTY"

verifier_registry = PluginRegistry(GROUP, hookspecs, "distill_ortho_merge_verifiers", env_var=THIRD_PARTY_ENV)
# The same entry points and plugins, asked through the other hooks.
dataset_registry = PluginRegistry(GROUP, hookspecs, "distill_ortho_merge_datasets", env_var=THIRD_PARTY_ENV)
instruction_check_registry = PluginRegistry(
    GROUP, hookspecs, "distill_ortho_merge_instruction_checks", env_var=THIRD_PARTY_ENV
)


def load_plugins() -> list[str]:
    """Discover every plugin of the `distill_ortho_merge` group; idempotent. Returns the verifier names loaded."""
    return verifier_registry.load_plugins()


def registry() -> dict[str, PluginItem]:
    """Every verifier by name, with the plugin and the distribution that provided it."""
    return verifier_registry.registry()


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


def resolve_callable(
    name: str, items: dict[str, PluginItem], role: str, what: str = "verifier"
) -> Callable[..., Any]:
    """`items[name]`, else the importable `module:attr` / `module.attr` (the attribute used as is, as
    `trl grpo --reward_funcs` does); one-line `InputError`s name `role`.

    Example:
        >>> resolve_callable("math.sqrt", {}, "verifier")(4.0)
        2.0
    """
    if name in items:
        return items[name].obj
    module, sep, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if not sep:
        raise InputError(
            f"{role}: {name!r} is not a registered {what} ({', '.join(sorted(items))}) nor a `module:attr` path"
        )
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"{role}: cannot import {name!r} ({type(exc).__name__}: {exc})") from None


def resolve_verifier(name: str, role: str = "verifier") -> Callable[..., Any]:
    """A verifier by registry name, else by import path `module:attr` or `module.attr`.

    Example:
        >>> resolve_verifier("qa_exact_match")(prompts=["q"], completions=["Paris"], answer=["paris"])
        [1.0]
    """
    return resolve_callable(name, registry(), role)
