"""An OrthoReg form: a LoRA factor form (adapters) and a dense form (full fine-tuning), declared together."""

import torch
from peft.tuners.lora import LoraLayer

from peft_orthoreg.hookspecs import OrthoRegForm, hookimpl


def l2_factors(model, adapter_name=None, *, norm=None):
    """Σ over LoRA layers of ‖ΔW‖_F, ΔW = s·B A, from the factors: ‖s·B A‖²_F = s²·tr((BᵀB)(A Aᵀ))."""
    if norm not in (None, "fro"):
        raise ValueError(f"norm={norm!r}: the l2 form is always the Frobenius norm")
    total = torch.zeros(())
    for module in model.modules():
        if not isinstance(module, LoraLayer):
            continue
        name = adapter_name or module.active_adapters[0]
        if name not in module.lora_A:
            continue
        a, b = module.lora_A[name].weight, module.lora_B[name].weight
        gram = (b.T @ b) @ (a @ a.T)  # r × r: ΔW itself is never built
        total = total + module.scaling[name] * gram.trace().clamp_min(1e-12).sqrt()
    return total


def l2_dense(deltas, *, squared=False):
    """Σ over the updates ΔW = W − W⁰ of ‖ΔW‖_F (‖ΔW‖²_F when `squared`): full fine-tuning."""
    norms = [(d.pow(2).sum() if squared else d.norm()) for d in deltas]
    return torch.stack(norms).sum()


@hookimpl
def peft_orthoreg_regularizers():
    return {"l2": OrthoRegForm("l2", factor_loss=l2_factors, dense_loss=l2_dense)}
