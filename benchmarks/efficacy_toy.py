"""The tiny task-arithmetic setting of `efficacy_orthoreg.py`: data, model, base pre-training, fine-tuning.

A char-level Llama (hidden 128 × 4 layers, eager attention) and K = 4 classification-style tasks, each with its
own marker token and its own single-token answers (no answer token shared between tasks), so that a merged
model can answer every task and teacher-forced accuracy of the answer token equals exact match:

- ``count7``: how many '7' in a digit string (capped at 4);
- ``pos_at``: the position of '@' in a string of symbols;
- ``first_rep``: the first letter (a–l) that occurs a second time;
- ``max_digit``: the largest digit of a digit string.

The base is pre-trained on these four plus two more (``last_letter``, ``distinct``) with short inputs (length
2–5); fine-tuning and evaluation use long inputs (6–11), where the base is weak, so a task vector carries a
real skill (length generalisation) that merging may keep or lose.

Example:
    >>> batch = make_batch("count7", 3, random.Random(0), long=True)
    >>> batch.tokens.shape[0], batch.answers.shape
    (3, torch.Size([3]))
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

TASKS = ("count7", "pos_at", "first_rep", "max_digit")
EXTRA = ("last_letter", "distinct")
DIGITS, LETTERS, SYMBOLS = "0123456789", "abcdefghijkl", "!#$%&*+-=?"
SHORT, LONG = (2, 5), (6, 11)


def _count7(rng: random.Random, n: int) -> tuple[str, int]:
    s = "".join(rng.choice(DIGITS) if rng.random() > 0.2 else "7" for _ in range(n))
    return s, min(s.count("7"), 4)


def _pos_at(rng: random.Random, n: int) -> tuple[str, int]:
    s = [rng.choice(SYMBOLS) for _ in range(n)]
    i = rng.randrange(n)
    s[i] = "@"
    return "".join(s), i


def _first_rep(rng: random.Random, n: int) -> tuple[str, int]:
    while True:
        s = "".join(rng.choice(LETTERS) for _ in range(n))
        seen = set()
        for c in s:
            if c in seen:
                return s, LETTERS.index(c)
            seen.add(c)


def _max_digit(rng: random.Random, n: int) -> tuple[str, int]:
    s = "".join(rng.choice(DIGITS) for _ in range(n))
    return s, int(max(s))


def _last_letter(rng: random.Random, n: int) -> tuple[str, int]:
    s = "".join(rng.choice(LETTERS) for _ in range(n))
    return s, LETTERS.index(s[-1])


def _distinct(rng: random.Random, n: int) -> tuple[str, int]:
    s = "".join(rng.choice(SYMBOLS[:6]) for _ in range(n))
    return s, len(set(s)) - 1


# name -> (generator, number of answer classes)
GENERATORS: dict[str, tuple[Callable[[random.Random, int], tuple[str, int]], int]] = {
    "count7": (_count7, 5),
    "pos_at": (_pos_at, 11),
    "first_rep": (_first_rep, 12),
    "max_digit": (_max_digit, 10),
    "last_letter": (_last_letter, 12),
    "distinct": (_distinct, 6),
}

# Vocabulary: pad, '=', the input characters, one marker per task, then each task's own answer tokens.
_CHARS = sorted(set(DIGITS + LETTERS + SYMBOLS + "@"))
VOCAB: list[str] = ["<pad>", "="] + _CHARS
MARKER: dict[str, int] = {}
ANSWER0: dict[str, int] = {}
for _name, (_, _classes) in GENERATORS.items():
    MARKER[_name] = len(VOCAB)
    VOCAB.append(f"<{_name}>")
    ANSWER0[_name] = len(VOCAB)
    VOCAB.extend(f"<{_name}:{i}>" for i in range(_classes))
CHAR_ID = {c: i for i, c in enumerate(VOCAB) if len(c) == 1}
MAX_LEN = 1 + LONG[1] + 1  # marker + input + '='


@dataclass
class Batch:
    """tokens (b × MAX_LEN, right-padded), the index of '=' per row, and the answer token ids."""

    tokens: torch.Tensor
    where: torch.Tensor
    answers: torch.Tensor


def make_batch(task: str, size: int, rng: random.Random, long: bool) -> Batch:
    """`size` examples of `task` with inputs of the long (fine-tuning / evaluation) or short (pre-training) range."""
    gen, _ = GENERATORS[task]
    lo, hi = LONG if long else SHORT
    tokens = torch.zeros(size, MAX_LEN, dtype=torch.long)
    where, answers = torch.zeros(size, dtype=torch.long), torch.zeros(size, dtype=torch.long)
    for i in range(size):
        s, y = gen(rng, rng.randint(lo, hi))
        ids = [MARKER[task], *(CHAR_ID[c] for c in s), CHAR_ID["="]]
        tokens[i, : len(ids)] = torch.tensor(ids)
        where[i], answers[i] = len(ids) - 1, ANSWER0[task] + y
    return Batch(tokens, where, answers)


SPLIT_SEED = {"val": 10_000, "test": 20_000, "xi": 30_000}


def eval_batch(task: str, kind: str, n: int) -> Batch:
    """`n` long-input items of `task`'s `kind` split ("val", "test", "xi"), each split from its own seed."""
    return make_batch(task, n, random.Random(SPLIT_SEED[kind] + TASKS.index(task)), True)


def make_model(seed: int = 0) -> nn.Module:
    """The char-level Llama (hidden 128, 4 layers, 4 heads, MLP 344), initialised from `seed`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=128,
        intermediate_size=344,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32,
        tie_word_embeddings=False,
        pad_token_id=0,
        attn_implementation="eager",
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def answer_logits(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Logits at the '=' position of each row (causal attention: the right padding is never seen)."""
    logits = model(input_ids=batch.tokens).logits
    return logits[torch.arange(len(batch.where)), batch.where]


def accuracy(model: nn.Module, batch: Batch) -> float:
    """Exact match of the single answer token (argmax over the whole vocabulary)."""
    with torch.no_grad():
        return float((answer_logits(model, batch).argmax(-1) == batch.answers).float().mean())


def predictions(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Argmax token at the answer position (for the disentanglement error)."""
    with torch.no_grad():
        return answer_logits(model, batch).argmax(-1)


def train(
    model: nn.Module,
    params: list[nn.Parameter],
    tasks: tuple[str, ...],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    long: bool,
    seed: int,
    regulariser: Callable[[], torch.Tensor] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """AdamW (one-cycle) on the answer token's cross-entropy (+ `regulariser()`); returns the last losses."""
    rng = random.Random(seed)

    def cross_entropy(step: int) -> torch.Tensor:
        batch = make_batch(tasks[step % len(tasks)], batch_size, rng, long)
        return nn.functional.cross_entropy(answer_logits(model, batch), batch.answers)

    return fit(model, params, cross_entropy, steps=steps, lr=lr, seed=seed, regulariser=regulariser, log=log)


def fit(
    model: nn.Module,
    params: list[nn.Parameter],
    cross_entropy: Callable[[int], torch.Tensor],
    *,
    steps: int,
    lr: float,
    seed: int,
    regulariser: Callable[[], torch.Tensor] | None = None,
    log: Callable[[str], None] | None = None,
    log_every: int | None = None,
) -> dict[str, float]:
    """The training loop of both settings: AdamW (one-cycle, no weight decay) on `cross_entropy(step)` +
    `regulariser()`; returns the last step's losses."""
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    ce_last, reg_last = math.nan, 0.0
    for step in range(steps):
        ce = cross_entropy(step)
        loss = ce
        if regulariser is not None:
            reg = regulariser()
            loss = loss + reg
            reg_last = float(reg.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ce_last = float(ce.detach())
        if log is not None and (step + 1) % (log_every or max(1, steps // 4)) == 0:
            log(f"step {step + 1}/{steps} ce {ce_last:.3f} reg {reg_last:.4g}")
    model.eval()
    return {"ce": ce_last, "reg": reg_last}
