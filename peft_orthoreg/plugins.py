"""Plugin discovery for `peft_orthoreg` (entry-point group `peft_orthoreg`, pluggy).

Set `PEFT_ORTHOREG_THIRD_PARTY=0` to load only this project's built-ins.

Example:
    >>> from peft_orthoreg.plugins import load_plugins, registry
    >>> names = load_plugins()
    >>> all(registry()[n].distribution for n in names)
    True
"""

from __future__ import annotations

from typing import Any

from distill_ortho_merge.registry import PluginItem, PluginRegistry
from peft_orthoreg import hookspecs
from peft_orthoreg.hookspecs import OrthoRegForm

GROUP = "peft_orthoreg"
THIRD_PARTY_ENV = "PEFT_ORTHOREG_THIRD_PARTY"


def as_form(name: str, obj: Any) -> OrthoRegForm:
    """What a plugin returned for `name` as an `OrthoRegForm`: a bare callable (the older shape) is a form with a
    LoRA factor form only; anything else is a TypeError.

    Example:
        >>> as_form("mine", lambda model, adapter_name=None, *, norm=None: 0.0).capabilities()
        ['LoRA factor form']
    """
    if isinstance(obj, OrthoRegForm):
        if obj.name != name:
            raise ValueError(f"its declaration is named {obj.name!r}")
        return obj
    if callable(obj):
        return OrthoRegForm(name, factor_loss=obj)
    raise TypeError(f"it is a {type(obj).__name__}, not an OrthoRegForm or a callable")


plugin_registry = PluginRegistry(
    GROUP, hookspecs, "peft_orthoreg_regularizers", env_var=THIRD_PARTY_ENV, coerce=as_form
)


def load_plugins() -> list[str]:
    """Discover every plugin of the `peft_orthoreg` group; idempotent. Returns the names of the items loaded."""
    return plugin_registry.load_plugins()


def registry() -> dict[str, PluginItem]:
    """Every item by name (its `obj` an `OrthoRegForm`), with the plugin and the distribution that provided it."""
    return plugin_registry.registry()


def get_form(name: str, field: str = "orthoreg_form") -> OrthoRegForm:
    """The form called `name`; a one-line ValueError naming `field` and the forms that exist otherwise.

    Example:
        >>> get_form("scale_free").dense_loss is not None
        True
    """
    try:
        return as_form(name, plugin_registry.get(name))
    except KeyError as exc:
        raise ValueError(f"{field}={name!r}: {exc.args[0]}") from None


def forms() -> dict[str, OrthoRegForm]:
    """Every registered form by name (loads the plugins).

    Example:
        >>> [name for name, form in sorted(forms().items()) if form.dense_loss is not None]
        ['paper', 'scale_free']
    """
    out = {}
    for name, item in plugin_registry.registry().items():
        try:
            out[name] = as_form(name, item.obj)
        except (TypeError, ValueError):  # already reported when the registry coerced it
            continue
    return out
