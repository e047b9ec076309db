"""Build the tiny models and adapters the merge examples (`examples/configs/merge_*.yaml`) point to (seconds).

    python examples/data/merge_tiny.py     # writes ./models/{base,task_*} and ./adapters/task_*

The base is the tiny Qwen2 of `distill_ortho_merge.testing` (tokenizer A) after a few steps of prose; each task model is the base
fine-tuned on one toy task of `distill_ortho_merge.toy_tasks`: `task_math` on the single-digit additions (the `math_answer`
verifier scores it on `examples/data/calibrate_tiny.jsonl`), `task_code` on reversing letters, `task_chat` on
sorting them. Each `adapters/task_*` is a rank-8 PEFT LoRA adapter of the base holding the best rank-8
approximation (truncated SVD) of that task model's update to every linear layer, for `lora-merge`. Every merge
command of the README then runs as written, and `single-scores` / `search-alpha` print non-zero scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

TASKS = ("task_math", "task_code", "task_chat")
LORA_RANK = 8


def task_lines(task: str) -> list[str]:
    """The training texts of a task model."""
    from distill_ortho_merge import toy_tasks

    rows = {"task_math": toy_tasks.sums, "task_code": toy_tasks.reversals, "task_chat": toy_tasks.sorts}[
        task
    ]()
    return toy_tasks.texts(rows)


def extract_lora(base, tuned, out: Path, base_ref: str, rank: int = LORA_RANK) -> Path:
    """Write a PEFT LoRA adapter of `base` whose update to each linear layer is the rank-`rank` truncated SVD of
    `tuned`'s (B = U√S, A = √S Vᵀ, scaling lora_alpha / r = 1)."""
    import copy

    from peft import LoraConfig, get_peft_model

    targets = sorted(
        {n.rsplit(".", 1)[-1] for n, m in base.named_modules() if isinstance(m, torch.nn.Linear)}
        - {"lm_head"}
    )
    model = get_peft_model(
        copy.deepcopy(base), LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, lora_dropout=0.0)
    )
    tuned_weights = dict(tuned.named_parameters())
    with torch.no_grad():
        for name, module in model.base_model.model.named_modules():
            if not hasattr(module, "lora_A") or "default" not in module.lora_A:
                continue
            delta = tuned_weights[f"{name}.weight"] - module.base_layer.weight
            u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
            root = s[:rank].sqrt()
            module.lora_B["default"].weight.copy_((u[:, :rank] * root).float())
            module.lora_A["default"].weight.copy_((root[:, None] * vh[:rank]).float())
    model.peft_config["default"].base_model_name_or_path = base_ref
    model.save_pretrained(out)
    return out


def build(root: Path = Path("models"), adapters: Path | None = None, steps: int = 400) -> Path:
    """Write `root/base`, `root/task_*` and `adapters/task_*` (default: `adapters` beside `root`), each through
    a temporary sibling renamed when complete; `steps` of fine-tuning for task_math (a quarter of it for the
    others, whose scores no demo reads). Returns `root`."""
    from distill_ortho_merge import testing as tiny
    from distill_ortho_merge import toy_tasks
    from distill_ortho_merge.outputs import staged_dir

    adapters = root.parent / "adapters" if adapters is None else adapters
    tok = tiny.tokenizer_a()
    base = toy_tasks.train_lm(
        tiny.make_teacher(tok), tok, tiny.corpus(3, mix=(0.0, 0.6, 0.4)), max(1, steps // 6)
    )
    with staged_dir(root / "base") as tmp:
        tiny.save_model(base, tok, tmp)
    for i, task in enumerate(TASKS):
        tuned = tiny.make_teacher(tok)
        tuned.load_state_dict(base.state_dict())
        task_steps = steps if task == "task_math" else max(1, steps // 4)
        toy_tasks.train_lm(tuned, tok, task_lines(task), task_steps, seed=i + 1)
        with staged_dir(root / task) as tmp:
            tiny.save_model(tuned, tok, tmp)
        with staged_dir(adapters / task) as tmp:
            extract_lora(base, tuned, tmp, str(root / "base"))
    return root


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("models")))
