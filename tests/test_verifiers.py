"""Task verifiers: table-driven, including adversarial answers, and their registration."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from distill_ortho_merge import verifiers as V
from trl_distillguard.plugins import registry


def score(fn, completion, **columns):
    """Call a verifier the way TRL does (one row, extra TRL kwargs present)."""
    cols = {k: [v] for k, v in columns.items()}
    return fn(prompts=["p"], completions=[completion], completion_ids=[[1]], trainer_state=None, **cols)[0]


# ------------------------------------------------------------------------------------------------ math
@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        ("The answer is 42.", "42", 1.0),
        ("3 + 4 = 7\n#### 7", "#### 7", 1.0),
        ("so we get \\boxed{1,000}", "1000", 1.0),
        ("total: 1000.0 dollars", "1,000", 1.0),
        ("$1,000", "1000", 1.0),
        ("\\boxed{\\frac{3}{4}}", "0.75", 1.0),
        ("the ratio is 6/8", "3/4", 1.0),
        ("-5", "#### -5", 1.0),
        ("50%", "50", 1.0),
        ("#### 12\nwait, actually 13", "12", 1.0),  # #### wins over a later number
        ("\\boxed{12} but the last number is 99", "12", 1.0),  # boxed wins over last number
        ("41.9999", "42", 0.0),
        ("42 is wrong, it is 43", "42", 0.0),  # the last number counts
        ("I don't know", "42", 0.0),
        ("", "42", 0.0),
        ("1,0000", "10000", 0.0),  # not a valid thousands grouping: the digits after the comma are read alone
        ("42", "forty-two", None),  # a non-numeric gold is not scorable
        ("4", 4, 1.0),  # numeric gold column
        ("0.5", 0.5, 1.0),
    ],
)
def test_math_answer(completion, gold, expected):
    assert score(V.math_answer, completion, answer=gold) == expected


@pytest.mark.parametrize(
    "text, value",
    [
        ("1,000", 1000),
        ("1000.0", 1000),
        ("-3/4", Fraction(-3, 4)),
        ("\\frac{1}{3}", Fraction(1, 3)),
        ("abc", None),
    ],
)
def test_parse_number(text, value):
    assert V.parse_number(text) == value


def test_math_answer_conversational_completion_and_batch():
    completions = [[{"role": "assistant", "content": "#### 5"}], [{"role": "assistant", "content": "6"}]]
    assert V.math_answer(prompts=["a", "b"], completions=completions, answer=["5", "5"]) == [1.0, 0.0]


def test_math_answer_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match="'answer' column"):
        V.math_answer(prompts=["a"], completions=["1"], solution=["1"])


# -------------------------------------------------------------------------------------------------- QA
@pytest.mark.parametrize(
    "completion, gold, em, f1",
    [
        ("Paris", "Paris", 1.0, 1.0),
        ("The answer is Paris.", ["paris", "Paris, France"], 1.0, 1.0),
        ("Answer: the Eiffel Tower!", "Eiffel tower", 1.0, 1.0),
        ("Let me think.\nThe answer is Paris. It is in France.", "Paris", 1.0, 1.0),
        ("Answer: Paris France", "Paris", 0.0, 2 * (1 / 2) * 1 / (1 / 2 + 1)),
        ("London", "Paris", 0.0, 0.0),
        ("", "Paris", 0.0, 0.0),
        ("Paris Paris Paris Paris", "Paris", 0.0, 2 * 0.25 / 1.25),  # repetition does not buy exact match
        ("Paris", None, None, None),
        ("Paris", {"text": ["Paris"], "answer_start": [0]}, 1.0, 1.0),  # SQuAD's answer dict
    ],
)
def test_qa(completion, gold, em, f1):
    assert score(V.qa_exact_match, completion, answer=gold) == em
    got = score(V.qa_f1, completion, answer=gold)
    assert got == pytest.approx(f1) if f1 is not None else got is None


def test_qa_f1_reference():
    """F1 recomputed from the SQuAD definition on a hand-made case."""
    # pred tokens: [big, red, apple]; gold: [red, apple, pie] -> common 2, P = 2/3, R = 2/3
    assert score(V.qa_f1, "Answer: a big red apple", answer="the red apple pie") == pytest.approx(2 / 3)


# --------------------------------------------------------------------------------------- multiple choice
@pytest.mark.parametrize(
    "completion, gold, expected",
    [
        ("The answer is (B).", "B", 1.0),
        ("B.", "B", 1.0),
        ("**B**", "B", 1.0),
        ("B", 1, 1.0),  # 0-based index gold
        ("(c)", "C", 1.0),
        ("Answer: b", "B", 0.0),  # a bare lower-case letter after "Answer:" is not trusted
        ("Answer: (b)", "B", 1.0),
        ("Option A looks tempting, but the answer is C.", "C", 1.0),
        ("The answer is C, not option A.", "C", 1.0),
        ("I think (D) is right", "D", 1.0),
        ("A B C D", "A", 0.0),  # listing every letter chooses none
        ("It could be (A) or (B).", "A", 0.0),  # ambiguous
        ("**A** or **B**", "A", 0.0),
        ("The answer is a tricky one, but (B).", "B", 1.0),  # the article "a" is not option A
        ("A", "A", 1.0),
        ("The answer is B", "(B)", 1.0),
        ("Paris", "B", 0.0),
        ("", "A", 0.0),
        ("B", None, None),
    ],
)
def test_multiple_choice(completion, gold, expected):
    assert score(V.multiple_choice, completion, answer=gold) == expected


def test_multiple_choice_with_option_texts():
    options = ["London", "Paris", "Rome"]
    assert score(V.multiple_choice, "paris", answer="Paris", choices=options) == 1.0
    assert score(V.multiple_choice, "The answer is (B)", answer="Paris", choices=options) == 1.0
    assert score(V.multiple_choice, "Rome", answer="B", choices=options) == 0.0
    # CSQA-style dict of choices; a letter beyond the number of options is not a choice
    assert score(V.multiple_choice, "D", answer="A", choices={"label": list("ABC"), "text": options}) == 0.0


# -------------------------------------------------------------------------------- instruction following
IF_CASES = [
    ("length_constraints:number_words", {"num_words": 3, "relation": "less than"}, "one two", True),
    ("length_constraints:number_words", {"num_words": 3, "relation": "less than"}, "one two three", False),
    ("length_constraints:number_words", {"num_words": 3, "relation": "at least"}, "one, two; three!", True),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"}, "Hi. Bye!", True),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "less than"}, "A. B. C.", False),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "one\n***\ntwo", True),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}, "one\n***\n\n***\ntwo", False),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
        "Start.\n\nThen, end.",
        True,
    ),
    ("keywords:existence", {"keywords": ["cat", "dog"]}, "A Cat and a dog.", True),
    ("keywords:existence", {"keywords": ["cat", "dog"]}, "A cat alone.", False),
    ("keywords:forbidden_words", {"forbidden_words": ["bad"]}, "badger is fine", True),
    ("keywords:forbidden_words", {"forbidden_words": ["bad"]}, "this is BAD.", False),
    ("keywords:frequency", {"keyword": "ok", "frequency": 2, "relation": "at least"}, "ok OK", True),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
        "Zz",
        False,
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
        "Z",
        True,
    ),
    ("detectable_format:json_format", {}, '```json\n{"a": 1}\n```', True),
    ("detectable_format:json_format", {}, '{"a": 1', False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* a\n* b", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "- a\n- b\n- c", False),
    ("detectable_format:title", {}, "<<My Title>>\ntext", True),
    ("detectable_format:title", {}, "<<  >> text", False),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* and **two**", True),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "*one* only", False),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\na\nSection 2\nb",
        True,
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 3},
        "Section 1\na\nSection 2\nb",
        False,
    ),
    ("detectable_format:constrained_response", {}, "My answer is yes.", True),
    ("startend:end_checker", {"end_phrase": "Any questions?"}, "Done. any questions?  ", True),
    ("startend:end_checker", {"end_phrase": "Any questions?"}, "Any questions? Done.", False),
    ("startend:quotation", {}, '"quoted"', True),
    ("startend:quotation", {}, '"', False),
    ("change_case:english_lowercase", {}, "all lower 123", True),
    ("change_case:english_lowercase", {}, "Not lower", False),
    ("change_case:english_capital", {}, "ALL CAPS!", True),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "NASA and FBI",
        True,
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "at least"},
        "NASA 123",
        False,
    ),
    ("punctuation:no_comma", {}, "no commas", True),
    ("punctuation:no_comma", {}, "a, b", False),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello.\nP.S. bye", True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "Hello. PS bye", False),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "x\nP.P.S more", True),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[name] at [address]", True),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "[name]", False),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Say hi."}, "say hi. Hi!", True),
    ("combination:two_responses", {}, "one\n******\ntwo", True),
    ("combination:two_responses", {}, "same\n******\nsame", False),
]


@pytest.mark.parametrize("instruction, kwargs, text, expected", IF_CASES)
def test_instruction_checkers(instruction, kwargs, text, expected):
    # IFEval parquet rows carry every kwarg key with None for the unused ones
    padded = {"num_words": None, "relation": None, "keywords": None, **kwargs}
    assert V.check_instruction(instruction, text, padded) is expected


def test_every_checker_has_a_case():
    from distill_ortho_merge.verifiers.ifbench import IFBENCH_CHECKERS  # their cases: tests/test_task_data.py

    assert {case[0] for case in IF_CASES} == set(V.INSTRUCTION_CHECKERS) - set(IFBENCH_CHECKERS)


def test_instruction_following_fraction_strict_loose_and_unknown_ids():
    ids = ["change_case:english_lowercase", "punctuation:no_comma", "language:response_language"]
    kwargs = [{}, {}, {"language": "en"}]
    metrics = {}
    text = "Sure, here it is\nall lower, with a comma"
    strict = V.instruction_following(
        prompts=["p"],
        completions=[text],
        instruction_id_list=[ids],
        kwargs=[kwargs],
        log_metric=lambda k, v: metrics.setdefault(k, v),
    )
    # lowercase fails (capital S), comma fails; the language id is unchecked and left out of the fraction
    assert strict == [0.0]
    assert metrics["instruction_following/unchecked_instructions"] == 1.0
    # loose drops the first line: then lower case passes; every variant keeps a comma
    loose = V.instruction_following_loose(
        prompts=["p"], completions=[text], instruction_id_list=[ids], kwargs=[json.dumps(kwargs)]
    )
    assert loose == [0.5]
    assert V.instruction_following(
        prompts=["p"], completions=["x"], instruction_id_list=[["language:response_language"]], kwargs=[[{}]]
    ) == [None]


def test_instruction_following_bad_kwargs_name_the_instruction():
    with pytest.raises(ValueError, match="number_words"):
        V.instruction_following(
            prompts=["p"],
            completions=["x"],
            instruction_id_list=[["length_constraints:number_words"]],
            kwargs=[[{"oops": 1}]],
        )


def test_instruction_following_adversarial_gaming():
    """An empty response or a wall of keywords does not satisfy conflicting constraints."""
    ids = ["keywords:existence", "length_constraints:number_words"]
    kw = [{"keywords": ["apple"]}, {"num_words": 5, "relation": "at least"}]
    scores = V.instruction_following(
        prompts=["p"] * 3,
        completions=["", "apple", "apple pie is very good"],
        instruction_id_list=[ids] * 3,
        kwargs=[kw] * 3,
    )
    assert scores == [0.0, 0.5, 1.0]


# --------------------------------------------------------------------------------------- registration
def test_verifiers_are_registered_builtins_and_importable_by_path():
    reg = registry()
    for name, fn in V.VERIFIERS.items():
        assert reg[name].obj is fn and reg[name].builtin
        # `trl grpo --reward_funcs distill_ortho_merge.verifiers.<name>` takes the attribute as is
        assert getattr(V, name) is fn


@pytest.mark.parametrize(
    "verifier, text, answer",
    [
        ("math_answer", "so \\boxed{1,000}", "1000"),
        ("multiple_choice", "The answer is (C)", "C"),
        ("qa_exact_match", "Answer: The Nile.", "nile"),
        ("instruction_following", "  hi  ", "hi"),
    ],
)
def test_extract_answer(verifier, text, answer):
    assert V.extract_answer(verifier, text) == answer
    with pytest.raises(KeyError, match="no extractor"):
        V.extract_answer("nope", text)
