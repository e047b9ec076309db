"""mergekit glue: `tsv`, `iso_c` and `iso_cts` as mergekit merge methods (the math lives in `core`).

Importing this module imports neither mergekit nor registers anything; `build_methods()` constructs the
`MergeMethod` objects (importing mergekit) and `mergekit_plugins.load_plugins()` registers them.

Rules shared by the three methods (base model required; result θ = θ₀ + alpha · merged, in the input dtype):

- Δ_t = weight_t · (θ_t − θ₀). A negative `weight` negates that task before the method runs: for `tsv` its
  triplets enter with flipped sign (task negation); for `iso_c`/`iso_cts` it is subtracted from the sum whose
  spectrum is then flattened, so the negation is spread isotropically too. `weight: 0` drops the task.
- "Matrices" (2-D weights of linear layers) go through the SVD method. Embedding and LM-head matrices
  (mergekit marks them with a vocabulary axis; by name `embed`/`lm_head`/`wte`/`wpe` otherwise) and every
  non-2-D tensor merge as the mean of the deltas, as in the official code; `svd_embeddings: true` sends
  vocab × hidden matrices through the SVD method too.
- SVDs run in fp32 (fp64 when the inputs are fp64) on the device mergekit gives the tensors.
- The low-rank rule (see `mergekit_plugins.core`): triplets with σ ≤ `rank_rtol` × scale are ignored.

Example:
    >>> methods = build_methods()
    >>> sorted(methods), methods["iso_cts"].spec.contract.base.value
    (['iso_c', 'iso_cts', 'tsv'], 'required')
"""

import math
import re
from collections.abc import Callable
from typing import Any

import torch

from mergekit_plugins import core

_EMBEDDING_NAME = re.compile(r"(^|\.)(embed[^.]*|lm_head|wte|wpe|embed_out|output_embeddings?)(\.|$)")
TSV_URL = "https://arxiv.org/abs/2412.00081"
ISO_URL = "https://arxiv.org/abs/2502.04959"

_METHODS: dict[str, Any] | None = None


def is_embedding(name: str | None, vocabulary_axis: int | None = None) -> bool:
    """True for vocab × hidden matrices: mergekit's vocabulary axis, or an embedding / LM-head name.

    Example:
        >>> is_embedding("model.embed_tokens.weight"), is_embedding("model.layers.0.mlp.up_proj.weight")
        (True, False)
    """
    return vocabulary_axis is not None or bool(name and _EMBEDDING_NAME.search(name))


#: The methods' parameter rules: name -> (test, what a valid value is). The pydantic validators below and the
#: early one-line errors of `mergekit_plugins.yaml_command.check_config` both read them.
PARAMETER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "alpha": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "common_space_fraction": (lambda v: 0.0 < v < 1.0, "strictly between 0 and 1"),
    "rank_rtol": (lambda v: math.isfinite(v) and 0.0 <= v < 1.0, "a finite number in [0, 1)"),
    "weight": (math.isfinite, "a finite number"),
}


def check_parameter(name: str, value: float) -> float:
    """`value` if it satisfies `PARAMETER_RULES[name]`, a one-line ValueError otherwise.

    Example:
        >>> check_parameter("alpha", 0.5)
        0.5
    """
    ok, what = PARAMETER_RULES[name]
    if not ok(value):
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def check_alpha(value: float) -> float:
    """`alpha` must be finite and > 0."""
    return check_parameter("alpha", value)


def check_fraction(value: float) -> float:
    """`common_space_fraction` must lie in (0, 1)."""
    return check_parameter("common_space_fraction", value)


def check_rtol(value: float) -> float:
    """`rank_rtol` must be finite and in [0, 1)."""
    return check_parameter("rank_rtol", value)


def check_weight(value: float) -> float:
    """A per-model `weight` must be finite."""
    return check_parameter("weight", value)


def merge_group(
    group: Any,
    matrix_fn: Callable[[list[torch.Tensor]], torch.Tensor],
    *,
    method: str,
    weight: Any,
    alpha: float,
    svd_embeddings: bool,
) -> torch.Tensor:
    """θ₀ + alpha · merged for one mergekit `TensorGroup` (shared by the three methods)."""
    name = group.metadata.name or "<unnamed tensor>"
    base = group.base.tensor
    if not base.is_floating_point():
        raise TypeError(f"{method}: tensor {name} is {base.dtype}, not floating point; it cannot be merged")
    dtype = core.compute_dtype(base)
    deltas = []
    for entry in group.non_base:
        if entry.tensor.shape != base.shape:
            raise ValueError(
                f"{method}: tensor {name} of model {entry.id} has shape {tuple(entry.tensor.shape)}, "
                f"base has {tuple(base.shape)}"
            )
        deltas.append(weight[entry.id] * (entry.tensor.to(dtype) - base.to(dtype)))
    if not deltas:
        return base
    matrix = base.ndim == 2 and (svd_embeddings or not is_embedding(name, group.metadata.vocabulary_axis))
    try:
        merged = matrix_fn(deltas) if matrix else core.mean_delta(deltas)
    except RuntimeError as exc:  # name the tensor: mergekit's message would not
        raise RuntimeError(f"{method}: merging tensor {name} failed: {exc}") from exc
    return (base.to(dtype) + alpha * merged).to(base.dtype)


def build_methods() -> dict[str, Any]:
    """The three `mergekit.merge_methods.base.MergeMethod` objects by name (built once, imports mergekit)."""
    global _METHODS
    if _METHODS is None:
        from typing import Annotated

        from mergekit.merge_methods.base import BasePolicy, InputContract, PerNonBase, TensorGroup
        from mergekit.merge_methods.easy_define import merge_method
        from pydantic import AfterValidator

        if _METHODS is not None:  # built re-entrantly by the autoload hook during the import above
            return _METHODS
        Alpha = Annotated[float, AfterValidator(check_alpha)]
        Fraction = Annotated[float, AfterValidator(check_fraction)]
        RTol = Annotated[float, AfterValidator(check_rtol)]
        Weight = PerNonBase[Annotated[float, AfterValidator(check_weight)]]
        contract = InputContract(base=BasePolicy.REQUIRED, min_non_base=1)

        @merge_method(name="tsv", pretty_name="TSV-M", reference_url=TSV_URL, contract=contract)
        def tsv(
            group: TensorGroup,
            weight: Weight = 1.0,
            alpha: Alpha = 1.0,
            svd_embeddings: bool = False,
            rank_rtol: RTol = core.DEFAULT_RANK_RTOL,
        ) -> torch.Tensor:
            """TSV-M (Gargiulo et al., CVPR 2025); embeddings/LM head: mean of deltas unless svd_embeddings."""
            fn = lambda d: core.tsv_merge(d, rank_rtol)  # noqa: E731
            return merge_group(
                group, fn, method="tsv", weight=weight, alpha=alpha, svd_embeddings=svd_embeddings
            )

        @merge_method(name="iso_c", pretty_name="Iso-C", reference_url=ISO_URL, contract=contract)
        def iso_c(
            group: TensorGroup,
            weight: Weight = 1.0,
            alpha: Alpha = 1.0,
            svd_embeddings: bool = False,
            rank_rtol: RTol = core.DEFAULT_RANK_RTOL,
        ) -> torch.Tensor:
            """Iso-C (Marczak et al., ICML 2025); embeddings/LM head: mean of deltas unless svd_embeddings."""
            fn = lambda d: core.iso_c_merge(d, rank_rtol)  # noqa: E731
            return merge_group(
                group, fn, method="iso_c", weight=weight, alpha=alpha, svd_embeddings=svd_embeddings
            )

        @merge_method(name="iso_cts", pretty_name="Iso-CTS", reference_url=ISO_URL, contract=contract)
        def iso_cts(
            group: TensorGroup,
            weight: Weight = 1.0,
            alpha: Alpha = 1.0,
            common_space_fraction: Fraction = 0.8,
            svd_embeddings: bool = False,
            rank_rtol: RTol = core.DEFAULT_RANK_RTOL,
        ) -> torch.Tensor:
            """Iso-CTS (Marczak et al., ICML 2025); embeddings/LM head: mean of deltas unless svd_embeddings."""
            fn = lambda d: core.iso_cts_merge(d, common_space_fraction, rank_rtol)  # noqa: E731
            return merge_group(
                group, fn, method="iso_cts", weight=weight, alpha=alpha, svd_embeddings=svd_embeddings
            )

        _METHODS = {"tsv": tsv, "iso_c": iso_c, "iso_cts": iso_cts}
    return _METHODS
