"""The built-in plugin of `peft_orthoreg`, registered through the same entry-point group as any third-party one."""

from __future__ import annotations

from typing import Any

from peft_orthoreg.hookspecs import OrthoRegForm, hookimpl


def _fixed_norm(fixed: str, norm: str | None) -> str:
    if norm is not None and norm != fixed:
        raise ValueError(
            f"norm={norm!r}: this regulariser always uses {fixed!r}; use the form 'paper' instead"
        )
    return fixed


def orthoreg(model: Any, adapter_name: str | None = None, *, norm: str | None = None) -> Any:
    """Σ_l ‖G_l − I‖_F over the model's LoRA layers (exact factor form); see `peft_orthoreg.orthoreg_loss`."""
    from peft_orthoreg.lora import orthoreg_loss

    return orthoreg_loss(model, adapter_name, norm=_fixed_norm("fro", norm))


def orthoreg_squared(model: Any, adapter_name: str | None = None, *, norm: str | None = None) -> Any:
    """Σ_l ‖G_l − I‖²_F over the model's LoRA layers (the paper's text); see `peft_orthoreg.orthoreg_loss`."""
    from peft_orthoreg.lora import orthoreg_loss

    return orthoreg_loss(model, adapter_name, norm=_fixed_norm("fro_squared", norm))


def paper(model: Any, adapter_name: str | None = None, *, norm: str | None = None) -> Any:
    """``orthoreg_form="paper"``: ‖G − I‖ with each adapter's ``orthoreg_norm``; see `peft_orthoreg.orthoreg_loss`."""
    from peft_orthoreg.lora import orthoreg_loss

    return orthoreg_loss(model, adapter_name, norm=norm)


def scale_free(model: Any, adapter_name: str | None = None, *, norm: str | None = None) -> Any:
    """``orthoreg_form="scale_free"``: ‖G/τ − I‖, τ = tr G / k; see `peft_orthoreg.lora.scale_free_loss`."""
    from peft_orthoreg.lora import scale_free_loss

    return scale_free_loss(model, adapter_name, norm=norm)


def flat_spectrum(model: Any, adapter_name: str | None = None, *, norm: str | None = None) -> Any:
    """``orthoreg_form="flat_spectrum"``: spread of ΔW's r Gram eigenvalues; see `peft_orthoreg.lora.flat_spectrum_loss`."""
    from peft_orthoreg.lora import flat_spectrum_loss

    return flat_spectrum_loss(model, adapter_name, norm=norm)


def inter_task(model: Any, adapter_name: str | None = None, *, norm: str | None = None) -> Any:
    """``orthoreg_form="inter_task"``: overlap with the reference adapters; see `peft_orthoreg.lora.inter_task_loss`."""
    from peft_orthoreg.lora import inter_task_loss

    return inter_task_loss(model, adapter_name, norm=norm)


@hookimpl
def peft_orthoreg_regularizers() -> dict[str, Any]:
    """The forms that ship with this project, as `OrthoRegForm` declarations. The names ``paper``,
    ``scale_free``, ``flat_spectrum`` and ``inter_task`` are values of `OrthoLoraConfig.orthoreg_form`; ``paper``
    (exact and Hutchinson) and ``scale_free`` also have a dense form for full fine-tuning; every one is exact on
    FSDP2 row shards. A plugin adds a form by returning another name.

    Example:
        >>> forms = peft_orthoreg_regularizers()
        >>> forms["paper"].capabilities()
        ['LoRA factor form', 'dense form (exact, hutchinson)', 'row-sharded (FSDP2)']
    """
    from peft_orthoreg.orthoreg import dense_orthoreg_loss, dense_scale_free_loss

    dense = {
        "paper": dict(dense_loss=dense_orthoreg_loss, estimators=("exact", "hutchinson")),
        "scale_free": dict(dense_loss=dense_scale_free_loss),
    }
    factor = {
        "paper": paper,
        "scale_free": scale_free,
        "flat_spectrum": flat_spectrum,
        "inter_task": inter_task,
        "orthoreg": orthoreg,
        "orthoreg_squared": orthoreg_squared,
    }
    return {
        name: OrthoRegForm(name, factor_loss=fn, row_sharded=True, **dense.get(name, {}))
        for name, fn in factor.items()
    }
