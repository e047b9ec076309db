"""Multiple choice: the option letter a completion commits to against the gold letter, index or option text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from distill_ortho_merge.verifiers.common import column_values, completion_text
from distill_ortho_merge.verifiers.qa import normalize_qa

_LETTERS = "ABCDEFGHIJ"


def extract_choice(text: str, num_choices: int = 10, options: Sequence[str] | None = None) -> str | None:
    """The option letter a completion chose, or None when there is none or it is ambiguous.

    Recognises, in order of trust: "answer is (B)" / "Answer: B" / "correct option is B", a bold ``**B**``,
    a completion that is just ``B``, ``(B)`` or starts with ``B.``/``B)``/``B:``, and the exact text of one option.
    A completion naming several different letters in the same way (e.g. "A or B") is ambiguous -> None.

    Example:
        >>> extract_choice("Thinking... **C**")
        'C'
        >>> extract_choice("It is A or B") is None
        True
    """
    letters = _LETTERS[: max(1, min(num_choices, len(_LETTERS)))]
    cls = f"[{letters}{letters.lower()}]"
    up = f"[{letters}]"
    after = r"(?:\s*(?:is|:)\s*|\s+)(?:option\s+|choice\s+)?"
    # (pattern, take the last match?) in order of trust. Bare letters must be upper case ("a" is an article),
    # except inside brackets.
    patterns = [
        (rf"(?i:answer){after}(?:\(({cls})\)|\[({cls})\]|\**({up})\**)(?![A-Za-z])", True),
        (rf"(?i:option|choice){after}(?:\(({cls})\)|\**({up})\**)(?![A-Za-z])", True),
        (rf"\*\*\(?({up})\)?\*\*", False),
        (rf"^\s*(?:\(({cls})\)|\[({cls})\]|({up}))\s*$", False),
        (rf"^\s*[\(\[]?({up})[\)\]\.:](?:\s|$)", False),
        (rf"\(({up})\)", False),
    ]
    for pattern, last in patterns:
        found = ["".join(g).upper() for g in re.findall(pattern, text, re.MULTILINE)]
        found = [f for f in found if f]
        if found:
            if last:
                return found[-1]  # the last "answer is X" is the final one
            return found[0] if len(set(found)) == 1 else None
    if options:
        norm = normalize_qa(text)
        hits = {
            _LETTERS[k] for k, opt in enumerate(options[: len(_LETTERS)]) if normalize_qa(str(opt)) == norm
        }
        if len(hits) == 1:
            return hits.pop()
    return None


def _gold_letter(gold: Any, options: Sequence[str] | None) -> str | None:
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, int):
        return _LETTERS[gold] if 0 <= gold < len(_LETTERS) else None
    gold = str(gold).strip()
    if len(gold) == 1 and gold.upper() in _LETTERS:
        return gold.upper()
    m = re.fullmatch(r"\(?([A-Ja-j])\)?[.:]?", gold)
    if m:
        return m.group(1).upper()
    if options:
        for k, opt in enumerate(options[: len(_LETTERS)]):
            if normalize_qa(str(opt)) == normalize_qa(gold):
                return _LETTERS[k]
    return None


def multiple_choice(
    prompts: list, completions: list, answer: list | None = None, **kwargs: Any
) -> list[float | None]:
    """1.0 when the chosen letter (see `extract_choice`) is the gold ``answer`` (letter, 0-based index, or the
    option's text when a ``choices``/``options`` column lists them), else 0.0. No extractable choice -> 0.0.

    Example:
        >>> multiple_choice(prompts=["q"], completions=["B. Paris"], answer=[1])
        [1.0]
    """
    n = len(completions)
    golds = column_values({"answer": answer, **kwargs}, "answer", n, "multiple_choice")
    options_col = kwargs.get("choices", kwargs.get("options")) or [None] * n
    scores: list[float | None] = []
    for completion, gold, options in zip(completions, golds, options_col, strict=True):
        if isinstance(options, dict) and "text" in options:  # CSQA's {"label": [...], "text": [...]}
            options = options["text"]
        want = _gold_letter(gold, options)
        if want is None:
            scores.append(None)
            continue
        got = extract_choice(completion_text(completion), len(options) if options else 10, options)
        scores.append(float(got == want))
    return scores
