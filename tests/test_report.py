"""`distillguard report` end to end on the tiny fixtures, its arithmetic (mean ± std, Δ, index), and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import tiny
import torch

from distill_ortho_merge.cli import InputError
from distill_ortho_merge.evaluate import evaluate
from distill_ortho_merge.generation import generate
from trl_distillguard.loading import load_causal_lm
from trl_distillguard.plugins import resolve_reward
from trl_distillguard.report import main, mean_std, run_report, summarize
from trl_distillguard.report_config import ReportConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_data")
    rows = [{"prompt": f"What is {a} + {a + 1}?", "answer": str(2 * a + 1)} for a in range(10)]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[6:]))
    (root / "nogold.jsonl").write_text("".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in rows[6:]))
    return root


@pytest.fixture(scope="module")
def perturbed_teacher_dir(tmp_path_factory, teacher_dir, tokenizer_a):
    model, _ = load_causal_lm(str(teacher_dir), "t")
    copy = tiny.make_finetuned_copies(model, 1, scale=0.05, seed=1)[0]
    return tiny.save_model(copy, tokenizer_a, tmp_path_factory.mktemp("teacher_perturbed"))


def _cfg(teachers, students, data, out, **kw):
    base = dict(
        recipes=["sft"], train_dataset=str(data / "train.jsonl"), eval_dataset=str(data / "eval.jsonl"),
        verifier="math_answer", seeds=1, eval_max_new_tokens=6,
        distill={"max_steps": 2, "per_device_train_batch_size": 4, "max_completion_length": 6},
    )  # fmt: skip
    return ReportConfig(teachers=teachers, students=students, output_dir=str(out), **{**base, **kw})


def test_report_end_to_end_two_seeds(teacher_dir, perturbed_teacher_dir, student_dir, data, tmp_path):
    cfg = _cfg(
        {"original": str(teacher_dir), "calibrated": str(perturbed_teacher_dir)},
        {"llama": str(student_dir)},
        data,
        tmp_path / "rep",
        seeds=2,
        proxy_model_name_or_path=str(teacher_dir),  # students differ from it: no warning
    )
    report = run_report(cfg)
    out = tmp_path / "rep"
    assert {p.name for p in out.iterdir()} == {"report.json", "report.md", "report.png"}
    on_disk = json.loads((out / "report.json").read_text())
    assert len(on_disk["runs"]) == 2 * 2 and on_disk["warnings"] == []
    # Every score is recomputed here from the runs: mean ± std over seeds, Δ, index.
    for row in report["summary"]:
        scores = [
            r["score"]
            for r in report["runs"]
            if (r["teacher"], r["student"]) == (row["teacher"], row["student"])
        ]
        assert row["scores"] == scores and row["n_seeds"] == 2
        assert row["student_mean"] == pytest.approx(sum(scores) / 2)
        assert row["student_std"] == pytest.approx(abs(scores[0] - scores[1]) / math.sqrt(2))
    table = (out / "report.md").read_text()
    assert "| original |" in table and "| calibrated |" in table and "± " in table
    # The teacher score in the report is the deterministic greedy evaluation, recomputed independently.
    model, tok = load_causal_lm(str(teacher_dir), "t")
    rows = [json.loads(x) for x in (data / "eval.jsonl").read_text().splitlines()]
    again = evaluate(model, tok, rows, resolve_reward("math_answer", "verifier"), max_new_tokens=6, desc=None)
    assert report["teachers"]["original"]["score"] == again.score
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_summary_delta_and_index_by_hand():
    report = {
        "teachers": {"orig": {"score": 0.5}, "cal": {"score": 0.8}},
        "runs": [
            {"teacher": "orig", "student": "s", "recipe": "sft", "score": 0.2},
            {"teacher": "orig", "student": "s", "recipe": "sft", "score": 0.4},
            {"teacher": "cal", "student": "s", "recipe": "sft", "score": 0.6},
            {"teacher": "cal", "student": "s", "recipe": "sft", "score": 0.6},
        ],
    }
    rows = {r["teacher"]: r for r in summarize(report, "orig")}
    assert rows["orig"]["student_mean"] == pytest.approx(0.3) and rows["orig"]["delta_vs_original"] == 0
    assert rows["orig"]["student_std"] == pytest.approx(math.sqrt(((0.2 - 0.3) ** 2 + (0.4 - 0.3) ** 2) / 1))
    assert rows["orig"]["distillability_index"] == pytest.approx(0.3 / 0.5)
    assert rows["cal"]["delta_vs_original"] == pytest.approx(0.3) and rows["cal"]["student_std"] == 0
    assert rows["cal"]["distillability_index"] == pytest.approx(0.6 / 0.8)
    assert mean_std([1.0]) == (1.0, 0.0)


def test_evaluation_is_deterministic_and_batched(teacher_dir):
    model, tok = load_causal_lm(str(teacher_dir), "t")
    prompts = [f"What is {a} + 1?" for a in range(5)]
    a = generate(model, tok, prompts, max_new_tokens=6, batch_size=2)
    b = generate(model, tok, prompts, max_new_tokens=6, batch_size=2)
    assert [g[0].token_ids for g in a] == [g[0].token_ids for g in b]
    # Greedy decoding of each prompt alone gives the same tokens as the left-padded batch.
    for prompt, batched in zip(prompts, a):
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            ref = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
        assert (
            ref[0, ids["input_ids"].shape[1] :].tolist()[: len(batched[0].token_ids)] == batched[0].token_ids
        )


def test_warns_when_every_student_is_the_proxy(teacher_dir, student_dir, data, tmp_path):
    cfg = _cfg({"original": str(teacher_dir)}, {"proxy": str(student_dir)}, data, tmp_path / "rep",
               proxy_model_name_or_path=str(student_dir), evaluate_initial_students=False)  # fmt: skip
    with pytest.warns(UserWarning, match="no held-out student"):
        report = run_report(cfg)
    assert any("identical to the calibration proxy" in w for w in report["warnings"])


@pytest.mark.parametrize(
    "change,match",
    [
        ({"eval_dataset": "nogold.jsonl"}, "no gold answers for verifier 'math_answer'"),
        ({"train_dataset": "empty.jsonl"}, r"train_dataset: .*empty\.jsonl has no rows"),
        ({"recipes": ["kd"]}, "shared vocabulary"),
        ({"verifier": "no_such_verifier"}, "verifier: .no_such_verifier. is not a registered reward"),
        ({"students": "train.jsonl"}, "not a model directory"),
    ],
)
def test_bad_input_one_line_nothing_written(change, match, teacher_dir, student_dir, data, tmp_path, capsys):
    (data / "empty.jsonl").write_text("")
    cfg = _cfg({"original": str(teacher_dir)}, {"llama": str(student_dir)}, data, tmp_path / "rep")
    for key, value in change.items():
        if key == "students":
            value = {"bad": str(data / value)}
        elif key.endswith("_dataset"):
            value = str(data / value)
        setattr(cfg, key, value)
    with pytest.raises(InputError, match=match):
        run_report(cfg)
    assert not list(tmp_path.iterdir())


def test_config_errors():
    with pytest.raises(ValueError, match="recipes"):
        ReportConfig(recipes=["dpo"])
    with pytest.raises(ValueError, match="unknown DistillConfig fields"):
        ReportConfig(distill={"max_stepz": 3})
    with pytest.raises(ValueError, match="set per run"):
        ReportConfig(distill={"seed": 3})
    with pytest.raises(ValueError, match="original_teacher"):
        ReportConfig(teachers={"a": "x"}, original_teacher="b")
    cfg = ReportConfig(teachers='{"a": "x", "b": "y"}', recipes="sft,uld", seeds=3, seed=5)
    assert cfg.original_teacher == "a" and cfg.recipes == ["sft", "uld"] and cfg.seed_list == [5, 6, 7]


def test_cli_runs_the_example_config(tmp_path, monkeypatch, capsys):
    """`distillguard report --config examples/configs/report_tiny.yaml` with the models it documents."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("report_tiny", ROOT / "examples/data/report_tiny.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    shutil.copytree(ROOT / "examples/configs", tmp_path / "examples/configs")
    for f in (ROOT / "examples/data").glob("report_*.jsonl"):
        (tmp_path / "examples/data").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, tmp_path / "examples/data" / f.name)
    builder.build(tmp_path / "examples/data/report_tiny")
    monkeypatch.chdir(tmp_path)
    from trl_distillguard.cli import main as cli_main

    assert cli_main(["report", "--config", "examples/configs/report_tiny.yaml", "--recipes", "sft"]) == 0
    assert (tmp_path / "outputs/report_tiny/report.png").stat().st_size > 0
    assert "| perturbed |" in capsys.readouterr().out
    assert os.path.exists("outputs/report_tiny/report.json")
    assert main(["--config", "examples/configs/report_tiny.yaml", "--seeds", "0"]) == 2
