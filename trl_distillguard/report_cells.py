"""The cells of `distillguard report` — one (teacher, student, recipe, attacker, seed) each — and what they share:
the grid and its shards, each cell's cache file in `output_dir`, and one teacher sampling pass per (teacher, seed,
temperature) for every attacker that needs it.

Example:
    >>> Cell("t", "s", "sft", "t1", 0).relpath
    'cells/t/s/sft/t1/seed0.json'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill_ortho_merge.outputs import json_safe, staged_file
from trl_distillguard.attackers import prompt_order
from trl_distillguard.report_config import ReportConfig


@dataclass(frozen=True)
class Cell:
    """One student distilled from one teacher by one attacker with one recipe and seed.

    Example:
        >>> Cell("gold-answers", "s", "sft", "t1", 2).is_gold
        True
    """

    teacher: str
    student: str
    recipe: str
    attacker: str
    seed: int

    @property
    def relpath(self) -> str:
        return f"cells/{self.teacher}/{self.student}/{self.recipe}/{self.attacker}/seed{self.seed}.json"

    @property
    def is_gold(self) -> bool:
        return self.teacher.startswith("gold-")

    def key(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "student": self.student, "recipe": self.recipe,
                "attacker": self.attacker, "seed": self.seed}  # fmt: skip


def grid(cfg: ReportConfig) -> list[Cell]:
    """Every cell, grouped by (teacher, seed) so that a teacher is loaded and sampled once per seed; gold
    references are trained by `sft` only.

    Example:
        >>> cfg = ReportConfig(teachers={"a": "x"}, students={"s": "y"}, attackers="t1,greedy", gold="answers")
        >>> [(c.teacher, c.attacker) for c in grid(cfg)]
        [('a', 't1'), ('a', 'greedy'), ('gold-answers', 't1'), ('gold-answers', 'greedy')]
    """
    cells = []
    for teacher in [*cfg.teachers, *cfg.gold_teachers]:
        recipes = ["sft"] if teacher.startswith("gold-") else cfg.recipes
        for seed in cfg.seed_list:
            for attacker in cfg.attackers:
                for student in cfg.students:
                    cells += [Cell(teacher, student, r, attacker, seed) for r in recipes]
    return cells


def shard(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """The `index`-th (1-based) of `count` contiguous, near-equal blocks (contiguous: a shard loads few teachers).

    Example:
        >>> [len(shard(list(range(10)), i, 3)) for i in (1, 2, 3)]
        [3, 3, 4]
    """
    n = len(cells)
    return cells[(index - 1) * n // count : index * n // count]


def read_json(path: Path) -> dict[str, Any] | None:
    """A cached result, or None when it is not there yet.

    Example:
        >>> read_json(Path("/no/such/cell.json")) is None
        True
    """
    return json.loads(path.read_text()) if path.exists() else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a result atomically (a reader never sees half a file; concurrent shards may write the same one).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "cells" / "c.json"
        >>> write_json(path, {"score": float("nan")}); read_json(path)
        {'score': None}
    """
    with staged_file(path) as tmp:
        tmp.write_text(json.dumps(json_safe(data), indent=1, allow_nan=False))


def _prompt_key(prompt: Any) -> str:
    return json.dumps(prompt, sort_keys=True)


class TeacherSamples:
    """What an attacker sees of one (teacher, seed): the seed's prompt order, the teacher's samples (one sampling
    pass per temperature and number of prompts, a smaller set reusing a larger one's first whole batches, which
    are the same samples) and the verifier. A gold reference's "samples" are the dataset's gold completions.

    Example:
        >>> rows = [{"prompt": "p", "answer": "4"}]
        >>> data = TeacherSamples(None, rows, 1, 0, verifier=None, sample=None, gold=lambda r: " #### " + r["answer"])
        >>> data.teacher_samples(1.0, 2)
        [{'prompt': 'p', 'completion': ' #### 4'}, {'prompt': 'p', 'completion': ' #### 4'}]
    """

    def __init__(
        self,
        teacher: Any,
        rows: list[dict[str, Any]],
        n_prompts: int,
        seed: int,
        *,
        verifier: Callable | None,
        sample: Callable[..., list[dict[str, Any]]] | None,
        batch_size: int = 16,
        prompt_column: str = "prompt",
        gold: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.teacher, self.rows, self.n_prompts, self.seed = teacher, rows, n_prompts, seed
        self.verifier, self._sample, self.batch_size = verifier, sample, batch_size
        self.prompt_column, self.gold = prompt_column, gold
        self._pool: dict[tuple[float, int], list[dict[str, Any]]] = {}
        self.passes = 0  # sampling passes actually run (what sharing saves)
        self._by_prompt = {_prompt_key(r[prompt_column]): r for r in rows}

    def prompt_rows(self, n: int) -> list[dict[str, Any]]:
        """The seed's first `n` prompt rows (`attackers.prompt_order`).

        Example:
            >>> TeacherSamples(None, [{"prompt": "p"}], 1, 0, verifier=None, sample=None).prompt_rows(2)
            [{'prompt': 'p'}, {'prompt': 'p'}]
        """
        return prompt_order(self.rows, n, self.seed)

    def teacher_samples(self, temperature: float, n: int) -> list[dict[str, Any]]:
        """`n` prompt-completion rows sampled at `temperature` (shared: do not modify them); the class example
        shows a gold reference's."""
        if self.gold is not None:
            return [
                {"prompt": r[self.prompt_column], "completion": self.gold(r)} for r in self.prompt_rows(n)
            ]
        if (temperature, n) in self._pool:
            return self._pool[(temperature, n)]
        # a pass over more prompts holds this one's samples when its own batches are whole (same seed, same order)
        larger = [m for (t, m) in self._pool if t == temperature and m > n and n % self.batch_size == 0]
        if larger:
            return self._pool[(temperature, min(larger))][:n]
        prompts = [r[self.prompt_column] for r in self.prompt_rows(n)]
        self.passes += 1
        self._pool[(temperature, n)] = self._sample(prompts, temperature=temperature, seed=self.seed)
        return self._pool[(temperature, n)]

    def prefetch(self, needs: list[tuple[float, int]]) -> None:
        """Sample the largest set per temperature first, so that smaller ones can reuse it.

        Example:
            >>> data = TeacherSamples(None, [{"prompt": "p"}], 1, 0, verifier=None, batch_size=1,
            ...                       sample=lambda ps, temperature, seed: [{"prompt": p, "completion": ""} for p in ps])
            >>> data.prefetch([(1.0, 1), (1.0, 3)]); data.passes
            1
        """
        for temperature, n in sorted(set(needs), key=lambda tn: -tn[1]):
            self.teacher_samples(temperature, n)

    def verify(self, samples: list[dict[str, Any]]) -> list[float | None]:
        """The verifier's score of each sample against its prompt's row (gold answers etc.).

        Example:
            >>> from distill_ortho_merge.verifiers import math_answer
            >>> data = TeacherSamples(None, [{"prompt": "p", "answer": "4"}], 1, 0, verifier=math_answer, sample=None)
            >>> data.verify([{"prompt": "p", "completion": " #### 4"}, {"prompt": "p", "completion": " #### 5"}])
            [1.0, 0.0]
        """
        rows = [self._by_prompt[_prompt_key(s["prompt"])] for s in samples]
        columns = {
            k: [r.get(k) for r in rows] for k in sorted({k for r in rows for k in r} - {self.prompt_column})
        }
        texts = [s["completion"] if isinstance(s["completion"], str) else s["completion"][-1]["content"]
                 for s in samples]  # fmt: skip
        return list(self.verifier(prompts=[s["prompt"] for s in samples], completions=texts, **columns))
