"""Plugin discovery for `peft_orthoreg` (entry-point group `peft_orthoreg`, pluggy).

Set `PEFT_ORTHOREG_THIRD_PARTY=0` to load only this project's built-ins.

Example:
    >>> from peft_orthoreg.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> all(registry()[n].distribution for n in names)
    True
"""

from __future__ import annotations

from distill_ortho_merge.registry import PluginItem, PluginRegistry
from peft_orthoreg import hookspecs

GROUP = "peft_orthoreg"
THIRD_PARTY_ENV = "PEFT_ORTHOREG_THIRD_PARTY"

plugin_registry = PluginRegistry(GROUP, hookspecs, "peft_orthoreg_regularizers", env_var=THIRD_PARTY_ENV)


def load_plugins() -> list[str]:
    """Discover every plugin of the `peft_orthoreg` group; idempotent. Returns the names of the items loaded."""
    return plugin_registry.load_plugins()


def registry() -> dict[str, PluginItem]:
    """Every item by name, with the plugin and the distribution that provided it."""
    return plugin_registry.registry()
