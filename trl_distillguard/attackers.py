"""Distillation attackers of `distillguard report`: each is a named recipe for the student's training data.

Built-in names: `greedy`, `t07`, `t1` (one sample per prompt at that temperature), `t1_correct` (only the samples
the verifier marks right), `t1_2x`, `t1_3x` (2× / 3× prompts and steps), and the general form
`t<T>[_correct][_<k>x]` / `greedy[_correct][_<k>x]`, where `<T>` is `1`, `07` (= 0.7), `0.7` or `1p5` (= 1.5).
Plugins add others through the hook `trl_distillguard_attackers` (see `hookspecs.py`).

Example:
    >>> resolve_attacker("t07_correct_2x")
    Attacker(name='t07_correct_2x', temperature=0.7, correct_only=True, budget=2)
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Protocol

from distill_ortho_merge.cli import InputError
from distill_ortho_merge.registry import PluginRegistry
from trl_distillguard import hookspecs

_FORM = re.compile(r"(?:greedy|t(?P<t>\d+(?:[.p]\d+)?))(?P<correct>_correct)?(?:_(?P<budget>\d+)x)?")


class AttackData(Protocol):
    """What an attacker sees of one (teacher, seed): the prompts, the teacher's samples, the verifier
    (`trl_distillguard.report_cells.TeacherSamples` in a report).

    Example:
        >>> sorted(m for m in vars(AttackData) if not m.startswith("_"))
        ['prompt_rows', 'teacher_samples', 'verify']
    """

    seed: int
    n_prompts: int

    def prompt_rows(self, n: int) -> list[dict[str, Any]]: ...

    def teacher_samples(self, temperature: float, n: int) -> list[dict[str, Any]]: ...

    def verify(self, samples: list[dict[str, Any]]) -> list[float | None]: ...


@dataclass(frozen=True)
class Attacker:
    """Samples the teacher at `temperature` on `budget` × the base number of prompts, keeps only the verified
    samples when `correct_only`, and trains for `budget` × the base steps.

    Example:
        >>> Attacker("t1_3x", 1.0, budget=3).budget
        3
    """

    name: str
    temperature: float = 1.0
    correct_only: bool = False
    budget: int = 1

    def train_samples(self, data: AttackData) -> list[dict[str, Any]]:
        """The student's prompt-completion training rows (an empty list: the student is not trained).

        Example:
            >>> from trl_distillguard.report_cells import TeacherSamples
            >>> data = TeacherSamples(None, [{"prompt": "p"}], 2, 0, verifier=None, sample=None, gold=lambda r: "x")
            >>> len(Attacker("t1_2x", budget=2).train_samples(data))
            4
        """
        samples = data.teacher_samples(self.temperature, data.n_prompts * self.budget)
        if not self.correct_only:
            return samples
        return [s for s, ok in zip(samples, data.verify(samples), strict=True) if ok]

    def settings(self) -> dict[str, Any]:
        """What the report records of the attacker in every cell.

        Example:
            >>> Attacker("greedy", 0.0).settings()["temperature"]
            0.0
        """
        return {"temperature": self.temperature, "correct_only": self.correct_only, "budget": self.budget}


def parse_attacker(name: str) -> Attacker | None:
    """The built-in attacker of the general form `t<T>[_correct][_<k>x]`, or None when `name` is not of it.

    Example:
        >>> parse_attacker("greedy").temperature, parse_attacker("t1p5").temperature, parse_attacker("best_of_4")
        (0.0, 1.5, None)
    """
    m = _FORM.fullmatch(name)
    if m is None or m["budget"] == "0":
        return None
    t = m["t"]
    if t is None:
        temperature = 0.0
    elif "." in t or "p" in t:
        temperature = float(t.replace("p", "."))
    else:  # `07` is 0.7, `1` is 1
        temperature = float(f"0.{t[1:]}") if t.startswith("0") and len(t) > 1 else float(t)
    return Attacker(name, temperature, m["correct"] is not None, int(m["budget"] or 1))


attacker_registry = PluginRegistry(
    "trl_distillguard", hookspecs, "trl_distillguard_attackers", env_var="TRL_DISTILLGUARD_THIRD_PARTY"
)


def resolve_attacker(name: str) -> Attacker:
    """A plugin's attacker by name, else the built-in general form; a one-line `InputError` otherwise.

    Example:
        >>> resolve_attacker("t1").settings()
        {'temperature': 1.0, 'correct_only': False, 'budget': 1}
    """
    items = attacker_registry.registry()
    if name in items:
        attacker = items[name].obj
        if not isinstance(attacker, Attacker):
            raise InputError(
                f"attackers: plugin item {name!r} is a {type(attacker).__name__}, not an Attacker"
            )
        return attacker
    attacker = parse_attacker(name)
    if attacker is None:
        plugins = f"; plugins: {', '.join(sorted(items))}" if items else ""
        raise InputError(
            f"attackers: unknown attacker {name!r} (built-in: greedy, t07, t1, t1_correct, t1_2x, t1_3x, or "
            f"t<T>[_correct][_<k>x]{plugins})"
        )
    return attacker


def prompt_order(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """The attacker's `n` prompt rows for `seed`: the train rows shuffled by the seed (the same for every teacher
    of a seed: paired comparisons), cycled when `n` exceeds them (several samples of a prompt).

    Example:
        >>> [r["p"] for r in prompt_order([{"p": 0}, {"p": 1}], 3, seed=0)]
        [1, 0, 1]
    """
    order = random.Random(seed).sample(rows, k=len(rows))
    return [order[i % len(order)] for i in range(n)]
