"""Plugin discovery for `trl_distillguard` (entry-point group `trl_distillguard`, pluggy): TRL reward functions.

Every reward name resolves against these rewards *and* the shared task verifiers
(`distill_ortho_merge.plugins`). Set `TRL_DISTILLGUARD_THIRD_PARTY=0` to skip third-party rewards.

Example:
    >>> from trl_distillguard.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> registry()["math_answer"].builtin
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distill_ortho_merge import plugins as shared
from distill_ortho_merge.registry import PluginItem, PluginRegistry
from trl_distillguard import hookspecs

GROUP = "trl_distillguard"
THIRD_PARTY_ENV = "TRL_DISTILLGUARD_THIRD_PARTY"

plugin_registry = PluginRegistry(GROUP, hookspecs, "trl_distillguard_rewards", env_var=THIRD_PARTY_ENV)


def load_plugins() -> list[str]:
    """Discover the rewards of the `trl_distillguard` group and the shared verifiers; idempotent. Returns the
    names of every item loaded."""
    return sorted({*shared.load_plugins(), *plugin_registry.load_plugins()})


def registry() -> dict[str, PluginItem]:
    """Every reward by name (shared verifiers first; a reward never shadows a verifier of the same name), with
    the plugin and the distribution that provided it."""
    items = dict(shared.registry())
    for name, item in plugin_registry.registry().items():
        items.setdefault(name, item)
    return items


def resolve_reward(name: str, role: str = "reward_funcs") -> Callable[..., Any]:
    """A reward function (or verifier) by registry name, else by import path `module:attr` or `module.attr` (the
    attribute is used as is, as `trl grpo --reward_funcs` does); one-line `InputError`s name `role`.

    Example:
        >>> resolve_reward("qa_exact_match", "verifier")(prompts=["q"], completions=["Paris"], answer=["paris"])
        [1.0]
    """
    return shared.resolve_callable(name, registry(), role, what="reward")
