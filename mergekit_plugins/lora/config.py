"""The `lora-merge` configuration: mergekit's YAML schema, validated into a `LoraMergeConfig`.

The methods and their parameters are those whose plugin declares a factor kernel
(`mergekit_plugins.hookspecs.MergeMethodDeclaration`); parsing loads the plugins. Accepted fields (anything else
is refused with a one-line error naming it), with the built-in methods:

```yaml
merge_method: tsv            # task_arithmetic | tsv | iso_c | iso_cts | a plugin's method with a factor kernel
base_model: ./models/base    # required: shapes and identity of the adapters are checked against it
models:
  - model: ./adapters/math   # a PEFT LoRA adapter directory
    parameters: {weight: 1.0}
parameters:
  alpha: 1.0                 # θ = θ₀ + alpha · merged (or the method's own name for it: `lambda` for
                             # task_arithmetic)
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

from distill_ortho_merge.errors import InputError
from distill_ortho_merge.yaml_files import read_yaml

DTYPES = ("float32", "float16", "bfloat16", "float64")


class LoraMergeError(InputError):
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
    #: the factor kernel's parameters (every one its declaration names, defaults filled in)
    parameters: dict[str, Any] = field(default_factory=dict)
    svd_embeddings: bool = False
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


def _factor_declaration(where: str, method: Any) -> Any:
    from mergekit.merge_methods import registry as mk_registry

    from mergekit_plugins.plugins import declarations

    found = declarations()  # loads the plugins (and mergekit)
    declared = found.get(method) if isinstance(method, str) else None
    if declared is not None and declared.factor_kernel is not None:
        return declared
    if isinstance(method, str) and method in {m.spec.name for m in mk_registry.registered_methods()}:
        raise LoraMergeError(
            f"{where}: merge_method {method!r} is not factorable (no plugin declares a factor kernel for it); merge "
            "`BASE+ADAPTER` model paths with `mergekit-plugins yaml` instead (mergekit densifies them)"
        )
    names = sorted(name for name, d in found.items() if d.factor_kernel is not None)
    raise LoraMergeError(f"{where}: merge_method must be one of {', '.join(names)}, got {method!r}")


def _kernel_parameter(where: str, name: str, value: Any, default: Any) -> Any:
    """A factor-kernel parameter: the methods' own rule where it has one, else the type of its default."""
    from mergekit_plugins.methods import PARAMETER_RULES

    if name in PARAMETER_RULES:
        ok, what = PARAMETER_RULES[name]
        return _check(where, f"parameters.{name}", value, ok, what)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise LoraMergeError(f"{where}: parameters.{name} must be true or false, got {value!r}")
    elif _number(default):
        return _check(where, f"parameters.{name}", value, math.isfinite, "a finite number")
    return value


def parse_config(config: Any, where: str | None = None) -> LoraMergeConfig:
    """Validate a mergekit-style mapping (or the path of a YAML file) into a `LoraMergeConfig`.

    Example:
        >>> parse_config({"merge_method": "ties", "base_model": "b", "models": [{"model": "x"}]})
        Traceback (most recent call last):
        ...
        mergekit_plugins.lora.config.LoraMergeError: config: merge_method 'ties' is not factorable (no plugin declares a factor kernel for it); merge `BASE+ADAPTER` model paths with `mergekit-plugins yaml` instead (mergekit densifies them)
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
    declared = _factor_declaration(where, method)
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
    scale_names = tuple(dict.fromkeys(("alpha", declared.scale_parameter)))
    accepted = (
        *scale_names,
        *declared.factor_parameters,
        *(("svd_embeddings",) if declared.embeddings_as_mean else ()),
        "rank",
    )
    params = _keys(
        where, config.get("parameters") or {}, accepted, "parameters", f" for merge_method {method}"
    )
    given = [name for name in scale_names if name in params]
    if len(given) > 1:
        raise LoraMergeError(f"{where}: give parameters.{given[0]} or parameters.{given[1]}, not both")
    alpha_key = given[0] if given else "alpha"
    cfg = LoraMergeConfig(method, base, entries, source=where)
    cfg.alpha = _check(
        where,
        f"parameters.{alpha_key}",
        params.get(alpha_key, 1.0),
        lambda v: math.isfinite(v) and v > 0,
        "> 0",
    )
    for name, default in declared.factor_parameters.items():
        cfg.parameters[name] = _kernel_parameter(where, name, params.get(name, default), default)
    cfg.svd_embeddings = _kernel_parameter(
        where, "svd_embeddings", params.get("svd_embeddings", False), False
    )
    rank = params.get("rank")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise LoraMergeError(f"{where}: parameters.rank must be a positive integer, got {rank!r}")
    cfg.rank = rank
    if cfg.parameters.get("normalize") is True and abs(sum(e.weight for e in entries)) < 1e-12:
        raise LoraMergeError(f"{where}: parameters.normalize needs weights whose sum is not 0")
    dtype = config.get("out_dtype", config.get("dtype"))
    if dtype is not None and dtype not in DTYPES:
        raise LoraMergeError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    cfg.dtype = dtype
    return cfg
