"""Knowledge QA: exact match and token F1 of the extracted answer span against one or more gold strings."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

from distill_ortho_merge.verifiers.common import column_values, completion_text


def normalize_qa(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles (a/an/the), single spaces.

    Example:
        >>> normalize_qa("The  Eiffel-Tower!")
        'eiffeltower'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_ANSWER_MARKER = re.compile(r"(?:final answer|the answer is|answer\s*:)\s*[:\-]?\s*", re.IGNORECASE)


def extract_qa_answer(text: str) -> str:
    """The answer span of a free-text QA completion: after the last "answer is"/"Answer:" up to the end of that
    line or sentence, else the first non-empty line.

    Example:
        >>> extract_qa_answer("Let me think.\\nThe answer is Paris. It is in France.")
        'Paris'
    """
    matches = list(_ANSWER_MARKER.finditer(text))
    if matches:
        tail = text[matches[-1].end() :]
        line = tail.split("\n", 1)[0]
        return re.split(r"(?<=[^\s.])\.(?:\s|$)", line, maxsplit=1)[0].strip().strip("*").strip()
    for line in text.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def _golds(gold: Any) -> list[str]:
    if gold is None:
        return []
    if isinstance(gold, str):
        return [gold]
    if isinstance(gold, dict) and "text" in gold:  # SQuAD's {"text": [...], "answer_start": [...]}
        return _golds(gold["text"])
    if isinstance(gold, Sequence):
        return [str(g) for g in gold if g is not None]
    return [str(gold)]


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_qa(prediction).split(), normalize_qa(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def qa_exact_match(
    prompts: list, completions: list, answer: list | None = None, **kwargs: Any
) -> list[float | None]:
    """1.0 when the extracted answer (see `extract_qa_answer`) equals any gold ``answer`` after SQuAD
    normalisation, else 0.0. ``answer`` per row: a string or a list of acceptable strings.

    Example:
        >>> qa_exact_match(prompts=["q"], completions=["Answer: the Nile."], answer=[["Nile", "Nile river"]])
        [1.0]
    """
    golds = column_values({"answer": answer, **kwargs}, "answer", len(completions), "qa_exact_match")
    scores: list[float | None] = []
    for completion, gold in zip(completions, golds, strict=True):
        refs = _golds(gold)
        pred = normalize_qa(extract_qa_answer(completion_text(completion)))
        scores.append(float(any(pred == normalize_qa(r) for r in refs)) if refs else None)
    return scores


def qa_f1(prompts: list, completions: list, answer: list | None = None, **kwargs: Any) -> list[float | None]:
    """SQuAD token F1 between the extracted answer and the best-matching gold ``answer``.

    Example:
        >>> qa_f1(prompts=["q"], completions=["Answer: river Nile"], answer=["the Nile river"])
        [1.0]
    """
    golds = column_values({"answer": answer, **kwargs}, "answer", len(completions), "qa_f1")
    scores: list[float | None] = []
    for completion, gold in zip(completions, golds, strict=True):
        refs = _golds(gold)
        pred = extract_qa_answer(completion_text(completion))
        scores.append(max(_f1(pred, r) for r in refs) if refs else None)
    return scores
