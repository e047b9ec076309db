"""Plugin discovery for `mergekit_plugins` (entry-point group `mergekit_plugins`, pluggy), registration of
the discovered merge methods into mergekit's own registry (`mergekit.merge_methods.registry`), and the
declarations (`MergeMethodDeclaration`) the commands read to know what each method can do.

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
from typing import Any

from distill_ortho_merge.registry import PluginItem, PluginRegistry, PluginWarning
from mergekit_plugins import hookspecs
from mergekit_plugins.hookspecs import MergeMethodDeclaration

GROUP = "mergekit_plugins"
THIRD_PARTY_ENV = "MERGEKIT_PLUGINS_THIRD_PARTY"

logger = logging.getLogger(__name__)


def as_declaration(name: str, obj: Any) -> MergeMethodDeclaration:
    """What a plugin returned for `name` as a `MergeMethodDeclaration`: a bare mergekit `MergeMethod` (the older
    shape) declares no capability; anything else is a TypeError.

    Example:
        >>> as_declaration("x", MergeMethodDeclaration("x", scales_linearly=True)).capabilities()
        ['θ₀ + alpha·merged']
    """
    if isinstance(obj, MergeMethodDeclaration):
        if obj.name != name:
            raise ValueError(f"its declaration is named {obj.name!r}")
        method = obj.method
    else:
        obj, method = MergeMethodDeclaration(name, method=obj), obj
    if method is not None:
        from mergekit.merge_methods.base import MergeMethod

        if not isinstance(method, MergeMethod):
            raise TypeError(f"it is a {type(method).__name__}, not a mergekit MergeMethod")
        if method.spec.name != name:
            raise ValueError(f"its spec.name is {method.spec.name!r}")
    return obj


plugin_registry = PluginRegistry(
    GROUP, hookspecs, "mergekit_plugins_merge_methods", env_var=THIRD_PARTY_ENV, coerce=as_declaration
)

_refused: set[str] = set()  # names already warned about, so that repeated loads stay quiet


def load_plugins() -> list[str]:
    """Discover every plugin of the `mergekit_plugins` group and register its merge methods into mergekit's
    registry; idempotent. Returns the names of the methods now available to mergekit from plugins.

    A name that mergekit already uses for another method (a mergekit built-in) is refused with a
    `PluginWarning`; so is an item that is not a mergekit `MergeMethod` or whose `spec.name` differs, and a
    declaration without a method for a name mergekit does not have.
    """
    plugin_registry.load_plugins()
    return register_into_mergekit(plugin_registry.registry())


def register_into_mergekit(items: dict[str, PluginItem]) -> list[str]:
    """Put each item's method into `mergekit.merge_methods.registry` unless its name is taken; returns the names
    of the methods available to mergekit whose item was accepted."""
    from mergekit.merge_methods import registry as mk_registry

    existing = {method.spec.name: method for method in mk_registry.registered_methods()}
    names = []
    for name, item in items.items():
        where = f"{item.plugin!r} from {item.distribution}"
        problem, obj = None, None
        try:
            obj = as_declaration(name, item.obj).method
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        if problem is None and obj is None and name not in existing:
            problem = "it declares capabilities of a method mergekit does not have"
        elif problem is None and obj is not None and name in existing and existing[name] is not obj:
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
        if obj is not None and name not in existing:
            mk_registry.register(obj)
            logger.info("%s: registered merge method %r from %s", GROUP, name, item.distribution)
        names.append(name)
    return names


def registry() -> dict[str, PluginItem]:
    """Every item by name (its `obj` a `MergeMethodDeclaration`), with the plugin and distribution that provided it."""
    return plugin_registry.registry()


def declarations() -> dict[str, MergeMethodDeclaration]:
    """Every declared merge method by name, once registered with mergekit (loads the plugins; a refused item
    declares nothing).

    Example:
        >>> declarations()["iso_c"].capabilities()
        ['θ₀ + alpha·merged', 'factor kernel']
    """
    accepted = set(load_plugins())
    return {name: item.obj for name, item in plugin_registry.registry().items() if name in accepted}


def factor_methods() -> list[str]:
    """The methods `lora-merge` can run: those with a factor kernel, sorted.

    Example:
        >>> {"task_arithmetic", "tsv", "iso_c", "iso_cts"} <= set(factor_methods())
        True
    """
    return sorted(name for name, d in declarations().items() if d.factor_kernel is not None)


def linear_scale_parameter(method_name: str) -> str | None:
    """The parameter s of a method that is θ₀ + s·merged (`alpha`, `lambda`, ...), None for any other method.

    Declared by the method's plugin, or mergekit's own task-arithmetic family (`lambda`).

    Example:
        >>> linear_scale_parameter("tsv"), linear_scale_parameter("ties"), linear_scale_parameter("slerp")
        ('alpha', 'lambda', None)
    """
    declared = declarations().get(method_name)
    if declared is not None and declared.scales_linearly:
        return declared.scale_parameter
    from mergekit.merge_methods import registry as mk_registry
    from mergekit.merge_methods.generalized_task_arithmetic import GeneralizedTaskArithmeticMerge

    try:
        method = mk_registry.get(method_name)
    except RuntimeError:
        return None
    return "lambda" if isinstance(method, GeneralizedTaskArithmeticMerge) else None
