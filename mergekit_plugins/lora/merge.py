"""`lora_merge(config, out_dir)`: merge PEFT LoRA adapters in factor space into a stock PEFT LoRA adapter.

For every module targeted by at least one adapter (the union), the factors (scale_t · B_t, A_t) go through
`merge_factors` (an adapter that does not target a module contributes Δ_t = 0, exactly as its densified model
would), α is folded into B, and the result is written as `lora_B` / `lora_A` with lora_alpha = r, so the written
adapter's scale is 1 and ``merge_and_unload()`` gives base + α·merged. Modules whose merged rank differs from the
most common one are listed in `rank_pattern` / `alpha_pattern`. Embedding / LM-head LoRAs merge as the mean of
their deltas under tsv / iso_c / iso_cts (the dense methods' rule), unless `svd_embeddings: true`.

Example:
    >>> summary = lora_merge("merge_lora.yaml", "./merged-adapter")  # doctest: +SKIP
    >>> print(summary["line"])  # doctest: +SKIP
    lora-merge: tsv of 2 adapters → ./merged-adapter (LoRA adapter): 14 modules, rank in 8, out 16, 0.1 s
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch

from distill_ortho_merge.adapters import ADAPTER_WEIGHTS, PREFIX
from distill_ortho_merge.outputs import MERGEKIT_OVERWRITE, check_not_input, check_output_dir, staged_dir
from mergekit_plugins.lora.adapters import (
    BaseModel,
    check_adapters,
    read_adapter,
    read_base,
)
from mergekit_plugins.lora.config import LoraMergeConfig, LoraMergeError, parse_config
from mergekit_plugins.lora.factors import factor_declaration, run_kernel, task_arithmetic_kernel, truncate
from mergekit_plugins.methods import is_embedding

DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


def target_modules(modules: list[str], base: BaseModel) -> list[str]:
    """PEFT `target_modules` for exactly `modules`: a short name (``q_proj``) where the modules are every base
    weight of that name, the full module names otherwise (partial targeting).

    Example:
        >>> base = BaseModel(Path("."), {"l.0.q.weight": (2, 2), "l.1.q.weight": (2, 2), "l.0.v.weight": (2, 2),
        ...                               "l.1.v.weight": (2, 2)}, {})
        >>> target_modules(["l.0.q", "l.1.q", "l.1.v"], base)
        ['q', 'l.1.v']
    """
    by_name: dict[str, set[str]] = defaultdict(set)
    for module in modules:
        by_name[module.rsplit(".", 1)[-1]].add(module)
    out = []
    for name, chosen in sorted(by_name.items()):
        every = {
            k[: -len(".weight")]
            for k in base.shapes
            if k == f"{name}.weight" or k.endswith(f".{name}.weight")
        }
        out.extend([name] if every == chosen else sorted(chosen))
    return out


def _merge_modules(
    cfg: LoraMergeConfig, adapters: list, base: BaseModel, dtype: torch.dtype, progress: bool
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], float]:
    from distill_ortho_merge.progress import progress as progress_bar

    order = {name: i for i, name in enumerate(base.shapes)}
    modules = sorted({m for a in adapters for m in a.modules}, key=lambda m: order[f"{m}.weight"])
    weights = [a.weight for a in adapters]
    declared = factor_declaration(cfg.merge_method)
    transposed = adapters[0].fan_in_fan_out
    merged, discarded = {}, 0.0
    for module in progress_bar(modules, "lora-merge", show=progress, unit="module"):
        m, n = base.shapes[f"{module}.weight"][:: -1 if transposed else 1]
        factors = []
        for adapter in adapters:
            b, a, scale = adapter.modules.get(module, (torch.zeros(m, 0), torch.zeros(0, n), 1.0))
            factors.append((scale * b.to(dtype), a.to(dtype)))
        try:
            if declared.embeddings_as_mean and not cfg.svd_embeddings and is_embedding(module):
                b, a = task_arithmetic_kernel(factors, [w / len(adapters) for w in weights])  # the mean
            else:
                b, a = run_kernel(declared, factors, weights, cfg.parameters)
        except RuntimeError as exc:  # name the module: torch's message would not
            raise RuntimeError(f"merging module {module} failed: {exc}") from exc
        b = cfg.alpha * b
        if cfg.rank is not None:
            b, a, lost = truncate(b, a, cfg.rank)
            discarded = max(discarded, lost)
        if b.shape[1] == 0:  # nothing to add (every delta is zero): PEFT needs r ≥ 1
            b, a = b.new_zeros(m, 1), a.new_zeros(1, n)
        merged[module] = (b, a)
    return merged, discarded


def _write_adapter(
    out: Path, merged: dict, adapters: list, cfg: LoraMergeConfig, base: BaseModel, dtype: torch.dtype
) -> None:
    from peft import LoraConfig
    from safetensors.torch import save_file

    ranks = {module: b.shape[1] for module, (b, _) in merged.items()}
    r = Counter(ranks.values()).most_common(1)[0][0]
    pattern = {re.escape(module): rank for module, rank in ranks.items() if rank != r}
    names = {a.base_name for a in adapters}
    task_types = {a.config.get("task_type") for a in adapters}
    config = LoraConfig(
        r=r,
        lora_alpha=r,  # scale 1: α and every adapter's scale are folded into lora_B
        alpha_pattern=dict(pattern),
        rank_pattern=pattern,
        target_modules=target_modules(list(merged), base),
        lora_dropout=0.0,
        bias="none",
        fan_in_fan_out=adapters[0].fan_in_fan_out,
        task_type=task_types.pop() if len(task_types) == 1 else None,
        base_model_name_or_path=names.pop() if len(names) == 1 and None not in names else cfg.base_model,
        inference_mode=True,
    )
    config.save_pretrained(str(out))
    tensors = {}
    for module, (b, a) in merged.items():
        tensors[f"{PREFIX}{module}.lora_A.weight"] = a.to(dtype).contiguous()
        tensors[f"{PREFIX}{module}.lora_B.weight"] = b.to(dtype).contiguous()
    save_file(tensors, str(out / ADAPTER_WEIGHTS), metadata={"format": "pt"})


def _write_full_model(out: Path, merged: dict, base: BaseModel, transposed: bool) -> None:
    """base + B A for every merged module, shard by shard in the base's own layout; other files copied."""
    from safetensors.torch import load_file, save_file

    by_file: dict[str, list[str]] = defaultdict(list)
    for module in merged:
        by_file[base.files[f"{module}.weight"]].append(module)
    for name in sorted(set(base.files.values())):
        tensors = load_file(str(base.path / name))
        for module in by_file.get(name, []):
            b, a = merged[module]
            weight = tensors[f"{module}.weight"]
            delta = b @ a
            tensors[f"{module}.weight"] = (weight.to(delta.dtype) + (delta.T if transposed else delta)).to(
                weight.dtype
            )
        save_file(tensors, str(out / name), metadata={"format": "pt"})
    for item in base.path.iterdir():  # config, tokenizer, generation config, index; never pickled weights
        if item.is_file() and not item.name.endswith((".safetensors", ".bin", ".pt", ".pth")):
            shutil.copy2(item, out / item.name)


def lora_merge(
    config: Any,
    out_dir: str | os.PathLike,
    *,
    merge_into_base: bool = False,
    allow_base_mismatch: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Merge the adapters of `config` (a mapping in mergekit's YAML schema or the path of such a YAML) into
    `out_dir`: a PEFT LoRA adapter, or with `merge_into_base` a full model (the base's files with every targeted
    weight replaced by base + α·merged). Every check runs before anything is written; the output appears only
    when complete. A non-empty `out_dir` is refused unless `overwrite`; one that is, lies inside or contains the
    config, the base model or an adapter is always refused. Returns a summary (``summary["line"]`` is one printable line).

    Example:
        >>> lora_merge({"merge_method": "iso_c", "base_model": "./base",
        ...             "models": [{"model": "./lora_a"}, {"model": "./lora_b"}]}, "./merged")  # doctest: +SKIP
    """
    start = time.perf_counter()
    out = check_output_dir(out_dir, overwrite, flag=MERGEKIT_OVERWRITE, what="OUT_DIR")
    cfg = parse_config(config)
    base = read_base(cfg.base_model)
    adapters = [read_adapter(entry.model, entry.weight) for entry in cfg.models]
    check_adapters(adapters, cfg.base_model, base, allow_base_mismatch)
    if merge_into_base and not base.files:
        raise LoraMergeError(
            f"base_model {cfg.base_model!r}: --merge-into-base needs its safetensors weights"
        )
    config_file = [config] if isinstance(config, (str, os.PathLike)) else []
    check_not_input(out, [*config_file, base.path, *(a.path for a in adapters)], what="OUT_DIR")
    tensors = [t for a in adapters for b, a_, _ in a.modules.values() for t in (b, a_)]
    all64 = all(t.dtype == torch.float64 for t in tensors)
    compute = torch.float64 if cfg.dtype == "float64" or all64 else torch.float32
    in_dtypes = {t.dtype for t in tensors}
    out_dtype = (
        DTYPES[cfg.dtype] if cfg.dtype else (in_dtypes.pop() if len(in_dtypes) == 1 else torch.float32)
    )
    merged, discarded = _merge_modules(cfg, adapters, base, compute, progress)
    with staged_dir(out) as staging:
        if merge_into_base:
            _write_full_model(staging, merged, base, adapters[0].fan_in_fan_out)
        else:
            _write_adapter(staging, merged, adapters, cfg, base, out_dtype)
    ranks_in = sorted({b.shape[1] for a in adapters for b, _, _ in a.modules.values()})
    ranks_out = sorted({b.shape[1] for b, _ in merged.values()})
    seconds = time.perf_counter() - start

    def span(values: list[int]) -> str:
        return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"

    kind = "full model" if merge_into_base else "LoRA adapter"
    lost = f", rank ≤ {cfg.rank} discards ≤ {100 * discarded:.3g}% of a weight's energy" if cfg.rank else ""
    line = (
        f"lora-merge: {cfg.merge_method} of {len(adapters)} adapters → {out} ({kind}): {len(merged)} modules, "
        f"rank in {span(ranks_in)}, out {span(ranks_out)}{lost}, {seconds:.1f} s"
    )
    return {
        "line": line,
        "method": cfg.merge_method,
        "adapters": len(adapters),
        "modules": len(merged),
        "ranks_in": ranks_in,
        "ranks_out": ranks_out,
        "max_discarded_energy": discarded,
        "seconds": seconds,
        "out_dir": str(out),
    }
