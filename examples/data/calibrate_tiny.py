"""Build the tiny offline teacher and proxy that `examples/configs/tiny.yaml` points to (seconds on CPU).

    python examples/data/calibrate_tiny.py            # writes examples/data/calibrate_tiny/{teacher,proxy}

Both come from `distill_ortho_merge.testing` (a Qwen2 teacher on tokenizer A, a Llama proxy on tokenizer B: different
vocabularies) and a few hundred steps of next-token training on generated text and on the single-digit additions
of `distill_ortho_merge.toy_tasks`, so that they write ASCII text like "The answer is 12" instead of random bytes (a completion
that is not valid UTF-8 is unscorable) and the teacher answers most of `calibrate_tiny.jsonl` right: `distillguard
calibrate --config examples/configs/tiny.yaml` then logs a task reward well above 0. They are toys.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def pretrain(
    model, tokenizer, lines: list[str], steps: int = 60, batch: int = 16, lr: float = 3e-3, seed: int = 0
):
    """A few AdamW steps of causal-LM training on `lines` (each followed by EOS)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(lines), (batch,), generator=gen).tolist()
        enc = tokenizer([lines[i] + tokenizer.eos_token for i in idx], return_tensors="pt", padding=True)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


def build(root: Path = HERE / "calibrate_tiny", steps: int = 400, sums: bool = True) -> Path:
    """Write `root/teacher` and `root/proxy` and return `root`; `sums=False` leaves the single-digit additions out
    of the training text (the quick start trains its own tasks)."""
    from distill_ortho_merge import testing as tiny
    from distill_ortho_merge import toy_tasks

    torch.manual_seed(0)
    if sums:  # prose and puzzles, and four times as many lines of the addition table (one answer format)
        lines = tiny.corpus(3, mix=(0.0, 0.5, 0.5)) + toy_tasks.texts(toy_tasks.sums()) * 16
        train = toy_tasks.train_lm
    else:
        lines, train = tiny.corpus(3, mix=(0.8, 0.1, 0.1)), pretrain
    tok_a, tok_b = tiny.tokenizer_a(), tiny.tokenizer_b()
    tok_a.padding_side = tok_b.padding_side = "right"
    teacher = train(tiny.make_teacher(tok_a), tok_a, lines, steps)
    proxy = train(tiny.make_student(tok_b), tok_b, lines, steps, seed=1)
    tok_a.padding_side = tok_b.padding_side = "left"
    tiny.save_model(teacher, tok_a, root / "teacher")
    tiny.save_model(proxy, tok_b, root / "proxy")
    return root


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "calibrate_tiny"))
