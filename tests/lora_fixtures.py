"""Tiny PEFT LoRA adapters for the lora-merge tests: random factors on the tiny Llama of
`distill_ortho_merge.testing`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from mergekit_plugins import core, methods

#: Three adapters: different ranks, rsLoRA, partial targeting (layer 0 only), rank/alpha patterns, the LM head.
ADAPTERS = {
    "a": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]),
    "b": dict(
        r=6,
        lora_alpha=3,
        use_rslora=True,
        target_modules=["q_proj", "k_proj", "o_proj", "gate_proj"],
        layers_to_transform=[0],
    ),
    "c": dict(
        r=2,
        lora_alpha=2,
        target_modules=["q_proj", "down_proj", "lm_head"],
        rank_pattern={"down_proj": 5},
        alpha_pattern={"down_proj": 10},
    ),
}


def save_base(student_dir: Path, out: Path, dtype: torch.dtype) -> Path:
    """The tiny student saved in `dtype` (with its tokenizer files)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(student_dir, dtype=dtype)
    model.save_pretrained(out)
    for item in student_dir.iterdir():
        if item.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy2(item, out / item.name)
    return out


def make_adapter(base_dir: Path, out: Path, seed: int, **lora_kwargs) -> Path:
    """A PEFT LoRA adapter of `base_dir` with random A and B (B is 0 at PEFT's initialisation)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora_kwargs))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    peft_model.save_pretrained(out)
    return out


def peft_deltas(base_dir: Path, adapter_dir: Path) -> dict[str, torch.Tensor]:
    """{weight name: Δ} of an adapter as PEFT itself densifies it (its own scales, rsLoRA, patterns), fp64."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto"), adapter_dir
    )
    out = {}
    for name, module in model.base_model.model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            out[f"{name}.weight"] = module.get_delta_weight("default").double()
    return out


def state_dict(model_dir: Path, adapter_dir: Path | None = None) -> dict[str, torch.Tensor]:
    """Weights of a model directory, or of base + adapter after stock PEFT's merge_and_unload."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def dense_reference(base: dict, deltas: list[dict], method: str, weights, alpha, **kw) -> dict:
    """θ₀ + α·merged through the dense cores on PEFT's densified deltas (Δ = 0 where an adapter is absent)."""
    out = {}
    for name, theta0 in base.items():
        if not any(name in d for d in deltas):
            out[name] = theta0.double()
            continue
        ds = [w * d.get(name, torch.zeros_like(theta0, dtype=torch.float64)) for w, d in zip(weights, deltas)]
        if method == "task_arithmetic":
            merged = sum(ds)
        elif methods.is_embedding(name):
            merged = core.mean_delta(ds)
        else:
            fn = {"tsv": core.tsv_merge, "iso_c": core.iso_c_merge, "iso_cts": core.iso_cts_merge}[method]
            merged = fn(ds, **kw)
        out[name] = theta0.double() + alpha * merged
    return out


def config(base_dir, adapters, method, weights=None, **parameters) -> dict:
    models = [{"model": str(a)} for a in adapters]
    for entry, w in zip(models, weights or []):
        entry["parameters"] = {"weight": w}
    return {"merge_method": method, "base_model": str(base_dir), "models": models, "parameters": parameters}


def edit_config(adapter_dir: Path, out: Path, **changes) -> Path:
    """A copy of an adapter with adapter_config.json fields changed."""
    shutil.copytree(adapter_dir, out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg.update(changes)
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out
