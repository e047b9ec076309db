"""Efficacy of the distillability knob: does η-calibration make students learn worse (η < 0) or better
(η > 0) than the η = 0 control, against adaptive attackers, when the teacher has freedom in *how* it answers?

Setting `tiny` (CPU, minutes per run): "What is a + b?" with two-digit a, b; every gold completion is a reasoning
trace in one of four equally correct formats (units-first with carries, tens-first, direct, verbose) ending in
`#### a+b` (`math_answer` checks only that number). Tokenizers are digit-split ByteLevel BPE saved with
`tokenizer_class: TokenizersBackend`; the script asserts that each loads back tokenizing a probe set exactly as the
in-memory one (transformers 5 re-types some model families' tokenizers on load).

- teacher: Llama (tokenizer A, hidden 128 × 4), SFT on gold traces of uniformly random format;
- proxy: Mistral (tokenizer B, hidden 64 × 2), `distill` recipe `sft` on the original teacher's T = 1 samples;
- teachers: the original, and `DistillGuardTrainer` runs (GRPO + η · calibration reward against the proxy, lr 5e-5,
  β `--beta`, `--calibration_steps`) at η = 0 (the control) and each η in `--etas`, one per seed;
- students (not the proxy): `b` = Mistral on tokenizer B (the proxy's family and tokenizer, another seed),
  `a` = Llama on tokenizer A (the teacher's tokenizer, another family than the proxy); recipe `sft` (`distill`),
  or with `--recipes` the logit recipes `kd` (shared vocabulary: student a) and `uld` (ByteLevel), their on-policy
  share and divergence set by `--logit_on_policy` / `--logit_beta` (each combination cached as its own student);
- `--task` another task of `knob_tasks.py` (e.g. `mul21`, 2-digit × 1-digit, its own splits, traces and
  tokenizers) and `--student_size` the students' HIDDENxLAYERS (the proxy stays 64 × 2); both enter the protocol's
  hash only when changed, so the addition sweep's cache keeps its name;
- attackers: `t1` one T = 1 sample per prompt; `t1_correct` the same samples, only those `math_answer` marks
  right; `t07` T = 0.7; `greedy`; `t1_2x` / `t1_3x` / `t1_6x` 2× / 3× / 6× prompts and steps at T = 1;
- gold references (`--gold`): students trained by `sft` on the task's gold data in place of a teacher's samples,
  same prompts and budget as each attacker: `direct` the bare `#### N` answers (the least a teacher that answers
  right must give away), `traces` gold traces of uniformly random format (what the original teacher learnt from);
- teachers are scored greedily on held-out sums (never used for any choice), measured by `distillguard diagnose`
  against the original (exact per-token KL, tail mass, repetition) on validation prompts, and their T = 1 samples'
  format mix and length are logged; students are scored greedily on the same held-out sums.

The student cells of each (attacker, seed) run as one `distillguard report` call (`efficacy_knob_suite.py`: the
report's attackers, gold references and per-cell cache); task setup, teachers and calibration stay here. With
`--shard i/n`, n processes of the same command share that report, each running one block of its cells.

Every (setting, teacher variant, seed, attacker, student) result is one JSON file under `<out>/cache/<protocol>/`,
models live in `--workdir` (outside git): re-running the same command skips what is done, so seeds accumulate. The
original teacher, the proxy and the students' initial weights live apart (`<setting>-base-<hash>`, keyed only by the
fields they depend on), so a sweep that changes only calibration (e.g. `--calibration_lr`) reuses them.
`<out>/results.json`, `results.md` and `knob.png` are rendered from the cache by `efficacy_knob_render.py`
(also `--render_only`, which first files the student cells that a stopped or still running report has finished:
a report's cells are otherwise filed here when its last cell is done). The command line (attackers, reward
variants, flags and their checks) is `efficacy_knob_args.py`; the task and tiny models `efficacy_knob_task.py`.

Setting `real` (`--setting real`, results in `<out>/real/`): pretrained models given by `--real_models` (local
folders, `*.gguf` files or built-in names such as `smollm2-135m-instruct`, `gemma-3-270m`). With a task as
`--real_dataset` (`addition`, the knob study's task, or a `knob_tasks.py` name such as `mul21`) it is the tiny
protocol on real models: the pretrained teacher is first SFT'd on the task's gold traces (`--teacher_steps`,
`--teacher_lr`), then proxy, calibration and students as above. Other datasets (e.g. `gsm_symbolic`) use the
teacher as given, with chat prompts asking for a `#### N` answer.

    nohup python benchmarks/efficacy_knob.py --seeds 0,1,2 --etas -1,1 > /tmp/knob.log 2>&1 &
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ[_var] = "1"
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # progress is this script's own log lines
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)

from efficacy_knob_args import (  # noqa: E402
    CALIBRATION_DEFAULTS,
    LOGIT_FIELDS,
    REWARD_VARIANTS,
    TINY_DEFAULTS,
    fail,
    own_control,
    parse_args,
    real_model_paths,
    real_task,
)
from efficacy_knob_render import render  # noqa: E402
from efficacy_knob_suite import file_finished, run_cells  # noqa: E402
from efficacy_knob_task import (  # noqa: E402
    format_of,
    new_lm,
    save_model,
    sft_on_traces,
    sft_teacher,
    split_rows,
    task_formats,
    tokenizers,
    train_items,
    write_jsonl,
)

from distill_ortho_merge.cli import InputError  # noqa: E402
from distill_ortho_merge.evaluate import evaluate  # noqa: E402
from distill_ortho_merge.outputs import json_safe  # noqa: E402
from distill_ortho_merge.run_record import git_commit, machine  # noqa: E402
from trl_distillguard.diagnose import DiagnoseConfig, diagnose  # noqa: E402
from trl_distillguard.distill import check_byte_level, check_shared_vocab, distill  # noqa: E402
from trl_distillguard.distill_config import DistillConfig  # noqa: E402
from trl_distillguard.loading import load_causal_lm  # noqa: E402
from trl_distillguard.plugins import resolve_reward  # noqa: E402


def atomic(path: Path, build) -> Path:
    """Build a model directory at `path` via a temporary sibling (a directory at `path` is always complete).

    Several sweeps may share the workdir: a `.lock` file holding the builder's pid makes the others wait for it
    (a lock whose process is gone is taken over). `build(tmp)` creates and fills the folder `tmp`, e.g.
    `atomic(work / "teacher", lambda tmp: sft_teacher(tok, pairs, tmp, steps=1000))`.
    """
    lock = path.with_name(path.name + ".lock")
    # the sweep's folder may not exist yet: a fresh workdir holds only the shared base models when the first
    # calibrated teacher is built
    path.parent.mkdir(parents=True, exist_ok=True)
    while not path.exists():
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(lock.read_text() or 0), 0)
            except (ProcessLookupError, ValueError):
                lock.unlink(missing_ok=True)  # its builder died
            time.sleep(5)
            continue
        try:
            os.write(fd, str(os.getpid()).encode())
            tmp = path.with_name(path.name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            build(tmp)
            tmp.rename(path)
        finally:
            os.close(fd)
            lock.unlink(missing_ok=True)
    return path


def calibrate(
    src: Path, proxy: Path, train_rows, out: Path, eta: float, a: argparse.Namespace, seed: int
) -> None:
    """η-calibration by the project's DistillGuardTrainer (GRPO + η · calibration reward against the proxy)."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from trl_distillguard.distillguard_config import DistillGuardConfig
    from trl_distillguard.distillguard_trainer import DistillGuardTrainer

    args = DistillGuardConfig(
        output_dir=str(out / "_grpo"), max_steps=a.calibration_steps, learning_rate=a.calibration_lr,
        per_device_train_batch_size=a.calibration_batch, num_generations=8, max_completion_length=a.max_new_tokens,
        beta=a.beta, temperature=1.0, logging_steps=max(1, a.calibration_steps // 6),
        save_strategy="no", report_to="none", use_cpu=True, bf16=False, seed=seed, disable_tqdm=True,
        proxy_model_name_or_path=str(proxy), distillability=eta, **REWARD_VARIANTS[a.reward],
        # GRPOConfig turns it on; on CPU it only recomputes (same weights, bit for bit, on the tiny fixtures)
        activation_checkpointing=False,
    )  # fmt: skip
    trainer = DistillGuardTrainer(model=str(src), reward_funcs=[resolve_reward("math_answer", "verifier")], args=args,
                                  train_dataset=Dataset.from_list(train_rows))  # fmt: skip
    trainer.train()
    shutil.rmtree(out / "_grpo", ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    tok = AutoTokenizer.from_pretrained(src)
    if a.setting == "tiny":
        save_model(trainer.model.eval(), tok, out, a.task)  # asserts the tokenizer round trip
    else:
        trainer.model.save_pretrained(out)
        tok.save_pretrained(out)
    (out / "calibration.json").write_text(
        json.dumps(json_safe({"eta": eta, "beta": a.beta, "history": history}))
    )


# ------------------------------------------------------------------------------------------------ pipeline
REAL_SUFFIX = " Reason step by step, then give the final answer on its own line as '#### N'."


def real_rows(a: argparse.Namespace) -> dict[str, list[dict]]:
    """The real setting's splits: a tiny-setting task (`addition`, `mul21`, …: that task's splits, plain-text
    prompts) or a built-in prompt dataset (`--real_dataset`, e.g. `gsm_symbolic` from reasoning-gym) as one-message
    chat prompts asking for a trace and a `#### N` answer."""
    from distill_ortho_merge.data import load_dataset_rows

    if real_task(a.real_dataset):  # the tiny setting's task: traces in its formats, answers checked only
        return split_rows(a.n_test, a.n_val, a.task)
    n = a.real_n_train + a.n_val + a.n_test
    data = [{**r, "prompt": [{"role": "user", "content": r["prompt"] + REAL_SUFFIX}]}
            for r in load_dataset_rows(a.real_dataset, size=n, seed=12345)]  # fmt: skip
    return {
        "test": data[: a.n_test],
        "val": data[a.n_test : a.n_test + a.n_val],
        "train": data[a.n_test + a.n_val :],
    }


# what the original teacher, the proxy and the students' initial weights depend on (the rest is calibration/distillation)
BASE_FIELDS = ("setting", "teacher_steps", "proxy_steps", "n_test", "n_val", "distill_lr", "real_models", "real_dataset",
               "real_n_train", "max_new_tokens", "teacher_lr", "task", "student_size")  # fmt: skip


def _hash(fields: dict) -> str:
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]


def exposure(diag: dict) -> dict:
    """A teacher's distance to the original teacher, per token (exact: they share a vocabulary), from a
    `distillguard diagnose` report whose student is the original: KL(teacher ‖ original) on the teacher's own
    samples, the same KL on the original's samples, and the exposure gap (the second minus the first).

    Example:
        >>> exposure({"off_policy": {"exact_forward_kl": {"off_policy": 0.1, "on_policy": 0.3, "gap": 0.2}}})
        {'kl_to_original_per_token': 0.1, 'kl_to_original_on_policy': 0.3, 'exposure_gap_per_token': 0.2}
    """
    kl = diag["off_policy"].get("exact_forward_kl", {})
    return {"kl_to_original_per_token": kl.get("off_policy"), "kl_to_original_on_policy": kl.get("on_policy"),
            "exposure_gap_per_token": kl.get("gap")}  # fmt: skip


class Knob:
    """One setting's models, data and cached results (`key -> JSON`): `Knob(parse_args(argv))`, then `setup()`
    builds the base models and `student_result("eta-1", 0, "t1", "b")` one cached student result."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        # checked first: a bad model is an error before anything is written; rendering needs only the cache, so
        # committed results re-render on a machine without the models
        self.real_paths = real_model_paths(a.real_models) if a.setting == "real" and not a.render_only else {}
        protocol = {k: getattr(a, k) for k in ("teacher_steps", "proxy_steps", "distill_steps", "n_distill",
                                               "n_test", "n_val", "distill_lr")}  # fmt: skip
        if a.setting == "real":  # the tiny protocol's hash (and cache folder) stays what it was
            protocol |= {k: getattr(a, k) for k in ("real_models", "real_dataset", "real_n_train", "calibration_lr",
                                                    "max_new_tokens", "teacher_lr", "calibration_batch")}  # fmt: skip
        else:  # fields added after the tiny sweep ran: in its hash only when changed, so its cache stays valid
            defaults = CALIBRATION_DEFAULTS | TINY_DEFAULTS
            protocol |= {k: getattr(a, k) for k, d in defaults.items() if getattr(a, k) != d}
        self.protocol = {"setting": a.setting, **protocol}
        self.tag = _hash(self.protocol)
        self.work = Path(a.workdir).expanduser() / f"{a.setting}-{self.tag}"
        # the original teacher, the proxy and the students' initial weights depend on fewer fields than the whole
        # protocol: kept apart, so that a sweep changing e.g. the calibration lr reuses them
        base = {k: v for k, v in self.protocol.items() if k in BASE_FIELDS}
        self.base = Path(a.workdir).expanduser() / f"{a.setting}-base-{_hash(base)}"
        self.cache = Path(a.out) / "cache" / f"{a.setting}-{self.tag}"
        self.verifier = resolve_reward("math_answer", "verifier")
        # the task's train items: what the tiny teacher and a real one on a task dataset learn the gold traces of
        self.train_pairs = train_items(a.task, a.n_test, a.n_val)
        sp = split_rows(a.n_test, a.n_val, a.task) if a.setting == "tiny" else real_rows(a)
        self.test_rows, self.val_rows, self.train_rows = sp["test"], sp["val"], sp["train"]
        self.val_file = self.base / "val.jsonl"
        if not a.render_only:
            self.check_recipes()
            write_jsonl(self.val_rows, self.val_file)
        self.models: dict[str, Path] = {}

    def check_recipes(self) -> None:
        """Each logit recipe asked for must fit each student's tokenizer (`kd`: the teacher's vocabulary; `uld`:
        ByteLevel BPE on both sides): checked on the tokenizers alone, so a mismatch is one line before any work."""
        if set(self.a.recipes) == {"sft"}:
            return
        if self.a.setting == "tiny":  # the teacher and student a use tokenizer A, the proxy and student b B
            tok_a, tok_b = tokenizers(self.train_pairs, self.a.task)
            toks = {"teacher": tok_a, "a": tok_a, "b": tok_b}
        else:
            from transformers import AutoTokenizer

            toks = {"teacher": AutoTokenizer.from_pretrained(self.real_paths["teacher"])} | {
                s: AutoTokenizer.from_pretrained(self.real_paths[f"student_{s}"]) for s in self.a.students
            }
        for recipe in self.a.recipes:
            for s in self.a.students:
                try:
                    if recipe == "kd":
                        check_shared_vocab(toks["teacher"], toks[s])
                    elif recipe == "uld":
                        check_byte_level(toks["teacher"], "teacher")
                        check_byte_level(toks[s], f"student {s}")
                except InputError as e:
                    fail(f"--recipes {recipe} with --students {s}: {e}")

    def log(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def log_build(self, path: Path, how: str) -> None:
        """Say whether the base model at `path` is built now (`how`) or reused from the workdir (so a resumed sweep
        does not read as retraining)."""
        self.log(f"{path.name}: reused {path}" if path.exists() else f"{path.name}: {how} (into {path})")

    # -- cache
    def write_cached(self, key: str, result: dict) -> None:
        path = self.cache / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # two sweeps may finish the same shared control
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)

    def cached(self, key: str, fn) -> dict:
        path = self.cache / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        t0 = time.perf_counter()
        self.log(f"run {key}")
        result = json_safe(fn()) | {"key": key, "seconds": round(time.perf_counter() - t0, 1)}
        self.write_cached(key, result)
        self.log(
            f"done {key} in {result['seconds']} s: "
            + json.dumps({k: v for k, v in result.items() if k in ("score", "teacher_score", "n_train")})
        )
        return result

    # -- base models
    def setup(self) -> None:
        a = self.a
        if (
            a.setting == "real"
        ):  # pretrained models, resolved elsewhere: teacher, proxy (before its SFT), students
            paths = self.real_paths
            self.models = {"teacher": paths["teacher"]} | {f"{k}_init": paths[k] for k in paths}
            if real_task(a.real_dataset):  # the pretrained teacher first learns the task's traces
                self.log_build(self.base / "teacher", "SFT on the task's gold traces")
                self.models["teacher"] = atomic(self.base / "teacher", self._sft_real_teacher)
        else:
            self._setup_tiny()
        prompts = write_jsonl(self.train_rows, self.base / "proxy_prompts.jsonl")
        self.log_build(self.base / "proxy", "sft on the original teacher's T=1 samples")
        self.models["proxy"] = atomic(self.base / "proxy", lambda p: distill(self.distill_cfg(
            str(self.models["teacher"]), str(self.models["proxy_init"]), str(p), a.proxy_steps, 100,
            dataset=str(prompts)), quiet=True))  # fmt: skip

    def _sft_real_teacher(self, out: Path) -> None:
        model, tok = load_causal_lm(str(self.models["teacher_init"]), "teacher")
        sft_on_traces(
            model.train(),
            tok,
            self.train_pairs,
            out,
            self.a.teacher_steps,
            lr=self.a.teacher_lr,
            batch=16,
            task=self.a.task,
        )
        model.eval().save_pretrained(out)
        tok.save_pretrained(out)

    def _setup_tiny(self) -> None:
        a = self.a
        tok_a, tok_b = tokenizers(self.train_pairs, self.a.task)
        self.log_build(self.base / "teacher", "SFT on the task's gold traces")
        self.models["teacher"] = atomic(
            self.base / "teacher", lambda p: sft_teacher(tok_a, self.train_pairs, p, a.teacher_steps, a.task)
        )
        size = (a.student_hidden, a.student_layers)
        init = {  # name: family, tokenizer, init seed, (hidden, layers)
            "proxy": ("mistral", tok_b, 1, (64, 2)),
            "student_b": ("mistral", tok_b, 2, size),
            "student_a": ("llama", tok_a, 3, size),
        }
        for name, (fam, tok, seed, hl) in init.items():
            self.models[f"{name}_init"] = atomic(
                self.base / f"{name}_init",
                lambda p, f=fam, t=tok, s=seed, hl=hl: save_model(new_lm(f, t, *hl, s), t, p, a.task),
            )

    def logit_suffix(self) -> str:
        """The logit recipes' settings as a name suffix: "" at `DistillConfig`'s own on-policy fraction and
        divergence, `-lambda0-beta0` (say) otherwise."""
        if all(getattr(self.a, k) == getattr(DistillConfig, f) for k, f in LOGIT_FIELDS.items()):
            return ""
        return f"-lambda{self.a.logit_on_policy:g}-beta{self.a.logit_beta:g}"

    def recipe_id(self, recipe: str) -> str:
        """A recipe's cache name: `sft`, or `kd` / `uld` with `logit_suffix()` (e.g. `kd-lambda0-beta0`)."""
        return recipe if recipe == "sft" else recipe + self.logit_suffix()

    def distill_cfg(self, teacher: str, student: str, out: str, steps: int, seed: int, **kw) -> DistillConfig:
        return DistillConfig(
            recipe=kw.get("recipe", "sft"), sample_temperature=kw.get("temperature", 1.0),
            on_policy_fraction=self.a.logit_on_policy, divergence_beta=self.a.logit_beta,
            teacher_model_name_or_path=teacher, student_model_name_or_path=student, output_dir=out,
            max_steps=steps, per_device_train_batch_size=16, learning_rate=self.a.distill_lr,
            max_completion_length=self.a.max_new_tokens, generation_batch_size=64, seed=seed,
            dataset_name_or_path=kw.get("dataset"),
            trainer_kwargs={"lr_scheduler_type": "cosine", "warmup_steps": min(20, steps // 10)},
        )  # fmt: skip

    def teacher_path(self, variant: str, seed: int) -> Path:
        path = self.teacher_dir(variant, seed)
        if variant == "original":
            return path
        eta = float(variant.removeprefix("eta"))
        rng = random.Random(1000 + seed)
        cal_rows = rng.sample(self.train_rows, k=min(len(self.train_rows), 4 * self.a.calibration_steps))

        def build(p: Path) -> None:
            self.log(f"calibrate {path.name}")
            calibrate(self.models["teacher"], self.models["proxy"], cal_rows, p, eta, self.a, seed)

        return atomic(path, build)

    @staticmethod
    def teacher_seed(variant: str, seed: int) -> str:
        """The seed part of a teacher's names: the original teacher is one model for every seed."""
        return "all" if variant == "original" else f"seed{seed}"

    def teacher_dir(self, variant: str, seed: int) -> Path:
        """Where a teacher lives (built or not): `teacher_path` trains it there when it is missing."""
        if variant == "original":
            return self.models["teacher"]
        return self.work / f"teacher_{self.variant_id(variant)}_seed{seed}"

    def variant_id(self, variant: str) -> str:
        if variant == "original" or variant.startswith("gold-"):  # not calibrated
            return variant
        vid = f"{variant}_beta{self.a.beta:g}_steps{self.a.calibration_steps}"
        # η = 0 never weighs the calibration reward: one control serves every variant of that reward alone
        shared = variant == "eta0" and not own_control(self.a.reward)
        return vid if self.a.reward == "default" or shared else f"{vid}_reward-{self.a.reward}"

    def score(self, model, tok, **sampling):
        """`evaluate` on the held-out test rows with this sweep's verifier (greedy unless `sampling` says otherwise)."""
        return evaluate(model, tok, self.test_rows, self.verifier, max_new_tokens=self.a.max_new_tokens,
                        batch_size=64, desc=None, **sampling)  # fmt: skip

    def teacher_result(self, variant: str, seed: int) -> dict:
        seed_key = self.teacher_seed(variant, seed)

        def run() -> dict:
            path = self.teacher_path(variant, seed)
            model, tok = load_causal_lm(str(path), "teacher")
            greedy = self.score(model, tok)
            sampled = self.score(model, tok, temperature=1.0, seed=seed)
            formats = [format_of(t, self.a.task) for t in sampled.completions]
            diag = self.teacher_diagnosis(variant, seed, refresh=True)
            cal = path / "calibration.json"
            return exposure(diag) | {
                "teacher_score": greedy.score,
                "teacher_score_t1": sampled.score,
                "format_mix_t1": {
                    f: formats.count(f) / len(formats) for f in (*task_formats(self.a.task), "other")
                },
                "mean_bytes_t1": sum(len(t.encode()) for t in sampled.completions) / len(sampled.completions),
                "tail_mass": diag["tail_noise"]["mean_tail_mass"],
                "repeated_ngram_rate": diag["symptoms"]["teacher"]["repeated_ngram_rate"],
                "degenerate_token_rate": diag["symptoms"]["teacher"]["degenerate_token_rate"],
                "calibration_last_log": json.loads(cal.read_text())["history"][-1] if cal.exists() else None,
                "examples": greedy.completions[:2] + sampled.completions[:2],
            }

        key = f"{self.variant_id(variant)}/{seed_key}/teacher"
        result = self.cached(key, run)
        # a result cached before the gap was recorded gets it added, the rest kept
        if "exposure_gap_per_token" not in result:
            try:
                result |= json_safe(exposure(self.teacher_diagnosis(variant, seed, existing_only=True)))
            except FileNotFoundError as e:  # a retrained teacher would not be the one scored here: leave it
                self.log(f"{key}: exposure gap not added ({e})")
                return result
            self.write_cached(key, result)
        return result

    def teacher_diagnosis(
        self, variant: str, seed: int, refresh: bool = False, existing_only: bool = False
    ) -> dict:
        """`distillguard diagnose` of a teacher against the original (its report in the workdir is reused unless
        `refresh`). `existing_only`: diagnose only a teacher already in the workdir, never train one (calibration
        is not bit-reproducible, so a retrained teacher is another teacher); FileNotFoundError otherwise."""
        diag_dir = self.work / f"diag_{self.variant_id(variant)}_{self.teacher_seed(variant, seed)}"
        if not refresh and (diag_dir / "diagnose.json").exists():
            return json.loads((diag_dir / "diagnose.json").read_text())
        if existing_only and not self.teacher_dir(variant, seed).exists():
            raise FileNotFoundError(
                f"neither {diag_dir.name}/diagnose.json nor the teacher is in {self.work}"
            )
        return diagnose(DiagnoseConfig(
            teacher_model_name_or_path=str(self.teacher_path(variant, seed)),
            student_model_name_or_path=str(self.models["teacher"]), dataset_name_or_path=str(self.val_file),
            output_dir=str(diag_dir), overwrite_output_dir=True, max_prompts=64, num_samples=2,
            max_new_tokens=self.a.max_new_tokens, verifier="math_answer", seed=seed,
        ))  # fmt: skip

    def student_result(
        self, variant: str, seed: int, attacker: str, student: str, recipe: str = "sft"
    ) -> dict:
        """One student distilled from one teacher (or gold reference `gold-direct`, `gold-traces`) by one attacker,
        run through `distillguard report` (`efficacy_knob_suite.py`) unless the cache holds it."""
        key = f"{self.variant_id(variant)}/seed{seed}/{attacker}/{student}/{self.recipe_id(recipe)}"
        if (self.cache / f"{key}.json").exists():
            return json.loads((self.cache / f"{key}.json").read_text())
        gold = [variant.removeprefix("gold-")] if variant.startswith("gold-") else []
        results = run_cells(self, attacker, seed, [] if gold else [variant], [student], [recipe], gold)
        return next(r for r in results if r["key"] == key)


def pilot_teachers(knob: Knob, calibrated: list[str]) -> dict:
    """`--teachers_only`, a pilot: the original and the `calibrated` teachers of every seed are built, scored and
    diagnosed (cached like any teacher result); no control, no students. The original is also scored afresh:
    a new workdir rebuilds it, while its cached score may come from an earlier build, so the returned
    `original_rescored` says whether the pilot compares against the same teacher. Returns it and the keys."""
    was_cached = (knob.cache / "original/all/teacher.json").exists()
    cached = knob.teacher_result("original", 0)  # scores the original itself when nothing was cached
    rescored = cached["teacher_score"]
    if was_cached:
        model, tok = load_causal_lm(str(knob.teacher_path("original", 0)), "teacher")
        rescored = knob.score(model, tok).score
    knob.log(f"the original teacher in {knob.models['teacher']} scores {rescored:.3f} (cached: "
             f"{cached['teacher_score']:.3f})")  # fmt: skip
    keys = [cached["key"]]
    for seed in map(int, knob.a.seeds):
        keys += [knob.teacher_result(variant, seed)["key"] for variant in calibrated]
    return {"original_rescored": rescored, "keys": keys}


def main() -> None:
    a = parse_args()
    t0 = time.perf_counter()
    knob = Knob(a)
    run_meta = {"git_commit": git_commit(), "command": "python " + " ".join(sys.argv), "protocol": knob.protocol,
                "machine": machine(1),
                "started": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
    sweeps = Path(a.out) / "sweeps" / f"{a.setting}-{knob.tag}"  # one record per sweep invocation

    def stamp() -> dict:
        run = run_meta | {"wall_s": round(time.perf_counter() - t0, 1)}
        if not a.render_only:
            sweeps.mkdir(parents=True, exist_ok=True)
            name = f"{run_meta['started'].replace(' ', '_').replace(':', '')}-{os.getpid()}.json"
            (sweeps / name).write_text(json.dumps(run, indent=1))
        return render(
            Path(a.out),
            knob.cache,
            run | {"sweeps": [json.loads(f.read_text()) for f in sorted(sweeps.glob("*.json"))]},
        )

    variants = ["original", "eta0"] + [f"eta{float(e):+g}" for e in a.etas]
    if a.render_only:  # a stopped (or running) seed's finished students count too
        for attacker in a.attackers:
            for seed in map(int, a.seeds):
                for key in file_finished(knob, attacker, seed, variants, a.students, a.recipes, a.gold):
                    knob.log(f"filed {key} from its unfinished report")
    elif a.teachers_only:
        knob.setup()
        run_meta["original_rescored"] = pilot_teachers(knob, variants[2:])["original_rescored"]
    else:
        stamp()
        knob.setup()
        # Headline first: every seed and variant for one attacker before the next attacker.
        for attacker in a.attackers:
            for seed in map(int, a.seeds):
                for variant in variants:
                    knob.teacher_result(variant, seed)
                # every student cell of this attacker and seed: one `distillguard report` call
                run_cells(knob, attacker, seed, variants, a.students, a.recipes, a.gold)
                stamp()
    rendered = stamp()
    knob.log(f"rendered {a.out}/results.md" if rendered else f"nothing cached yet under {knob.cache}")


if __name__ == "__main__":
    main()
