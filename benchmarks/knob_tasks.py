"""The knob studies' candidate tasks: items, questions, answers and four equally correct completion formats each
(one of them `direct`, the bare `#### N`), their fixed splits and the tiny setting's two tokenizers per task.

`add21` (2-digit + 1-digit) is `efficacy_knob.py`'s original task; `mul21` (2-digit × 1-digit), `add3`
(3-digit + 3-digit) and `sum46` (sums of 4–6 terms below 100) are the candidates of `knob_floor.py`, and
`efficacy_knob.py --task` runs the knob on any of them.

Example:
    >>> TASKS["mul21"].trace((34, 7), "split")
    ' 30*7=210. 4*7=28. 210+28=238. #### 238'
    >>> TASKS["mul21"].format_of(" 7 times 30 is 210 and 7 times 4 is 28, together 238. #### 238")
    'verbose'
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass


# ------------------------------------------------------------------------------------------------ tasks
def _add3(x: tuple, fmt: str) -> str:
    a, b = x
    s = a + b
    da, db = [int(c) for c in f"{a:03d}"][::-1], [int(c) for c in f"{b:03d}"][::-1]
    if fmt == "columns":
        parts, carry = [], 0
        for name, p, q in zip("uth", da, db, strict=True):
            parts.append(f"{name}: {p}+{q}+{carry}={p + q + carry}")
            carry = (p + q + carry) // 10
        return " " + ". ".join(parts) + f". #### {s}"
    if fmt == "places":
        h, t, u = (a // 100 + b // 100) * 100, (a // 10 % 10 + b // 10 % 10) * 10, a % 10 + b % 10
        return f" {h}+{t}+{u}={s}. #### {s}"
    if fmt == "verbose":
        return f" Add {a} and {b}: hundreds first, then tens, then units. So {s}. #### {s}"
    return f" #### {s}"


def _mul21(x: tuple, fmt: str) -> str:
    a, b = x
    s, t, u = a * b, a // 10 * 10, a % 10
    if fmt == "split":
        return f" {t}*{b}={t * b}. {u}*{b}={u * b}. {t * b}+{u * b}={s}. #### {s}"
    if fmt == "units_first":
        return f" {u}*{b}={u * b}, write {u * b % 10} carry {u * b // 10}. {t // 10}*{b}+{u * b // 10}={s // 10}. #### {s}"
    if fmt == "verbose":
        return f" {b} times {t} is {t * b} and {b} times {u} is {u * b}, together {s}. #### {s}"
    return f" #### {s}"


def _sum46(x: tuple, fmt: str) -> str:
    s = sum(x)
    if fmt == "running":
        acc, parts = x[0], []
        for v in x[1:]:
            parts.append(f"{acc}+{v}={acc + v}")
            acc += v
        return " " + ". ".join(parts) + f". #### {s}"
    if fmt == "pairs":
        halves = [sum(x[i : i + 2]) for i in range(0, len(x), 2)]
        return " " + " ".join(f"{'+'.join(map(str, x[i:i + 2]))}={h}." for i, h in zip(range(0, len(x), 2), halves, strict=True)) + f" {'+'.join(map(str, halves))}={s}. #### {s}"  # fmt: skip
    if fmt == "verbose":
        return f" Adding the {len(x)} numbers one by one gives {s}. #### {s}"
    return f" #### {s}"


def _add21(x: tuple, fmt: str) -> str:
    """The knob study's own traces (`efficacy_knob_task.trace`), so this task is exactly that study's."""
    from efficacy_knob_task import trace

    return trace(*x, fmt)


@dataclass(frozen=True)
class Task:
    """A candidate task: its items, question text, answer and trace formats (one of them `direct`, bare)."""

    items: Callable[[], list[tuple]]
    question: Callable[[tuple], str]
    formats: tuple[str, ...]
    render: Callable[[tuple, str], str]
    answer: Callable[[tuple], int]
    patterns: dict[str, str]  # format -> regex a completion of that format starts with (first match wins)

    def trace(self, x: tuple, fmt: str) -> str:
        """One gold completion of item `x` in format `fmt`."""
        return self.render(x, fmt)

    def format_of(self, text: str) -> str:
        """Which format a completion starts like (`other` if none)."""
        return next((f for f, rx in self.patterns.items() if re.match(rx, text)), "other")

    def row(self, x: tuple) -> dict:
        """The prompt row of item `x`, with the gold `answer` column that `math_answer` reads."""
        return {"prompt": self.question(x), "answer": str(self.answer(x))}


def item_of(prompt: str) -> tuple[int, ...]:
    """The item a task's question asks about: its numbers, in order (every task's question is its numbers).

    Example:
        >>> item_of("What is 92 + 32 + 2 + 64?")
        (92, 32, 2, 64)
    """
    return tuple(int(v) for v in re.findall(r"\d+", prompt))


def _sum_items() -> list[tuple]:
    rng = random.Random(0)
    return [tuple(rng.randrange(1, 100) for _ in range(rng.choice((4, 5, 6)))) for _ in range(6000)]


TASKS = {
    "add3": Task(
        lambda: [(a, b) for a in range(100, 1000, 7) for b in range(100, 1000, 11)],
        lambda x: f"What is {x[0]} + {x[1]}?", ("columns", "places", "verbose", "direct"), _add3, lambda x: sum(x),
        {"columns": r"^ u: ", "places": r"^ \d+\+\d+\+\d+=", "verbose": r"^ Add ", "direct": r"^ ####"},
    ),
    "mul21": Task(
        lambda: [(a, b) for a in range(10, 100) for b in range(2, 10)],
        lambda x: f"What is {x[0]} * {x[1]}?", ("split", "units_first", "verbose", "direct"), _mul21,
        lambda x: x[0] * x[1],
        {"split": r"^ \d0\*\d=", "units_first": r"^ \d\*\d=\d+, write", "verbose": r"^ \d times ", "direct": r"^ ####"},
    ),
    "sum46": Task(
        _sum_items, lambda x: "What is " + " + ".join(map(str, x)) + "?", ("running", "pairs", "verbose", "direct"),
        _sum46, lambda x: sum(x),
        # running sums reuse the last result; pairs do not
        {"running": r"^ \d+\+\d+=(\d+)\. \1\+", "pairs": r"^ \d+\+\d+=\d+\. ", "verbose": r"^ Adding ", "direct": r"^ ####"},
    ),
    "add21": Task(
        lambda: [(a, b) for a in range(10, 100) for b in range(1, 10)],
        lambda x: f"What is {x[0]} + {x[1]}?", ("units_first", "tens_first", "verbose", "direct"), _add21,
        lambda x: sum(x),
        {"units_first": r"^ \d\+\d=", "tens_first": r"^ \d0\+", "direct": r"^ ####", "verbose": r"^ Units "},
    ),
}  # fmt: skip


def split(task: str, n_val: int = 100, n_test: int = 200) -> dict[str, list[tuple]]:
    """The task's items shuffled once (seed 0): `val` (the floor is measured here), `test` (kept for the knob,
    never read by `knob_floor.py`) and `train` (the prompts students see).

    Example:
        >>> [len(v) for v in split("mul21").values()]
        [100, 200, 420]
    """
    items = TASKS[task].items()
    random.Random(0).shuffle(items)
    return {"val": items[:n_val], "test": items[n_val : n_val + n_test], "train": items[n_val + n_test :]}


# ------------------------------------------------------------------------------------------------ tokenizers
def tokenizer(task: str, fam: str):
    """Tokenizer A (`llama`: mostly the task's traces, 320 tokens) or B (`mistral`: mostly prose, 480 tokens),
    digit-split, as in the knob study's tiny setting, e.g. `tokenizer("mul21", "llama")`."""
    from distill_ortho_merge import testing as tiny

    t = TASKS[task]
    items = split(task)["train"][:300]
    traces = [t.question(x) + t.trace(x, f) for x in items for f in t.formats]
    if fam == "llama":
        return tiny.digit_tokenizer(320, traces + tiny.corpus(1, mix=(0.2, 0.6, 0.2)))
    return tiny.digit_tokenizer(480, tiny.corpus(2, mix=(0.1, 0.6, 0.3)) + traces[::8])
