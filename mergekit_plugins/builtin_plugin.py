"""The built-in plugin of `mergekit_plugins`, registered through the same entry-point group as any third-party one.

Example:
    >>> sorted(mergekit_plugins_merge_methods())
    ['iso_c', 'iso_cts', 'task_arithmetic', 'tsv']
"""

from __future__ import annotations

from typing import Any

from mergekit_plugins.hookspecs import MergeMethodDeclaration, hookimpl


@hookimpl
def mergekit_plugins_merge_methods() -> dict[str, Any]:
    """The merge methods that ship with this project: `tsv`, `iso_c` and `iso_cts` (mergekit `MergeMethod`
    objects built on first call; this imports mergekit), each θ₀ + alpha·merged with an exact factor kernel, and
    the factor kernel of mergekit's own `task_arithmetic` (θ₀ + lambda·Σ w_t Δ_t)."""
    from mergekit_plugins.core import DEFAULT_RANK_RTOL
    from mergekit_plugins.lora import factors
    from mergekit_plugins.methods import build_methods

    methods = build_methods()
    svd_rule = {"rank_rtol": DEFAULT_RANK_RTOL}
    kernels = {
        "tsv": (factors.tsv_kernel, svd_rule),
        "iso_c": (factors.iso_c_kernel, svd_rule),
        "iso_cts": (factors.iso_cts_kernel, {**svd_rule, "common_space_fraction": 0.8}),
    }
    declared = {
        name: MergeMethodDeclaration(
            name,
            method=methods[name],
            scales_linearly=True,
            factor_kernel=kernel,
            factor_parameters=parameters,
            embeddings_as_mean=True,
        )
        for name, (kernel, parameters) in kernels.items()
    }
    declared["task_arithmetic"] = MergeMethodDeclaration(
        "task_arithmetic",
        scales_linearly=True,
        scale_parameter="lambda",
        factor_kernel=factors.task_arithmetic_kernel,
        factor_parameters={"normalize": False},
    )
    return declared
