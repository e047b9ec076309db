"""Reading PEFT LoRA adapters (through the shared reader, `distill_ortho_merge.adapters`) and the base model's
shapes for `lora-merge` (safetensors only, nothing unpickled).

Every refusal is a `LoraMergeError` with one line naming the adapter (or base) and the field or tensor.

Example:
    >>> module_of("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
    ('model.layers.0.self_attn.q_proj', 'A')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from distill_ortho_merge.adapters import AdapterConfigFields, AdapterError, factor_key, read_peft_adapter
from mergekit_plugins.lora.config import LoraMergeError

#: What `lora-merge` refuses on top of what the shared reader refuses: it merges plain Linear LoRA factors only.
UNSUPPORTED = {
    "lora_bias": "lora_bias (a bias on lora_B; the update is not s·B·A)",
    "modules_to_save": "modules_to_save (full module copies, not LoRA factors; merge with `mergekit-plugins yaml`)",
}


def module_of(key: str) -> tuple[str, str] | None:
    """(module name, "A" or "B") of a saved Linear LoRA factor's key, None for any other key."""
    parsed = factor_key(key)
    return (parsed[0], parsed[1]) if parsed is not None and not parsed[2] else None


@dataclass
class Adapter(AdapterConfigFields):
    """One adapter: per module (B, A, scale) with Δ = scale · B A (scale = lora_alpha / r, or / √r with rsLoRA)."""

    path: Path
    weight: float
    config: dict[str, Any]
    modules: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = field(default_factory=dict)
    #: base weights saved along (PEFT's save_embedding_layers); they must equal the base's
    base_copies: dict[str, torch.Tensor] = field(default_factory=dict)


def read_adapter(path: str | Path, weight: float = 1.0) -> Adapter:
    """Load and check one PEFT LoRA adapter directory with the shared reader
    (`distill_ortho_merge.adapters.read_peft_adapter`), then refuse what lora-merge cannot merge."""
    try:
        read = read_peft_adapter(path)
    except AdapterError as exc:
        raise LoraMergeError(str(exc)) from None
    label = read.label
    for name, what in UNSUPPORTED.items():
        if read.config.get(name):
            raise LoraMergeError(f"{label}: {name} is set: {what} is not supported by lora-merge")
    for module, lora in read.modules.items():
        if lora.embedding:
            raise LoraMergeError(
                f"{label}: module {module} is an embedding LoRA (lora_embedding_A/B), not supported by lora-merge"
            )
    if read.trained:
        raise LoraMergeError(
            f"{label}: tensor {next(iter(read.trained))} is not a LoRA factor (a fully trained module); "
            "it is not supported by lora-merge"
        )
    modules = {module: (lora.b, lora.a, lora.scale) for module, lora in sorted(read.modules.items())}
    return Adapter(read.path, weight, read.config, modules, base_copies=read.base_copies)


@dataclass
class BaseModel:
    """The base model's directory and, per tensor in its safetensors files, shape and file name."""

    path: Path
    shapes: dict[str, tuple[int, ...]]
    files: dict[str, str]

    @property
    def name_or_path(self) -> str | None:
        try:
            return json.loads((self.path / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
        except (OSError, ValueError):
            return None


def resolve_base(ref: str) -> Path:
    """The local directory of `base_model`: a model directory, a ``*.gguf`` file or a built-in model name
    (`distill_ortho_merge.models.resolve_model`, converted once into the cache)."""
    from distill_ortho_merge.models import BUILTIN_MODELS, ModelError, resolve_model

    if ref in BUILTIN_MODELS or ref.endswith(".gguf"):
        try:
            return resolve_model(ref, "base_model")
        except ModelError as exc:
            raise LoraMergeError(str(exc)) from None
    path = Path(ref).expanduser()
    if not (path / "config.json").is_file():
        raise LoraMergeError(f"base_model {ref!r}: not a local model directory (no config.json there)")
    return path


def read_base(ref: str) -> BaseModel:
    """Shapes of every tensor of `base_model` from its safetensors headers (no weight is loaded); a directory
    with only config.json gets them from the model built on the meta device (enough for an adapter output)."""
    from safetensors import safe_open

    path = resolve_base(ref)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    elif (path / "model.safetensors").is_file():
        names = ["model.safetensors"]
    else:
        return BaseModel(path, _meta_shapes(path, ref), {})
    shapes, files = {}, {}
    for name in names:
        with safe_open(path / name, framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                shapes[key] = tuple(fh.get_slice(key).get_shape())
                files[key] = name
    return BaseModel(path, shapes, files)


def _meta_shapes(path: Path, ref: str) -> dict[str, tuple[int, ...]]:
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # noqa: BLE001 - an unreadable config is the user's input
        raise LoraMergeError(
            f"base_model {ref!r}: no safetensors weights and its config.json cannot build a model ({exc})"
        ) from None
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def same_base(adapter_base: str | None, ref: str, base: BaseModel) -> bool:
    """Whether an adapter's base_model_name_or_path names `base_model`: the same string or directory, the base's
    recorded `_name_or_path`, or the same last path component (a hub id vs a local copy: `org/Model` ~ `…/Model`).
    An adapter that records no base name passes (its shapes are still checked)."""
    if not adapter_base or adapter_base in (ref, base.name_or_path):
        return True
    candidate = Path(adapter_base).expanduser()
    if candidate.exists() and candidate.resolve() == base.path.resolve():
        return True
    return Path(adapter_base.rstrip("/")).name.lower() == base.path.resolve().name.lower()


def check_adapters(adapters: list[Adapter], ref: str, base: BaseModel, allow_base_mismatch: bool) -> None:
    """Refuse adapters of another base (shapes, base name) or with different weight layouts."""
    layouts = {a.fan_in_fan_out for a in adapters}
    if len(layouts) > 1:
        raise LoraMergeError(f"adapter {adapters[0].path}: fan_in_fan_out differs between the adapters")
    for adapter in adapters:
        label = f"adapter {adapter.path}"
        if not allow_base_mismatch and not same_base(adapter.base_name, ref, base):
            raise LoraMergeError(
                f"{label}: base_model_name_or_path is {adapter.base_name!r}, not base_model {ref!r} "
                "(pass --allow-base-mismatch if it is the same model)"
            )
        for name, copy in adapter.base_copies.items():
            if not _equals_base(base, name, copy):
                raise LoraMergeError(
                    f"{label}: its saved copy of {name} differs from base_model's (a resized vocabulary?); "
                    "lora-merge merges LoRA factors only"
                )
        for module, (b, a, _) in adapter.modules.items():
            shape = base.shapes.get(f"{module}.weight")
            if shape is None:
                raise LoraMergeError(
                    f"{label}: module {module} has no weight {module}.weight in base_model {ref!r}"
                )
            expected = (a.shape[1], b.shape[0]) if adapter.fan_in_fan_out else (b.shape[0], a.shape[1])
            if tuple(shape) != expected:
                raise LoraMergeError(
                    f"{label}: module {module} updates a {expected[0]}×{expected[1]} weight, base_model's is "
                    f"{'×'.join(map(str, shape))} (an adapter of another base?)"
                )


def _equals_base(base: BaseModel, name: str, tensor: torch.Tensor) -> bool:
    from safetensors import safe_open

    if name not in base.files:
        return False
    with safe_open(base.path / base.files[name], framework="pt") as fh:
        return torch.equal(fh.get_tensor(name), tensor)
