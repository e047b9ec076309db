"""Hook specifications of `mergekit_plugins`: what a plugin may provide, and how it declares what each item can do.

A plugin is any module or object with `@hookimpl` functions, registered under the entry-point group
`mergekit_plugins` in its distribution's metadata, for example in pyproject.toml::

    [project.entry-points.mergekit_plugins]
    my_plugin = "my_package.my_module"

and in `my_package/my_module.py`::

    from mergekit_plugins.hookspecs import MergeMethodDeclaration, hookimpl

    @hookimpl
    def mergekit_plugins_merge_methods():
        return {"my_method": MergeMethodDeclaration("my_method", method=my_mergekit_method,
                                                    scales_linearly=True, factor_kernel=my_kernel)}

The commands read these declarations, not lists of names: `search-alpha` sweeps α in memory for every method
declared `scales_linearly`, `lora-merge` merges adapters with every method that has a `factor_kernel`, and
`mergekit-plugins list` / `plugins` show both. A bare mergekit `MergeMethod` (the older shape) is still accepted:
it is registered with mergekit and declares no capability.

Example:
    >>> MergeMethodDeclaration("mean", scales_linearly=True, factor_kernel=lambda f, w: f[0]).capabilities()
    ['θ₀ + alpha·merged', 'factor kernel']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("mergekit_plugins")
hookimpl = pluggy.HookimplMarker("mergekit_plugins")

#: ``kernel(factors, weights, **parameters) -> (B, A)``: the merged delta of one weight in factor form.
FactorKernel = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class MergeMethodDeclaration:
    """One merge method and what it can do.

    Args:
        name: the `merge_method` name in YAML configs (equal to ``method.spec.name`` when `method` is given).
        method: the mergekit `MergeMethod` to register; None declares capabilities of a method mergekit already
            has (e.g. a factor kernel for mergekit's `task_arithmetic`).
        scales_linearly: the result is θ₀ + s·merged with `merged` independent of s, the `scale_parameter`. Then
            `search-alpha` merges once at s = 1 and rescales in memory.
        scale_parameter: the name of s among the method's parameters (``alpha``; ``lambda`` for mergekit's
            task-arithmetic family).
        factor_kernel: the exact merge in LoRA factor space: ``kernel(factors, weights, **parameters)`` with
            ``factors = [(B_t, A_t)]`` (Δ_t = B_t A_t unweighted, adapter scale folded into B_t; B_t is m × r_t,
            A_t r_t × n, r_t may be 0; already checked and in the compute dtype) and the tasks' weights w_t,
            returns ``(B, A)`` with B @ A = merged (s not applied). It needs `scales_linearly`: `lora-merge`
            folds s into B.
        factor_parameters: the parameters `factor_kernel` takes, name -> default; `lora-merge` accepts exactly
            these (plus s and its own ``rank``) and passes the YAML's values on.
        embeddings_as_mean: like the dense methods, embedding / LM-head matrices merge as the mean of the deltas
            unless the config sets ``svd_embeddings: true`` (`lora-merge` then accepts that parameter).
    """

    name: str
    method: Any = None
    scales_linearly: bool = False
    scale_parameter: str = "alpha"
    factor_kernel: FactorKernel | None = None
    factor_parameters: Mapping[str, Any] = field(default_factory=dict)
    embeddings_as_mean: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if self.factor_kernel is not None and not callable(self.factor_kernel):
            raise TypeError(
                f"{self.name}: factor_kernel must be callable, got {type(self.factor_kernel).__name__}"
            )
        if self.factor_kernel is not None and not self.scales_linearly:
            raise ValueError(
                f"{self.name}: a factor_kernel needs scales_linearly=True (lora-merge folds α into B)"
            )
        if not isinstance(self.factor_parameters, Mapping):
            raise TypeError(f"{self.name}: factor_parameters must be a mapping name -> default")

    def capabilities(self) -> list[str]:
        """What the commands can do with this method, in words (`list` and `plugins` print them)."""
        caps = [f"θ₀ + {self.scale_parameter}·merged"] if self.scales_linearly else []
        return caps + (["factor kernel"] if self.factor_kernel is not None else [])


@hookspec
def mergekit_plugins_merge_methods() -> dict[str, Any] | list[Any]:
    """Return the merge methods this plugin provides, as a mapping name -> item (or a list of named items).

    Each item is a `MergeMethodDeclaration` (or, the older shape, a bare mergekit `MergeMethod`, which declares
    no capability).
    """
