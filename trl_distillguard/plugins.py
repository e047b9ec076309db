"""Plugin discovery for `trl_distillguard` (entry-point group `trl_distillguard`, pluggy).

Set `TRL_DISTILLGUARD_THIRD_PARTY=0` to load only this project's built-ins.

Example:
    >>> from trl_distillguard.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> all(registry()[n].distribution for n in names)
    True
"""

from __future__ import annotations

from distill_ortho_merge.registry import PluginItem, PluginRegistry
from trl_distillguard import hookspecs

GROUP = "trl_distillguard"
THIRD_PARTY_ENV = "TRL_DISTILLGUARD_THIRD_PARTY"

plugin_registry = PluginRegistry(GROUP, hookspecs, "trl_distillguard_rewards", env_var=THIRD_PARTY_ENV)


def load_plugins() -> list[str]:
    """Discover every plugin of the `trl_distillguard` group; idempotent. Returns the names of the items loaded."""
    return plugin_registry.load_plugins()


def registry() -> dict[str, PluginItem]:
    """Every item by name, with the plugin and the distribution that provided it."""
    return plugin_registry.registry()
