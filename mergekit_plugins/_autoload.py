"""Start-up hook behind `distill_ortho_merge_mergekit_plugins.pth`: plain `mergekit-yaml` sees our methods.

The `.pth` file (installed at the root of site-packages by the wheel) imports this module at interpreter
start. It imports neither torch nor mergekit: it only puts a finder on `sys.meta_path` that, once the package
`mergekit.merge_methods` has finished importing (its registry of built-ins is complete), calls
`mergekit_plugins.load_plugins()`. Set `MERGEKIT_PLUGINS_AUTOLOAD=0` to switch it off. A failure inside the
hook is reported as a warning and never breaks the import of mergekit.

Example:
    >>> import sys
    >>> any(isinstance(f, MergekitRegistryHook) for f in sys.meta_path) or not enabled()
    True
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "MERGEKIT_PLUGINS_AUTOLOAD"
TARGET = "mergekit.merge_methods"


def enabled() -> bool:
    """False when `MERGEKIT_PLUGINS_AUTOLOAD` is 0/false/no/off."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in {"0", "false", "no", "off"}


class _LoaderWrapper:
    """Delegates to the real loader and runs the plugin registration after the module body."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # Restore the real loader first so that importlib.resources & co. see an ordinary package.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _register()


def _register() -> None:
    try:
        from mergekit_plugins.plugins import load_plugins

        load_plugins()
    except Exception as exc:  # noqa: BLE001 - a plugin problem must never break `import mergekit`
        import warnings

        warnings.warn(
            f"mergekit_plugins autoload failed ({type(exc).__name__}: {exc}); "
            "use `mergekit-plugins yaml` or call mergekit_plugins.load_plugins()",
            RuntimeWarning,
            stacklevel=2,
        )


class MergekitRegistryHook:
    """A `sys.meta_path` finder that wraps the loader of `mergekit.merge_methods` (and nothing else)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET or not enabled():
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _LoaderWrapper(spec.loader)
        return spec


def install() -> None:
    """Put the hook on `sys.meta_path` (once); if mergekit is already imported, register right away."""
    if not enabled() or any(isinstance(f, MergekitRegistryHook) for f in sys.meta_path):
        return
    if TARGET in sys.modules:
        _register()
        return
    sys.meta_path.insert(0, MergekitRegistryHook())


install()
