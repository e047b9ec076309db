"""Task-arithmetic merge methods for mergekit: `tsv` (TSV-M), `iso_c` and `iso_cts` (Iso-C / Iso-CTS).

Importing this package is cheap (standard library only): the `.pth` autoload hook imports it at every
interpreter start. Everything else loads on first use.

Example:
    >>> import mergekit_plugins
    >>> sorted(set(mergekit_plugins.load_plugins()) & {"tsv", "iso_c", "iso_cts"})
    ['iso_c', 'iso_cts', 'tsv']
"""

from __future__ import annotations

__all__ = ["__version__", "load_plugins", "registry"]


def __getattr__(name: str) -> object:  # no `typing` import: it costs ~2 ms at start-up
    # Lazy: importlib.metadata and pluggy cost milliseconds that interpreter start-up must not pay.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("distill-ortho-merge")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0+unknown"
    if name in ("load_plugins", "registry"):
        from mergekit_plugins import plugins

        return getattr(plugins, name)
    raise AttributeError(f"module 'mergekit_plugins' has no attribute {name!r}")
