"""The toy tasks the demo fixtures (`examples/data/*_tiny.py`) learn in seconds, and the few lines of training
that teach them.

- `sums()`: the 100 single-digit additions "What is a + b?" → " The answer is c." (the `math_answer` verifier
  reads the last number); a tiny model learns the whole table in a few hundred steps, so the demos'
  scores are far from 0 (the committed `calibrate_tiny.jsonl`, `report_*.jsonl` are rows of this table);
- `reversals(n)`, `sorts(n)`: letter puzzles, the merge demo's other two tasks;
- `train_lm`: AdamW on prompt + completion + EOS (every token), a few hundred steps of batch 32.
"""

from __future__ import annotations

import random

import torch


def sums() -> list[dict[str, str]]:
    """All 100 single-digit additions, each with `prompt`, `completion` and the gold `answer`.

    Example:
        >>> sums()[37]
        {'prompt': 'What is 3 + 7?', 'completion': ' The answer is 10.', 'answer': '10'}
    """
    return [
        {"prompt": f"What is {a} + {b}?", "completion": f" The answer is {a + b}.", "answer": str(a + b)}
        for a in range(10)
        for b in range(10)
    ]


def reversals(n: int = 200, seed: int = 0) -> list[dict[str, str]]:
    """`n` "Reverse abc:" → " cba." rows (3–5 letters).

    Example:
        >>> row = reversals(1)[0]
        >>> row["completion"][1:-1] == row["prompt"].removeprefix("Reverse ").removesuffix(":")[::-1]
        True
    """
    rng = random.Random(f"reverse-{seed}")
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randrange(3, 6))) for _ in range(n)]
    return [{"prompt": f"Reverse {w}:", "completion": f" {w[::-1]}."} for w in words]


def sorts(n: int = 200, seed: int = 0) -> list[dict[str, str]]:
    """`n` "Sort cab:" → " abc." rows (3–5 letters).

    Example:
        >>> row = sorts(1)[0]
        >>> row["completion"][1:-1] == "".join(sorted(row["prompt"].removeprefix("Sort ").removesuffix(":")))
        True
    """
    rng = random.Random(f"sort-{seed}")
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randrange(3, 6))) for _ in range(n)]
    return [{"prompt": f"Sort {w}:", "completion": f" {''.join(sorted(w))}."} for w in words]


def texts(rows: list[dict[str, str]]) -> list[str]:
    """Prompt and completion of each row as one training text.

    Example:
        >>> texts(sums()[:1])
        ['What is 0 + 0? The answer is 0.']
    """
    return [row["prompt"] + row["completion"] for row in rows]


def train_lm(
    model, tokenizer, lines: list[str], steps: int, lr: float = 3e-3, batch: int = 32, seed: int = 0
):
    """`steps` AdamW steps (learning rate decaying linearly to 0) of causal-LM training on `lines` (each followed
    by EOS; only trainable parameters move); returns the model in eval mode.

    Example:
        >>> from distill_ortho_merge.testing import make_student, tokenizer_a
        >>> tok = tokenizer_a()
        >>> model = make_student(tok)
        >>> before = model.lm_head.weight.detach().clone()
        >>> trained = train_lm(model, tok, texts(sums()[:4]), steps=2, batch=2)
        >>> trained is model and not trained.training and not torch.equal(before, model.lm_head.weight)
        True
    """
    gen = torch.Generator().manual_seed(seed)
    side, tokenizer.padding_side = tokenizer.padding_side, "right"
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / steps)  # ends still, not mid-swing
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(lines), (batch,), generator=gen).tolist()
        enc = tokenizer([lines[i] + tokenizer.eos_token for i in idx], return_tensors="pt", padding=True)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        model(**enc, labels=labels).loss.backward()
        opt.step()
        decay.step()
        opt.zero_grad()
    tokenizer.padding_side = side
    return model.eval()
