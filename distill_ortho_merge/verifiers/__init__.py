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
                           ``score_answer`` of the text after the last ``Answer:`` (`distill_ortho_merge.verifiers.reasoning_gym_verifier`)
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

from collections.abc import Callable
from typing import Any

from distill_ortho_merge.verifiers.choice import extract_choice, multiple_choice
from distill_ortho_merge.verifiers.common import completion_text
from distill_ortho_merge.verifiers.instructions import (
    INSTRUCTION_CHECKERS,
    check_instruction,
    instruction_following,
    instruction_following_loose,
)
from distill_ortho_merge.verifiers.math_answers import extract_math_answer, math_answer, parse_number
from distill_ortho_merge.verifiers.qa import extract_qa_answer, normalize_qa, qa_exact_match, qa_f1
from distill_ortho_merge.verifiers.reasoning_gym_verifier import extract_final_answer, reasoning_gym

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
