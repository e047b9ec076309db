"""Plugin discovery for `mergekit_plugins` (entry-point group `mergekit_plugins`, pluggy) and registration of
the discovered merge methods into mergekit's own registry (`mergekit.merge_methods.registry`).

Set `MERGEKIT_PLUGINS_THIRD_PARTY=0` to load only this project's built-ins. Importing this module imports
neither torch nor mergekit; `load_plugins()` does.

Example:
    >>> from mergekit_plugins.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> all(registry()[n].distribution for n in names)
    True
"""

from __future__ import annotations

import logging
import warnings

from distill_ortho_merge.registry import PluginItem, PluginRegistry, PluginWarning
from mergekit_plugins import hookspecs

GROUP = "mergekit_plugins"
THIRD_PARTY_ENV = "MERGEKIT_PLUGINS_THIRD_PARTY"

logger = logging.getLogger(__name__)

plugin_registry = PluginRegistry(GROUP, hookspecs, "mergekit_plugins_merge_methods", env_var=THIRD_PARTY_ENV)

_refused: set[str] = set()  # names already warned about, so that repeated loads stay quiet


def load_plugins() -> list[str]:
    """Discover every plugin of the `mergekit_plugins` group and register its merge methods into mergekit's
    registry; idempotent. Returns the names of the methods now available to mergekit from plugins.

    A name that mergekit already uses for another method (a mergekit built-in) is refused with a
    `PluginWarning`; so is an item that is not a mergekit `MergeMethod` or whose `spec.name` differs.
    """
    plugin_registry.load_plugins()
    return register_into_mergekit(plugin_registry.registry())


def register_into_mergekit(items: dict[str, PluginItem]) -> list[str]:
    """Put each item into `mergekit.merge_methods.registry` unless its name is taken; returns the names."""
    from mergekit.merge_methods import registry as mk_registry
    from mergekit.merge_methods.base import MergeMethod

    existing = {method.spec.name: method for method in mk_registry.registered_methods()}
    names = []
    for name, item in items.items():
        obj, where = item.obj, f"{item.plugin!r} from {item.distribution}"
        problem = None
        if not isinstance(obj, MergeMethod):
            problem = f"it is a {type(obj).__name__}, not a mergekit MergeMethod"
        elif obj.spec.name != name:
            problem = f"its spec.name is {obj.spec.name!r}"
        elif name in existing and existing[name] is not obj:
            problem = "mergekit already has a merge method of that name (built-ins cannot be replaced)"
        if problem:
            if name not in _refused:
                _refused.add(name)
                warnings.warn(
                    f"{GROUP}: merge method {name!r} of plugin {where} not registered: {problem}",
                    PluginWarning,
                    stacklevel=3,
                )
            continue
        if name not in existing:
            mk_registry.register(obj)
            logger.info("%s: registered merge method %r from %s", GROUP, name, item.distribution)
        names.append(name)
    return names


def registry() -> dict[str, PluginItem]:
    """Every item by name, with the plugin and the distribution that provided it."""
    return plugin_registry.registry()
