"""benchmarks/efficacy_knob.py: the task's traces, the tokenizer round trip, the flags and the cache
(the statistics are `distill_ortho_merge.stats`, tested in test_stats.py)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import efficacy_knob_task as ek  # noqa: E402

from distill_ortho_merge import stats  # noqa: E402
from distill_ortho_merge import testing as tiny  # noqa: E402
from distill_ortho_merge.verifiers import math_answer  # noqa: E402


def test_every_format_is_correct_and_recognised():
    pairs = [(a, b) for a in range(10, 100, 7) for b in range(1, 10)]
    for fmt in ek.FORMATS:
        texts = [ek.trace(a, b, fmt) for a, b in pairs]
        assert math_answer(
            prompts=[""] * len(pairs), completions=texts, answer=[a + b for a, b in pairs]
        ) == [1.0] * len(pairs)
        assert {ek.format_of(t) for t in texts} == {fmt}
    assert ek.format_of(" 82") == "other"
    # a wrong trace is caught (the verifier reads only the final number)
    assert math_answer(prompts=[""], completions=[ek.trace(12, 3, "verbose")], answer=[16]) == [0.0]


@pytest.mark.parametrize("fam", ["llama", "mistral"])
def test_tokenizer_round_trips(tmp_path, fam):
    tok = tiny.digit_tokenizer(
        300, [f"What is {a} + {a}?" + ek.trace(a, a % 9 + 1, "verbose") for a in range(10, 60)]
    )
    path = ek.save_model(ek.new_lm(fam, tok, 16, 1, seed=0), tok, tmp_path / fam)  # asserts the round trip
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(path)(" 1234")["input_ids"] == tok(" 1234")["input_ids"]


def test_split_rows_are_the_splits_as_prompts():
    got, pairs = ek.split_rows(20, 10), ek.splits(20, 10)
    assert {k: len(v) for k, v in got.items()} == {"test": 20, "val": 10, "train": 780}
    assert got["val"][3] == {
        "prompt": "What is {} + {}?".format(*pairs["val"][3]),
        "answer": str(sum(pairs["val"][3])),
    }
    test_prompts = {r["prompt"] for r in got["test"]}
    assert not test_prompts & {r["prompt"] for r in got["train"] + got["val"]}


def test_sft_on_traces_teaches_the_traces(tmp_path):
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
    ek.sft_on_traces(model.train(), tok, pairs, tmp_path, steps=30, lr=3e-3, batch=16)
    assert loss() < before - 0.5
    assert not (tmp_path / "_sft").exists()


# -- the driver's command line: bad input is one line naming the flag, before anything is written
@pytest.fixture(scope="module")
def knob_driver():
    threads = torch.get_num_threads()
    import efficacy_knob  # pins torch to one thread for its own runs: restored for the other tests

    torch.set_num_threads(threads)
    return efficacy_knob


def test_atomic_builds_into_a_folder_that_does_not_exist_yet(knob_driver, tmp_path):
    """A fresh workdir has the shared base models but not the sweep's own folder: the first calibrated teacher
    is built there all the same (it used to fail taking its lock), complete or not at all."""
    target = tmp_path / "real-sweep" / "teacher_eta+1_seed0"

    def build(tmp: Path) -> None:
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")

    assert knob_driver.atomic(target, build) == target
    assert (target / "config.json").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no lock or partial left


def _one_line_exit(capsys, fn, *args) -> str:
    with pytest.raises(SystemExit) as e:
        fn(*args)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and err.startswith("efficacy_knob: ")
    return err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--teacher_lr", "1e-4"], "--teacher_lr"),  # the tiny teacher's lr is fixed: not silently ignored
        (["--real_models", "teacher=x"], "--real_models"),
        (["--setting", "real", "--real_models", "a=b", "--teacher_lr", "1e-4"], "--real_dataset addition"),
        (["--setting", "real"], "--real_models"),
        (["--attackers", "t1,t2"], "--attackers t2"),
        (["--seeds", "0,x"], "--seeds x"),
        (["--etas=-1,one"], "--etas one"),
        (["--recipes", "sft,gkd"], "--recipes gkd"),
        (
            ["--logit_on_policy", "0"],
            "--logit_on_policy applies only to the logit recipes",
        ),  # not silently ignored
        (["--recipes", "kd", "--logit_beta", "2"], "--logit_beta 2: must lie in [0, 1]"),
        (["--gold", "direct,bare"], "--gold bare"),
        (["--gold", "direct", "--recipes", "kd"], "--gold trains students by sft"),
        (["--setting", "real", "--real_models", "a=b", "--gold", "traces"], "--real_dataset gsm_symbolic"),
    ],
)
def test_bad_flags_are_one_line_errors(knob_driver, capsys, argv, named):
    assert named in _one_line_exit(capsys, knob_driver.parse_args, argv)


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("teacher=/no/such/dir,proxy=/no,student_a=/no,student_b=/no", "--real_models teacher: /no/such/dir"),
        ("teacher,proxy=x,student_a=x,student_b=x", "'teacher': not role=model"),
        ("teacher=x,proxy=x,student_a=x,student_c=x", "'student_c=x': unknown role"),
        ("teacher=x,proxy=x,student_a=x", "missing student_b"),
    ],
)
def test_bad_real_models_are_one_line_errors(knob_driver, capsys, spec, named):
    assert named in _one_line_exit(capsys, knob_driver.real_model_paths, spec)


def test_a_bad_real_model_leaves_nothing_behind(knob_driver, capsys, tmp_path, monkeypatch):
    argv = ["efficacy_knob.py", "--setting", "real", "--real_dataset", "addition", "--out", str(tmp_path / "out"),
            "--workdir", str(tmp_path / "work"), "--real_models",
            f"teacher={tmp_path / 'missing'},proxy=x,student_a=x,student_b=x"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    assert "--real_models teacher" in _one_line_exit(capsys, knob_driver.main)
    assert list(tmp_path.iterdir()) == []


def test_a_logit_recipe_that_does_not_fit_a_student_is_one_line(knob_driver, capsys, tmp_path):
    """Tiny setting: student b's tokenizer is not the teacher's, so `kd` cannot distil it; refused before any work."""
    args = [
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "out"),
        "--recipes",
        "sft,kd",
        "--students",
        "a,b",
    ]
    err = _one_line_exit(capsys, knob_driver.Knob, knob_driver.parse_args(args))
    assert "--recipes kd with --students b" in err and "shared vocabulary" in err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def _tiny_knob(knob_driver, tmp_path, *flags):
    """A tiny-setting `Knob` (student a only, a few items and steps) whose teacher and student a are random tiny
    Llamas on tokenizer A: `student_result` runs in seconds."""
    args = ["--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--n_test", "4", "--n_val", "4",
            "--n_distill", "8", "--distill_steps", "2", "--max_new_tokens", "8", "--students", "a", *flags]  # fmt: skip
    knob = knob_driver.Knob(knob_driver.parse_args(args))
    tok_a, _ = ek.tokenizers(knob.train_pairs)
    teacher = ek.save_model(ek.new_lm("llama", tok_a, 32, 1, seed=0), tok_a, tmp_path / "teacher")
    student = ek.save_model(ek.new_lm("llama", tok_a, 32, 1, seed=1), tok_a, tmp_path / "student")
    knob.models = {"teacher": teacher, "student_a_init": student}
    return knob


@pytest.mark.parametrize(
    ("recipe", "flags", "name", "lam"),
    [
        ("kd", [], "kd", 0.5),
        ("uld", [], "uld", 0.5),
        ("kd", ["--logit_on_policy", "0", "--logit_beta", "0"], "kd-lambda0-beta0", 0.0),
    ],
)
def test_logit_recipes_distil_a_student_under_their_own_key(knob_driver, tmp_path, recipe, flags, name, lam):
    """A student distilled by a logit recipe (tiny random models, a few steps) is cached under its own key and
    rendered as its own student (`a+kd`), beside the `sft` one of the same teacher and attacker; an on-policy
    share or divergence other than DistillConfig's is named in the key."""
    import efficacy_knob_render as rk

    knob = _tiny_knob(knob_driver, tmp_path, "--recipes", f"sft,{recipe}", *flags)
    sft = knob.student_result("original", 0, "t1", "a", "sft")
    assert sft["key"].endswith("/t1/a/sft") and sft["recipe"] == "sft" and 0.0 <= sft["score"] <= 1.0
    res = knob.student_result("original", 0, "t1", "a", recipe)
    assert res["key"].endswith(f"/t1/a/{name}") and res["recipe"] == recipe and res["n_train"] == 8
    assert res["on_policy_fraction"] == lam and 0.0 <= res["score"] <= 1.0
    _, students = rk.load(knob.cache)
    assert set(students) == {("t1", "a", "original"), ("t1", f"a+{name}", "original")}


def test_gold_samples_are_the_gold_answers_and_traces():
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


def test_teacher_results_record_the_exposure_gap_and_older_ones_get_it_added(
    knob_driver, tmp_path, monkeypatch
):
    """A teacher's result carries its KL to the original on both models' samples and the exposure gap (their
    difference) from its `distillguard diagnose` report; a result cached before the gap was recorded gets it added
    from the report kept in the workdir (diagnose is not run again), the rest of the result unchanged; one whose teacher is gone is left as it is."""
    knob = _tiny_knob(knob_driver, tmp_path)
    # a teacher that is not the original (another random Llama on the same tokenizer): both KLs are > 0
    monkeypatch.setattr(knob, "teacher_path", lambda variant, seed: knob.models["student_a_init"])
    res = knob.teacher_result("original", 0)
    report = json.loads((knob.work / "diag_original_all" / "diagnose.json").read_text())
    kl = report["off_policy"]["exact_forward_kl"]
    assert kl["off_policy"] > 0 and kl["on_policy"] > 0 and kl["on_policy"] != kl["off_policy"]
    assert res["exposure_gap_per_token"] == pytest.approx(kl["on_policy"] - kl["off_policy"])
    assert (
        res["kl_to_original_on_policy"] == kl["on_policy"]
        and res["kl_to_original_per_token"] == kl["off_policy"]
    )

    path = knob.cache / f"{res['key']}.json"
    old = {k: v for k, v in res.items() if k not in ("exposure_gap_per_token", "kl_to_original_on_policy")}
    path.write_text(json.dumps(old))
    monkeypatch.setattr(knob_driver, "diagnose", lambda cfg: pytest.fail("diagnose ran again"))
    again = knob.teacher_result("original", 0)
    assert again == res and json.loads(path.read_text()) == res

    # neither the report nor the teacher left: the result stays as cached, and no teacher is trained again
    shutil.rmtree(knob.work / "diag_original_all")
    path.write_text(json.dumps(old))
    monkeypatch.setattr(knob, "teacher_dir", lambda variant, seed: tmp_path / "gone")
    monkeypatch.setattr(knob, "teacher_path", lambda variant, seed: pytest.fail("a teacher was trained"))
    assert knob.teacher_result("original", 0) == old and json.loads(path.read_text()) == old


def test_gold_references_train_students_beside_the_teachers(knob_driver, tmp_path):
    """`--gold`: students of the gold data on the attacker's prompts and budget, cached under `gold-…`, rendered as
    their own columns and compared with each teacher's students; the η figure leaves them out."""
    import efficacy_knob_render as rk

    knob = _tiny_knob(knob_driver, tmp_path, "--gold", "direct,traces")
    direct = knob.student_result("gold-direct", 0, "t1_2x", "a", "sft")
    assert direct["key"] == "gold-direct/seed0/t1_2x/a/sft" and direct["n_train"] == 16
    assert direct["teacher_sample_accuracy"] == 1.0 and direct["format_mix_train"]["direct"] == 1.0
    traces = knob.student_result("gold-traces", 0, "t1_2x", "a", "sft")
    assert traces["format_mix_train"]["direct"] < 1.0
    for seed in (0, 1):
        knob.student_result("original", seed, "t1_2x", "a", "sft")
    knob.student_result("gold-direct", 1, "t1_2x", "a", "sft")
    run = {"command": "x", "git_commit": "0" * 10, "machine": "m", "protocol": knob.protocol}
    res = rk.render(tmp_path / "out", knob.cache, run)
    rows = {(r["variant"], r["vs"]): r for r in res["summary"]["vs_gold"]}
    assert set(rows) == {("original", "gold-direct"), ("original", "gold-traces")}
    assert rows[("original", "gold-direct")]["n"] == [2, 2] and rows[("original", "gold-traces")]["n"] == [
        2,
        1,
    ]
    md = (tmp_path / "out/results.md").read_text()
    assert (
        "| attacker | student | gold-direct | gold-traces | original |" in md
        and "## Against the gold references" in md
    )
    assert (tmp_path / "out/knob.png").exists()


def test_render_only_needs_the_cache_not_the_models(knob_driver, tmp_path, monkeypatch):
    """Committed real results re-render on a machine without the models: nothing is resolved or written but the
    rendered files."""
    argv = ["--setting", "real", "--real_dataset", "addition", "--out", str(tmp_path / "out"), "--workdir",
            str(tmp_path / "work"), "--real_models", "teacher=/gone/t,proxy=/gone/p,student_a=/gone/a,student_b=/gone/b",
            "--render_only"]  # fmt: skip
    cache = knob_driver.Knob(knob_driver.parse_args(argv)).cache
    committed = (
        Path(__file__).resolve().parents[1] / "benchmarks/results/efficacy_knob/real/cache/real-7de90296"
    )
    (cache / "original/all").mkdir(parents=True)
    shutil.copy(committed / "original/all/teacher.json", cache / "original/all/teacher.json")
    monkeypatch.setattr(sys, "argv", ["efficacy_knob.py", *argv])
    knob_driver.main()
    assert "| original | 1 | 0.980 ± 0.000 |" in (tmp_path / "out/results.md").read_text()
    assert not (tmp_path / "work").exists() and not (tmp_path / "out/sweeps").exists()


def test_real_defaults_keep_the_recorded_protocol(knob_driver, tmp_path):
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
    recorded = Path(__file__).resolve().parents[1] / "benchmarks/results/efficacy_knob/real/run.json"
    assert protocol == json.loads(recorded.read_text())["protocol"]


def test_transfer_pairs_each_student_with_its_own_teacher():
    import efficacy_knob_render as rk

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
    assert rows["original"]["ratio"][0] == pytest.approx((0.4 / 0.8 + 0.2 / 0.8) / 2)
    assert rows[c]["ratio"][0] == pytest.approx(0.5) and rows[c]["n"] == 2  # 0.45/0.9 and 0.3/0.6, per seed
    assert rows[n]["n"] == 1 and rows[n]["ratio"][0] == pytest.approx(0.2)  # a teacher at 0 gives no ratio
    assert rows[n]["vs"] == c and rows[n]["diff"] == pytest.approx(0.2 - 0.5)
    assert "vs" in rows["original"] and rows["original"]["vs"] is None


def test_proxy_signal_correlates_calibration_reward_with_transfer():
    import efficacy_knob_render as rk

    # calibration reward r_s and teacher score t_s per calibrated teacher; each student scores t_s * (0.5 + r_s)
    cal = {
        ("eta0_b", "seed0"): 0.1,
        ("eta0_b", "seed1"): 0.3,
        ("eta-1_b", "seed0"): -0.2,
        ("eta-1_b", "seed1"): 0.0,
    }
    teachers = {v: [] for v, _ in cal} | {"original": [{"key": "original/all/teacher", "teacher_score": 0.5}]}
    students = {}
    for (v, seed), r in cal.items():
        log = {"rewards/calibration/mean": r}
        teachers[v].append({"key": f"{v}/{seed}/teacher", "teacher_score": 0.8, "calibration_last_log": log})
        students.setdefault(("t1", "b", v), []).append(
            {"key": f"{v}/{seed}/t1/b/sft", "score": 0.8 * (0.5 + r)}
        )
    students[("t1", "b", "original")] = [
        {"key": "original/seed0/t1/b/sft", "score": 0.1}
    ]  # no calibration: left out
    (row,) = rk.proxy_signal(teachers, students)
    assert row["n"] == 4 and row["r"] == pytest.approx(1.0) and row["calibration_reward_range"] == [-0.2, 0.3]


def test_format_signal_correlates_each_format_share_with_the_score():
    import efficacy_knob_render as rk

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
    assert (
        row["verbose"]["r"] == pytest.approx(stats.pearson(verbose, scores)["r"])
        and row["verbose"]["r"] > 0.9
    )
    assert row["direct"]["r"] == pytest.approx(-row["verbose"]["r"])  # direct = (1 − verbose) / 2 here
    assert math.isnan(row["units_first"]["r"])  # constant share: no r


def test_budget_plot_draws_teachers_with_two_budgets(tmp_path):
    import efficacy_knob_render as rk

    def res(keys):
        return {"summary": {"students": {k: {"mean_std": (0.5, 0.1)} for k in keys}}}

    assert not rk.plot_budget(
        res(["t1|a|original", "t1_3x|b|original", "t07|a|original"]), tmp_path / "x.png"
    )
    assert not (tmp_path / "x.png").exists()  # no teacher with two budgets of one student: nothing drawn
    keys = ["t1|a|original", "t1_3x|a|original", "t1|a+kd|original", "t1_3x|a+kd|original"]
    assert rk.plot_budget(res(keys), tmp_path / "y.png") and (tmp_path / "y.png").stat().st_size > 0


def test_eta_plot_has_a_row_per_calibration_setting_with_two_etas(tmp_path):
    """knob.png: a panel row only for calibration settings run with ≥ 2 η ≠ 0 (controls, the original, gold and
    single-η settings do not make one); with none at all it still draws one row of whatever there is."""
    import efficacy_knob_render as rk

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
    rk.plot({"summary": {"students": students}}, tmp_path / "knob.png")
    rk.plot({"summary": {"students": {"t1|a|original": {"mean_std": (0.5, 0.1)}}}}, tmp_path / "one.png")
    assert (tmp_path / "knob.png").stat().st_size > 0 and (tmp_path / "one.png").stat().st_size > 0


def test_calibration_changes_reuse_the_base_models(knob_driver, tmp_path):
    """A sweep that changes only calibration gets its own results and calibrated teachers, but the same original
    teacher, proxy and initial students; one that changes the teacher's training does not."""
    args = ["--workdir", str(tmp_path), "--out", str(tmp_path / "out"), "--n_test", "20", "--n_val", "10"]
    knob = knob_driver.Knob(knob_driver.parse_args(args))
    lr = knob_driver.Knob(knob_driver.parse_args([*args, "--calibration_lr", "5e-6"]))
    steps = knob_driver.Knob(knob_driver.parse_args([*args, "--teacher_steps", "10"]))
    assert lr.base == knob.base and lr.work != knob.work and lr.cache != knob.cache
    assert steps.base != knob.base
