"""`orthoreg_loss`: the exact factor-space OrthoReg term summed over a PEFT model's LoRA layers.

Handled exactly: LoRA `Linear` layers (also quantised ones whose factors are `nn.Linear`) and `Embedding`
layers (ΔW = s·(B·A)ᵀ; the Gram spectrum is the same for ΔW and ΔWᵀ, so transposes such as ``fan_in_fan_out``
do not matter). Refused with an error: convolution, MultiheadAttention and `target_parameters` LoRA layers
(their ΔW is not one s·B·A matrix) and every LoRA variant (DoRA, aLoRA, VeLoRA, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from peft_orthoreg.orthoreg import check_norm, factor_orthoreg_loss


def _lora_layer_cls() -> type:
    from peft.tuners.lora.layer import LoraLayer

    return LoraLayer


def _adapter_configs(model: nn.Module) -> dict:
    configs = getattr(model, "peft_config", None)
    return configs if isinstance(configs, dict) else {}


def _factors(name: str, module: nn.Module, adapter: str) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    """(A, B, s) of `adapter` in one LoRA layer; None when the layer does not hold that adapter."""
    if adapter in getattr(module, "lora_variant", {}):
        variant = type(module.lora_variant[adapter]).__name__
        raise ValueError(
            f"OrthoReg: LoRA layer {name!r} of adapter {adapter!r} uses {variant}; its update is not s·B·A "
            "(DoRA and other LoRA variants are not supported)"
        )
    if adapter in getattr(module, "lora_embedding_A", {}):
        return module.lora_embedding_A[adapter], module.lora_embedding_B[adapter], module.scaling[adapter]
    if adapter in getattr(module, "lora_A", {}):
        a, b = module.lora_A[adapter], module.lora_B[adapter]
        if not (isinstance(a, nn.Linear) and isinstance(b, nn.Linear)):
            raise ValueError(
                f"OrthoReg: LoRA layer {name!r} ({type(module).__name__}) is not a Linear/Embedding LoRA layer; "
                "convolution, MultiheadAttention and target_parameters layers are not supported"
            )
        return a.weight, b.weight, module.scaling[adapter]
    return None


def iter_lora_factors(
    model: nn.Module, adapter_name: str | None = None
) -> Iterator[tuple[str, str, tuple[torch.Tensor, torch.Tensor, float]]]:
    """Yield (module name, adapter, (A, B, s)) for every LoRA layer of `adapter_name` (all trainable if None)."""
    lora_layer = _lora_layer_cls()
    for name, module in model.named_modules():
        if not isinstance(module, lora_layer):
            continue
        names = set(getattr(module, "lora_A", {})) | set(getattr(module, "lora_embedding_A", {}))
        for adapter in sorted(names):
            if adapter_name is not None and adapter != adapter_name:
                continue
            factors = _factors(name, module, adapter)
            if factors is None:
                continue
            if adapter_name is None and not (factors[0].requires_grad or factors[1].requires_grad):
                continue  # all adapters' *trainable* ones
            yield name, adapter, factors


def orthoreg_loss(
    model: nn.Module, adapter_name: str | None = None, *, norm: str | None = None
) -> torch.Tensor:
    """Σ over the LoRA layers of ‖G − I_k‖_F (or its square), exact, from the factors: differentiable, unweighted.

    Args:
        model: a `PeftModel` (or any module with PEFT LoRA layers injected).
        adapter_name: one adapter; ``None`` sums every adapter whose LoRA weights are trainable.
        norm: ``"fro"`` or ``"fro_squared"``; default: each adapter's ``OrthoLoraConfig.orthoreg_norm``
            (``"fro"`` for a plain `LoraConfig`).

    Returns:
        A scalar tensor (multiply by λ yourself, or let `with_orthoreg` do it).

    Example:
        >>> from peft import get_peft_model
        >>> from peft_orthoreg import OrthoLoraConfig
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 4))
        >>> peft_model = get_peft_model(net, OrthoLoraConfig(r=2, target_modules=["0"], orthoreg_weight=1.0))
        >>> round(orthoreg_loss(peft_model).item(), 4)  # B = 0 at init: ‖0 − I_4‖_F = 2
        2.0
    """
    if norm is not None:
        check_norm(norm, field="norm")
    configs = _adapter_configs(model)
    groups: dict[bool, list] = {False: [], True: []}
    for _, adapter, factors in iter_lora_factors(model, adapter_name):
        squared = check_norm(norm or getattr(configs.get(adapter), "orthoreg_norm", "fro"))
        groups[squared].append(factors)
    if not groups[False] and not groups[True]:
        which = f"adapter {adapter_name!r}" if adapter_name is not None else "any trainable adapter"
        raise ValueError(f"orthoreg_loss: the model has no LoRA Linear/Embedding layers for {which}")
    parts = [factor_orthoreg_loss(f, squared=sq) for sq, f in groups.items() if f]
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]
