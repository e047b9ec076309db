"""The ``reasoning_gym`` verifier: reasoning-gym's own ``score_answer`` of a completion's final answer.

Example:
    >>> extract_final_answer("Answer: 4\\nI hope this helps", gold="4")
    '4'
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from distill_ortho_merge.task_data import reasoning_gym_module
from distill_ortho_merge.verifiers.common import completion_text


def extract_final_answer(text: str, gold: str | None = None) -> str | None:
    """The answer of a completion: after the last ``Answer:`` (case-insensitive), else inside the last
    ``<answer>...</answer>``, else the last non-empty line; only its first line when the gold answer is one line.

    Example:
        >>> extract_final_answer("Answer: 4\\nI hope this helps", gold="4")
        '4'
    """
    found = re.split(r"(?i)\banswer\s*:", text)
    if len(found) > 1:
        answer = found[-1]
    else:
        tags = re.findall(r"(?is)<answer>(.*?)</answer>", text)
        lines = [line for line in text.splitlines() if line.strip()]
        answer = tags[-1] if tags else (lines[-1] if lines else "")
    answer = answer.strip()
    if gold is not None and "\n" not in str(gold).strip():
        answer = answer.split("\n", 1)[0].strip()
    if gold is not None and answer.endswith(".") and not str(gold).endswith("."):
        answer = answer[:-1].rstrip()
    return answer or None


@functools.cache
def _score_fn(task: str):
    return reasoning_gym_module().get_score_answer_fn(task)


def reasoning_gym(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
    """TRL reward: reasoning-gym's own ``score_answer`` of the extracted final answer (`extract_final_answer`),
    for rows with ``rg_task`` and ``rg_entry`` columns (``reasoning_gym:<task>`` datasets); None without them.

    Example:
        >>> import json
        >>> entry = json.dumps({"question": "gcd(4, 6)?", "answer": "2", "metadata": {}})
        >>> reasoning_gym(["q"], ["... Answer: 2"], rg_task=["gcd"], rg_entry=[entry])  # doctest: +SKIP
        [1.0]
    """
    n = len(completions)
    tasks = kwargs.get("rg_task") or [None] * n
    entries = kwargs.get("rg_entry") or [None] * n
    if len(tasks) != n or len(entries) != n:
        raise ValueError(
            f"reasoning_gym: {len(tasks)} rg_task / {len(entries)} rg_entry values for {n} completions"
        )
    scores: list[float | None] = []
    for completion, task, raw in zip(completions, tasks, entries, strict=True):
        if not task or not raw:
            scores.append(None)
            continue
        entry = json.loads(raw) if isinstance(raw, str) else dict(raw)
        answer = extract_final_answer(completion_text(completion), str(entry.get("answer", "")))
        scores.append(float(_score_fn(task)(answer, entry)))
    return scores
