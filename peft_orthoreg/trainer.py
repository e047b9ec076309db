"""`with_orthoreg(TrainerClass)`: add λ·OrthoReg to whatever loss a HF / TRL trainer computes.

The term is added in `compute_loss` (never through `outputs.loss`, which GRPO does not read), scaled for
gradient accumulation the way the trainer scales its own loss, and logged as ``orthoreg`` (unweighted).

- PEFT model: λ, the norm and the form (``orthoreg_form``: looked up in the `peft_orthoreg_regularizers` plugin
  registry) come from each trainable adapter's `OrthoLoraConfig` (exact factor forms).
- Any other model (full fine-tuning): pass ``orthoreg_weight`` and optionally ``orthoreg_form``, any registered
  form that declares a dense form (`peft_orthoreg.hookspecs.OrthoRegForm.dense_loss`: built in, ``paper`` and
  ``scale_free``); W⁰ of the regularised 2-D weights is snapshotted
  once when the trainer is built. The snapshot costs one extra copy of those weights (≈ the whole model for the
  default targets); ``orthoreg_snapshot_device="cpu"`` keeps it in host memory (copied to the device each step).
- More than one process: under DDP and DeepSpeed ZeRO-1/2 every rank holds whole parameters and computes the same
  term on its replica (exact). Under FSDP2 (parameters are DTensors sharded by rows) every rank computes the same
  exact term from its local rows plus all-reduces of small matrices (`peft_orthoreg.orthoreg.row_shards`); the
  full-FT snapshot W⁰ is sharded like W. FSDP1 (flattened parameters) and ZeRO-3 are refused when the trainer is
  built, naming FSDP2.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import torch
from torch import nn

from distill_ortho_merge.sharding import sharded_parameters
from peft_orthoreg.hookspecs import OrthoRegForm
from peft_orthoreg.lora import form_loss, iter_lora_factors
from peft_orthoreg.orthoreg import check_estimator, check_norm, check_weight
from peft_orthoreg.orthoreg.row_shards import is_row_sharded, local_rows
from peft_orthoreg.plugins import forms, get_form

_CACHE: dict[type, type] = {}


def _is_peft(model: nn.Module) -> bool:
    return isinstance(getattr(model, "peft_config", None), dict) and any(
        True for _ in iter_lora_factors(model)
    )


def _matches(name: str, targets: str | list[str] | None) -> bool:
    # PEFT's semantics for target_modules: a str is a full regex match, a list matches exactly or as a suffix.
    if targets is None:
        return True
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def select_full_ft_weights(
    model: nn.Module, targets: str | list[str] | None = None
) -> list[tuple[str, nn.Parameter]]:
    """The trainable 2-D weights OrthoReg regularises in full fine-tuning, as (parameter name, parameter).

    Default (``targets=None``): the weight of every `nn.Linear` (and transformers `Conv1D`), as the paper.
    With ``targets``: the 2-D ``weight`` of every module whose name matches (str: regex; list: exact/suffix).

    Example:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> [n for n, _ in select_full_ft_weights(net)]
        ['0.weight', '2.weight']
    """
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a dependency
        Conv1D = nn.Linear
    chosen, seen = [], set()
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or not weight.requires_grad or weight.dim() != 2:
            continue
        if targets is None and not isinstance(module, (nn.Linear, Conv1D)):
            continue
        if not _matches(name, targets) or id(weight) in seen:
            continue
        seen.add(id(weight))  # tied weights count once
        chosen.append((f"{name}.weight" if name else "weight", weight))
    if not chosen:
        raise ValueError(f"orthoreg_target_modules={targets!r} matches no trainable 2-D weight of the model")
    return chosen


def _forms_that(capability: str) -> str:
    names = sorted(name for name, form in forms().items() if getattr(form, capability))
    return ", ".join(map(repr, names))


def _dense_form(name: str, estimator: str) -> OrthoRegForm:
    # The form full fine-tuning runs, with the estimator its dense form implements (before the trainer's init).
    form = get_form(name)
    if form.dense_loss is None:
        raise ValueError(
            f"orthoreg_form={name!r}: full fine-tuning supports {_forms_that('dense_loss')} (the forms with a "
            "dense form); a PEFT model takes its form from each adapter's OrthoLoraConfig.orthoreg_form"
        )
    if estimator not in form.estimators:
        raise ValueError(
            f"orthoreg_estimator={estimator!r}: the dense form of orthoreg_form={name!r} implements "
            f"{', '.join(map(repr, form.estimators))} only"
        )
    return form


def _check_row_sharded(form: OrthoRegForm, sharding: str, where: str) -> None:
    if not form.row_sharded:
        raise ValueError(
            f"orthoreg_form={form.name!r}{where} has no implementation for parameters sharded across processes "
            f"({sharding}); use one of {_forms_that('row_sharded')} or DDP / DeepSpeed ZeRO-1/2"
        )


def _check_sharding(trainer: Any, sharding: str) -> None:
    # FSDP2 is supported; what shards parameters any other way is refused in one line naming FSDP2.
    if sharding.startswith("DeepSpeed"):
        raise ValueError(
            f"with_orthoreg: parameters are partitioned by {sharding}, which OrthoReg does not support: use FSDP2 "
            "(examples/accelerate/fsdp.yaml, fsdp_version: 2) or DeepSpeed ZeRO-1/2"
        )
    if sharding == "FSDP":
        plugin = getattr(getattr(getattr(trainer, "accelerator", None), "state", None), "fsdp_plugin", None)
        if getattr(plugin, "fsdp_version", 2) != 2:
            raise ValueError(
                "with_orthoreg: FSDP1 flattens parameters, which OrthoReg does not support: set fsdp_version: 2 "
                "in the accelerate config (examples/accelerate/fsdp.yaml)"
            )


def _snapshot(p: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    # W⁰: a copy of p, or of this rank's rows of a row-sharded p (plain tensors, so that they can live on the CPU).
    w0 = local_rows(p)[0] if is_row_sharded(p) else p
    return w0.detach().clone().to(device if device is not None else w0.device)


def _snapshot_rows(name: str, p: torch.Tensor, w0: torch.Tensor) -> torch.Tensor:
    # A whole W⁰ taken before the trainer sharded the model keeps only this rank's rows from then on.
    if is_row_sharded(p) and w0.shape == p.shape:
        rows, first, _ = local_rows(p)
        return w0[first : first + rows.shape[0]].clone()
    if not is_row_sharded(p) and w0.shape != p.shape:
        raise ValueError(
            f"with_orthoreg: parameter {name} is whole but its snapshot W⁰ holds one rank's rows; OrthoReg supports "
            "FSDP2 with parameters resharded after each backward (the default)"
        )
    return w0


def _laid_out_like(p: torch.Tensor, w0: torch.Tensor) -> torch.Tensor:
    # W⁰ on p's device and dtype; a row-sharded p gets its rows of W⁰ as a DTensor of the same layout.
    w0 = w0.to(device=p.to_local().device if is_row_sharded(p) else p.device, dtype=p.dtype)
    if not is_row_sharded(p):
        return w0
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(
        w0, p.device_mesh, p.placements, shape=p.shape, stride=p.stride(), run_check=False
    )


class _OrthoRegMixin:
    """The part of `with_orthoreg` that is mixed in front of the trainer class."""

    def __init__(
        self,
        *args: Any,
        orthoreg_weight: float | None = None,
        orthoreg_norm: str | None = None,
        orthoreg_target_modules: str | list[str] | None = None,
        orthoreg_estimator: str = "exact",
        orthoreg_probes: int = 1,
        orthoreg_snapshot_device: str | torch.device | None = None,
        orthoreg_form: str = "paper",
        **kwargs: Any,
    ) -> None:
        # Validate before the (slow) trainer init so that bad input fails at once.
        if orthoreg_weight is not None:
            orthoreg_weight = check_weight(orthoreg_weight)
        if orthoreg_norm is not None:
            check_norm(orthoreg_norm)
        check_estimator(orthoreg_estimator, orthoreg_probes)
        dense_form = _dense_form(orthoreg_form, orthoreg_estimator)
        super().__init__(*args, **kwargs)
        self._orthoreg_form = dense_form
        self._orthoreg_norm = orthoreg_norm
        self._orthoreg_estimator = orthoreg_estimator
        self._orthoreg_probes = orthoreg_probes
        self._orthoreg_logged: list[float] = []
        self._orthoreg_adapters: dict[str, float] = {}
        self._orthoreg_full: list[tuple[str, nn.Parameter, torch.Tensor]] = []
        self._orthoreg_full_weight = 0.0
        model = self.accelerator.unwrap_model(self.model) if hasattr(self, "accelerator") else self.model
        sharding = sharded_parameters(self, model) if _is_peft(model) or orthoreg_weight else None
        if sharding is not None:
            _check_sharding(self, sharding)
        if _is_peft(model):
            if (
                orthoreg_target_modules is not None
                or orthoreg_estimator != "exact"
                or orthoreg_form != "paper"
            ):
                raise ValueError(
                    "orthoreg_target_modules/orthoreg_estimator/orthoreg_form apply to full fine-tuning only; a PEFT "
                    "model uses the exact factor form its adapters' OrthoLoraConfig.orthoreg_form names"
                )
            for adapter in sorted({a for _, a, _ in iter_lora_factors(model)}):
                cfg_weight = getattr(model.peft_config.get(adapter), "orthoreg_weight", 0.0)
                self._orthoreg_adapters[adapter] = (
                    orthoreg_weight if orthoreg_weight is not None else cfg_weight
                )
            if sharding is not None:
                for adapter in self._orthoreg_adapters:
                    form = get_form(getattr(model.peft_config.get(adapter), "orthoreg_form", "paper"))
                    _check_row_sharded(form, sharding, f" (adapter {adapter!r})")
            with torch.no_grad():  # fail now (DoRA, conv LoRA, ...) rather than at the first step
                for adapter in self._orthoreg_adapters:
                    form_loss(model, adapter, norm=orthoreg_norm)
        elif orthoreg_weight:
            if sharding is not None:
                _check_row_sharded(dense_form, sharding, "")
            self._orthoreg_full_weight = orthoreg_weight
            device = torch.device(orthoreg_snapshot_device) if orthoreg_snapshot_device is not None else None
            self._orthoreg_full = [
                (name, p, _snapshot(p, device))
                for name, p in select_full_ft_weights(model, orthoreg_target_modules)
            ]
        elif orthoreg_weight is None:
            warnings.warn(
                "with_orthoreg: the model is not a PEFT model and orthoreg_weight was not given: OrthoReg is off",
                stacklevel=2,
            )

    # -- the term ---------------------------------------------------------------------------------------------
    def orthoreg_term(self) -> tuple[torch.Tensor | None, float | None]:
        """(λ-weighted term to add to the loss or None, unweighted value to log or None) for the current weights."""
        if self._orthoreg_full:
            deltas = self._orthoreg_deltas()
            seed = None
            if self._orthoreg_estimator == "hutchinson":  # new probes every step, the same on every rank
                seed = (int(self.args.seed) * 1_000_003 + int(self.state.global_step)) % (2**63)
            squared = check_norm(self._orthoreg_norm or "fro")
            estimate = {}
            if self._orthoreg_estimator != "exact":
                estimate = dict(estimator=self._orthoreg_estimator, probes=self._orthoreg_probes, seed=seed)
            value = self._orthoreg_form.dense_loss(deltas, squared=squared, **estimate)
            return self._orthoreg_full_weight * value, value.item()
        if not self._orthoreg_adapters:
            return None, None
        model = self.accelerator.unwrap_model(self.model)
        weighted, total = None, 0.0
        for adapter, weight in self._orthoreg_adapters.items():
            if weight > 0:
                value = form_loss(model, adapter, norm=self._orthoreg_norm)
                weighted = weight * value if weighted is None else weighted + weight * value
            else:  # λ = 0: still log the value (cheap in factor space), without a graph
                with torch.no_grad():
                    value = form_loss(model, adapter, norm=self._orthoreg_norm)
            total += value.item()
        return weighted, total

    def _orthoreg_deltas(self) -> list[torch.Tensor]:
        # FSDP2 set up by the trainer replaces the parameters after __init__: look them up by name each step.
        model = self.accelerator.unwrap_model(self.model) if hasattr(self, "accelerator") else self.model
        current = dict(model.named_parameters())
        deltas = []
        for i, (name, p, w0) in enumerate(self._orthoreg_full):
            p = current.get(name, p)
            w0 = _snapshot_rows(name, p, w0)
            self._orthoreg_full[i] = (name, p, w0)
            deltas.append(p - _laid_out_like(p, w0))
        return deltas

    def _orthoreg_ga_divisor(self, num_items_in_batch: Any) -> int:
        # Mirror Trainer.training_step: if it will not divide the loss by the accumulation steps (the loss is
        # "already scaled for GA", e.g. GRPO or a num_items_in_batch-normalised LM loss), divide our term here,
        # so that one optimizer step always receives exactly λ·∇OrthoReg.
        scaled = getattr(self, "loss_is_scaled_for_ga", None)
        if scaled is None:
            scaled = (
                getattr(self, "model_accepts_loss_kwargs", False) and num_items_in_batch is not None
            ) or getattr(self, "compute_loss_func", None) is not None
        steps = (
            getattr(self, "current_gradient_accumulation_steps", None)
            or self.args.gradient_accumulation_steps
        )
        return int(steps) if scaled else 1

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        # The term is computed before the forward: FSDP2 then holds every parameter as its row shard (after the
        # forward it keeps the root module's parameters unsharded).
        training = self.model.training
        weighted, value = self.orthoreg_term() if training else (None, None)
        out = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        if not training:
            return out  # evaluation losses stay comparable with the plain trainer's
        if value is not None:
            self._orthoreg_record(value)
        if weighted is None:
            return out
        term = weighted / self._orthoreg_ga_divisor(num_items_in_batch)
        if return_outputs:
            loss, outputs = out
            return loss + term.to(loss.device), outputs
        return out + term.to(out.device)

    # -- logging ----------------------------------------------------------------------------------------------
    def _orthoreg_record(self, value: float) -> None:
        metrics = getattr(self, "_metrics", None)  # TRL trainers average and log these themselves
        if isinstance(metrics, dict) and "train" in metrics:
            metrics["train"]["orthoreg"].append(value)
        else:
            self._orthoreg_logged.append(value)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:  # noqa: D102
        if self._orthoreg_logged and self.model.training:
            logs["orthoreg"] = sum(self._orthoreg_logged) / len(self._orthoreg_logged)
            self._orthoreg_logged.clear()
        super().log(logs, *args, **kwargs)


def with_orthoreg(trainer_cls: type) -> type:
    """A subclass of `trainer_cls` (Trainer, SFTTrainer, GRPOTrainer, DistillGuardTrainer, ...) adding OrthoReg.

    Extra keyword arguments of the returned class: ``orthoreg_weight`` (λ; required for full fine-tuning,
    overrides the adapters' configs for PEFT), ``orthoreg_norm``, ``orthoreg_target_modules`` (full FT: str regex
    or list of names/suffixes), ``orthoreg_estimator`` (``"exact"``/``"hutchinson"``), ``orthoreg_probes``,
    ``orthoreg_snapshot_device`` (e.g. ``"cpu"`` to keep W⁰ off the accelerator), ``orthoreg_form`` (full FT:
    any form with a dense form, built in ``"paper"`` or ``"scale_free"``; a PEFT model uses each adapter's
    ``OrthoLoraConfig.orthoreg_form``).

    Example:
        >>> from transformers import Trainer
        >>> OrthoRegTrainer = with_orthoreg(Trainer)
        >>> OrthoRegTrainer.__name__, issubclass(OrthoRegTrainer, Trainer), with_orthoreg(Trainer) is OrthoRegTrainer
        ('OrthoRegTrainer', True, True)
    """
    if issubclass(trainer_cls, _OrthoRegMixin):
        return trainer_cls
    if trainer_cls not in _CACHE:
        _CACHE[trainer_cls] = type(
            f"OrthoReg{trainer_cls.__name__}",
            (_OrthoRegMixin, trainer_cls),
            {"__module__": __name__, "__doc__": f"{trainer_cls.__name__} with OrthoReg added to its loss."},
        )
    return _CACHE[trainer_cls]
