"""Checks of `efficacy_knob.py` and its modules, run by `python benchmarks/selfcheck.py` (each `check_knob_*` is
one line of its output): the task's traces and splits, the tokenizer round trip, the teacher's SFT, the flags and
the cache, the logit recipes and gold references on tiny random models, and the renderer's statistics and figures.
The statistics themselves are `distill_ortho_merge.stats` (tested with the package)."""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import efficacy_knob as knob_driver
import efficacy_knob_render as rk
import efficacy_knob_task as ek
import torch

from distill_ortho_merge import stats
from distill_ortho_merge import testing as tiny
from distill_ortho_merge.verifiers import math_answer

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_REAL = ROOT / "benchmarks/results/efficacy_knob/real"


def _close(x: float, y: float) -> bool:
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


@contextlib.contextmanager
def _tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _one_line_exit(fn: Callable, *args) -> str:
    """`fn(*args)` must exit 2 with one stderr line `efficacy_knob: ...`; that line."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            fn(*args)
        except SystemExit as e:
            code = e.code
        else:
            raise AssertionError(f"{args}: no exit")
    text = err.getvalue().strip()
    assert code == 2 and len(text.splitlines()) == 1 and text.startswith("efficacy_knob: "), (code, text)
    return text


# ------------------------------------------------------------------------------------------------ the task
def check_knob_examples_run() -> None:
    """The docstring examples of the knob's modules run (benchmarks are not collected by pytest's doctests)."""
    names = ("efficacy_knob_task", "efficacy_knob_args", "efficacy_knob", "efficacy_knob_suite", "knob_tasks")
    with contextlib.redirect_stderr(io.StringIO()):  # an example of a one-line error prints that line
        results = {
            n: doctest.testmod(importlib.import_module(n), optionflags=doctest.ELLIPSIS) for n in names
        }
    assert not any(r.failed for r in results.values()), results
    assert sum(r.attempted for r in results.values()) >= 10, results


def check_knob_every_format_is_correct_and_recognised() -> None:
    pairs = [(a, b) for a in range(10, 100, 7) for b in range(1, 10)]
    for fmt in ek.FORMATS:
        texts = [ek.trace(a, b, fmt) for a, b in pairs]
        assert math_answer(
            prompts=[""] * len(pairs), completions=texts, answer=[a + b for a, b in pairs]
        ) == [1.0] * len(pairs), fmt
        assert {ek.format_of(t) for t in texts} == {fmt}
    assert ek.format_of(" 82") == "other"
    # a wrong trace is caught (the verifier reads only the final number)
    assert math_answer(prompts=[""], completions=[ek.trace(12, 3, "verbose")], answer=[16]) == [0.0]


def check_knob_tokenizer_round_trips() -> None:
    from transformers import AutoTokenizer

    tok = tiny.digit_tokenizer(
        300, [f"What is {a} + {a}?" + ek.trace(a, a % 9 + 1, "verbose") for a in range(10, 60)]
    )
    with _tmp() as tmp:
        for fam in ("llama", "mistral"):
            path = ek.save_model(ek.new_lm(fam, tok, 16, 1, seed=0), tok, tmp / fam)  # asserts the round trip
            assert AutoTokenizer.from_pretrained(path)(" 1234")["input_ids"] == tok(" 1234")["input_ids"], fam


def check_knob_split_rows_are_the_splits_as_prompts() -> None:
    got, pairs = ek.split_rows(20, 10), ek.splits(20, 10)
    assert {k: len(v) for k, v in got.items()} == {"test": 20, "val": 10, "train": 780}
    assert got["val"][3] == {
        "prompt": "What is {} + {}?".format(*pairs["val"][3]),
        "answer": str(sum(pairs["val"][3])),
    }
    test_prompts = {r["prompt"] for r in got["test"]}
    assert not test_prompts & {r["prompt"] for r in got["train"] + got["val"]}


def check_knob_gold_samples_are_the_gold_answers_and_traces() -> None:
    rows = ek.split_rows(200, 100)["train"][:40]
    for gold, formats in (("direct", {"direct"}), ("traces", set(ek.FORMATS))):
        samples = ek.gold_samples(rows, gold, seed=0)
        texts = [x["completion"] for x in samples]
        assert [x["prompt"] for x in samples] == [r["prompt"] for r in rows]
        assert (
            math_answer(prompts=[""] * 40, completions=texts, answer=[r["answer"] for r in rows])
            == [1.0] * 40
        )
        assert {ek.format_of(t) for t in texts} == formats  # 40 uniform draws of 4 formats: each appears


def check_knob_other_tasks_rows_traces_and_formats_agree() -> None:
    """`--task`: every `knob_tasks` task's rows carry the right answers, its gold traces are right and recognised
    by `format_of`, its splits are disjoint, and the `add21` entry is the addition study's own data."""
    import knob_tasks

    for task, t in knob_tasks.TASKS.items():
        got = ek.split_rows(200, 100, task)
        assert {k: len(v) for k, v in got.items() if k != "train"} == {"val": 100, "test": 200}, task
        prompts = {k: {r["prompt"] for r in v} for k, v in got.items()}
        assert (
            not prompts["test"] & (prompts["train"] | prompts["val"])
            and not prompts["val"] & prompts["train"]
        )
        rows = got["train"][:40]
        for gold, formats in (("direct", {"direct"}), ("traces", set(ek.task_formats(task)))):
            texts = [x["completion"] for x in ek.gold_samples(rows, gold, seed=0, task=task)]
            assert (
                math_answer(prompts=[""] * 40, completions=texts, answer=[r["answer"] for r in rows])
                == [1.0] * 40
            )
            assert {ek.format_of(x, task) for x in texts} == formats, (task, gold)
        assert ek.format_of(" 82", task) == "other"
        assert [t.row(x)["prompt"] for x in ek.train_items(task, 200, 100)[:5]] == [
            r["prompt"] for r in rows[:5]
        ]
    assert ek.split_rows(200, 100, "add21") == ek.split_rows(200, 100)  # the default is the addition study's
    assert knob_tasks.TASKS["add21"].trace((37, 5), "units_first") == ek.trace(37, 5, "units_first")


def check_knob_task_and_student_size_change_the_hash_only_when_set() -> None:
    """The addition sweep's cache folder stays `tiny-1391fdae`; `--task` / `--student_size` key new folders."""
    args = knob_driver.parse_args
    assert knob_driver.Knob(args(["--render_only"])).tag == "1391fdae"
    other = knob_driver.Knob(args(["--render_only", "--task", "mul21", "--student_size", "128x4"]))
    assert other.protocol["task"] == "mul21" and other.protocol["student_size"] == "128x4"
    assert other.tag != "1391fdae" and other.base.name != knob_driver.Knob(args(["--render_only"])).base.name
    assert _one_line_exit(args, ["--student_size", "128"]).startswith("efficacy_knob: --student_size '128'")
    assert "--task" in _one_line_exit(args, ["--setting", "real", "--task", "mul21", "--real_models", "x"])


def check_knob_write_jsonl_writes_one_row_per_line() -> None:
    with _tmp() as tmp:
        path = ek.write_jsonl(ek.rows([(12, 3), (40, 9)]), tmp / "new" / "val.jsonl")
        assert [json.loads(line) for line in path.read_text().splitlines()] == ek.rows([(12, 3), (40, 9)])


def check_knob_sft_on_traces_teaches_the_traces() -> None:
    """The real setting's teacher SFT (on a tiny Llama here): the gold traces' loss drops and `_sft` is cleaned up."""
    pairs = ek.splits(200, 100)["train"][:40]
    tok = tiny.digit_tokenizer(300, [f"What is {a} + {b}?" + ek.trace(a, b, "verbose") for a, b in pairs])
    model = ek.new_lm("llama", tok, 32, 1, seed=0)
    batch = tok([f"What is {a} + {b}?" + ek.trace(a, b, "units_first") for a, b in pairs[:8]], return_tensors="pt",
                padding=True)  # fmt: skip
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    def loss() -> float:
        with torch.no_grad():
            return model(**batch, labels=labels).loss.item()

    before = loss()
    with _tmp() as tmp:
        ek.sft_on_traces(model.train(), tok, pairs, tmp, steps=30, lr=3e-3, batch=16)
        assert loss() < before - 0.5, (before, loss())
        assert not (tmp / "_sft").exists()


# ------------------------------------------------------------------------------------------------ the driver
def check_knob_atomic_builds_into_a_folder_that_does_not_exist_yet() -> None:
    """A fresh workdir has the shared base models but not the sweep's own folder: the first calibrated teacher
    is built there all the same, complete or not at all."""

    def build(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")

    with _tmp() as tmp:
        target = tmp / "real-sweep" / "teacher_eta+1_seed0"
        assert knob_driver.atomic(target, build) == target
        assert (target / "config.json").exists()
        assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no lock or partial left


BAD_FLAGS = [
    (["--teacher_lr", "1e-4"], "--teacher_lr"),  # the tiny teacher's lr is fixed: not silently ignored
    (["--real_models", "teacher=x"], "--real_models"),
    (
        ["--setting", "real", "--real_models", "a=b", "--teacher_lr", "1e-4"],
        "--real_dataset gsm_symbolic uses",
    ),
    (
        ["--setting", "real", "--real_models", "a=b", "--task", "mul21"],
        "the real setting's task is --real_dataset",
    ),
    (["--setting", "real"], "--real_models"),
    (["--attackers", "t1,t2"], "--attackers t2"),
    (["--seeds", "0,x"], "--seeds x"),
    (["--etas=-1,one"], "--etas one"),
    (["--shard", "3/2"], "--shard: '3/2' is not i/n"),
    (["--teachers_only", "--etas="], "--teachers_only builds the --etas teachers"),
    (["--teachers_only", "--shard", "1/2"], "neither --render_only nor --shard"),
    (["--recipes", "sft,gkd"], "--recipes gkd"),
    (
        ["--logit_on_policy", "0"],
        "--logit_on_policy applies only to the logit recipes",
    ),  # not silently ignored
    (["--recipes", "kd", "--logit_beta", "2"], "--logit_beta 2: must lie in [0, 1]"),
    (["--gold", "direct,bare"], "--gold bare"),
    (["--gold", "direct", "--recipes", "kd"], "--gold trains students by sft"),
    (["--setting", "real", "--real_models", "a=b", "--gold", "traces"], "--real_dataset gsm_symbolic"),
]
BAD_REAL_MODELS = [
    ("teacher=/no/such/dir,proxy=/no,student_a=/no,student_b=/no", "--real_models teacher: /no/such/dir"),
    ("teacher,proxy=x,student_a=x,student_b=x", "'teacher': not role=model"),
    ("teacher=x,proxy=x,student_a=x,student_c=x", "'student_c=x': unknown role"),
    ("teacher=x,proxy=x,student_a=x", "missing student_b"),
]


def check_knob_help_names_the_settings_and_flags() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            knob_driver.parse_args(["--help"])
        except SystemExit as e:
            assert e.code == 0, e.code
    for flag in (
        "--setting {tiny,real}",
        "--real_models",
        "--gold",
        "--recipes",
        "--render_only",
        "--shard",
        "--teachers_only",
    ):
        assert flag in out.getvalue(), flag


def check_knob_bad_flags_are_one_line_errors() -> None:
    for argv, named in BAD_FLAGS:
        assert named in _one_line_exit(knob_driver.parse_args, argv), argv
    for spec, named in BAD_REAL_MODELS:
        assert named in _one_line_exit(knob_driver.real_model_paths, spec), spec


def check_knob_a_logit_recipe_that_does_not_fit_a_student_is_one_line() -> None:
    """Tiny setting: student b's tokenizer is not the teacher's, so `kd` cannot distil it; refused before any work."""
    with _tmp() as tmp:
        args = [
            "--workdir",
            str(tmp / "work"),
            "--out",
            str(tmp / "out"),
            "--recipes",
            "sft,kd",
            "--students",
            "a,b",
        ]
        err = _one_line_exit(knob_driver.Knob, knob_driver.parse_args(args))
        assert "--recipes kd with --students b" in err and "shared vocabulary" in err, err
        assert list(tmp.iterdir()) == []


def _tiny_knob(tmp: Path, *flags: str):
    """A tiny-setting `Knob` (student a only, a few items and steps) whose teacher and student a are random tiny
    Llamas on tokenizer A: `student_result` runs in seconds."""
    args = ["--workdir", str(tmp / "work"), "--out", str(tmp / "out"), "--n_test", "4", "--n_val", "4",
            "--n_distill", "16", "--distill_steps", "2", "--max_new_tokens", "8", "--students", "a", *flags]  # fmt: skip
    knob = knob_driver.Knob(knob_driver.parse_args(args))
    tok_a, _ = ek.tokenizers(knob.train_pairs)
    teacher = ek.save_model(ek.new_lm("llama", tok_a, 32, 1, seed=0), tok_a, tmp / "teacher")
    student = ek.save_model(ek.new_lm("llama", tok_a, 32, 1, seed=1), tok_a, tmp / "student")
    knob.models = {"teacher": teacher, "student_a_init": student}
    return knob


def check_knob_logit_recipes_distil_a_student_under_their_own_key() -> None:
    """A student distilled by a logit recipe (tiny random models, a few steps) is cached under its own key and
    rendered as its own student (`a+kd`), beside the `sft` one of the same teacher and attacker; an on-policy
    share or divergence other than DistillConfig's is named in the key."""
    for recipe, flags, name, lam in (
        ("kd", [], "kd", 0.5),
        ("uld", [], "uld", 0.5),
        ("kd", ["--logit_on_policy", "0", "--logit_beta", "0"], "kd-lambda0-beta0", 0.0),
    ):
        with _tmp() as tmp:
            knob = _tiny_knob(tmp, "--recipes", f"sft,{recipe}", *flags)
            sft = knob.student_result("original", 0, "t1", "a", "sft")
            assert sft["key"].endswith("/t1/a/sft") and sft["recipe"] == "sft" and 0.0 <= sft["score"] <= 1.0
            res = knob.student_result("original", 0, "t1", "a", recipe)
            assert res["key"].endswith(f"/t1/a/{name}") and res["recipe"] == recipe, res
            assert res["n_train"] == 16, res
            assert res["on_policy_fraction"] == lam and 0.0 <= res["score"] <= 1.0, res
            _, students = rk.load(knob.cache)
            assert set(students) == {("t1", "a", "original"), ("t1", f"a+{name}", "original")}, students


def check_knob_logit_settings_of_one_workdir_run_one_after_the_other() -> None:
    """Two sweeps of one workdir with different logit settings (`kd` at DistillConfig's defaults, then off-policy
    forward KL) both run: each writes its own `distillguard report` folder, since a report refuses a folder that
    holds another `distill` setting."""
    with _tmp() as tmp:
        first = _tiny_knob(tmp, "--recipes", "kd")
        assert first.student_result("original", 0, "t1", "a", "kd")["on_policy_fraction"] == 0.5
        second = _tiny_knob(tmp, "--recipes", "kd", "--logit_on_policy", "0", "--logit_beta", "0")
        res = second.student_result("original", 0, "t1", "a", "kd")
        assert res["key"].endswith("/t1/a/kd-lambda0-beta0") and res["on_policy_fraction"] == 0.0, res
        folders = sorted(p.name for p in (tmp / "work").glob("*/suite/*"))
        assert folders == ["t1-seed0", "t1-seed0-lambda0-beta0"], folders


def check_knob_render_only_files_the_finished_cells_of_a_stopped_report() -> None:
    """`--render_only` files what a stopped report finished: a cell whose report file exists is filed under the
    study's key exactly as the report call files it, a cell the report has not finished is not, and a seed
    without a report folder files nothing (no teacher is built, nothing is run)."""
    with _tmp() as tmp:
        knob = _tiny_knob(tmp, "--gold", "direct")
        ran = knob.student_result("original", 0, "t1", "a", "sft")
        gold = knob.student_result("gold-direct", 0, "t1", "a", "sft")
        for r in (ran, gold):  # as if the report had been stopped before filing its cells
            (knob.cache / f"{r['key']}.json").unlink()
        report = knob.work / "suite" / "t1-seed0"
        (report / "cells/gold-answers/a/sft/t1/seed0.json").unlink()  # ... and before its gold cell was done
        filed = knob_driver.file_finished(knob, "t1", 0, ["original"], ["a"], ["sft"], ["direct"])
        assert filed == [ran["key"]], filed
        assert json.loads((knob.cache / f"{ran['key']}.json").read_text()) == ran
        assert not (knob.cache / f"{gold['key']}.json").exists()
        assert knob_driver.file_finished(knob, "t1", 0, ["original"], ["a"], ["sft"], ["direct"]) == []
        assert knob_driver.file_finished(knob, "t1", 1, ["original", "eta-1"], ["a"], ["sft"], []) == []
        assert not knob.teacher_dir("eta-1", 1).exists()


def check_knob_a_shard_runs_only_its_block_of_the_cells_and_files_every_finished_one() -> None:
    """`--shard 2/2` of (original, gold-direct) × student a runs the gold cell only; `--shard 1/2` then runs the
    original's and files both: n processes share one report folder."""
    with _tmp() as tmp:
        second = _tiny_knob(tmp, "--gold", "direct", "--shard", "2/2")
        got = knob_driver.run_cells(second, "t1", 0, ["original"], ["a"], ["sft"], ["direct"])
        assert [r["key"] for r in got] == ["gold-direct/seed0/t1/a/sft"], got
        first = _tiny_knob(tmp, "--gold", "direct", "--shard", "1/2")
        got = knob_driver.run_cells(first, "t1", 0, ["original"], ["a"], ["sft"], ["direct"])
        assert sorted(r["key"] for r in got) == ["gold-direct/seed0/t1/a/sft", "original/seed0/t1/a/sft"], got
        assert [p.name for p in (tmp / "work").glob("*/suite/*")] == ["t1-seed0"]


def check_knob_teachers_only_builds_the_original_and_the_etas_teachers_and_no_control_or_student() -> None:
    """`--teachers_only` (a pilot) scores the original afresh (equal to its cached score: the same model) and builds,
    scores and caches the η = −1 teacher; no control is trained and no student is distilled."""
    with _tmp() as tmp:
        knob = _tiny_knob(
            tmp,
            "--teachers_only",
            "--etas=-1",
            "--seeds",
            "0",
            "--calibration_steps",
            "1",
            "--calibration_batch",
            "8",
        )
        knob.models["proxy"] = knob.models["teacher"]
        got = knob_driver.pilot_teachers(knob, ["eta-1"])
        assert got["keys"] == ["original/all/teacher", "eta-1_beta0.1_steps1/seed0/teacher"], got
        original = json.loads((knob.cache / "original/all/teacher.json").read_text())
        assert got["original_rescored"] == original["teacher_score"], (got, original)
        # run again: the original is cached now, so it is scored afresh, and the same model gives the same score
        assert knob_driver.pilot_teachers(knob, ["eta-1"]) == got
        assert knob.teacher_dir("eta-1", 0).exists() and not knob.teacher_dir("eta0", 0).exists()
        cached = sorted(str(p.relative_to(knob.cache)) for p in knob.cache.rglob("*.json"))
        assert cached == ["eta-1_beta0.1_steps1/seed0/teacher.json", "original/all/teacher.json"], cached


def check_knob_teacher_results_record_the_exposure_gap_and_older_ones_get_it_added() -> None:
    """A teacher's result carries its KL to the original on both models' samples and the exposure gap (their
    difference) from its `distillguard diagnose` report; a result cached before the gap was recorded gets it added
    from the report kept in the workdir (diagnose is not run again), the rest of the result unchanged; one whose
    teacher is gone is left as it is."""
    with _tmp() as tmp:
        knob = _tiny_knob(tmp)
        # a teacher that is not the original (another random Llama on the same tokenizer): both KLs are > 0
        with mock.patch.object(knob, "teacher_path", lambda variant, seed: knob.models["student_a_init"]):
            res = knob.teacher_result("original", 0)
        report = json.loads((knob.work / "diag_original_all" / "diagnose.json").read_text())
        kl = report["off_policy"]["exact_forward_kl"]
        assert kl["off_policy"] > 0 and kl["on_policy"] > 0 and kl["on_policy"] != kl["off_policy"], kl
        assert _close(res["exposure_gap_per_token"], kl["on_policy"] - kl["off_policy"])
        assert res["kl_to_original_on_policy"] == kl["on_policy"]
        assert res["kl_to_original_per_token"] == kl["off_policy"]

        path = knob.cache / f"{res['key']}.json"
        old = {
            k: v for k, v in res.items() if k not in ("exposure_gap_per_token", "kl_to_original_on_policy")
        }
        path.write_text(json.dumps(old))

        def no_diagnose(cfg):
            raise AssertionError("diagnose ran again")

        def no_training(variant, seed):
            raise AssertionError("a teacher was trained")

        with mock.patch.object(knob_driver, "diagnose", no_diagnose):
            again = knob.teacher_result("original", 0)
            assert again == res and json.loads(path.read_text()) == res
            # neither the report nor the teacher left: the result stays as cached, and no teacher is trained again
            shutil.rmtree(knob.work / "diag_original_all")
            path.write_text(json.dumps(old))
            with (
                mock.patch.object(knob, "teacher_dir", lambda variant, seed: tmp / "gone"),
                mock.patch.object(knob, "teacher_path", no_training),
            ):
                assert knob.teacher_result("original", 0) == old and json.loads(path.read_text()) == old


def check_knob_gold_references_train_students_beside_the_teachers() -> None:
    """`--gold`: students of the gold data on the attacker's prompts and budget, cached under `gold-…`, rendered as
    their own columns and compared with each teacher's students; the η figure leaves them out."""
    with _tmp() as tmp:
        knob = _tiny_knob(tmp, "--gold", "direct,traces")
        direct = knob.student_result("gold-direct", 0, "t1_2x", "a", "sft")
        assert direct["key"] == "gold-direct/seed0/t1_2x/a/sft" and direct["n_train"] == 32, direct
        assert direct["teacher_sample_accuracy"] == 1.0 and direct["format_mix_train"]["direct"] == 1.0
        traces = knob.student_result("gold-traces", 0, "t1_2x", "a", "sft")
        assert traces["format_mix_train"]["direct"] < 1.0
        for seed in (0, 1):
            knob.student_result("original", seed, "t1_2x", "a", "sft")
        knob.student_result("gold-direct", 1, "t1_2x", "a", "sft")
        run = {"command": "x", "git_commit": "0" * 10, "machine": "m", "protocol": knob.protocol}
        res = rk.render(tmp / "out", knob.cache, run)
        rows = {(r["variant"], r["vs"]): r for r in res["summary"]["vs_gold"]}
        assert set(rows) == {("original", "gold-direct"), ("original", "gold-traces")}, rows
        assert rows[("original", "gold-direct")]["n"] == [2, 2]
        assert rows[("original", "gold-traces")]["n"] == [2, 1]
        md = (tmp / "out/results.md").read_text()
        assert "| attacker | student | gold-direct | gold-traces | original |" in md
        assert "## Against the gold references" in md
        assert (tmp / "out/knob.png").exists()


def check_knob_real_defaults_keep_the_recorded_protocol() -> None:
    """The committed real sweep's cache folder is found again from its command line (its hash must not drift)."""
    m = "/root/.cache/distill-ortho-merge/models"
    argv = ["--setting", "real", "--real_dataset", "addition", "--real_models",
            f"teacher={m}/smollm2-135m-instruct,proxy={m}/smollm2-135m-instruct,student_a={m}/gemma-3-270m,"
            f"student_b={m}/smollm2-135m-instruct", "--teacher_steps", "60", "--teacher_lr", "1e-4", "--proxy_steps",
            "30", "--distill_steps", "30", "--n_distill", "240", "--distill_lr", "1e-4", "--calibration_batch", "16",
            "--n_test", "100", "--n_val", "50"]  # fmt: skip
    a = knob_driver.parse_args(argv)
    protocol = {"setting": "real"} | {k: getattr(a, k) for k in (
        "teacher_steps", "proxy_steps", "distill_steps", "n_distill", "n_test", "n_val", "distill_lr", "real_models",
        "real_dataset", "real_n_train", "calibration_lr", "max_new_tokens", "teacher_lr", "calibration_batch")}  # fmt: skip
    assert protocol == json.loads((COMMITTED_REAL / "run.json").read_text())["protocol"]
    # and the Knob built from it (render only: no model resolved) finds the committed cache
    with _tmp() as tmp:
        a.render_only, a.workdir, a.out = True, str(tmp / "work"), str(tmp / "out")
        assert knob_driver.Knob(a).cache.name in {p.name for p in (COMMITTED_REAL / "cache").iterdir()}


def check_knob_real_setting_runs_a_tiny_task_by_its_name() -> None:
    """`--real_dataset mul21` is the tiny mul21 task on real models: its splits (the same test items as the tiny
    knob), traces and formats, a teacher lr and the tiny generation length; its own cache, apart from addition's."""
    argv = ["--setting", "real", "--real_models", "teacher=t,proxy=p,student_a=a,student_b=b", "--n_test", "200",
            "--n_val", "100", "--render_only"]  # fmt: skip
    a = knob_driver.parse_args([*argv, "--real_dataset", "mul21"])
    assert (a.task, a.teacher_lr, a.max_new_tokens) == ("mul21", 5e-5, 48)
    real = knob_driver.real_rows(a)
    assert real == ek.split_rows(200, 100, "mul21")  # the tiny knob's test items, plain-text prompts
    assert knob_driver.parse_args([*argv, "--real_dataset", "addition"]).task == "add21"
    assert knob_driver.parse_args(argv).task == "add21" and knob_driver.parse_args(argv).max_new_tokens == 192
    with _tmp() as tmp:
        caches = set()
        for data in ("mul21", "addition"):
            b = knob_driver.parse_args(
                [*argv, "--real_dataset", data, "--workdir", str(tmp), "--out", str(tmp)]
            )
            knob = knob_driver.Knob(b)
            assert knob.train_rows == ek.split_rows(200, 100, b.task)["train"]
            caches.add(knob.cache)
        assert len(caches) == 2


def check_knob_calibration_changes_reuse_the_base_models() -> None:
    """A sweep that changes only calibration gets its own results and calibrated teachers, but the same original
    teacher, proxy and initial students; one that changes the teacher's training does not."""
    with _tmp() as tmp:
        args = ["--workdir", str(tmp), "--out", str(tmp / "out"), "--n_test", "20", "--n_val", "10"]
        knob = knob_driver.Knob(knob_driver.parse_args(args))
        lr = knob_driver.Knob(knob_driver.parse_args([*args, "--calibration_lr", "5e-6"]))
        steps = knob_driver.Knob(knob_driver.parse_args([*args, "--teacher_steps", "10"]))
        assert lr.base == knob.base and lr.work != knob.work and lr.cache != knob.cache
        assert steps.base != knob.base


# ------------------------------------------------------------------------------------------------ the renderer
def check_knob_teachers_without_students_render_without_empty_tables() -> None:
    teachers = {v: [{"key": f"{v}/seed0/teacher", "teacher_score": 0.8, "format_mix_t1": {"direct": 1.0}}]
                for v in ("original", "eta0_beta0.1_steps60")}  # fmt: skip
    summary = rk.summarize(teachers, {})
    md = rk.markdown({"summary": summary, "run": {"command": "c", "git_commit": "0" * 40, "machine": "m"},
                      "n_cached": 2, "n_test": 10})  # fmt: skip
    assert "No student cell is cached yet" in md and "## Headline comparisons" not in md
    assert "| eta0_beta0.1_steps60 | 1 | 0.800" in md


def check_knob_headline_table_adjusts_every_claim_by_holm() -> None:
    """Every headline test carries its Holm-adjusted p over the whole table (the sweep's family of claims), and
    the table prints it beside Welch's."""
    variants = {"original": 0.3, "eta0_beta0.1_steps60": 0.3, "eta-1_beta0.1_steps60": 0.05,
                "eta+1_beta0.1_steps60": 0.4}  # fmt: skip
    teachers = {v: [{"key": f"{v}/seed{i}/teacher", "teacher_score": 0.8, "format_mix_t1": {"direct": 1.0}}
                    for i in range(3)] for v in variants}  # fmt: skip
    students = {("t1", s, v): [{"key": f"{v}/seed{i}/t1/{s}/sft", "score": m + 0.02 * i + (0.03 if s == "b" else 0)}
                               for i in range(3)] for v, m in variants.items() for s in ("a", "b")}  # fmt: skip
    tests = [t for t in rk.summarize(teachers, students)["tests"] if "p" in t]
    assert len(tests) == 6  # per student: η−1 vs control, η+1 vs control, η+1 vs original
    assert [t["p_holm"] for t in tests] == stats.holm([t["p"] for t in tests])
    assert all(t["p_holm"] >= t["p"] for t in tests) and any(t["p_holm"] > t["p"] for t in tests)
    row = rk._comparison(tests[0], with_holm=True)
    assert row.count("|") == 10 and rk._p(tests[0]["p_holm"]) in row


def check_knob_transfer_pairs_each_student_with_its_own_teacher() -> None:
    def t(variant, seed, score):
        return {"key": f"{variant}/{seed}/teacher", "teacher_score": score}

    def s(variant, seed, score):
        return {"key": f"{variant}/{seed}/t1/b/sft", "score": score}

    c, n = "eta0_beta0.1_steps60", "eta-1_beta0.1_steps60"
    teachers = {"original": [t("original", "all", 0.8)], c: [t(c, "seed0", 0.9), t(c, "seed1", 0.6)],
                n: [t(n, "seed0", 0.5), t(n, "seed1", 0.0)]}  # fmt: skip
    students = {("t1", "b", "original"): [s("original", "seed0", 0.4), s("original", "seed1", 0.2)],
                ("t1", "b", c): [s(c, "seed0", 0.45), s(c, "seed1", 0.3)],
                ("t1", "b", n): [s(n, "seed0", 0.1), s(n, "seed1", 0.0)]}  # fmt: skip
    rows = {r["variant"]: r for r in rk.transfer(teachers, students)}
    assert _close(rows["original"]["ratio"][0], (0.4 / 0.8 + 0.2 / 0.8) / 2)
    assert _close(rows[c]["ratio"][0], 0.5) and rows[c]["n"] == 2  # 0.45/0.9 and 0.3/0.6, per seed
    assert rows[n]["n"] == 1 and _close(rows[n]["ratio"][0], 0.2)  # a teacher at 0 gives no ratio
    assert rows[n]["vs"] == c and _close(rows[n]["diff"], 0.2 - 0.5)
    assert "vs" in rows["original"] and rows["original"]["vs"] is None


def check_knob_proxy_signal_correlates_calibration_reward_with_transfer() -> None:
    # calibration reward r_s and teacher score t_s per calibrated teacher; each student scores t_s * (0.5 + r_s)
    cal = {
        ("eta0_b", "seed0"): 0.1,
        ("eta0_b", "seed1"): 0.3,
        ("eta-1_b", "seed0"): -0.2,
        ("eta-1_b", "seed1"): 0.0,
    }
    teachers = {v: [] for v, _ in cal} | {"original": [{"key": "original/all/teacher", "teacher_score": 0.5}]}
    students: dict = {}
    for (v, seed), r in cal.items():
        log = {"rewards/calibration/mean": r}
        teachers[v].append({"key": f"{v}/{seed}/teacher", "teacher_score": 0.8, "calibration_last_log": log})
        students.setdefault(("t1", "b", v), []).append(
            {"key": f"{v}/{seed}/t1/b/sft", "score": 0.8 * (0.5 + r)}
        )
    # no calibration: left out
    students[("t1", "b", "original")] = [{"key": "original/seed0/t1/b/sft", "score": 0.1}]
    (row,) = rk.proxy_signal(teachers, students)
    assert row["n"] == 4 and _close(row["r"], 1.0) and row["calibration_reward_range"] == [-0.2, 0.3], row


def check_knob_format_signal_correlates_each_format_share_with_the_score() -> None:
    def s(v, seed, verbose, score):
        mix = {
            "units_first": 0.0,
            "tens_first": 0.5 - verbose / 2,
            "direct": 0.5 - verbose / 2,
            "verbose": verbose,
        }
        return {"key": f"{v}/seed{seed}/t1/a/sft", "score": score, "format_mix_train": mix}

    students = {("t1", "a", "original"): [s("original", 0, 0.2, 0.3), s("original", 1, 0.1, 0.1)],
                ("t1", "a", "gold-direct"): [s("gold-direct", 0, 0.0, 0.05)],
                ("t1", "b", "original"): [s("original", 0, 0.2, 0.3)]}  # fmt: skip
    (row,) = rk.format_signal(students)  # student b: too few results for an r
    assert (row["attacker"], row["student"], row["n"]) == ("t1", "a", 3)
    verbose, scores = [0.2, 0.1, 0.0], [0.3, 0.1, 0.05]
    assert _close(row["verbose"]["r"], stats.pearson(verbose, scores)["r"]) and row["verbose"]["r"] > 0.9
    assert _close(row["direct"]["r"], -row["verbose"]["r"])  # direct = (1 − verbose) / 2 here
    assert math.isnan(row["units_first"]["r"])  # constant share: no r


def check_knob_budget_plot_draws_teachers_with_two_budgets() -> None:
    def res(keys):
        return {"summary": {"students": {k: {"mean_std": (0.5, 0.1)} for k in keys}}}

    with _tmp() as tmp:
        assert not rk.plot_budget(res(["t1|a|original", "t1_3x|b|original", "t07|a|original"]), tmp / "x.png")
        assert not (tmp / "x.png").exists()  # no teacher with two budgets of one student: nothing drawn
        keys = ["t1|a|original", "t1_3x|a|original", "t1|a+kd|original", "t1_3x|a+kd|original"]
        assert rk.plot_budget(res(keys), tmp / "y.png") and (tmp / "y.png").stat().st_size > 0


def check_knob_eta_plot_has_a_row_per_calibration_setting_with_two_etas() -> None:
    """knob.png: a panel row only for calibration settings run with ≥ 2 η ≠ 0 (controls, the original, gold and
    single-η settings do not make one); with none at all it still draws one row of whatever there is."""
    variants = ["original", "gold-direct", "eta0_beta0.1_steps60", "eta-1_beta0.1_steps60", "eta+1_beta0.1_steps60",
                "eta0_beta0.1_steps300", "eta-1_beta0.1_steps300", "eta-1_beta0.01_steps60_reward-canonical"]  # fmt: skip
    keys = [["t1", "a", v] for v in variants]
    assert rk.eta_panels(keys) == ["beta0.1_steps60"]
    assert rk.eta_panels(keys + [["t1", "a", "eta-3_beta0.1_steps300"]]) == [
        "beta0.1_steps300",
        "beta0.1_steps60",
    ]
    # a student whose only points off the panel rows (the original, a single-η setting) gets no column
    with_b = keys + [["t1", "b", v] for v in ("original", "gold-direct", "eta-1_beta0.1_steps300")]
    assert rk.eta_students(with_b, ["beta0.1_steps60"]) == ["a"]
    assert rk.eta_students(with_b, ["beta0.1_steps300"]) == ["a", "b"]
    assert rk.eta_students([["t1", "b", "original"], ["t1", "a", "original"]], []) == ["a", "b"]
    students = {f"t1|a|{v}": {"mean_std": (0.5, 0.1)} for v in variants}
    with _tmp() as tmp:
        rk.plot({"summary": {"students": students}}, tmp / "knob.png")
        rk.plot({"summary": {"students": {"t1|a|original": {"mean_std": (0.5, 0.1)}}}}, tmp / "one.png")
        assert (tmp / "knob.png").stat().st_size > 0 and (tmp / "one.png").stat().st_size > 0


# ------------------------------------------------------------------------------------------------ the floor
def check_knob_floor_real_student_is_one_family_with_its_own_budget() -> None:
    """`knob_floor.py --student MODEL`: one row per task named after the model, the real recipe's 1× in the title,
    the criterion judged for that one student; a malformed size or an unknown model is a one-line error."""
    import sys

    import knob_floor as kf

    assert not kf.is_real("128x4") and kf.is_real("smollm2-135m-instruct")
    assert kf.families_of("64x2") == {"a (llama)": "llama", "b (mistral)": "mistral"}
    assert kf.families_of("/models/smollm2-135m-instruct") == {
        "smollm2-135m-instruct": "smollm2-135m-instruct"
    }
    with _tmp() as out:
        (out / "cache").mkdir()
        (out / "cache" / "setting.json").write_text(json.dumps({"student": "smollm2-135m-instruct"}))
        scores = {"bare": (0.1, 0.2, 0.1), "traces": (0.6, 0.7, 0.8)}  # bare ≤ 50 % of traces ≥ 0.5: chosen
        for kind, xs in scores.items():
            for seed, x in enumerate(xs):
                cell = out / "cache" / "mul21" / "smollm2-135m-instruct" / kind / "3x" / f"seed{seed}.json"
                cell.parent.mkdir(parents=True, exist_ok=True)
                cell.write_text(json.dumps({"score": x}))
        text = kf.render(out, kf.shown(out), [3])
        assert "1× = 240 prompts, 30 steps × 16" in text and "at 3× for the student" in text, text
        assert "| mul21 | smollm2-135m-instruct | 0.133 ± 0.058 | 0.700 ± 0.100 | 0.19 |" in text, text
        assert "- `mul21`: chosen" in text
        assert kf.plot(out, kf.shown(out)).stat().st_size > 0
    for student, message in (("12x", "is not HIDDENxLAYERS"), ("no-such-model", "is not a local directory")):
        argv = ["knob_floor.py", "--student", student, "--out", "/nonexistent/floor"]
        with mock.patch.object(sys, "argv", argv):
            try:
                kf.main()
            except SystemExit as e:
                text = str(e.code)
            else:
                raise AssertionError(f"--student {student}: no exit")
        assert text.startswith("knob_floor: error: --student") and message in text and "\n" not in text, text
