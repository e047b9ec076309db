"""Plugin discovery for `mergekit_plugins` (entry-point group `mergekit_plugins`, pluggy).

Set `MERGEKIT_PLUGINS_THIRD_PARTY=0` to load only this project's built-ins.

Example:
    >>> from mergekit_plugins.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> all(registry()[n].distribution for n in names)
    True
"""

from __future__ import annotations

from mergekit_plugins import hookspecs
from mergekit_plugins.pluginkit import PluginItem, PluginRegistry

GROUP = "mergekit_plugins"
THIRD_PARTY_ENV = "MERGEKIT_PLUGINS_THIRD_PARTY"

plugin_registry = PluginRegistry(GROUP, hookspecs, "mergekit_plugins_merge_methods", env_var=THIRD_PARTY_ENV)


def load_plugins() -> list[str]:
    """Discover every plugin of the `mergekit_plugins` group; idempotent. Returns the names of the items loaded."""
    return plugin_registry.load_plugins()


def registry() -> dict[str, PluginItem]:
    """Every item by name, with the plugin and the distribution that provided it."""
    return plugin_registry.registry()
