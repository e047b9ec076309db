"""A merge method: the math in a pure-torch function, a typed mergekit `@merge_method` around it, and the hook."""

from functools import cache

import torch

from mergekit_plugins.hookspecs import hookimpl


def mean_merge(base, tensors, alpha=1.0):
    """θ₀ + alpha · mean_t (θ_t − θ₀), in the base's dtype."""
    deltas = torch.stack([t.float() - base.float() for t in tensors])
    return (base.float() + alpha * deltas.mean(dim=0)).to(base.dtype)


@cache  # `@merge_method` registers with mergekit when it runs: build the method once
def build_mean_delta():
    from mergekit.merge_methods.base import BasePolicy, InputContract, TensorGroup
    from mergekit.merge_methods.easy_define import merge_method

    @merge_method(
        name="mean_delta",
        pretty_name="Mean of task vectors",
        reference_url="https://arxiv.org/abs/2212.04089",
        contract=InputContract(base=BasePolicy.REQUIRED, min_non_base=1),
    )
    def mean_delta(group: TensorGroup, alpha: float = 1.0) -> torch.Tensor:
        return mean_merge(group.base.tensor, [entry.tensor for entry in group.non_base], alpha)

    return mean_delta


@hookimpl
def mergekit_plugins_merge_methods():
    return {"mean_delta": build_mean_delta()}
