"""LoRA in, LoRA out: merge PEFT LoRA adapters in factor space with task_arithmetic, TSV-M, Iso-C, Iso-CTS or any
method whose plugin declares a factor kernel (`mergekit_plugins.hookspecs.MergeMethodDeclaration`).

- `merge_factors(method, [(B_t, A_t)], weights)` → (B, A) for one weight (pure torch; `factors`).
- `lora_merge(config, out_dir)` merges whole adapters described by a mergekit-style YAML into a stock PEFT LoRA
  adapter (or, with ``merge_into_base=True``, a full model); CLI ``mergekit-plugins lora-merge CONFIG OUT``.

Importing this package imports nothing heavy; the names load on first use.

Example:
    >>> import torch
    >>> from mergekit_plugins.lora import merge_factors
    >>> b, a = merge_factors("iso_c", [(torch.randn(6, 2), torch.randn(2, 4))])
    >>> b.shape, a.shape
    (torch.Size([6, 2]), torch.Size([2, 4]))
"""

from __future__ import annotations

__all__ = ["LoraMergeError", "lora_merge", "merge_factors", "truncate"]


def __getattr__(name: str) -> object:
    if name in ("merge_factors", "truncate"):
        from mergekit_plugins.lora import factors

        return getattr(factors, name)
    if name in ("LoraMergeError",):
        from mergekit_plugins.lora import config

        return getattr(config, name)
    if name == "lora_merge":
        from mergekit_plugins.lora import merge

        return merge.lora_merge
    raise AttributeError(f"module 'mergekit_plugins.lora' has no attribute {name!r}")
