"""Build the tiny offline teacher and proxy that `examples/configs/tiny.yaml` points to (seconds on CPU).

    python examples/data/calibrate_tiny.py            # writes examples/data/calibrate_tiny/{teacher,proxy}

Both come from `distill_ortho_merge.testing` (a Qwen2 teacher on tokenizer A, a Llama proxy on tokenizer B:
different vocabularies) and get a few dozen steps of next-token training on the generated arithmetic text, so that they
write ASCII text like "The answer is 42" instead of random bytes (a completion that is not valid UTF-8 is
unscorable). They are toys: the point is that the whole pipeline runs in seconds, not what it learns.
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


def build(root: Path = HERE / "calibrate_tiny", steps: int = 60) -> Path:
    """Write `root/teacher` and `root/proxy` and return `root`."""
    from distill_ortho_merge import testing as tiny

    torch.manual_seed(0)
    lines = tiny.corpus(3, mix=(0.8, 0.1, 0.1))
    tok_a, tok_b = tiny.tokenizer_a(), tiny.tokenizer_b()
    tok_a.padding_side = tok_b.padding_side = "right"
    teacher = pretrain(tiny.make_teacher(tok_a), tok_a, lines, steps)
    proxy = pretrain(tiny.make_student(tok_b), tok_b, lines, steps, seed=1)
    tok_a.padding_side = tok_b.padding_side = "left"
    tiny.save_model(teacher, tok_a, root / "teacher")
    tiny.save_model(proxy, tok_b, root / "proxy")
    return root


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "calibrate_tiny"))
