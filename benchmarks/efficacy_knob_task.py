"""The tiny setting of `efficacy_knob.py`: the task (by default `add21`, two-digit + one-digit sums answered with a
reasoning trace in one of four equally correct formats; `--task` picks another of `knob_tasks.TASKS`), digit-split
ByteLevel-BPE tokenizers that load back exactly as trained, tiny Llama / Mistral models, and the teacher's SFT.
Every function taking `task` behaves for `add21` exactly as before the other tasks existed (same splits, same
seeded draws), so the addition study's cache stays valid.

Example:
    >>> trace(37, 5, "tens_first")
    ' 30+7=37. 37+5=42. #### 42'
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import torch
from knob_tasks import TASKS, item_of, split
from knob_tasks import tokenizer as task_tokenizer

from distill_ortho_merge import testing as tiny
from distill_ortho_merge.outputs import staged_file

FORMATS = ("units_first", "tens_first", "direct", "verbose")


def trace(a: int, b: int, fmt: str) -> str:
    """One gold completion of "What is a + b?" (two-digit a, one-digit b) in format `fmt`; every format ends with
    `#### a+b`.

    Example:
        >>> trace(37, 5, "units_first")
        ' 7+5=12, carry 1. 3+1=4. #### 42'
    """
    (ta, ua), s = divmod(a, 10), a + b
    carry = (ua + b) // 10
    if fmt == "units_first":
        return f" {ua}+{b}={ua + b}, carry {carry}. {ta}+{carry}={ta + carry}. #### {s}"
    if fmt == "tens_first":
        return f" {ta}0+{ua}={a}. {a}+{b}={s}. #### {s}"
    if fmt == "direct":
        return f" #### {s}"
    if fmt == "verbose":
        return f" Units {ua} plus {b} is {ua + b}, carry {carry}. Tens {ta} plus {carry} is {ta + carry}. So {s}. #### {s}"
    raise ValueError(f"format: {fmt!r} is not one of {FORMATS}")


def task_formats(task: str) -> tuple[str, ...]:
    """The completion formats of `task`, in the order its seeded draws use (`add21`: `FORMATS`).

    Example:
        >>> task_formats("mul21")
        ('split', 'units_first', 'verbose', 'direct')
    """
    return FORMATS if task == "add21" else TASKS[task].formats


GOLD = ("direct", "traces")  # the gold references: bare `#### N` answers, traces of uniformly random format


def gold_samples(prompt_rows: list[dict], gold: str, seed: int, task: str = "add21") -> list[dict]:
    """Prompt-completion rows from the task's gold data instead of a teacher: `direct` the bare ` #### N` answer of
    each row (any dataset with an `answer` column), `traces` a gold trace of uniformly random format per row (a
    `knob_tasks` task only: the data the original teacher learnt from).

    Example:
        >>> gold_samples([{"prompt": "What is 37 + 5?", "answer": "42"}], "direct", seed=0)
        [{'prompt': 'What is 37 + 5?', 'completion': ' #### 42'}]
    """
    rng = random.Random(seed)
    out = []
    for r in prompt_rows:
        if gold == "direct":
            completion = f" #### {r['answer']}"
        else:
            completion = TASKS[task].trace(item_of(r["prompt"]), rng.choice(task_formats(task)))
        out.append({"prompt": r["prompt"], "completion": completion})
    return out


def format_of(text: str, task: str = "add21") -> str:
    """Which trace format of `task` a completion starts like (`other` if none).

    Example:
        >>> format_of(trace(12, 3, "verbose"))
        'verbose'
    """
    return TASKS[task].format_of(text)


def splits(n_test: int, n_val: int) -> dict[str, list[tuple[int, int]]]:
    """All 810 pairs (a in 10..99, b in 1..9), shuffled once (seed 0) into test / val / train.

    Example:
        >>> [len(v) for v in splits(200, 100).values()]
        [200, 100, 510]
    """
    pairs = [(a, b) for a in range(10, 100) for b in range(1, 10)]
    random.Random(0).shuffle(pairs)
    return {"test": pairs[:n_test], "val": pairs[n_test : n_test + n_val], "train": pairs[n_test + n_val :]}


def rows(pairs) -> list[dict]:
    """Prompt rows with the gold `answer` column that `math_answer` reads.

    Example:
        >>> rows([(12, 3)])
        [{'prompt': 'What is 12 + 3?', 'answer': '15'}]
    """
    return [{"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in pairs]


def split_rows(n_test: int, n_val: int, task: str = "add21") -> dict[str, list[dict]]:
    """The task's splits as prompt rows: `add21` is `splits` (the data of the tiny setting and of the real setting's
    `addition` task), any other task `knob_tasks.split` (the validation items `knob_floor.py` measured on).

    Example:
        >>> split_rows(200, 100, "mul21")["test"][0]["prompt"].startswith("What is")
        True
    """
    return {k: [TASKS[task].row(x) for x in v] for k, v in task_splits(task, n_test, n_val).items()}


def task_splits(task: str, n_test: int, n_val: int) -> dict[str, list[tuple]]:
    """The task's items split into test / val / train: `splits` for `add21`, `knob_tasks.split` otherwise."""
    return splits(n_test, n_val) if task == "add21" else split(task, n_val, n_test)


def train_items(task: str, n_test: int, n_val: int) -> list[tuple]:
    """The items whose gold traces the original teacher learns (the train split).

    Example:
        >>> len(train_items("add21", 200, 100)), len(train_items("mul21", 200, 100))
        (510, 420)
    """
    return task_splits(task, n_test, n_val)["train"]


def write_jsonl(items, path: Path) -> Path:
    """Write rows as JSON lines (parents created), e.g. `write_jsonl(rows([(12, 3)]), work / "val.jsonl")`.
    Through a temporary file and a rename: side-by-side sweeps rewrite the same files while others read them."""
    with staged_file(path) as tmp:  # creates the parents
        tmp.write_text("".join(json.dumps(r) + "\n" for r in items))
    return path


# ------------------------------------------------------------------------------------------------ models
def tokenizers(train_pairs, task: str = "add21") -> tuple:
    """Tokenizer A (the teacher's: trained mostly on the traces, 320 tokens) and B (the proxy's: mostly prose,
    480 tokens); both split digits one by one so that sums are compositional. Called with the train pairs:
    `tok_a, tok_b = tokenizers(splits(200, 100)["train"])`; another task's are `knob_tasks.tokenizer`'s.
    """
    if task != "add21":
        return task_tokenizer(task, "llama"), task_tokenizer(task, "mistral")
    traces = [f"What is {x} + {y}?" + trace(x, y, f) for (x, y) in train_pairs[:300] for f in FORMATS]
    tok_a = tiny.digit_tokenizer(320, traces + tiny.corpus(1, mix=(0.2, 0.6, 0.2)))
    tok_b = tiny.digit_tokenizer(480, tiny.corpus(2, mix=(0.1, 0.6, 0.3)) + traces[::8])
    return tok_a, tok_b


def family(name: str):
    """The model class of a family name used here.

    Example:
        >>> family("mistral").__name__
        'MistralForCausalLM'
    """
    from transformers import LlamaForCausalLM, MistralForCausalLM

    return {"llama": LlamaForCausalLM, "mistral": MistralForCausalLM}[name]


def save_model(model, tok, path: Path, task: str = "add21") -> Path:
    """`tiny.save_model`, then force `tokenizer_class: TokenizersBackend` and assert the round trip (on `task`'s
    traces and prose)."""
    from transformers import AutoTokenizer

    tiny.save_model(model, tok, path)
    cfg_file = path / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["tokenizer_class"] = "TokenizersBackend"
    cfg_file.write_text(json.dumps(cfg, indent=2))
    back = AutoTokenizer.from_pretrained(path)
    if task == "add21":
        probe = [
            f"What is {a} + {b}?" + trace(a, b, f)
            for (a, b), f in zip([(37, 5), (90, 9), (19, 1), (55, 5)] * 2, FORMATS * 2, strict=True)
        ]
    else:
        t = TASKS[task]
        probe = [t.question(x) + t.trace(x, f) for x in split(task)["val"][:2] for f in t.formats]
    for text in probe + tiny.corpus(5, mix=(0.4, 0.4, 0.2), n_lines=20):
        if back(text)["input_ids"] != tok(text)["input_ids"]:
            raise RuntimeError(f"{path}: tokenizer does not round-trip ({type(back).__name__}) on {text!r}")
    return path


def parse_size(text: str) -> tuple[int, int]:
    """A model size written HIDDENxLAYERS (`--student_size`, `knob_floor.py --student`); ValueError otherwise.

    Example:
        >>> parse_size("128x4")
        (128, 4)
    """
    size = tuple(int(v) for v in text.lower().split("x"))
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{text!r} is not HIDDENxLAYERS")
    return size


def new_lm(fam: str, tok, hidden: int, layers: int, seed: int):
    """A randomly initialised tiny causal LM of family `fam` on tokenizer `tok` (eager attention: faster here),
    e.g. `new_lm("llama", tok_a, 64, 2, seed=3)` for student a's initial weights."""
    torch.manual_seed(seed)
    cls = family(fam)
    return cls(
        cls.config_class(
            vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=160, tie_word_embeddings=False,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
            attn_implementation="eager",
        )
    ).eval()  # fmt: skip


def sft_on_traces(
    model, tok, train_pairs, out: Path, steps: int, lr: float, batch: int, task: str = "add21"
) -> None:
    """SFT `model` in place on gold traces of uniformly random format (8 per pair; the formats' mix is the teacher's
    freedom in *how* it answers). Scratch files go under `out/_sft` and are removed. The real setting's
    `addition` teacher: `sft_on_traces(model, tok, train_pairs, out, steps=60, lr=1e-4, batch=16)`.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rng = random.Random(0)
    t, formats = TASKS[task], task_formats(task)
    data = [{"prompt": t.question(x), "completion": t.trace(x, rng.choice(formats))}
            for x in train_pairs for _ in range(8)]  # fmt: skip
    args = SFTConfig(
        output_dir=str(out / "_sft"), max_steps=steps, learning_rate=lr, per_device_train_batch_size=batch,
        lr_scheduler_type="cosine", warmup_steps=min(30, steps // 10), logging_steps=max(1, steps // 5),
        save_strategy="no", report_to="none", use_cpu=True, bf16=False, seed=0, max_length=None, disable_tqdm=True,
        activation_checkpointing=False,  # SFTConfig turns it on: it only recomputes, on CPU and small models
    )  # fmt: skip
    SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(data), processing_class=tok).train()
    shutil.rmtree(out / "_sft", ignore_errors=True)


def sft_teacher(tok, train_pairs, out: Path, steps: int, task: str = "add21") -> None:
    """The tiny setting's original teacher: a Llama (hidden 128 × 4) on tokenizer A, SFT'd on gold traces
    (`sft_on_traces`, lr 3e-3, batch 32) and saved to `out`."""
    model = new_lm("llama", tok, 128, 4, seed=0)
    sft_on_traces(model, tok, train_pairs, out, steps, lr=3e-3, batch=32, task=task)
    save_model(model.eval(), tok, out, task)
