"""The built-in plugin of `peft_orthoreg`, registered through the same entry-point group as any third-party one."""

from __future__ import annotations

from typing import Any

from peft_orthoreg.hookspecs import hookimpl


def orthoreg(model: Any, adapter_name: str | None = None) -> Any:
    """Σ_l ‖G_l − I‖_F over the model's LoRA layers (exact factor form); see `peft_orthoreg.orthoreg_loss`."""
    from peft_orthoreg.lora import orthoreg_loss

    return orthoreg_loss(model, adapter_name, norm="fro")


def orthoreg_squared(model: Any, adapter_name: str | None = None) -> Any:
    """Σ_l ‖G_l − I‖²_F over the model's LoRA layers (the paper's text); see `peft_orthoreg.orthoreg_loss`."""
    from peft_orthoreg.lora import orthoreg_loss

    return orthoreg_loss(model, adapter_name, norm="fro_squared")


@hookimpl
def peft_orthoreg_regularizers() -> dict[str, Any]:
    """The regularisers (callables of a model returning a scalar loss tensor) that ship with this project."""
    return {"orthoreg": orthoreg, "orthoreg_squared": orthoreg_squared}
