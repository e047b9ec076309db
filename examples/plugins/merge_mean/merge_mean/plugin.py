"""A merge method: the math in pure-torch functions (dense and LoRA-factor forms), a typed mergekit
`@merge_method` around the dense one, and a declaration of what it can do."""

from functools import cache

import torch

from mergekit_plugins.hookspecs import MergeMethodDeclaration, hookimpl


def mean_merge(base, tensors, weights, alpha=1.0):
    """θ₀ + alpha · mean_t w_t (θ_t − θ₀), in the base's dtype."""
    deltas = torch.stack([w * (t.float() - base.float()) for t, w in zip(tensors, weights, strict=True)])
    return (base.float() + alpha * deltas.mean(dim=0)).to(base.dtype)


def mean_factors(factors, weights):
    """The merged delta mean_t w_t B_t A_t as one factor pair: [w_1 B_1 / T | … ] @ [A_1; …] (rank Σ r_t)."""
    b = torch.cat([w * b_t / len(factors) for (b_t, _), w in zip(factors, weights, strict=True)], dim=1)
    return b, torch.cat([a_t for _, a_t in factors], dim=0)


@cache  # `@merge_method` registers with mergekit when it runs: build the method once
def build_mean_delta():
    from mergekit.merge_methods.base import BasePolicy, InputContract, PerNonBase, TensorGroup
    from mergekit.merge_methods.easy_define import merge_method

    @merge_method(
        name="mean_delta",
        pretty_name="Mean of task vectors",
        reference_url="https://arxiv.org/abs/2212.04089",
        contract=InputContract(base=BasePolicy.REQUIRED, min_non_base=1),
    )
    def mean_delta(group: TensorGroup, weight: PerNonBase[float] = 1.0, alpha: float = 1.0) -> torch.Tensor:
        entries = group.non_base
        return mean_merge(
            group.base.tensor, [e.tensor for e in entries], [weight[e.id] for e in entries], alpha
        )

    return mean_delta


@hookimpl
def mergekit_plugins_merge_methods():
    declaration = MergeMethodDeclaration(
        "mean_delta",
        method=build_mean_delta(),
        scales_linearly=True,  # θ₀ + alpha·merged: search-alpha sweeps alpha in memory
        factor_kernel=mean_factors,  # lora-merge can merge LoRA adapters with it
    )
    return {"mean_delta": declaration}
