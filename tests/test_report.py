"""`distillguard report` as an attack suite on the tiny fixtures: cells, comparisons recomputed from the cells,
resuming, shards, gold references, attackers and bad input."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

from distill_ortho_merge import testing as tiny
from distill_ortho_merge.cli import InputError
from distill_ortho_merge.evaluate import evaluate
from distill_ortho_merge.generation import generate
from distill_ortho_merge.stats import bootstrap_ci, welch
from trl_distillguard.attackers import Attacker, parse_attacker, resolve_attacker
from trl_distillguard.loading import load_causal_lm
from trl_distillguard.report import main, run_report
from trl_distillguard.report_cells import TeacherSamples
from trl_distillguard.report_config import ReportConfig
from trl_distillguard.report_stats import comparisons, summarize

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_CELL = {
    "teacher",
    "student",
    "recipe",
    "attacker",
    "seed",
    "student_score",
    "teacher_score",
    "train_samples",
}
CONTRACT_COMPARISON = {"teacher", "baseline", "student", "recipe", "attacker", "n", "mean", "std", "baseline_mean",
                       "baseline_std", "diff", "ci95", "welch_p", "ratio"}  # fmt: skip


def char_score(prompts, completions, **columns):
    """A verifier with graded, deterministic scores even for random tiny models (math_answer gives them all 0)."""
    return [sum(map(ord, c)) % 11 / 10 for c in completions]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("report_data")
    rows = [{"prompt": f"What is {a} + {a + 1}?", "answer": str(2 * a + 1),
             "completion": f" {a} plus {a + 1} is {2 * a + 1}. #### {2 * a + 1}"} for a in range(10)]  # fmt: skip
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    (root / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[6:]))
    (root / "nogold.jsonl").write_text("".join(json.dumps({"prompt": r["prompt"]}) + "\n" for r in rows[6:]))
    (root / "empty.jsonl").write_text("")
    return root


@pytest.fixture(scope="module")
def perturbed_teacher_dir(tmp_path_factory, teacher_dir, tokenizer_a):
    model, _ = load_causal_lm(str(teacher_dir), "t")
    copy = tiny.make_finetuned_copies(model, 1, scale=0.05, seed=1)[0]
    return tiny.save_model(copy, tokenizer_a, tmp_path_factory.mktemp("teacher_perturbed"))


def _cfg(teachers, students, data, out, **kw):
    base = dict(
        recipes=["sft"], train_dataset=str(data / "train.jsonl"), eval_dataset=str(data / "eval.jsonl"),
        verifier="math_answer", seeds=1, eval_max_new_tokens=6, evaluate_initial_students=False,
        distill={"max_steps": 1, "per_device_train_batch_size": 4, "max_completion_length": 6},
    )  # fmt: skip
    return ReportConfig(teachers=teachers, students=students, output_dir=str(out), **{**base, **kw})


@pytest.fixture(scope="module")
def suite(tmp_path_factory, teacher_dir, perturbed_teacher_dir, student_dir, data):
    """Two teachers × one student × two attackers (differing only in budget) × two seeds, graded scores."""
    out = tmp_path_factory.mktemp("suite") / "rep"
    cfg = _cfg({"original": str(teacher_dir), "calibrated": str(perturbed_teacher_dir)}, {"llama": str(student_dir)},
               data, out, seeds=2, attackers=["t1", "t1_2x"], evaluate_initial_students=True,
               proxy_model_name_or_path=str(teacher_dir), verifier="test_report:char_score")  # fmt: skip
    return cfg, run_report(cfg), out


def test_every_cell_runs_once_with_its_settings(suite):
    cfg, report, out = suite
    on_disk = json.loads((out / "report.json").read_text())
    assert {"report.json", "report.md", "report.png", "budget.png", "suite.json", "cells"} <= {
        p.name for p in out.iterdir()
    }
    # the fixture's students train a few steps and may end where they began: that warning alone is expected
    assert not (out / ".scratch").exists() and on_disk["complete"]
    assert [w for w in on_disk["warnings"] if "taught nothing" not in w] == []
    cells = on_disk["cells"]
    assert len(cells) == 2 * 2 * 2  # 2 teachers × 2 attackers × 2 seeds
    assert all(CONTRACT_CELL <= c.keys() for c in cells)
    for c in cells:
        budget = 2 if c["attacker"] == "t1_2x" else 1
        assert (c["budget"], c["prompts"], c["steps"], c["train_samples"]) == (
            budget,
            6 * budget,
            budget,
            6 * budget,
        )
        assert c["temperature"] == 1.0 and c["score"] == c["student_score"]
        assert c["teacher_score"] == report["teachers"][c["teacher"]]["scores"][str(c["seed"])]
    # teacher scores are the deterministic greedy evaluation, recomputed independently
    model, tok = load_causal_lm(cfg.teachers["original"], "t")
    rows = [json.loads(x) for x in Path(cfg.eval_dataset).read_text().splitlines()]
    again = evaluate(model, tok, rows, char_score, max_new_tokens=6, desc=None)
    assert report["teachers"]["original"]["score"] == again.score
    assert report["students"]["llama"]["initial_score"] is not None


def test_comparisons_are_recomputed_from_the_cells(suite):
    _, report, _ = suite
    cells = report["cells"]
    assert len(report["comparisons"]) == 2  # calibrated × 2 attackers, against `original`
    assert (
        len({c["student_score"] for c in cells}) > 2
    )  # graded scores: the arithmetic below is not all zeros
    for row in report["comparisons"]:
        assert CONTRACT_COMPARISON <= row.keys() and row["baseline"] == "original"
        x, y = ({c["seed"]: c for c in cells if (c["teacher"], c["attacker"]) == (t, row["attacker"])}
                for t in (row["teacher"], "original"))  # fmt: skip
        xs, ys = [x[s]["student_score"] for s in sorted(x)], [y[s]["student_score"] for s in sorted(y)]
        assert row["n"] == 2 and row["mean"] == pytest.approx(sum(xs) / 2)
        assert row["std"] == pytest.approx(abs(xs[0] - xs[1]) / math.sqrt(2))  # ddof 1
        assert row["baseline_mean"] == pytest.approx(sum(ys) / 2) and row["diff"] == pytest.approx(
            (sum(xs) - sum(ys)) / 2
        )
        assert row["ci95"] == list(bootstrap_ci(xs, ys))
        assert row["welch_p"] == pytest.approx(welch(xs, ys)["p"], nan_ok=True)
        assert row["ratio"] == pytest.approx(sum(xs) / sum(ys))
        tx = [x[s]["student_score"] / x[s]["teacher_score"] for s in (0, 1)]
        ty = [y[s]["student_score"] / y[s]["teacher_score"] for s in (0, 1)]
        assert row["transfer"] == pytest.approx(sum(tx) / 2) and row["baseline_transfer"] == pytest.approx(
            sum(ty) / 2
        )
        assert row["transfer_diff"] == pytest.approx((tx[0] - ty[0] + tx[1] - ty[1]) / 2)
    assert "## Verdict" in (suite[2] / "report.md").read_text()


def test_same_command_continues_and_rerenders(suite, monkeypatch):
    cfg, report, out = suite
    (out / "cells/calibrated/llama/sft/t1/seed1.json").unlink()
    ran = []
    import trl_distillguard.report as rep

    real = rep._Suite.run_cell
    monkeypatch.setattr(
        rep._Suite, "run_cell", lambda self, cell, *a: ran.append(cell) or real(self, cell, *a)
    )
    again = run_report(cfg)
    assert [(c.teacher, c.attacker, c.seed) for c in ran] == [("calibrated", "t1", 1)]
    assert len(again["cells"]) == len(report["cells"]) and again["run"]["cells_run"] == 1


def test_other_settings_in_the_same_output_dir_are_refused(suite):
    cfg, _, out = suite
    other = _cfg(cfg.teachers, cfg.students, Path(cfg.train_dataset).parent, out, eval_max_new_tokens=7,
                 verifier=cfg.verifier)  # fmt: skip
    with pytest.raises(InputError, match=r"other settings \(eval_max_new_tokens differ\)"):
        run_report(other)
    moved = _cfg({"original": cfg.teachers["calibrated"]}, cfg.students, Path(cfg.train_dataset).parent, out,
                 seeds=2, attackers=["t1"], verifier=cfg.verifier)  # fmt: skip
    with pytest.raises(InputError, match="was run with teacher"):
        run_report(moved)


def test_shards_split_the_cells_and_the_last_renders_all(
    teacher_dir, perturbed_teacher_dir, student_dir, data, tmp_path
):
    teachers = {"original": str(teacher_dir), "calibrated": str(perturbed_teacher_dir)}
    kw = dict(attackers=["greedy"], seeds=2)
    first = run_report(_cfg(teachers, {"s": str(student_dir)}, data, tmp_path / "rep", shard="1/2", **kw))
    assert not first["complete"] and first["run"]["cells_run"] == 2 and first["cells_missing"] == 2
    second = run_report(_cfg(teachers, {"s": str(student_dir)}, data, tmp_path / "rep", shard="2/2", **kw))
    assert second["complete"] and second["run"]["cells_run"] == 2 and len(second["comparisons"]) == 1
    assert {c["temperature"] for c in second["cells"]} == {0.0}


def test_a_shard_that_ends_leaves_the_other_shards_training_folders_alone(
    teacher_dir, perturbed_teacher_dir, student_dir, data, tmp_path
):
    # shard 1 = the original teacher's cells, shard 2 = the calibrated one's; they share output_dir and .scratch
    teachers = {"original": str(teacher_dir), "calibrated": str(perturbed_teacher_dir)}
    out, kw = tmp_path / "rep", dict(attackers=["greedy"], seeds=2)
    run_report(_cfg(teachers, {"s": str(student_dir)}, data, out, shard="1/2", **kw))
    scratch = out / ".scratch"
    training = [scratch / "calibrated-s-sft-greedy-0" / "trainer_state.json",  # shard 2 at work meanwhile
                scratch / ".calibrated-s-sft-greedy-1.partial-0123abcd" / "calibrated-s-sft-greedy-1" / "x"]  # fmt: skip
    # a killed run of one of shard 1's cells
    stale = scratch / ".original-s-sft-greedy-0.partial-deadbeef" / "original-s-sft-greedy-0" / "x"
    for f in [*training, stale]:
        f.parent.mkdir(parents=True)
        f.write_text("{}")
    (out / "cells/original/s/sft/greedy/seed0.json").unlink()  # ... that shard 1 now runs again
    again = run_report(_cfg(teachers, {"s": str(student_dir)}, data, out, shard="1/2", **kw))
    assert again["run"]["cells_run"] == 1
    assert all(f.exists() for f in training) and not stale.parent.parent.exists()
    # shard 2 clears its own cells' leftovers; the last one out removes the empty .scratch
    run_report(_cfg(teachers, {"s": str(student_dir)}, data, out, shard="2/2", **kw))
    assert not scratch.exists()


def test_seed_templates_name_one_teacher_per_seed_and_overwrite_is_checked_first(
    suite, teacher_dir, tmp_path
):
    from trl_distillguard.report_cells import grid
    from trl_distillguard.report_inputs import check_inputs, check_output_dir

    cfg, _, out = suite
    for seed in (0, 1):
        shutil.copytree(teacher_dir, tmp_path / f"cal_seed{seed}")
    per_seed = _cfg({"original": str(teacher_dir), "cal": str(tmp_path / "cal_seed{seed}")}, cfg.students,
                    Path(cfg.train_dataset).parent, out, seeds=2, verifier=cfg.verifier, attackers="t1,greedy")  # fmt: skip
    inputs = check_inputs(per_seed)
    assert inputs.teacher_paths["cal"] == {s: str(tmp_path / f"cal_seed{s}") for s in (0, 1)}
    assert inputs.teacher_paths["original"] == {0: str(teacher_dir), 1: str(teacher_dir)}
    assert per_seed.attackers == ["t1", "greedy"]
    per_seed.eval_max_new_tokens = 7  # other settings: refused, unless overwriting is asked for
    with pytest.raises(InputError, match="other settings"):
        check_output_dir(per_seed, inputs, grid(per_seed))
    per_seed.overwrite_output_dir = True
    assert (
        check_output_dir(per_seed, inputs, grid(per_seed)) == "overwrite" and (out / "report.json").exists()
    )
    shutil.copytree(teacher_dir, out / "inside")  # an output_dir holding an input is never emptied
    per_seed.teachers["cal"] = str(out / "inside")
    with pytest.raises(InputError, match="contains input"):
        check_inputs(per_seed)
    shutil.rmtree(out / "inside")


def test_correct_only_without_a_correct_sample_evaluates_the_untrained_student(
    teacher_dir, student_dir, data, tmp_path
):
    cfg = _cfg({"original": str(teacher_dir)}, {"s": str(student_dir)}, data, tmp_path / "rep",
               attackers=["t1_correct"], evaluate_initial_students=True)  # fmt: skip
    report = run_report(cfg)  # the random tiny teacher answers nothing right
    (cell,) = report["cells"]
    assert cell["train_samples"] == 0 and cell["steps"] == 0 and "no training sample" in cell["note"]
    assert cell["student_score"] == report["students"]["s"]["initial_score"]
    assert cell["teacher_sample_accuracy"] == 0.0
    # students that end where they began are flagged: ratios against them would mean nothing
    (warning,) = [w for w in report["warnings"] if "taught nothing" in w]
    assert "`original` → `s` (sft, t1_correct)" in warning
    assert warning in (tmp_path / "rep" / "report.md").read_text()


def test_untaught_flags_only_the_baseline_students_that_did_not_improve():
    from trl_distillguard.report_stats import untaught

    def row(teacher, student, recipe, mean):
        return {
            "teacher": teacher,
            "student": student,
            "recipe": recipe,
            "attacker": "t1",
            "student_mean": mean,
        }

    rows = [row("base", "s", "kd", 0.10), row("base", "s", "sft", 0.30), row("cal", "s", "sft", 0.0),
            row("base", "u", "sft", 0.0)]  # fmt: skip
    lines = untaught(rows, {"s": 0.10}, "base")  # `u` has no initial score: nothing to compare with
    assert len(lines) == 1 and "(kd, t1)" in lines[0] and "on_policy_fraction: 0" in lines[0]
    assert "more distill steps" in untaught([row("base", "s", "sft", 0.05)], {"s": 0.10}, "base")[0]


def test_shared_sampling_pass_serves_smaller_budgets():
    calls = []

    def sample(prompts, temperature, seed):
        calls.append((len(prompts), temperature))
        return [{"prompt": p, "completion": f"{temperature}:{i}"} for i, p in enumerate(prompts)]

    rows = [{"prompt": f"q{i}", "answer": str(i)} for i in range(5)]
    data = TeacherSamples(None, rows, 4, 0, verifier=None, sample=sample, batch_size=2)
    data.prefetch([(1.0, 4), (1.0, 12), (0.7, 4)])
    assert calls == [(12, 1.0), (4, 0.7)]  # 4 is a whole number of batches: the 12-prompt pass holds it
    assert data.teacher_samples(1.0, 4) == data.teacher_samples(1.0, 12)[:4]
    odd = TeacherSamples(None, rows, 3, 0, verifier=None, sample=sample, batch_size=2)
    odd.prefetch([(1.0, 3), (1.0, 6)])
    assert calls[-2:] == [(6, 1.0), (3, 1.0)]  # 3 is not: its last batch would differ, so it samples its own


def test_attacker_names():
    assert parse_attacker("t1_3x") == Attacker("t1_3x", 1.0, False, 3)
    assert parse_attacker("t07") == Attacker("t07", 0.7)
    assert parse_attacker("greedy_correct") == Attacker("greedy_correct", 0.0, True)
    assert parse_attacker("t1.5_2x") == Attacker("t1.5_2x", 1.5, False, 2)
    assert parse_attacker("t1_0x") is None and parse_attacker("best_of_4") is None
    with pytest.raises(InputError, match="unknown attacker 'best_of_4'"):
        resolve_attacker("best_of_4")


def test_a_plugin_attacker_is_used(teacher_dir, student_dir, data, tmp_path):
    from trl_distillguard.attackers import attacker_registry
    from trl_distillguard.hookspecs import hookimpl

    class FirstTwo(Attacker):
        def train_samples(self, data):
            return data.teacher_samples(1.0, 6)[:2]

    class Plugin:
        @hookimpl
        def trl_distillguard_attackers(self):
            return [FirstTwo("first_two")]

    attacker_registry.register(Plugin(), name="test-first-two")
    try:
        report = run_report(_cfg({"o": str(teacher_dir)}, {"s": str(student_dir)}, data, tmp_path / "r",
                                 attackers=["first_two"]))  # fmt: skip
    finally:
        attacker_registry._pm.unregister(name="test-first-two")
        attacker_registry._loaded = False
    assert report["cells"][0]["train_samples"] == 2


def test_summary_and_comparisons_by_hand():
    cells = [{"teacher": t, "student": "s", "recipe": "sft", "attacker": "t1", "seed": k, "student_score": v,
              "teacher_score": ts} for t, k, v, ts in
             [("orig", 0, 0.2, 0.5), ("orig", 1, 0.4, 0.5), ("cal", 0, 0.6, 0.8), ("cal", 1, 0.6, 0.6)]]  # fmt: skip
    rows = {r["teacher"]: r for r in summarize(cells, "orig")}
    assert rows["orig"]["student_mean"] == pytest.approx(0.3) and rows["orig"]["delta_vs_original"] == 0
    assert rows["cal"]["delta_vs_original"] == pytest.approx(0.3) and rows["cal"]["student_std"] == 0
    assert rows["cal"]["distillability_index"] == pytest.approx(0.6 / 0.7)
    (comp,) = comparisons(cells, "orig")
    assert comp["ratio"] == pytest.approx(2.0) and comp["transfer"] == pytest.approx((0.6 / 0.8 + 1.0) / 2)
    assert comp["baseline_transfer"] == pytest.approx(0.6)
    assert (
        comp["transfer_diff"] == pytest.approx(((0.75 - 0.4) + (1.0 - 0.8)) / 2) and comp["transfer_n"] == 2
    )


def test_evaluation_is_deterministic_and_batched(teacher_dir):
    model, tok = load_causal_lm(str(teacher_dir), "t")
    prompts = [f"What is {a} + 1?" for a in range(5)]
    a = generate(model, tok, prompts, max_new_tokens=6, batch_size=2)
    b = generate(model, tok, prompts, max_new_tokens=6, batch_size=2)
    assert [g[0].token_ids for g in a] == [g[0].token_ids for g in b]
    for prompt, batched in zip(prompts, a):
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            ref = model.generate(**ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
        assert (
            ref[0, ids["input_ids"].shape[1] :].tolist()[: len(batched[0].token_ids)] == batched[0].token_ids
        )


def test_warns_when_every_student_is_the_proxy(teacher_dir, student_dir, data, tmp_path):
    cfg = _cfg({"original": str(teacher_dir)}, {"proxy": str(student_dir)}, data, tmp_path / "rep",
               proxy_model_name_or_path=str(student_dir))  # fmt: skip
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
        ({"teachers": "no_such_teacher"}, "teacher original"),
        ({"attackers": ["t1", "best_of_4"]}, "attackers: unknown attacker 'best_of_4'"),
        (
            {"attackers": ["t1_correct"], "train_dataset": "nogold.jsonl"},
            "attackers t1_correct: .* no gold answers",
        ),
        (
            {"gold": ["completions"], "train_dataset": "nogold.jsonl"},
            "gold: completions needs the column 'completion'",
        ),
    ],
)
def test_bad_input_one_line_nothing_written(change, match, teacher_dir, student_dir, data, tmp_path):
    cfg = _cfg({"original": str(teacher_dir)}, {"llama": str(student_dir)}, data, tmp_path / "rep")
    for key, value in change.items():
        if key in ("students", "teachers"):
            value = {"bad" if key == "students" else "original": str(data / value)}
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
        ReportConfig(distill={"sample_temperature": 0.7})
    with pytest.raises(ValueError, match="original_teacher"):
        ReportConfig(teachers={"a": "x"}, original_teacher="b")
    with pytest.raises(ValueError, match="baseline_teacher"):
        ReportConfig(teachers={"a": "x"}, baseline_teacher="b")
    with pytest.raises(ValueError, match="shard"):
        ReportConfig(shard="3/2")
    with pytest.raises(ValueError, match="gold: .*add sft"):
        ReportConfig(gold=["answers"], recipes=["uld"])
    cfg = ReportConfig(
        teachers='{"a": "x", "b": "y"}', recipes="sft,uld", seeds=3, seed=5, original_teacher="b"
    )
    assert cfg.baseline_teacher == "b" and cfg.recipes == ["sft", "uld"] and cfg.seed_list == [5, 6, 7]


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
    builder.build(tmp_path / "examples/data/report_tiny", steps=8)
    monkeypatch.chdir(tmp_path)
    from trl_distillguard.cli import main as cli_main

    assert cli_main(["report", "--config", "examples/configs/report_tiny.yaml", "--recipes", "sft"]) == 0
    assert (tmp_path / "outputs/report_tiny/report.png").stat().st_size > 0
    assert "| perturbed |" in capsys.readouterr().out
    assert os.path.exists("outputs/report_tiny/report.json")
    assert main(["--config", "examples/configs/report_tiny.yaml", "--seeds", "0"]) == 2
    assert main(["--config", "examples/configs/report_tiny.yaml", "--attackers", "t9_zz"]) == 2
    assert "unknown attacker 't9_zz'" in capsys.readouterr().err


def test_verdict_is_worded_from_the_comparisons():
    from trl_distillguard.report_stats import verdict

    def cells_of(teacher, scores, attacker):
        return [{"teacher": teacher, "student": "s", "recipe": "sft", "attacker": attacker, "seed": k,
                 "student_score": v, "teacher_score": None if teacher.startswith("gold-") else 0.9}
                for k, v in enumerate(scores)]  # fmt: skip

    cells = cells_of("base", [0.6, 0.62, 0.58], "t1") + cells_of("base", [0.7, 0.7, 0.72], "t1_3x")
    cells += cells_of("cal", [0.2, 0.22, 0.18], "t1") + cells_of("cal", [0.5, 0.45, 0.4], "t1_3x")
    cells += cells_of("gold-answers", [0.3, 0.3, 0.3], "t1") + cells_of(
        "gold-answers", [0.3, 0.3, 0.3], "t1_3x"
    )
    lines = verdict(comparisons(cells, "base"), {"base": {"score": 0.9}, "cal": {"score": 0.85}}, "base", 0.5)
    cal, gold = lines
    assert cal.startswith(
        "`cal` (teacher score 0.850 vs 0.900): its students reach 33 %–64 %"
    )  # 0.2/0.6, 0.45/0.7067
    assert (
        "≤ 50 % under every attacker: **no**" in cal
        and "strongest attacker against it: t1_3x (s, sft), 64 %" in cal
    )
    assert "below the gold-answers floor in 1 of 2" in cal and gold.startswith(
        "`gold-answers` (students of the gold"
    )
    # the weaker attacker alone: the defence holds
    (only_t1, _) = verdict(comparisons([c for c in cells if c["attacker"] == "t1"], "base"), {}, "base", 0.5)
    assert "under every attacker: **yes**" in only_t1
