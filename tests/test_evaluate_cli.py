"""`distillguard evaluate`: exact accuracy and mean score of a model or base + adapter on a dataset spec; every
bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from lora_fixtures import make_adapter, save_base

from distill_ortho_merge.evaluate import evaluate
from distill_ortho_merge.plugins import resolve_verifier
from trl_distillguard import cli

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "calibrate_tiny.jsonl"


def half_credit(prompts, completions, **kwargs):
    """A verifier giving partial credit to every row (custom `module:attr`)."""
    return [0.5] * len(completions)


def first_right(prompts, completions, **kwargs):
    """Full credit on the first row only."""
    return [1.0] + [0.0] * (len(completions) - 1)


@pytest.fixture(scope="module")
def base(tmp_path_factory, student_dir):
    return save_base(student_dir, tmp_path_factory.mktemp("eval") / "base", torch.float32)


def run(capsys, *argv):
    rc = cli.main(["evaluate", *map(str, argv)])
    captured = capsys.readouterr()
    return rc, captured.out, [line for line in captured.err.splitlines() if "error" in line]


def test_scores_model_and_adapter(base, tmp_path, capsys):
    rc, out, err = run(
        capsys, "--model", base, "--data", DATA, "--verifier", "math_answer", "--max_new_tokens", 4
    )
    assert rc == 0, err
    result = json.loads(out)
    assert result["n_items"] == result["n_scored"] == len(result["items"]) == 16
    assert {"prompt", "completion", "answer", "score", "exact"} <= set(result["items"][0])
    assert result["exact_accuracy"] == sum(i["exact"] for i in result["items"]) / 16
    adapter = make_adapter(
        base, tmp_path / "adapter", 3, r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]
    )
    out_json = tmp_path / "r.json"
    rc, out, err = run(capsys, "--model", base, "--adapter", adapter, "--data", DATA, "--verifier", "math_answer",
                       "--max_new_tokens", 4, "--output_json", out_json)  # fmt: skip
    assert rc == 0, err
    result = json.loads(out_json.read_text())
    # the same numbers as evaluating stock PEFT's merged model directly
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).merge_and_unload()
    tok = AutoTokenizer.from_pretrained(base)
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    ref = evaluate(model.eval(), tok, rows, resolve_verifier("math_answer"), max_new_tokens=4, desc=None)
    assert [i["completion"] for i in result["items"]] == ref.completions
    assert result["mean_score"] == ref.mean_score and result["adapter"] == str(adapter)


def test_exact_accuracy_is_not_partial_credit(base, capsys):
    common = ["--model", base, "--data", DATA, "--max_new_tokens", 1]
    rc, out, _ = run(capsys, *common, "--verifier", "test_evaluate_cli:half_credit")
    assert rc == 0 and json.loads(out)["exact_accuracy"] == 0.0 and json.loads(out)["mean_score"] == 0.5
    rc, out, _ = run(capsys, *common, "--verifier", "test_evaluate_cli:first_right")
    result = json.loads(out)
    assert result["exact_accuracy"] == result["mean_score"] == 1 / 16 and result["n_exact"] == 1


def test_builtin_model_name(base, tmp_path, monkeypatch, capsys):
    shutil.copytree(base, tmp_path / "cache" / "models" / "smollm2-135m-instruct")
    monkeypatch.setenv("DISTILL_ORTHO_MERGE_CACHE", str(tmp_path / "cache"))
    rc, out, err = run(capsys, "--model", "smollm2-135m-instruct", "--data", DATA, "--verifier", "math_answer",
                       "--size", 2, "--max_new_tokens", 2)  # fmt: skip
    assert rc == 0 and json.loads(out)["n_items"] == 2, err


def test_bad_input_is_one_line(base, teacher_dir, tmp_path, capsys):
    no_gold = tmp_path / "no_gold.jsonl"
    no_gold.write_text('{"prompt": "What is 1 + 1?"}\n')
    other = make_adapter(teacher_dir, tmp_path / "other", 1, r=2, lora_alpha=2, target_modules=["q_proj"])
    out_json = tmp_path / "r.json"
    good = {"--model": base, "--data": DATA, "--verifier": "math_answer", "--output_json": out_json}
    cases = [
        ({"--data": no_gold}, "--data " + str(no_gold)),
        ({"--data": "reasoning_gym:gcd?size=2&prompt=short"}, "prompt='short' must be one of instruct, bare"),
        ({"--verifier": "no_such_verifier"}, "--verifier: 'no_such_verifier' is not a registered verifier"),
        ({"--model": tmp_path / "missing"}, "--model: " + str(tmp_path / "missing") + " does not exist"),
        ({"--adapter": tmp_path}, "not a PEFT adapter directory (no adapter_config.json)"),
        ({"--adapter": other}, "(an adapter of another base model?)"),
        ({"--verifier": None}, "give --verifier"),
        ({"--max_new_tokens": 0}, "--max_new_tokens must be >= 1"),
        ({"--no_such_field": 1}, "unknown key 'no_such_field'"),
    ]
    for change, needle in cases:
        args = {**good, **change}
        rc, _, err = run(capsys, *[x for k, v in args.items() if v is not None for x in (k, v)])
        assert rc == 2 and len(err) == 1 and needle in err[0], (change, err)
        assert not out_json.exists()
