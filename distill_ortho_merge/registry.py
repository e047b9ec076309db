"""The plugin machinery shared by the three packages: pluggy + entry points, one broken plugin never fatal.

Each package owns a `hookspecs.py` (what a plugin may provide) and a `plugins.py` that builds one
`PluginRegistry` for its entry-point group. The project's built-ins are entry points in that same group, so a
third-party distribution extends a package exactly the way the package extends itself.

This module imports only the standard library and pluggy: it is safe to import at interpreter start.

Example:
    >>> import pluggy
    >>> class Spec:
    ...     @pluggy.HookspecMarker("demo")
    ...     def demo_items(self): ...
    >>> reg = PluginRegistry("demo", Spec, "demo_items", env_var="DEMO_THIRD_PARTY")
    >>> class Mine:
    ...     @pluggy.HookimplMarker("demo")
    ...     def demo_items(self):
    ...         return {"x": 1}
    >>> reg.register(Mine(), name="mine")
    >>> sorted(reg.load_plugins())
    ['x']
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

logger = logging.getLogger(__name__)

#: The distribution that ships the built-ins (see pyproject.toml).
PROJECT_DISTRIBUTION = "distill-ortho-merge"


class PluginWarning(UserWarning):
    """A third-party plugin could not be loaded or gave a bad item; it was skipped."""


@dataclass(frozen=True)
class PluginItem:
    """One named thing a plugin provided (a merge method, a reward function, a regulariser)."""

    name: str
    obj: Any
    plugin: str
    distribution: str

    @property
    def builtin(self) -> bool:
        return self.distribution == PROJECT_DISTRIBUTION


def _third_party_enabled(env_var: str) -> bool:
    return os.environ.get(env_var, "1").strip().lower() not in {"0", "false", "no", "off"}


class PluginRegistry:
    """Discovers plugins of one entry-point group with pluggy and keeps what their hook returned, by name.

    Args:
        group: entry-point group, also the pluggy project name.
        hookspecs: the module or class holding the `@hookspec` functions.
        hook: name of the hook whose results are collected. It returns a mapping name -> item, or an
            iterable of items named by `name_of`.
        env_var: setting it to 0 switches third-party discovery off (built-ins still load).
        name_of: how to name an item given as a bare object (default: its ``name`` attribute or ``__name__``).
        coerce: ``coerce(name, obj)`` turns what a plugin returned into the item kept (e.g. a typed declaration
            of what the item can do, or an older bare shape wrapped into one); a `TypeError` / `ValueError` it
            raises skips that item with a `PluginWarning`. Default: items are kept as returned.
    """

    def __init__(
        self,
        group: str,
        hookspecs: Any,
        hook: str,
        *,
        env_var: str,
        name_of: Callable[[Any], str] | None = None,
        coerce: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.group = group
        self.hook = hook
        self.env_var = env_var
        self._name_of = name_of or _default_name
        self._coerce = coerce
        self._pm = pluggy.PluginManager(group)
        self._pm.add_hookspecs(hookspecs)
        self._dists: dict[str, str] = {}  # plugin name -> distribution
        self._items: dict[str, PluginItem] = {}
        self._loaded = False

    # -- discovery ---------------------------------------------------------------------------------------
    def register(self, plugin: Any, name: str, distribution: str = "<in-process>") -> None:
        """Register a plugin object directly (no entry point needed); takes effect at the next load."""
        self._pm.register(plugin, name=name)
        self._dists[name] = distribution
        self._loaded = False

    def _load_entry_points(self) -> None:
        third_party = _third_party_enabled(self.env_var)
        eps = importlib.metadata.entry_points(group=self.group)
        # Ours first, so that no other distribution can take the name of a built-in plugin.
        eps = sorted(eps, key=lambda ep: _dist_name(ep) != PROJECT_DISTRIBUTION)
        for ep in eps:
            dist = _dist_name(ep)
            if dist != PROJECT_DISTRIBUTION and not third_party:
                logger.info("%s: skipping %r from %s (%s=0)", self.group, ep.name, dist, self.env_var)
                continue
            if self._pm.has_plugin(ep.name) or self._pm.is_blocked(ep.name):
                if self._dists.get(ep.name) != dist:
                    warnings.warn(
                        f"{self.group}: plugin {ep.name!r} from {dist} skipped: the name is already taken by "
                        f"{self._dists.get(ep.name)}",
                        PluginWarning,
                        stacklevel=3,
                    )
                continue
            # What pluggy's load_setuptools_entrypoints does, one entry point at a time: a plugin that fails
            # to import is isolated, and the exact entry point is loaded (pluggy's loader takes the first
            # distribution that has the name).
            try:
                plugin = ep.load()
                self._pm.register(plugin, name=ep.name)
            except Exception as exc:  # noqa: BLE001 - any failure of foreign code must not stop the rest
                warnings.warn(
                    f"{self.group}: plugin {ep.name!r} from {dist} failed to load and was skipped: "
                    f"{type(exc).__name__}: {exc}",
                    PluginWarning,
                    stacklevel=3,
                )
                continue
            self._dists[ep.name] = dist

    def _collect(self) -> dict[str, PluginItem]:
        items: dict[str, PluginItem] = {}
        impls = getattr(self._pm.hook, self.hook).get_hookimpls()
        # Built-ins first so a third-party item can never shadow one of ours.
        impls = sorted(impls, key=lambda impl: self._dists.get(impl.plugin_name) != PROJECT_DISTRIBUTION)
        for impl in impls:
            dist = self._dists.get(impl.plugin_name, "<unknown>")
            where = f"plugin {impl.plugin_name!r} from {dist}"
            try:
                provided = self._call_one(impl.plugin_name)
                named = provided.items() if isinstance(provided, Mapping) else _named(provided, self._name_of)
                named = list(named)
            except Exception as exc:  # noqa: BLE001
                warnings.warn(
                    f"{self.group}: {where}: hook {self.hook}() raised {type(exc).__name__}: {exc}; skipped",
                    PluginWarning,
                    stacklevel=3,
                )
                continue
            for name, obj in named:
                if name in items:
                    warnings.warn(
                        f"{self.group}: {where}: {name!r} is already provided by "
                        f"{items[name].distribution}; skipped",
                        PluginWarning,
                        stacklevel=3,
                    )
                    continue
                if self._coerce is not None:
                    try:
                        obj = self._coerce(name, obj)
                    except (TypeError, ValueError) as exc:
                        warnings.warn(
                            f"{self.group}: {where}: {name!r} skipped: {exc}", PluginWarning, stacklevel=3
                        )
                        continue
                items[name] = PluginItem(name, obj, impl.plugin_name, dist)
        return items

    def _call_one(self, plugin_name: str) -> Any:
        """The hook called through pluggy for one plugin only, so that each result keeps its origin and one
        plugin's failure is isolated from the others."""
        others = [plugin for name, plugin in self._pm.list_name_plugin() if name != plugin_name]
        results = self._pm.subset_hook_caller(self.hook, remove_plugins=others)()
        return results[0] if results else {}  # pluggy drops a None result: the plugin provides nothing

    def load_plugins(self) -> list[str]:
        """Discover and load every plugin of the group; idempotent. Returns the names of the items provided."""
        if not self._loaded:
            self._load_entry_points()
            self._items = self._collect()
            self._loaded = True
            dists = sorted({item.distribution for item in self._items.values()})
            logger.info("%s: loaded %d item(s) from %s", self.group, len(self._items), ", ".join(dists))
        return list(self._items)

    def registry(self) -> dict[str, PluginItem]:
        """Every item by name, with the plugin and distribution it came from (loads plugins if needed)."""
        self.load_plugins()
        return dict(self._items)

    def plugins(self) -> dict[str, str]:
        """Every registered plugin by name, with its distribution (loads plugins if needed)."""
        self.load_plugins()
        return {name: self._dists.get(name, "<unknown>") for name, _ in self._pm.list_name_plugin()}

    def get(self, name: str) -> Any:
        """The item called `name`; a clear error listing what exists otherwise."""
        items = self.registry()
        if name not in items:
            raise KeyError(
                f"{self.group}: no item named {name!r}; available: {', '.join(sorted(items)) or 'none'}"
            )
        return items[name].obj


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "<unknown>"


def _default_name(obj: Any) -> str:
    name = getattr(obj, "name", None) or getattr(obj, "__name__", None)
    if callable(name):
        name = name()
    if not isinstance(name, str) or not name:
        raise TypeError(f"cannot name item {obj!r}: give it a `name` or return a mapping name -> item")
    return name


def _named(items: Iterable[Any], name_of: Callable[[Any], str]) -> Iterable[tuple[str, Any]]:
    return [(name_of(obj), obj) for obj in items]
