"""Hook specifications of `peft_orthoreg`: what a plugin may provide, and how it declares what each form can do.

A plugin is any module or object with `@hookimpl` functions, registered under the entry-point group
`peft_orthoreg` in its distribution's metadata, for example in pyproject.toml::

    [project.entry-points.peft_orthoreg]
    my_plugin = "my_package.my_module"

and in `my_package/my_module.py`::

    from peft_orthoreg.hookspecs import OrthoRegForm, hookimpl

    @hookimpl
    def peft_orthoreg_regularizers():
        return {"my_form": OrthoRegForm("my_form", factor_loss=my_lora_term, dense_loss=my_dense_term)}

`with_orthoreg` and `OrthoLoraConfig` read these declarations, not lists of names: a PEFT adapter may name any
form with a `factor_loss`, full fine-tuning any form with a `dense_loss`, and `peft-orthoreg plugins` shows both.
A bare callable (the older shape) is still accepted as a form with a LoRA factor form only.

Example:
    >>> OrthoRegForm("mine", factor_loss=lambda model, adapter_name=None, *, norm=None: 0.0).capabilities()
    ['LoRA factor form']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("peft_orthoreg")
hookimpl = pluggy.HookimplMarker("peft_orthoreg")


@dataclass(frozen=True)
class OrthoRegForm:
    """One OrthoReg form (a value of ``orthoreg_form``) and what it can do.

    Args:
        name: the form's name.
        factor_loss: the LoRA factor form, ``factor_loss(model, adapter_name=None, *, norm=None)`` -> scalar
            tensor (unweighted) over a PEFT model's LoRA layers; None: the form cannot regularise an adapter.
        dense_loss: the dense form for full fine-tuning, ``dense_loss(deltas, *, squared)`` -> scalar tensor
            over the updates ΔW = W − W⁰ (2-D, differentiable; ``squared`` picks ‖·‖²_F over ‖·‖_F). With an
            estimator other than ``"exact"`` it is called with ``estimator=``, ``probes=`` and ``seed=`` too.
            None: the form cannot run in full fine-tuning.
        estimators: the `orthoreg_estimator` values `dense_loss` implements (``"exact"``, possibly
            ``"hutchinson"``).
        row_sharded: both forms are exact on parameters sharded by rows across processes (FSDP2 DTensors);
            `with_orthoreg` refuses the form under FSDP2 otherwise.
    """

    name: str
    factor_loss: Callable[..., Any] | None = None
    dense_loss: Callable[..., Any] | None = None
    estimators: tuple[str, ...] = ("exact",)
    row_sharded: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for what in ("factor_loss", "dense_loss"):
            fn = getattr(self, what)
            if fn is not None and not callable(fn):
                raise TypeError(f"{self.name}: {what} must be callable, got {type(fn).__name__}")
        if self.factor_loss is None and self.dense_loss is None:
            raise ValueError(f"{self.name}: give a factor_loss, a dense_loss or both")
        if "exact" not in self.estimators or not all(isinstance(e, str) for e in self.estimators):
            raise ValueError(f"{self.name}: estimators must be names of estimators, 'exact' among them")

    def __call__(self, model: Any, adapter_name: str | None = None, *, norm: str | None = None) -> Any:
        """The LoRA factor form (so a form can be called like the bare callables of the older shape)."""
        if self.factor_loss is None:
            raise ValueError(
                f"orthoreg_form={self.name!r} has no LoRA factor form (it runs in full fine-tuning only)"
            )
        return self.factor_loss(model, adapter_name, norm=norm)

    def capabilities(self) -> list[str]:
        """What the form can do, in words (`peft-orthoreg plugins` prints them)."""
        caps = ["LoRA factor form"] if self.factor_loss is not None else []
        if self.dense_loss is not None:
            extra = [e for e in self.estimators if e != "exact"]
            caps.append("dense form" + (f" ({', '.join(['exact', *extra])})" if extra else ""))
        return caps + (["row-sharded (FSDP2)"] if self.row_sharded else [])


@hookspec
def peft_orthoreg_regularizers() -> dict[str, Any] | list[Any]:
    """Return the OrthoReg forms this plugin provides, as a mapping name -> item (or a list of named items).

    Each item is an `OrthoRegForm` (or, the older shape, a bare callable ``(model, adapter_name=None, *,
    norm=None) -> scalar tensor``, taken as a form with a LoRA factor form only); its name is a valid
    ``orthoreg_form``.
    """
