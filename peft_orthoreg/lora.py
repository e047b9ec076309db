"""`orthoreg_loss` (the paper's form), `scale_free_loss`, `flat_spectrum_loss` and `inter_task_loss`: exact factor-space OrthoReg terms
summed over a PEFT model's LoRA layers. `form_loss` picks the form an adapter's `OrthoLoraConfig.orthoreg_form`
names, through the `peft_orthoreg_regularizers` plugin hook.

Handled exactly: LoRA `Linear` layers (also quantised ones whose factors are `nn.Linear`) and `Embedding`
layers (ΔW = s·(B·A)ᵀ; the Gram spectrum is the same for ΔW and ΔWᵀ, so transposes such as ``fan_in_fan_out``
do not matter). Refused with an error: convolution, MultiheadAttention and `target_parameters` LoRA layers
(their ΔW is not one s·B·A matrix) and every LoRA variant (DoRA, aLoRA, VeLoRA, ...).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from peft_orthoreg.orthoreg import (
    check_norm,
    factor_flat_spectrum_loss,
    factor_inter_task_loss,
    factor_orthoreg_loss,
    factor_scale_free_loss,
)


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
    return _grouped(model, adapter_name, norm, factor_orthoreg_loss, "orthoreg_loss")


def _grouped(
    model: nn.Module, adapter_name: str | None, norm: str | None, loss_fn, what: str
) -> torch.Tensor:
    # Sum `loss_fn` over the layers, grouping them by each adapter's norm (an explicit `norm` overrides).
    if norm is not None:
        check_norm(norm, field="norm")
    configs = _adapter_configs(model)
    groups: dict[bool, list] = {False: [], True: []}
    for _, adapter, factors in iter_lora_factors(model, adapter_name):
        squared = check_norm(norm or getattr(configs.get(adapter), "orthoreg_norm", "fro"))
        groups[squared].append(factors)
    if not groups[False] and not groups[True]:
        which = f"adapter {adapter_name!r}" if adapter_name is not None else "any trainable adapter"
        raise ValueError(f"{what}: the model has no LoRA Linear/Embedding layers for {which}")
    parts = [loss_fn(f, squared=sq) for sq, f in groups.items() if f]
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


def scale_free_loss(
    model: nn.Module, adapter_name: str | None = None, *, norm: str | None = None
) -> torch.Tensor:
    """Σ over the LoRA layers of ‖G/τ − I_k‖_F (τ = tr G / k; or its square), exact; 0 where ΔW = 0.

    Example:
        >>> from peft import get_peft_model
        >>> from peft_orthoreg import OrthoLoraConfig
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 4))
        >>> cfg = OrthoLoraConfig(r=2, target_modules=["0"], orthoreg_weight=1.0, orthoreg_form="scale_free")
        >>> scale_free_loss(get_peft_model(net, cfg)).item()  # B = 0 at init: defined as 0
        0.0
    """
    return _grouped(model, adapter_name, norm, factor_scale_free_loss, "scale_free_loss")


def flat_spectrum_loss(
    model: nn.Module, adapter_name: str | None = None, *, norm: str | None = None
) -> torch.Tensor:
    """Σ over the LoRA layers of the spread of ΔW's r nonzero Gram eigenvalues around their mean (r = the layer's
    rank; see `peft_orthoreg.orthoreg`), exact, from the factors; 0 where ΔW = 0 or its r directions are even.

    Example:
        >>> from peft import get_peft_model
        >>> from peft_orthoreg import OrthoLoraConfig
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 4))
        >>> cfg = OrthoLoraConfig(r=2, target_modules=["0"], orthoreg_weight=1.0, orthoreg_form="flat_spectrum")
        >>> flat_spectrum_loss(get_peft_model(net, cfg)).item()  # B = 0 at init
        0.0
    """
    return _grouped(model, adapter_name, norm, factor_flat_spectrum_loss, "flat_spectrum_loss")


def inter_task_loss(
    model: nn.Module,
    adapter_name: str | None = None,
    *,
    norm: str | None = None,
    references: list[str] | None = None,
) -> torch.Tensor:
    """Σ over the LoRA layers of the overlap of ΔW with the reference adapters' ΔW_t (see `peft_orthoreg.orthoreg`).

    The references are other adapters loaded in the same model (``model.load_adapter(dir, adapter_name=name)``,
    frozen); default: each trained adapter's ``OrthoLoraConfig.orthoreg_reference_adapters``. A layer that a
    reference does not adapt contributes 0 for it.

    Example:
        >>> from peft import get_peft_model
        >>> from peft_orthoreg import OrthoLoraConfig
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 4))
        >>> model = get_peft_model(net, OrthoLoraConfig(r=2, target_modules=["0"]), adapter_name="old")
        >>> torch.nn.init.normal_(model.base_model.model[0].lora_B["old"].weight)  # doctest: +ELLIPSIS
        Parameter...
        >>> cfg = OrthoLoraConfig(r=2, target_modules=["0"], orthoreg_weight=1.0, orthoreg_form="inter_task",
        ...                       orthoreg_reference_adapters=["old"])
        >>> model.add_adapter("new", cfg); model.set_adapter("new")
        >>> inter_task_loss(model, "new").item()  # B = 0 at init: no overlap yet
        0.0
    """
    if norm is not None:
        check_norm(norm, field="norm")
    configs = _adapter_configs(model)
    modules = dict(model.named_modules())
    groups: dict[bool, tuple[list, list]] = {False: ([], []), True: ([], [])}
    for name, adapter, factors in iter_lora_factors(model, adapter_name):
        refs = (
            references
            if references is not None
            else getattr(configs.get(adapter), "orthoreg_reference_adapters", None)
        )
        if not refs:
            raise ValueError(
                f"inter_task_loss: adapter {adapter!r} has no orthoreg_reference_adapters (name the already-trained "
                "adapters, loaded in the same model, to stay orthogonal to)"
            )
        for ref in refs:
            if ref not in configs or ref == adapter:
                raise ValueError(
                    f"orthoreg_reference_adapters: {ref!r} is not another adapter loaded in the model (loaded: "
                    f"{', '.join(sorted(configs))}); load it with model.load_adapter(dir, adapter_name={ref!r})"
                )
        ref_factors = [f for f in (_factors(name, modules[name], ref) for ref in refs) if f is not None]
        squared = check_norm(norm or getattr(configs.get(adapter), "orthoreg_norm", "fro"))
        groups[squared][0].append(factors)
        groups[squared][1].append(ref_factors)
    if not any(f for f, _ in groups.values()):
        which = f"adapter {adapter_name!r}" if adapter_name is not None else "any trainable adapter"
        raise ValueError(f"inter_task_loss: the model has no LoRA Linear/Embedding layers for {which}")
    parts = [factor_inter_task_loss(f, r, squared=sq) for sq, (f, r) in groups.items() if f]
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


def form_loss(model: nn.Module, adapter_name: str, *, norm: str | None = None) -> torch.Tensor:
    """The term of the form the adapter's ``orthoreg_form`` names (``"paper"`` for a plain `LoraConfig`),
    looked up in the `peft_orthoreg_regularizers` plugin registry, so a third-party form works the same way.

    Example:
        >>> from peft import get_peft_model
        >>> from peft_orthoreg import OrthoLoraConfig
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 4))
        >>> round(form_loss(get_peft_model(net, OrthoLoraConfig(r=2, target_modules=["0"])), "default").item(), 4)
        2.0
    """
    from peft_orthoreg.plugins import get_form

    form = getattr(_adapter_configs(model).get(adapter_name), "orthoreg_form", "paper")
    return get_form(form)(model, adapter_name, norm=norm)
