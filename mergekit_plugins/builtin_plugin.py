"""The built-in plugin of `mergekit_plugins`, registered through the same entry-point group as any third-party one."""

from __future__ import annotations

from typing import Any

from mergekit_plugins.hookspecs import hookimpl


@hookimpl
def mergekit_plugins_merge_methods() -> dict[str, Any]:
    """The mergekit merge methods (mergekit.merge_methods.base.MergeMethod objects) that ship with this project:
    `tsv`, `iso_c` and `iso_cts` (built on first call; this imports mergekit)."""
    from mergekit_plugins.methods import build_methods

    return dict(build_methods())
