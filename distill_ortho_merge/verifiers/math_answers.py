"""Math answers: the final number of a completion (``#### N``, ``\\boxed{}``, last number) against the gold one."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from distill_ortho_merge.verifiers.common import column_values, completion_text

_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?|[-+]?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)


def parse_number(text: str) -> Fraction | None:
    """A number written as ``1,000``, ``1000.0``, ``-3/4``, ``$12``, ``50%`` or ``\\frac{3}{4}``; else None.

    Example:
        >>> parse_number("1,000") == parse_number("1000.0") == 1000
        True
    """
    s = text.strip().strip("$").replace("\\$", "").replace("\\!", "").replace(" ", "")
    s = s.rstrip(".").removesuffix("%").removesuffix("\\%")
    frac = re.fullmatch(r"(-?)\\d?frac\{(-?\d+)\}\{(-?\d+)\}", s)
    if frac:
        sign = -1 if frac.group(1) else 1
        return sign * Fraction(int(frac.group(2)), int(frac.group(3))) if int(frac.group(3)) else None
    if not re.fullmatch(_NUMBER, s):
        return None
    s = s.replace(",", "")
    try:
        if "/" in s:
            num, den = s.split("/")
            return Fraction(num) / Fraction(den) if Fraction(den) != 0 else None
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` with balanced braces."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{") - 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def _canonical(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def extract_math_answer(text: str) -> str | None:
    """The final answer of a math completion, canonicalised: ``#### N``, else ``\\boxed{N}``, else the last number.

    Returns an integer string, a reduced fraction ``"p/q"``, or the raw boxed text when it is not a number.

    Example:
        >>> extract_math_answer("5 + 7 = 12, so 12 apples.\\n#### 12")
        '12'
    """
    hashes = re.findall(r"####\s*([^\n]*)", text)
    if hashes:
        candidate = hashes[-1].strip()
        value = parse_number(candidate)
        if value is None:
            nums = _NUMBER_RE.findall(candidate)
            value = parse_number(nums[0]) if nums else None
        return _canonical(value) if value is not None else (candidate or None)
    boxed = _boxed(text)
    if boxed is not None:
        value = parse_number(boxed)
        return _canonical(value) if value is not None else boxed.strip() or None
    nums = _NUMBER_RE.findall(text)
    for raw in reversed(nums):
        value = parse_number(raw)
        if value is not None:
            return _canonical(value)
    return None


def _gold_math(gold: Any) -> Fraction | None:
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        return Fraction(gold).limit_denominator(10**9)
    if not isinstance(gold, str):
        return None
    extracted = extract_math_answer(gold)
    return parse_number(extracted) if extracted is not None else None


def math_answer(
    prompts: list, completions: list, answer: list | None = None, **kwargs: Any
) -> list[float | None]:
    """1.0 when the completion's final number equals the gold ``answer`` numerically, else 0.0.

    The final number is taken from ``#### N``, else ``\\boxed{N}``, else the last number in the text; commas,
    ``$``, ``%`` and trailing ``.0`` do not matter; fractions compare exactly. A gold that is not a number -> None.

    Example:
        >>> math_answer(prompts=["q", "q"], completions=["\\\\boxed{3/4}", "0.7"], answer=["0.75", "#### 3/4"])
        [1.0, 0.0]
    """
    golds = column_values({"answer": answer, **kwargs}, "answer", len(completions), "math_answer")
    scores: list[float | None] = []
    for completion, gold in zip(completions, golds, strict=True):
        want = _gold_math(gold)
        if want is None:
            scores.append(None)
            continue
        got = extract_math_answer(completion_text(completion))
        value = parse_number(got) if got is not None else None
        scores.append(float(value is not None and value == want))
    return scores
