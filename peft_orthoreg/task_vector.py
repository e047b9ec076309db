"""`TaskVector`: τ = θ_ft − θ₀ keyed like the base model's state dict; arithmetic, apply, save/load, export.

Stored as one safetensors file (``task_vector.safetensors``, no pickle) whose metadata names the format, the
base model and a fingerprint of the base weights; arithmetic across different bases is refused.

Example:
    >>> import torch
    >>> a = TaskVector({"w": torch.ones(2, 2)}, base_model="m")
    >>> b = TaskVector({"w": torch.full((2, 2), 3.0)}, base_model="m")
    >>> (a + (-0.5) * b)["w"][0, 0].item()
    -0.5
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from distill_ortho_merge.outputs import staged_dir
from peft_orthoreg.errors import MissingInputError, OrthoRegInputError, OutputExistsError

FORMAT = "peft_orthoreg.task_vector"
FORMAT_VERSION = "1"
FILE = "task_vector.safetensors"


# -- helpers ----------------------------------------------------------------------------------------------
def fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """A cheap identity of a set of weights: sha256 of every tensor's shape and ≤ 16 strided values.

    Key names are left out and duplicates collapse, so tied weights and renamed wrappers (PEFT's
    ``base_layer``) give the same fingerprint as the plain saved model.
    """
    entries = set()
    for t in state.values():
        flat = t.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 16)][:16].to(torch.float64).cpu()
        entries.add(f"{tuple(t.shape)}|{json.dumps([round(float(v), 6) for v in sample])}")
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]


def _delta_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


def load_weights(path_or_model: str | os.PathLike | nn.Module) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict of floating tensors, model name) from a module or a directory of ``*.safetensors`` files."""
    if isinstance(path_or_model, nn.Module):
        name = (
            getattr(getattr(path_or_model, "config", None), "_name_or_path", "")
            or type(path_or_model).__name__
        )
        state, seen = {}, set()
        for key, t in path_or_model.state_dict().items():
            if t.is_floating_point() and t.data_ptr() not in seen:  # tied weights once, like save_pretrained
                seen.add(t.data_ptr())
                state[key] = t
        return state, name
    from safetensors.torch import load_file

    from distill_ortho_merge.models import resolve_model

    # a built-in model name or a *.gguf file becomes its converted directory; directories pass through
    path = Path(path_or_model) if Path(path_or_model).is_dir() else resolve_model(path_or_model, "model")
    files = sorted(
        p for p in path.glob("*.safetensors") if not p.name.startswith(("adapter_", "task_vector"))
    )
    if not path.is_dir() or not files:
        raise MissingInputError(
            f"{path}: no *.safetensors model weights there (pickled .bin weights are not read)"
        )
    state = {}
    for f in files:
        state.update({k: v for k, v in load_file(f).items() if v.is_floating_point()})
    return state, str(path)


class TaskVector:
    """A task vector τ: per-tensor deltas keyed like the base model's state dict (float32 or wider).

    Args:
        deltas: key -> delta tensor.
        base_model: name or path of the base model θ₀.
        base_fingerprint: `fingerprint` of θ₀'s weights ("" when unknown, e.g. an adapter without its base).
        source: where the vector came from (informational).

    Example:
        >>> tv = TaskVector({"weight": torch.ones(2, 2)}, base_model="tiny")
        >>> (2 * tv - tv).norm()
        2.0
    """

    def __init__(
        self,
        deltas: Mapping[str, torch.Tensor],
        *,
        base_model: str = "",
        base_fingerprint: str = "",
        source: str = "",
    ) -> None:
        self.deltas = {k: v.detach() for k, v in deltas.items()}
        self.base_model, self.base_fingerprint, self.source = base_model, base_fingerprint, source

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_models(
        cls, base: str | os.PathLike | nn.Module, finetuned: str | os.PathLike | nn.Module
    ) -> TaskVector:
        """τ = θ_ft − θ₀ for every floating tensor (models or ``save_pretrained`` directories).

        Example:
            >>> base, ft = nn.Linear(2, 2), nn.Linear(2, 2)
            >>> sorted(TaskVector.from_models(base, ft).keys())
            ['bias', 'weight']
        """
        b, base_name = load_weights(base)
        f, ft_name = load_weights(finetuned)
        for key in sorted(set(b) | set(f)):
            if key not in b or key not in f:
                where = "base" if key not in b else "fine-tuned model"
                raise OrthoRegInputError(f"TaskVector.from_models: key {key!r} is missing from the {where}")
            if b[key].shape != f[key].shape:
                raise OrthoRegInputError(
                    f"TaskVector.from_models: key {key!r} has shape {tuple(f[key].shape)} in the fine-tuned model "
                    f"but {tuple(b[key].shape)} in the base"
                )
        deltas = {k: f[k].to(_delta_dtype(f[k])) - b[k].to(_delta_dtype(f[k])) for k in b}
        return cls(deltas, base_model=base_name, base_fingerprint=fingerprint(b), source=ft_name)

    @classmethod
    def from_peft(
        cls,
        path_or_model: str | os.PathLike | nn.Module,
        adapter_name: str = "default",
        base: str | os.PathLike | nn.Module | None = None,
    ) -> TaskVector:
        """Densify a LoRA adapter: ΔW = s·B·A per layer (also rsLoRA, alpha/rank patterns, Embedding LoRA,
        ``lora_bias``).

        ``path_or_model`` is a saved adapter directory (read by `distill_ortho_merge.adapters.read_peft_adapter`,
        which refuses DoRA and the other variants in one line) or a `PeftModel`. Fully trained modules
        (``modules_to_save``) need the base weights: pass ``base`` for a directory.
        """
        if isinstance(path_or_model, nn.Module):
            return cls._from_peft_model(path_or_model, adapter_name)
        from distill_ortho_merge.adapters import read_peft_adapter

        adapter = read_peft_adapter(path_or_model)  # the shared reader: refusals are one-line AdapterErrors
        base_state, base_name = load_weights(base) if base is not None else ({}, "")
        deltas: dict[str, torch.Tensor] = {}
        for module, lora in sorted(adapter.modules.items()):
            deltas[f"{module}.weight"] = lora.delta(adapter.fan_in_fan_out).float()
            if lora.bias is not None:
                deltas[f"{module}.bias"] = lora.scale * lora.bias.float()
        for name, trained in sorted(adapter.trained.items()):  # modules_to_save: needs the base weight
            if name not in base_state:
                raise OrthoRegInputError(
                    f"{adapter.label}: {name!r} is a fully trained module; pass base=... so its delta can be computed"
                )
            deltas[name] = trained.float() - base_state[name].float()
        if not deltas:
            raise OrthoRegInputError(f"{adapter.label}: no LoRA weights found")
        return cls(
            deltas,
            base_model=base_name or str(adapter.base_name or ""),
            base_fingerprint=fingerprint(base_state) if base_state else "",
            source=str(adapter.path),
        )

    @classmethod
    def _from_peft_model(cls, model: nn.Module, adapter_name: str) -> TaskVector:
        from peft.tuners.lora.layer import LoraLayer
        from peft.utils.other import ModulesToSaveWrapper

        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        deltas, base_state = {}, {}
        for name, module in inner.named_modules():
            if isinstance(module, LoraLayer) and adapter_name in module.scaling:
                if adapter_name in module.lora_variant:
                    raise OrthoRegInputError(
                        f"TaskVector.from_peft: layer {name!r} uses a LoRA variant (DoRA?); not s·B·A"
                    )
                deltas[f"{name}.weight"] = module.get_delta_weight(adapter_name).detach().float()
                if module.lora_bias.get(adapter_name):
                    deltas[f"{name}.bias"] = (
                        module.lora_B[adapter_name].bias.detach().float() * module.scaling[adapter_name]
                    )
            elif isinstance(module, ModulesToSaveWrapper) and adapter_name in module.modules_to_save:
                trained = module.modules_to_save[adapter_name]
                for pname, p in module.original_module.named_parameters():
                    deltas[f"{name}.{pname}"] = (
                        trained.get_parameter(pname).detach().float() - p.detach().float()
                    )
        for key, t in inner.state_dict().items():  # the base weights, named as in the plain model
            if any(m in key for m in ("lora_", ".modules_to_save.")) or not t.is_floating_point():
                continue
            base_state[key.replace(".base_layer.", ".").replace(".original_module.", ".")] = t
        if not deltas:
            raise OrthoRegInputError(
                f"TaskVector.from_peft: the model has no LoRA layers for adapter {adapter_name!r}"
            )
        name = getattr(getattr(inner, "config", None), "_name_or_path", "") or ""
        return cls(deltas, base_model=name, base_fingerprint=fingerprint(base_state), source="PeftModel")

    # -- container / arithmetic -----------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self.deltas)

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.deltas[key]

    def __len__(self) -> int:
        return len(self.deltas)

    def __repr__(self) -> str:
        return f"TaskVector({len(self)} tensors, base_model={self.base_model!r}, source={self.source!r})"

    def norm(self) -> float:
        """‖τ‖₂ over all tensors."""
        return math.sqrt(sum(float(d.double().pow(2).sum()) for d in self.deltas.values()))

    def _check_same_base(self, other: TaskVector) -> None:
        if self.base_fingerprint and other.base_fingerprint:
            same = self.base_fingerprint == other.base_fingerprint
        else:
            same = not (self.base_model and other.base_model) or self.base_model == other.base_model
        if not same:
            raise OrthoRegInputError(
                f"TaskVector arithmetic across different bases: {self.base_model!r} ({self.base_fingerprint or '?'}) "
                f"vs {other.base_model!r} ({other.base_fingerprint or '?'})"
            )

    def __add__(self, other: TaskVector) -> TaskVector:
        if not isinstance(other, TaskVector):
            return NotImplemented
        self._check_same_base(other)
        out = dict(self.deltas)
        for key, d in other.deltas.items():  # a key missing on one side counts as a zero delta
            if key in out:
                if out[key].shape != d.shape:
                    raise OrthoRegInputError(
                        f"TaskVector +: key {key!r} has shapes {tuple(out[key].shape)} and {tuple(d.shape)}"
                    )
                out[key] = out[key] + d.to(out[key].dtype)
            else:
                out[key] = d
        return self._like(out, source=f"({self.source} + {other.source})")

    def __sub__(self, other: TaskVector) -> TaskVector:
        return self + (-other)

    def __neg__(self) -> TaskVector:
        return self._like({k: -d for k, d in self.deltas.items()}, source=f"-{self.source}")

    def __mul__(self, alpha: float) -> TaskVector:
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool):
            return NotImplemented
        return self._like(
            {k: d * float(alpha) for k, d in self.deltas.items()}, source=f"{alpha}*{self.source}"
        )

    __rmul__ = __mul__

    def _like(self, deltas: dict[str, torch.Tensor], source: str) -> TaskVector:
        fp = self.base_fingerprint
        return TaskVector(deltas, base_model=self.base_model, base_fingerprint=fp, source=source)

    # -- use ------------------------------------------------------------------------------------------------
    def apply_to(self, model: nn.Module, alpha: float = 1.0) -> nn.Module:
        """θ ← θ + α·τ in place (keys must exist with the same shapes; checked before anything changes).

        Example:
            >>> net = nn.Linear(2, 2, bias=False); w = net.weight.detach().clone()
            >>> _ = TaskVector({"weight": torch.ones(2, 2)}).apply_to(net, alpha=0.5)
            >>> torch.equal(net.weight.detach(), w + 0.5)
            True
        """
        state = model.state_dict(keep_vars=True)
        for key, d in self.deltas.items():
            if key not in state:
                raise OrthoRegInputError(f"TaskVector.apply_to: key {key!r} is not in the model's state dict")
            if tuple(state[key].shape) != tuple(d.shape):
                raise OrthoRegInputError(
                    f"TaskVector.apply_to: key {key!r} has shape {tuple(d.shape)}, the model's is {tuple(state[key].shape)}"
                )
        done: dict[int, str] = {}
        with torch.no_grad():
            for key, d in self.deltas.items():
                target = state[key]
                ptr = target.data_ptr()
                if ptr in done:  # tied weights: apply once, and only if both keys agree
                    if not torch.equal(d, self.deltas[done[ptr]]):
                        raise OrthoRegInputError(
                            f"TaskVector.apply_to: tied keys {done[ptr]!r} and {key!r} have different deltas"
                        )
                    continue
                done[ptr] = key
                target.add_(d.to(device=target.device, dtype=target.dtype), alpha=float(alpha))
        return model

    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``DIR/task_vector.safetensors`` (+ a readable ``task_vector.json``), atomically."""
        from safetensors.torch import save_file

        directory = Path(directory)
        if directory.exists() and not overwrite:
            raise OutputExistsError(f"{directory} exists; pass overwrite=True to replace it")
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "base_model": self.base_model,
            "base_fingerprint": self.base_fingerprint,
            "source": self.source,
        }
        with staged_dir(directory) as tmp:
            tensors = {k: d.contiguous().cpu() for k, d in self.deltas.items()}
            save_file(tensors, str(tmp / FILE), metadata=meta)
            summary = {**meta, "num_tensors": len(self), "norm": self.norm()}
            (tmp / "task_vector.json").write_text(json.dumps(summary, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> TaskVector:
        """Read a directory written by `save` (a clear error for anything else, truncated files included)."""
        from safetensors import safe_open

        path = Path(directory)
        file = path / FILE if path.is_dir() else path
        if not file.is_file():
            raise MissingInputError(f"{path}: no {FILE} there")
        try:
            with safe_open(str(file), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT:
                    raise OrthoRegInputError(
                        f"{file}: not a peft_orthoreg task vector (metadata format={meta.get('format')!r})"
                    )
                deltas = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        except OrthoRegInputError:
            raise
        except Exception as exc:  # safetensors raises its own error types for truncated / foreign files
            raise OrthoRegInputError(
                f"{file}: unreadable safetensors file ({type(exc).__name__}: {exc})"
            ) from None
        return cls(
            deltas,
            base_model=meta.get("base_model", ""),
            base_fingerprint=meta.get("base_fingerprint", ""),
            source=meta.get("source", ""),
        )

    def export_model(
        self,
        base: str | os.PathLike | nn.Module,
        out_dir: str | os.PathLike,
        alpha: float = 1.0,
        overwrite: bool = False,
    ) -> Path:
        """Write θ₀ + α·τ as a full ``save_pretrained`` directory that ``mergekit-yaml`` accepts as a model.

        ``base`` is a directory (loaded with `AutoModelForCausalLM`; its tokenizer files are copied) or a
        `PreTrainedModel` (copied, so the caller's model is left untouched). Written to a temporary sibling first;
        an existing `out_dir` is replaced only with `overwrite`.
        """
        out_dir = Path(out_dir)
        if out_dir.exists() and not overwrite:
            raise OutputExistsError(f"{out_dir} exists; choose a new output directory")
        if isinstance(base, nn.Module):
            model, base_dir = copy.deepcopy(base), None
        else:
            from transformers import AutoModelForCausalLM

            from distill_ortho_merge.models import resolve_model

            base_dir = resolve_model(base, "base")  # a directory, *.gguf file or built-in model name
            model = AutoModelForCausalLM.from_pretrained(base_dir, trust_remote_code=False)
        if self.base_fingerprint:
            state, _ = load_weights(model)
            if fingerprint(state) != self.base_fingerprint:
                raise OrthoRegInputError(
                    f"TaskVector.export_model: {base} is not this task vector's base ({self.base_model!r})"
                )
        self.apply_to(model, alpha=alpha)
        with staged_dir(out_dir) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            if base_dir is not None:
                for f in base_dir.iterdir():  # tokenizer & co.; weights and config come from save_pretrained
                    weights = f.name.endswith((".safetensors", ".bin", ".index.json"))
                    if f.is_file() and not weights and not (tmp / f.name).exists():
                        shutil.copy2(f, tmp / f.name)
        return out_dir
