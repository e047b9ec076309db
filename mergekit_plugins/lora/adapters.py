"""Reading PEFT LoRA adapters and the base model's shapes for `lora-merge` (safetensors only, nothing unpickled).

Every refusal is a `LoraMergeError` with one line naming the adapter (or base) and the field or tensor.

Example:
    >>> module_of("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
    ('model.layers.0.self_attn.q_proj', 'A')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mergekit_plugins.lora.config import LoraMergeError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
_FACTOR_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$"
)

#: LoraConfig fields whose update is not s·B·A, or that add more than LoRA factors: refused when set.
VARIANTS = {
    "use_dora": "DoRA (a learned magnitude rescales the update; it is not s·B·A)",
    "lora_bias": "lora_bias (a bias on lora_B; the update is not s·B·A)",
    "use_qalora": "QALoRA (pooled inputs; the update is not s·B·A)",
    "velora_config": "VeLoRA",
    "alora_invocation_tokens": "aLoRA (the update applies only after invocation tokens)",
    "monteclora_config": "MonteCLoRA",
    "arrow_config": "Arrow routing",
    "kasa_config": "KaSA (a learned diagonal between B and A)",
    "use_bdlora": "block-diagonal LoRA",
    "target_parameters": "LoRA on nn.Parameter targets",
    "layer_replication": "layer_replication (it changes the base's layers)",
    "megatron_config": "Megatron-parallel LoRA",
    "modules_to_save": "modules_to_save (full module copies, not LoRA factors; merge with `mergekit-plugins yaml`)",
    "trainable_token_indices": "trainable tokens (embedding rows, not LoRA factors)",
}
#: init_lora_weights values that change the base weights (an unconverted adapter is not a delta of the base).
BASE_CHANGING_INIT = ("pissa", "olora", "corda", "loftq", "lora_ga")


def module_of(key: str) -> tuple[str, str] | None:
    """(module name, "A" or "B") of a saved LoRA factor's key, None for any other key."""
    match = _FACTOR_KEY.match(key)
    return (match["module"], match["which"]) if match else None


@dataclass
class Adapter:
    """One adapter: per module (B, A, scale) with Δ = scale · B A (scale = lora_alpha / r, or / √r with rsLoRA)."""

    path: Path
    weight: float
    config: dict[str, Any]
    modules: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = field(default_factory=dict)
    #: base weights saved along (PEFT's save_embedding_layers); they must equal the base's
    base_copies: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def base_name(self) -> str | None:
        return self.config.get("base_model_name_or_path")

    @property
    def fan_in_fan_out(self) -> bool:
        return bool(self.config.get("fan_in_fan_out"))


def read_adapter(path: str | Path, weight: float = 1.0) -> Adapter:
    """Load and check one PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors)."""
    from peft.utils.other import get_pattern_key  # PEFT's own rank_pattern / alpha_pattern matching
    from safetensors.torch import load_file

    path = Path(path)
    label = f"adapter {path}"
    if not (path / ADAPTER_CONFIG).is_file():
        raise LoraMergeError(f"{label}: no {ADAPTER_CONFIG} (expected a PEFT LoRA adapter directory)")
    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoraMergeError(f"{label}: {ADAPTER_CONFIG} is not readable JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise LoraMergeError(
            f"{label}: peft_type is {config.get('peft_type')!r}, lora-merge merges LORA adapters"
        )
    for name, what in VARIANTS.items():
        if config.get(name):
            raise LoraMergeError(f"{label}: {name} is set: {what} is not supported by lora-merge")
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(BASE_CHANGING_INIT):
        raise LoraMergeError(
            f"{label}: init_lora_weights={init!r} changes the base weights; save the adapter converted to a plain "
            "LoRA (PEFT's path_initial_model_for_weight_conversion) first"
        )
    weights_file = path / ADAPTER_WEIGHTS
    if not weights_file.is_file():
        other = "adapter_model.bin exists, but no" if (path / "adapter_model.bin").exists() else "no"
        raise LoraMergeError(f"{label}: {other} {ADAPTER_WEIGHTS} (lora-merge reads safetensors only)")
    try:
        tensors = load_file(weights_file)
    except Exception as exc:  # noqa: BLE001 - a corrupt file is the user's input
        raise LoraMergeError(f"{label}: {ADAPTER_WEIGHTS} cannot be read ({exc})") from None
    factors: dict[str, dict[str, torch.Tensor]] = {}
    copies = {}
    for key, tensor in tensors.items():
        if key.endswith(".base_layer.weight"):  # PEFT's save_embedding_layers: a copy of a base weight
            copies[
                key[len(PREFIX) if key.startswith(PREFIX) else 0 : -len(".base_layer.weight")] + ".weight"
            ] = tensor
            continue
        parsed = module_of(key)
        if parsed is None:
            kind = "embedding LoRA" if "lora_embedding" in key else "not a LoRA factor"
            raise LoraMergeError(f"{label}: tensor {key} ({kind}) is not supported by lora-merge")
        if tensor.ndim != 2:
            raise LoraMergeError(
                f"{label}: tensor {key} is {tensor.ndim}-D: conv LoRA is not supported by lora-merge"
            )
        if not tensor.is_floating_point():
            raise LoraMergeError(
                f"{label}: tensor {key} is {tensor.dtype}; quantized factors are not supported"
            )
        factors.setdefault(parsed[0], {})[parsed[1]] = tensor
    if not factors:
        raise LoraMergeError(f"{label}: {ADAPTER_WEIGHTS} holds no LoRA factors")
    adapter = Adapter(path, weight, config, base_copies=copies)
    rank_pattern, alpha_pattern = config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}
    for module, pair in sorted(factors.items()):
        if set(pair) != {"A", "B"}:
            raise LoraMergeError(f"{label}: module {module} has lora_{next(iter(pair))} without its partner")
        b, a = pair["B"], pair["A"]
        r = int(rank_pattern.get(get_pattern_key(rank_pattern.keys(), module), config.get("r", 8)))
        if b.shape[1] != a.shape[0] or a.shape[0] != r:
            raise LoraMergeError(
                f"{label}: module {module}: lora_B {tuple(b.shape)} and lora_A {tuple(a.shape)} do not match r={r}"
            )
        lora_alpha = float(
            alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), module), config.get("lora_alpha", 8))
        )
        scale = lora_alpha / (r**0.5 if config.get("use_rslora") else r)
        adapter.modules[module] = (b, a, scale)
    return adapter


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
