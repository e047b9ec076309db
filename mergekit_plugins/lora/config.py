"""The `lora-merge` configuration: mergekit's YAML schema, validated into a `LoraMergeConfig` (no torch import).

Accepted fields (anything else is refused with a one-line error naming it):

```yaml
merge_method: tsv            # task_arithmetic | tsv | iso_c | iso_cts
base_model: ./models/base    # required: shapes and identity of the adapters are checked against it
models:
  - model: ./adapters/math   # a PEFT LoRA adapter directory
    parameters: {weight: 1.0}
parameters:
  alpha: 1.0                 # θ = θ₀ + alpha · merged (`lambda` is accepted for task_arithmetic)
  rank_rtol: 1.0e-5          # tsv / iso_c / iso_cts: the low-rank rule
  common_space_fraction: 0.8 # iso_cts
  svd_embeddings: false      # tsv / iso_c / iso_cts: embedding / LM-head LoRAs go through the method too
  normalize: false           # task_arithmetic: divide the weights by their sum (mergekit's option)
  rank: 32                   # optional: keep the top-32 singular triplets per weight (approximation)
dtype: float32               # optional (or out_dtype): dtype of the written factors, default the adapters'
                             # own; float64 also computes in float64 (else float32)
```

Example:
    >>> cfg = parse_config({"merge_method": "iso_c", "base_model": "b", "models": [{"model": "x"}]})
    >>> cfg.merge_method, cfg.alpha, cfg.models[0].weight
    ('iso_c', 1.0, 1.0)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from distill_ortho_merge.yaml_files import read_yaml

FACTOR_METHODS = ("task_arithmetic", "tsv", "iso_c", "iso_cts")
#: mergekit methods that act on individual entries of the dense delta (sign election, pruning): not factorable.
DENSE_ONLY = ("ties", "dare_ties", "dare_linear", "della", "della_linear", "breadcrumbs", "breadcrumbs_ties")
DTYPES = ("float32", "float16", "bfloat16", "float64")
DEFAULT_RANK_RTOL = 1e-5  # = mergekit_plugins.core.DEFAULT_RANK_RTOL (core imports torch)

_PARAMETERS = {
    "task_arithmetic": ("alpha", "lambda", "normalize", "rank"),
    "tsv": ("alpha", "rank_rtol", "svd_embeddings", "rank"),
    "iso_c": ("alpha", "rank_rtol", "svd_embeddings", "rank"),
    "iso_cts": ("alpha", "rank_rtol", "common_space_fraction", "svd_embeddings", "rank"),
}


class LoraMergeError(ValueError):
    """Input `lora-merge` refuses; the message is one line naming the offending adapter, file or field."""


@dataclass
class AdapterEntry:
    """One `models:` entry: an adapter directory and its weight w_t."""

    model: str
    weight: float = 1.0


@dataclass
class LoraMergeConfig:
    """A validated `lora-merge` configuration (see the module docstring for the YAML)."""

    merge_method: str
    base_model: str
    models: list[AdapterEntry]
    alpha: float = 1.0
    rank_rtol: float = DEFAULT_RANK_RTOL
    common_space_fraction: float = 0.8
    svd_embeddings: bool = False
    normalize: bool = False
    rank: int | None = None
    dtype: str | None = None
    source: str = field(default="config", repr=False)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(where: str, name: str, value: Any, ok: Any, what: str) -> float:
    if not _number(value) or not ok(float(value)):
        raise LoraMergeError(f"{where}: {name} must be {what}, got {value!r}")
    return float(value)


def _keys(where: str, mapping: Any, allowed: tuple[str, ...], name: str, why: str = "") -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise LoraMergeError(f"{where}: {name} must be a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in allowed:
            raise LoraMergeError(
                f"{where}: {name}{'.' if name else ''}{key} is not supported by lora-merge{why} "
                f"(accepted: {', '.join(allowed)})"
            )
    return mapping


def parse_config(config: Any, where: str | None = None) -> LoraMergeConfig:
    """Validate a mergekit-style mapping (or the path of a YAML file) into a `LoraMergeConfig`.

    Example:
        >>> parse_config({"merge_method": "ties", "base_model": "b", "models": [{"model": "x"}]})
        Traceback (most recent call last):
        ...
        mergekit_plugins.lora.config.LoraMergeError: config: merge_method 'ties' is not factorable (it prunes or sign-elects entries of the dense delta); merge `BASE+ADAPTER` model paths with `mergekit-plugins yaml` instead (mergekit densifies them)
    """
    if isinstance(config, (str, os.PathLike)):
        where = where or str(config)
        config = read_yaml(config, LoraMergeError)
    where = where or "config"
    if isinstance(config, LoraMergeConfig):
        return config
    top = ("merge_method", "base_model", "models", "parameters", "dtype", "out_dtype")
    _keys(where, config, top, "")
    method = config.get("merge_method")
    if method in DENSE_ONLY:
        raise LoraMergeError(
            f"{where}: merge_method {method!r} is not factorable (it prunes or sign-elects entries of the dense "
            "delta); merge `BASE+ADAPTER` model paths with `mergekit-plugins yaml` instead (mergekit densifies them)"
        )
    if method not in FACTOR_METHODS:
        raise LoraMergeError(
            f"{where}: merge_method must be one of {', '.join(FACTOR_METHODS)}, got {method!r}"
        )
    base = config.get("base_model")
    if not isinstance(base, str) or not base:
        raise LoraMergeError(f"{where}: base_model (a model directory) is required")
    models = config.get("models")
    if not isinstance(models, list) or not models:
        raise LoraMergeError(f"{where}: models must be a non-empty list of `- model: ADAPTER_DIR` entries")
    entries = []
    for i, item in enumerate(models):
        item = _keys(where, item, ("model", "parameters"), f"models[{i}]")
        path = item.get("model")
        if not isinstance(path, str) or not path:
            raise LoraMergeError(f"{where}: models[{i}].model must be an adapter directory")
        params = _keys(where, item.get("parameters") or {}, ("weight",), f"models[{i}].parameters")
        weight = _check(
            where, f"models[{i}].parameters.weight", params.get("weight", 1.0), math.isfinite, "finite"
        )
        entries.append(AdapterEntry(path, weight))
    params = _keys(
        where,
        config.get("parameters") or {},
        _PARAMETERS[method],
        "parameters",
        f" for merge_method {method}",
    )
    if "alpha" in params and "lambda" in params:
        raise LoraMergeError(f"{where}: give parameters.alpha or parameters.lambda, not both")
    alpha_key = "lambda" if "lambda" in params else "alpha"
    cfg = LoraMergeConfig(method, base, entries, source=where)
    cfg.alpha = _check(
        where,
        f"parameters.{alpha_key}",
        params.get(alpha_key, 1.0),
        lambda v: math.isfinite(v) and v > 0,
        "> 0",
    )
    cfg.rank_rtol = _check(
        where,
        "parameters.rank_rtol",
        params.get("rank_rtol", DEFAULT_RANK_RTOL),
        lambda v: 0 <= v < 1,
        "in [0, 1)",
    )
    cfg.common_space_fraction = _check(
        where,
        "parameters.common_space_fraction",
        params.get("common_space_fraction", 0.8),
        lambda v: 0 < v < 1,
        "strictly between 0 and 1",
    )
    for flag in ("svd_embeddings", "normalize"):
        value = params.get(flag, False)
        if not isinstance(value, bool):
            raise LoraMergeError(f"{where}: parameters.{flag} must be true or false, got {value!r}")
        setattr(cfg, flag, value)
    rank = params.get("rank")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise LoraMergeError(f"{where}: parameters.rank must be a positive integer, got {rank!r}")
    cfg.rank = rank
    if cfg.normalize and abs(sum(e.weight for e in entries)) < 1e-12:
        raise LoraMergeError(f"{where}: parameters.normalize needs weights whose sum is not 0")
    dtype = config.get("out_dtype", config.get("dtype"))
    if dtype is not None and dtype not in DTYPES:
        raise LoraMergeError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    cfg.dtype = dtype
    return cfg
