"""The one reader of PEFT LoRA adapter directories (``adapter_config.json`` + ``adapter_model.safetensors``).

`read_peft_adapter` reads and checks a saved adapter without PEFT's model classes (safetensors only, nothing
unpickled): per targeted module the factors A, B and the scale s (``lora_alpha / r``, ``/ √r`` with rsLoRA,
``rank_pattern`` / ``alpha_pattern`` matched as PEFT matches them), Embedding LoRA, ``lora_bias``, the fully
trained copies of ``modules_to_save`` and the base weights PEFT saves along (``save_embedding_layers``). What no
caller can read as a delta of the base is refused, each time with one `AdapterError` line naming the adapter and
the field, file or tensor: another ``peft_type``, DoRA and the other LoRA variants, an initialisation that changes
the base weights (PiSSA, OLoRA, ...), trainable tokens, pickled weights only, conv LoRA, quantised factors, a
factor without its partner, a rank that disagrees with the config. A caller that supports less (``lora-merge``
merges plain Linear factors only) refuses the rest itself.

Importing this module imports only the standard library; reading imports torch, safetensors and PEFT.

Example:
    >>> factor_key("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
    ('model.layers.0.self_attn.q_proj', 'A', False)
    >>> factor_key("base_model.model.model.embed_tokens.lora_embedding_B")
    ('model.embed_tokens', 'B', True)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_ortho_merge.errors import InputError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
_FACTOR = re.compile(r"^(?P<module>.+)\.lora_(?P<emb>embedding_)?(?P<which>[AB])(?:\.[^.]+)??(?:\.weight)?$")
_BIAS = re.compile(r"^(?P<module>.+)\.lora_B(?:\.[^.]+)?\.bias$")

#: LoraConfig fields whose update is not s·B·A, or that add more than LoRA factors: refused when set.
VARIANTS = {
    "use_dora": "DoRA (a learned magnitude rescales the update; it is not s·B·A)",
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
    "trainable_token_indices": "trainable tokens (embedding rows, not LoRA factors: load the adapter with PEFT "
    "and merge_and_unload() it instead)",
}
#: init_lora_weights values that change the base weights (an unconverted adapter is not a delta of the base).
BASE_CHANGING_INIT = ("pissa", "olora", "corda", "loftq", "lora_ga")


class AdapterError(InputError):
    """A PEFT adapter directory that cannot be read as a delta of its base; one line naming adapter and field.

    Example:
        >>> str(AdapterError("adapter x: peft_type is 'IA3'"))
        "adapter x: peft_type is 'IA3'"
    """


class AdapterNotFoundError(AdapterError, FileNotFoundError):
    """The directory is not a PEFT adapter at all (no ``adapter_config.json``)."""


def factor_key(key: str) -> tuple[str, str, bool] | None:
    """(module, "A" or "B", embedding?) of a saved LoRA factor's key, None for any other key."""
    name = key.removeprefix(PREFIX)
    match = _FACTOR.match(name)
    if match is None or (match["emb"] is None and not name.endswith(".weight")):
        return None
    return match["module"], match["which"], match["emb"] is not None


@dataclass(frozen=True)
class LoraModule:
    """One targeted module: ΔW = s·B·A (transposed for Embedding LoRA and ``fan_in_fan_out``), Δbias = s·bias.

    Example:
        >>> import torch
        >>> LoraModule(torch.ones(1, 3), torch.ones(2, 1), 0.5).delta().shape
        torch.Size([2, 3])
    """

    a: Any
    b: Any
    scale: float
    embedding: bool = False
    bias: Any = None

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])

    def delta(self, fan_in_fan_out: bool = False) -> Any:
        """ΔW in the layout of the base weight (float32 or wider)."""
        import torch

        dtype = torch.promote_types(self.b.dtype, torch.float32)
        d = self.scale * (self.b.to(dtype) @ self.a.to(dtype))
        return d.T if self.embedding or fan_in_fan_out else d


class AdapterConfigFields:
    """What callers read from an adapter's ``config`` (a mapping attribute), under one name each."""

    config: dict[str, Any]

    @property
    def base_name(self) -> str | None:
        """``base_model_name_or_path``: the base the adapter was trained on, if recorded."""
        return self.config.get("base_model_name_or_path")

    @property
    def fan_in_fan_out(self) -> bool:
        """Whether the base weights are stored transposed (``Conv1D``), so ΔW = (s·B·A)ᵀ."""
        return bool(self.config.get("fan_in_fan_out"))


@dataclass
class PeftAdapter(AdapterConfigFields):
    """A read and checked PEFT LoRA adapter directory."""

    path: Path
    config: dict[str, Any]
    modules: dict[str, LoraModule] = field(default_factory=dict)
    #: fully trained copies (``modules_to_save``), keyed like the base model's state dict
    trained: dict[str, Any] = field(default_factory=dict)
    #: base weights saved along (PEFT's ``save_embedding_layers``), keyed like the base model's state dict
    base_copies: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"adapter {self.path}"


def read_adapter_config(path: str | Path, *, label: str | None = None, strict: bool = True) -> dict[str, Any]:
    """``adapter_config.json`` of a PEFT LoRA adapter directory, checked: it exists, is JSON and says LORA; with
    `strict` (what `read_peft_adapter` refuses before it reads any weight) no variant and no base-changing
    initialisation either (a caller that loads the adapter with PEFT itself passes ``strict=False``). `label`
    starts every error line (default ``adapter PATH``).

    Example:
        >>> read_adapter_config("no/such/dir", label="--adapter no/such/dir")
        Traceback (most recent call last):
        ...
        distill_ortho_merge.adapters.AdapterNotFoundError: --adapter no/such/dir: not a PEFT adapter directory (no adapter_config.json)
    """
    path = Path(path)
    label = label or f"adapter {path}"
    if not (path / ADAPTER_CONFIG).is_file():
        raise AdapterNotFoundError(f"{label}: not a PEFT adapter directory (no {ADAPTER_CONFIG})")
    try:
        config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{label}: {ADAPTER_CONFIG} is not readable JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        kind = config.get("peft_type") if isinstance(config, dict) else None
        raise AdapterError(f"{label}: peft_type is {kind!r}; only LORA adapters are read")
    if not strict:
        return config
    for name, what in VARIANTS.items():
        if config.get(name):
            raise AdapterError(f"{label}: {name} is set: {what} is not supported")
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(BASE_CHANGING_INIT):
        raise AdapterError(
            f"{label}: init_lora_weights={init!r} changes the base weights; save the adapter converted to a plain "
            "LoRA (PEFT's path_initial_model_for_weight_conversion) first"
        )
    return config


def read_peft_adapter(path: str | Path) -> PeftAdapter:
    """Read and check one PEFT LoRA adapter directory (see the module docstring for what is refused).

    Example:
        >>> import tempfile, torch
        >>> from safetensors.torch import save_file
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / ADAPTER_CONFIG).write_text('{"peft_type": "LORA", "r": 2, "lora_alpha": 4}')
        >>> save_file({"base_model.model.l.lora_A.weight": torch.ones(2, 5),
        ...            "base_model.model.l.lora_B.weight": torch.ones(3, 2)}, str(d / ADAPTER_WEIGHTS))
        >>> module = read_peft_adapter(d).modules["l"]
        >>> module.scale, tuple(module.delta().shape)
        (2.0, (3, 5))
    """
    path = Path(path)
    config = read_adapter_config(path)
    adapter = PeftAdapter(path, config)
    label = adapter.label
    weights_file = path / ADAPTER_WEIGHTS
    if not weights_file.is_file():
        other = "adapter_model.bin exists, but no" if (path / "adapter_model.bin").exists() else "no"
        raise AdapterError(f"{label}: {other} {ADAPTER_WEIGHTS} (only safetensors weights are read)")
    from safetensors.torch import load_file

    try:
        tensors = load_file(weights_file)
    except Exception as exc:  # noqa: BLE001 - a corrupt file is the user's input
        raise AdapterError(f"{label}: {ADAPTER_WEIGHTS} cannot be read ({exc})") from None
    factors: dict[str, dict[str, Any]] = {}
    kinds: dict[str, bool] = {}
    biases = {}
    for key, tensor in tensors.items():
        name = key.removeprefix(PREFIX)
        if name.endswith(".base_layer.weight"):  # save_embedding_layers: a copy of a base weight
            adapter.base_copies[name[: -len(".base_layer.weight")] + ".weight"] = tensor
            continue
        parsed, bias = factor_key(key), _BIAS.match(name)
        if bias is not None:
            biases[bias["module"]] = tensor
            continue
        if parsed is None:
            if "lora_" in name or "trainable_tokens" in name:
                raise AdapterError(
                    f"{label}: tensor {key} is not a plain LoRA factor (DoRA or another variant?)"
                )
            if not tensor.is_floating_point():
                raise AdapterError(
                    f"{label}: tensor {key} is {tensor.dtype}; quantized weights are not supported"
                )
            adapter.trained[name] = tensor  # a fully trained module (modules_to_save)
            continue
        module, which, embedding = parsed
        if tensor.ndim != 2:
            raise AdapterError(f"{label}: tensor {key} is {tensor.ndim}-D: conv LoRA is not supported")
        if not tensor.is_floating_point():
            raise AdapterError(
                f"{label}: tensor {key} is {tensor.dtype}; quantized factors are not supported"
            )
        factors.setdefault(module, {})[which] = tensor
        kinds[module] = embedding
    if not factors and not adapter.trained:
        raise AdapterError(f"{label}: {ADAPTER_WEIGHTS} holds no LoRA factors")
    from peft.utils.other import get_pattern_key  # PEFT's own rank_pattern / alpha_pattern matching

    rank_pattern, alpha_pattern = config.get("rank_pattern") or {}, config.get("alpha_pattern") or {}
    for module, pair in sorted(factors.items()):
        if set(pair) != {"A", "B"}:
            lone = f"lora_{'embedding_' if kinds[module] else ''}{next(iter(pair))}"
            raise AdapterError(f"{label}: module {module} has {lone} without its partner")
        b, a = pair["B"], pair["A"]
        r = int(rank_pattern.get(get_pattern_key(rank_pattern.keys(), module), config.get("r", 8)))
        if b.shape[1] != a.shape[0] or a.shape[0] != r:
            raise AdapterError(
                f"{label}: module {module}: lora_B {tuple(b.shape)} and lora_A {tuple(a.shape)} do not match r={r}"
            )
        lora_alpha = float(
            alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), module), config.get("lora_alpha", 8))
        )
        scale = lora_alpha / (r**0.5 if config.get("use_rslora") else r)
        adapter.modules[module] = LoraModule(
            a, b, scale, embedding=kinds[module], bias=biases.pop(module, None)
        )
    if biases:
        raise AdapterError(f"{label}: lora_B.bias of module {next(iter(biases))} has no LoRA factors")
    return adapter
