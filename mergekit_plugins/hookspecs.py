"""Hook specifications of `mergekit_plugins`: what a plugin may provide.

A plugin is any module or object with `@hookimpl` functions, registered under the entry-point group
`mergekit_plugins` in its distribution's metadata, for example in pyproject.toml::

    [project.entry-points.mergekit_plugins]
    my_plugin = "my_package.my_module"

and in `my_package/my_module.py`::

    from mergekit_plugins.hookspecs import hookimpl

    @hookimpl
    def mergekit_plugins_merge_methods():
        return {"my_item": my_item}
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("mergekit_plugins")
hookimpl = pluggy.HookimplMarker("mergekit_plugins")


@hookspec
def mergekit_plugins_merge_methods() -> dict[str, Any] | list[Any]:
    """Return the mergekit merge methods (mergekit.merge_methods.base.MergeMethod objects) this plugin provides, as a mapping name -> item (or a list of named items)."""
