"""Build the tiny models the merge examples (`examples/configs/merge_*.yaml`) point to (seconds on CPU).

    python examples/data/merge_tiny.py            # writes ./models/{base,task_math,task_code,task_chat}

The base is the tiny Qwen2 of `distill_ortho_merge.testing` (tokenizer A, random weights); the three "task"
models are copies of it with independent Gaussian noise on every weight, standing in for fine-tuned models.
Every merge command of the README then runs as written; the merged models mean nothing (the quick start merges
really fine-tuned ones).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

TASKS = ("task_math", "task_code", "task_chat")


def build(root: Path = Path("models")) -> Path:
    """Write `root/base` and `root/task_*` (each through a temporary sibling, renamed when complete)."""
    from distill_ortho_merge import testing as tiny
    from distill_ortho_merge.outputs import staged_dir

    tok = tiny.tokenizer_a()
    base = tiny.make_teacher(tok)
    for name, model in zip(
        ("base", *TASKS), (base, *tiny.make_finetuned_copies(base, len(TASKS))), strict=True
    ):
        with staged_dir(root / name) as tmp:
            tiny.save_model(model, tok, tmp)
    return root


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("models")))
