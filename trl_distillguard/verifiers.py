"""Task verifiers: TRL reward functions that score a completion against the gold answer of its dataset row.

Pure Python (no torch, no NLTK, no network). Every verifier is a TRL reward callable

    f(prompts, completions, **dataset_columns) -> list[float | None]

where `completions` are strings or conversational completions (lists of ``{"role", "content"}`` messages; the
last message's content is scored) and ``None`` means "not scorable" (TRL turns it into NaN and ignores it).

Dataset columns each verifier reads (TRL passes every dataset column as a keyword argument, one value per
completion):

=========================  ========================================================================================
verifier                   columns
=========================  ========================================================================================
``math_answer``            ``answer``: the gold number, or a GSM8K-style solution ending in ``#### N``
``qa_exact_match``         ``answer``: one gold string or a list of acceptable gold strings
``qa_f1``                  ``answer``: as above (max token F1 over the gold strings)
``multiple_choice``        ``answer``: the gold letter (``"B"``), its 0-based index, or the option text;
                           optional ``choices`` (or ``options``): the option texts, to map option text -> letter
``instruction_following``  ``instruction_id_list`` and ``kwargs`` as in IFEval/IFBench (``kwargs``: one dict per
                           instruction, or a JSON string of that list); ``instruction_following_loose`` is the
                           IFEval "loose" variant (also tries the response without its first/last line and
                           without ``*``)
``reasoning_gym``          ``rg_task`` and ``rg_entry`` (``reasoning_gym:<task>`` datasets): reasoning-gym's own
                           ``score_answer`` of the text after the last ``Answer:`` (`trl_distillguard.task_data`)
=========================  ========================================================================================

Rows with a missing/None gold answer score ``None``. The ``extract_*`` helpers return *the scored answer*
(the string a verifier compares), e.g. for agreement metrics between models.

Example:
    >>> math_answer(prompts=["1+1?"], completions=["so it is 2.0"], answer=["#### 2"])
    [1.0]
    >>> multiple_choice(prompts=["q"], completions=["The answer is (B)."], answer=["B"])
    [1.0]
    >>> extract_answer("math_answer", "the total is \\\\boxed{1,000}")
    '1000'
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from trl_distillguard.ifbench_checkers import IFBENCH_CHECKERS
from trl_distillguard.task_data import extract_final_answer, reasoning_gym

__all__ = [
    "VERIFIERS",
    "completion_text",
    "extract_answer",
    "extract_choice",
    "extract_math_answer",
    "extract_qa_answer",
    "instruction_following",
    "instruction_following_loose",
    "math_answer",
    "multiple_choice",
    "normalize_qa",
    "parse_number",
    "qa_exact_match",
    "qa_f1",
    "reasoning_gym",
    "check_instruction",
    "INSTRUCTION_CHECKERS",
]


def completion_text(completion: Any) -> str:
    """The text of a completion: a string as is, a conversational completion's last message content.

    Example:
        >>> completion_text([{"role": "assistant", "content": "hi"}])
        'hi'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence) and completion:
        return completion_text(completion[-1])
    return ""


def _column(kwargs: dict[str, Any], name: str, n: int, verifier: str, aliases: tuple[str, ...] = ()) -> list:
    for key in (name, *aliases):
        if key in kwargs and kwargs[key] is not None:
            values = list(kwargs[key])
            if len(values) != n:
                raise ValueError(f"{verifier}: column {key!r} has {len(values)} values for {n} completions")
            return values
    raise ValueError(
        f"{verifier}: the dataset has no {name!r} column (needed for the gold answer); "
        f"columns passed: {sorted(k for k in kwargs if k not in {'trainer_state', 'log_extra', 'log_metric'})}"
    )


# ---------------------------------------------------------------------------------------------------- math
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
    golds = _column({"answer": answer, **kwargs}, "answer", len(completions), "math_answer")
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


# ------------------------------------------------------------------------------------------------------ QA
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
    golds = _column({"answer": answer, **kwargs}, "answer", len(completions), "qa_exact_match")
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
    golds = _column({"answer": answer, **kwargs}, "answer", len(completions), "qa_f1")
    scores: list[float | None] = []
    for completion, gold in zip(completions, golds, strict=True):
        refs = _golds(gold)
        pred = extract_qa_answer(completion_text(completion))
        scores.append(max(_f1(pred, r) for r in refs) if refs else None)
    return scores


# ----------------------------------------------------------------------------------------- multiple choice
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
    golds = _column({"answer": answer, **kwargs}, "answer", n, "multiple_choice")
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


# ----------------------------------------------------------------------------------- instruction following
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


#: IFEval instruction ids -> checker(text, **kwargs) -> bool. Register more by adding entries.
INSTRUCTION_CHECKERS: dict[str, Callable[..., bool]] = {
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
    "startend:end_checker": lambda t, end_phrase, **_: t.strip().lower().endswith(end_phrase.strip().lower()),
    "startend:quotation": lambda t, **_: len(t.strip()) > 1 and t.strip()[0] == '"' and t.strip()[-1] == '"',
    "change_case:english_lowercase": lambda t, **_: t.islower(),
    "change_case:english_capital": lambda t, **_: t.isupper(),
    "change_case:capital_word_frequency": lambda t, capital_frequency, capital_relation=None, **_: _relation(
        sum(1 for w in _words(t) if w.isupper() and not w.isdigit()), capital_relation, capital_frequency
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
    checker = INSTRUCTION_CHECKERS.get(instruction_id)
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
    ids_col = _column(kwargs, "instruction_id_list", n, name)
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


#: Registry name -> verifier (what `builtin_plugin` registers).
VERIFIERS: dict[str, Callable[..., list[float | None]]] = {
    "math_answer": math_answer,
    "qa_exact_match": qa_exact_match,
    "qa_f1": qa_f1,
    "multiple_choice": multiple_choice,
    "instruction_following": instruction_following,
    "instruction_following_loose": instruction_following_loose,
    "reasoning_gym": reasoning_gym,
}

_EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "math_answer": extract_math_answer,
    "qa_exact_match": lambda t: normalize_qa(extract_qa_answer(t)),
    "qa_f1": lambda t: normalize_qa(extract_qa_answer(t)),
    "multiple_choice": extract_choice,
    "instruction_following": lambda t: t.strip(),
    "instruction_following_loose": lambda t: t.strip(),
    "reasoning_gym": extract_final_answer,
}


def extract_answer(verifier: str, completion: Any) -> str | None:
    """The scored answer of `completion` under `verifier` (a registry name): the string the verifier compares
    with the gold answer (canonical number, normalised QA span, option letter; the stripped text for
    instruction following). None when nothing can be extracted.

    Example:
        >>> extract_answer("multiple_choice", "I pick (D).")
        'D'
    """
    if verifier not in _EXTRACTORS:
        raise KeyError(
            f"extract_answer: no extractor for verifier {verifier!r}; known: {', '.join(sorted(_EXTRACTORS))}"
        )
    return _EXTRACTORS[verifier](completion_text(completion))
