"""Instruction following: IFEval-style checks of a response, one per instruction id, regex only."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from distill_ortho_merge.verifiers.common import column_values, completion_text
from distill_ortho_merge.verifiers.ifbench import IFBENCH_CHECKERS


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.strip())
    return [p for p in parts if re.search(r"\w", p)]


def _relation(count: int, relation: str | None, target: int) -> bool:
    relation = (relation or "at least").strip().lower()
    if relation == "less than":
        return count < target
    if relation == "at least":
        return count >= target
    if relation in {"at most", "no more than"}:
        return count <= target
    if relation in {"exactly", "equal to"}:
        return count == target
    raise ValueError(f"instruction_following: unknown relation {relation!r}")


def _postscript(text: str, postscript_marker: str = "P.S.", **_: Any) -> bool:
    marker = postscript_marker.strip()
    if marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    return bool(re.findall(pattern, text.lower(), flags=re.MULTILINE))


def _json(text: str, **_: Any) -> bool:
    body = text.strip()
    body = re.sub(r"^```(?:json|Json|JSON)?\s*", "", body)
    body = re.sub(r"\s*```$", "", body).strip()
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _paragraphs(text: str, num_paragraphs: int, **_: Any) -> bool:
    parts = re.split(r"\s?\*\*\*\s?", text)
    count = len(parts)
    for i, part in enumerate(parts):
        if not part.strip():
            if i in (0, len(parts) - 1):
                count -= 1
            else:
                return False
    return count == num_paragraphs


def _nth_paragraph(text: str, num_paragraphs: int, nth_paragraph: int, first_word: str, **_: Any) -> bool:
    parts = [p for p in re.split(r"\n\n", text) if p.strip()]
    if len(parts) != num_paragraphs or not 1 <= nth_paragraph <= len(parts):
        return False
    words = parts[nth_paragraph - 1].strip().split()
    first = words[0].strip(string.punctuation + "'\"").lower() if words else ""
    return first == first_word.strip().lower()


def _highlights(text: str, num_highlights: int, **_: Any) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", text) if h.strip("*").strip()]
    double = [
        h for h in re.findall(r"\*\*[^\n\*]*\*\*", text) if h.removeprefix("**").removesuffix("**").strip()
    ]
    return len(single) + len(double) >= num_highlights


def _sections(text: str, section_spliter: str = "Section", num_sections: int = 1, **_: Any) -> bool:
    parts = re.split(r"\s?" + re.escape(section_spliter.strip()) + r"\s?\d+\s?", text)
    return len(parts) - 1 >= num_sections


def _two_responses(text: str, **_: Any) -> bool:
    parts = [p.strip() for p in text.split("******")]
    nonempty = [p for p in parts if p]
    if len(nonempty) != 2 or any(not p for p in parts[1:-1]):
        return False
    return nonempty[0] != nonempty[1]


#: The built-in checks, IFEval instruction id -> checker(text, **kwargs) -> bool (read-only: a plugin adds
#: others through the `distill_ortho_merge_instruction_checks` hook).
INSTRUCTION_CHECKERS: Mapping[str, Callable[..., bool]] = MappingProxyType(
    {
        "length_constraints:number_words": lambda t, num_words, relation=None, **_: _relation(
            len(_words(t)), relation, num_words
        ),
        "length_constraints:number_sentences": lambda t, num_sentences, relation=None, **_: _relation(
            len(_sentences(t)), relation, num_sentences
        ),
        "length_constraints:number_paragraphs": _paragraphs,
        "length_constraints:nth_paragraph_first_word": _nth_paragraph,
        "keywords:existence": lambda t, keywords, **_: all(
            re.search(re.escape(k), t, flags=re.IGNORECASE) for k in keywords
        ),
        "keywords:forbidden_words": lambda t, forbidden_words, **_: (
            not any(re.search(r"\b" + re.escape(w) + r"\b", t, flags=re.IGNORECASE) for w in forbidden_words)
        ),
        "keywords:frequency": lambda t, keyword, frequency, relation=None, **_: _relation(
            len(re.findall(re.escape(keyword), t, flags=re.IGNORECASE)), relation, frequency
        ),
        "keywords:letter_frequency": lambda t, letter, let_frequency, let_relation=None, **_: _relation(
            t.lower().count(letter.lower()), let_relation, let_frequency
        ),
        "detectable_format:json_format": _json,
        "detectable_format:number_bullet_lists": lambda t, num_bullets, **_: (
            (
                len(re.findall(r"^\s*\*[^\*].*$", t, flags=re.MULTILINE))
                + len(re.findall(r"^\s*-.*$", t, flags=re.MULTILINE))
            )
            == num_bullets
        ),
        "detectable_format:title": lambda t, **_: any(
            m.strip("<>").strip() for m in re.findall(r"<<[^\n]+>>", t)
        ),
        "detectable_format:number_highlighted_sections": _highlights,
        "detectable_format:multiple_sections": _sections,
        "detectable_format:constrained_response": lambda t, **_: any(
            opt in t for opt in ("My answer is yes.", "My answer is no.", "My answer is maybe.")
        ),
        "startend:end_checker": lambda t, end_phrase, **_: (
            t.strip().lower().endswith(end_phrase.strip().lower())
        ),
        "startend:quotation": lambda t, **_: (
            len(t.strip()) > 1 and t.strip()[0] == '"' and t.strip()[-1] == '"'
        ),
        "change_case:english_lowercase": lambda t, **_: t.islower(),
        "change_case:english_capital": lambda t, **_: t.isupper(),
        "change_case:capital_word_frequency": lambda t, capital_frequency, capital_relation=None, **_: (
            _relation(
                sum(1 for w in _words(t) if w.isupper() and not w.isdigit()),
                capital_relation,
                capital_frequency,
            )
        ),
        "punctuation:no_comma": lambda t, **_: "," not in t,
        "detectable_content:postscript": _postscript,
        "detectable_content:number_placeholders": lambda t, num_placeholders, **_: (
            len(re.findall(r"\[.*?\]", t)) >= num_placeholders
        ),
        "combination:repeat_prompt": lambda t, prompt_to_repeat, **_: (
            t.strip().lower().startswith(prompt_to_repeat.strip().lower())
        ),
        "combination:two_responses": _two_responses,
        **IFBENCH_CHECKERS,  # a subset of IFBench's own instruction types
    }
)


def _loose_variants(text: str) -> list[str]:
    lines = text.split("\n")
    first_removed = "\n".join(lines[1:]).strip()
    last_removed = "\n".join(lines[:-1]).strip()
    both_removed = "\n".join(lines[1:-1]).strip()
    base = [text, first_removed, last_removed, both_removed]
    return [v for v in base + [v.replace("*", "") for v in base] if v.strip()]


def check_instruction(
    instruction_id: str, text: str, kwargs: dict[str, Any] | None = None, loose: bool = False
) -> bool | None:
    """Whether `text` satisfies one IFEval instruction; None for an instruction id this module cannot check.

    Example:
        >>> check_instruction("punctuation:no_comma", "no commas here")
        True
    """
    from distill_ortho_merge.plugins import instruction_checks  # built-ins and plugins' checks

    checker = instruction_checks().get(instruction_id)
    if checker is None:
        return None
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    variants = _loose_variants(text) if loose else [text]
    try:
        return any(checker(v, **args) for v in variants)
    except TypeError as exc:
        raise ValueError(f"instruction_following: bad kwargs {args} for {instruction_id!r}: {exc}") from exc


def _row_kwargs(raw: Any, n: int) -> list[dict[str, Any]]:
    if raw is None:
        return [{}] * n
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip() else []
    if isinstance(raw, dict):
        raw = [raw]
    out = [dict(r) if isinstance(r, dict) else {} for r in raw]
    if len(out) != n:
        raise ValueError(f"instruction_following: 'kwargs' has {len(out)} dicts for {n} instruction ids")
    return out


def _instruction_following(
    completions: list, loose: bool, kwargs: dict[str, Any], name: str
) -> list[float | None]:
    n = len(completions)
    ids_col = column_values(kwargs, "instruction_id_list", n, name)
    kw_col = kwargs.get("kwargs") or [None] * n
    scores: list[float | None] = []
    unknown = 0
    for completion, ids, raw in zip(completions, ids_col, kw_col, strict=True):
        ids = list(ids or [])
        results = [
            check_instruction(i, completion_text(completion), k, loose)
            for i, k in zip(ids, _row_kwargs(raw, len(ids)), strict=True)
        ]
        known = [r for r in results if r is not None]
        unknown += len(results) - len(known)
        scores.append(sum(known) / len(known) if known else None)
    log_metric = kwargs.get("log_metric")
    if callable(log_metric):
        log_metric(f"{name}/unchecked_instructions", float(unknown))
    return scores


def instruction_following(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
    """IFEval "strict" score: the fraction of a row's ``instruction_id_list`` the completion satisfies.

    Instruction ids without a checker here (e.g. ``language:response_language``) are left out of the fraction
    (and counted in the ``instruction_following/unchecked_instructions`` metric); a row with none checkable -> None.

    Example:
        >>> instruction_following(prompts=["q"], completions=["all lower, no caps"],
        ...     instruction_id_list=[["change_case:english_lowercase", "punctuation:no_comma"]], kwargs=[[{}, {}]])
        [0.5]
    """
    return _instruction_following(completions, False, kwargs, "instruction_following")


def instruction_following_loose(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
    """IFEval "loose" score: as `instruction_following`, but an instruction also counts as satisfied when the
    response passes after removing its first line, last line, both, and/or every ``*``.

    Example:
        >>> instruction_following_loose(prompts=["q"], completions=["Sure!\\nall lower"],
        ...     instruction_id_list=[["change_case:english_lowercase"]], kwargs=[[{}]])
        [1.0]
    """
    return _instruction_following(completions, True, kwargs, "instruction_following_loose")
