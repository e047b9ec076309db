"""Quick start: show what is installed (every plugin of the three packages) and run a tiny model offline.

    python examples/quickstart.py

Later stages of the project grow this into the full pipeline; today it proves the install works end to end.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

import mergekit_plugins  # noqa: E402
import peft_orthoreg  # noqa: E402
import trl_distillguard  # noqa: E402


def show_plugins() -> None:
    for package in (trl_distillguard, peft_orthoreg, mergekit_plugins):
        items = package.registry()
        plugins = package.plugins.plugin_registry.plugins()
        print(f"{package.__name__} {package.__version__}: plugins {plugins}")
        for name, item in sorted(items.items()):
            print(f"  {name:<24} from {item.distribution}")


def tiny_forward() -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 128, (2, 16))
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    print(
        f"tiny Llama forward: logits {tuple(out.logits.shape)}, loss {out.loss.item():.3f} (≈ ln 128 = 4.852)"
    )


if __name__ == "__main__":
    show_plugins()
    tiny_forward()
