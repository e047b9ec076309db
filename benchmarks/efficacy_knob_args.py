"""The command line of `efficacy_knob.py`: its attackers, calibration-reward variants and flags, checked so that a
bad flag is one line naming it (exit 2) before anything is written.

Example:
    >>> parse_args(["--attackers", "t1,t1_3x"]).attackers
    ['t1', 't1_3x']
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from efficacy_knob_task import GOLD, parse_size
from knob_tasks import TASKS

from distill_ortho_merge.models import ModelError, resolve_model
from trl_distillguard.attackers import parse_attacker
from trl_distillguard.distill_config import RECIPES, DistillConfig
from trl_distillguard.report_config import ReportConfig

DESCRIPTION = (
    "Efficacy of the distillability knob: students of η-calibrated teachers against adaptive attackers."
)

# the study's attackers (name: temperature, keep only verified-correct samples, prompt/step multiplier), as
# `distillguard report` defines them
ATTACKERS = {
    name: (a.temperature, a.correct_only, a.budget)
    for name in ("t1", "t1_correct", "t07", "greedy", "t1_2x", "t1_3x", "t1_6x")
    for a in [parse_attacker(name)]
}


# --reward: the calibration reward's variants (DistillGuardConfig fields); `default` is DESIGN's reconstruction
REWARD_VARIANTS: dict[str, dict[str, str]] = {
    "default": {},  # log q − log π of the sampled ids, per UTF-8 byte
    "canonical": {"calibration_policy_tokenization": "canonical"},  # log π of the canonical re-tokenization
    "proxylp": {"calibration_mode": "proxy_logprob"},  # log q only: the proxy's own likelihood
    "tokens": {"calibration_normalization": "tokens"},  # per proxy token instead of per byte
    # raw rewards summed, advantage = r − group mean: η keeps its size (normalize_then_sum z-scores each reward and
    # then the batch, so in groups where every answer is right the calibration term alone sets the advantage, at
    # any |η|); it changes the η = 0 run too, so it gets its own control
    "unscaled": {"multi_objective_aggregation": "sum_then_normalize", "scale_rewards": "none"},
}


# the flags' defaults; the tiny sweep ran with them before they were flags, so its hash holds them only when changed
CALIBRATION_DEFAULTS = {"calibration_lr": 5e-5, "calibration_batch": 32}
# likewise the task and student size: the addition sweep's hash holds them only when changed
TINY_DEFAULTS = {"task": "add21", "student_size": "64x2"}


def own_control(reward: str) -> bool:
    """Whether a reward variant changes the η = 0 run (anything beyond the calibration reward's own fields)."""
    return any(not k.startswith("calibration_") for k in REWARD_VARIANTS[reward])


REAL_ROLES = ("teacher", "proxy", "student_a", "student_b")


def real_task(real_dataset: str | None) -> str | None:
    """The tiny-setting task a real-setting `--real_dataset` names (`addition` is `add21`, the knob study's task;
    any `knob_tasks.py` task by its own name), or None for a built-in prompt dataset such as `gsm_symbolic`.

    Example:
        >>> real_task("addition"), real_task("mul21"), real_task("gsm_symbolic")
        ('add21', 'mul21', None)
    """
    if real_dataset == "addition":
        return "add21"
    return real_dataset if real_dataset in TASKS else None


def real_model_paths(spec: str) -> dict[str, Path]:
    """`--real_models teacher=M,proxy=M,student_a=M,student_b=M` as local model folders (each M a folder, `*.gguf`
    file or built-in name, converted once); a malformed entry, unknown or missing role, or bad model is a one-line
    error naming it (exit 2), raised before anything is written.

    Example:
        >>> real_model_paths("teacher=/no/such/dir,proxy=x,student_a=x,student_b=x")
        Traceback (most recent call last):
        ...
        SystemExit: 2
    """
    given: dict[str, str] = {}
    for entry in filter(None, spec.split(",")):
        role, sep, model = entry.partition("=")
        if not sep or role not in REAL_ROLES or role in given:
            problem = "not role=model" if not sep else "repeated" if role in given else "unknown role"
            fail(f"--real_models entry {entry!r}: {problem} (roles: {', '.join(REAL_ROLES)})")
        given[role] = model
    missing = [r for r in REAL_ROLES if r not in given]
    if missing:
        fail(f"--real_models needs {'=M,'.join(REAL_ROLES)}=M (missing {', '.join(missing)})")
    try:
        return {role: resolve_model(given[role], f"--real_models {role}") for role in REAL_ROLES}
    except ModelError as e:
        fail(str(e))


def fail(message: str) -> NoReturn:
    print(f"efficacy_knob: {message}", file=sys.stderr)
    sys.exit(2)


# the logit recipes' flags and the `DistillConfig` fields they set (defaults: DistillConfig's, GKD's mixed policy)
LOGIT_FIELDS = {"logit_on_policy": "on_policy_fraction", "logit_beta": "divergence_beta"}


def check_args(a: argparse.Namespace) -> None:
    """Fill the setting-dependent defaults and refuse, in one line naming the flag, what this setting would ignore."""
    if a.setting == "tiny":
        given = [
            f"--{k}"
            for k in ("real_models", "real_dataset", "real_n_train", "teacher_lr")
            if getattr(a, k) not in (None, "")
        ]
        if given:
            fail(
                f"{', '.join(given)} apply only to --setting real (the tiny setting trains its own models on its own task)"
            )
        try:
            a.student_hidden, a.student_layers = parse_size(a.student_size)
        except ValueError:
            fail(f"--student_size {a.student_size!r} is not HIDDENxLAYERS, e.g. 64x2")
    else:
        given = [f"--{k}" for k, d in TINY_DEFAULTS.items() if getattr(a, k) != d]
        if given:
            fail(
                f"{', '.join(given)} apply only to --setting tiny (the real setting's task is --real_dataset)"
            )
        a.real_dataset = "gsm_symbolic" if a.real_dataset is None else a.real_dataset
        a.real_n_train = 600 if a.real_n_train is None else a.real_n_train
        task = real_task(a.real_dataset)
        if a.teacher_lr is not None and task is None:
            fail(f"--teacher_lr applies only to a task as --real_dataset (addition, {', '.join(TASKS)}); "
                 f"--real_dataset {a.real_dataset} uses the teacher as given")  # fmt: skip
        if task is not None:  # the tiny task on real models: its items, traces and formats
            a.task = task
            a.teacher_lr = 5e-5 if a.teacher_lr is None else a.teacher_lr
        if not a.real_models:
            fail("--setting real needs --real_models teacher=M,proxy=M,student_a=M,student_b=M (local folders, "
                 "*.gguf files or built-in names, e.g. smollm2-135m-instruct)")  # fmt: skip
    if a.max_new_tokens is None:
        a.max_new_tokens = 48 if a.setting == "tiny" or real_task(a.real_dataset) else 192
    if a.out is None:
        a.out = "benchmarks/results/efficacy_knob" + ("/real" if a.setting == "real" else "")
    for name in ("seeds", "etas", "attackers", "students", "recipes", "gold"):
        setattr(a, name, [x.strip() for x in getattr(a, name).split(",") if x.strip()])
    for name, field in LOGIT_FIELDS.items():
        value = getattr(a, name)
        if not 0.0 <= value <= 1.0:
            fail(f"--{name} {value:g}: must lie in [0, 1]")
        if value != getattr(DistillConfig, field) and set(a.recipes) <= {"sft"}:
            fail(f"--{name} applies only to the logit recipes (--recipes kd or uld)")
    bad = [f"--attackers {x}" for x in a.attackers if x not in ATTACKERS]
    bad += [f"--students {x}" for x in a.students if x not in ("a", "b")]
    bad += [f"--recipes {x}" for x in a.recipes if x not in RECIPES]
    bad += [f"--seeds {x}" for x in a.seeds if not x.isdigit()]
    bad += [f"--gold {x}" for x in a.gold if x not in GOLD]
    for x in a.etas:
        try:
            float(x)
        except ValueError:
            bad.append(f"--etas {x}")
    if bad:
        fail(f"unknown {', '.join(bad)} (attackers: {', '.join(ATTACKERS)}; students: a, b; recipes: "
             f"{', '.join(RECIPES)}; gold: {', '.join(GOLD)}; seeds: integers ≥ 0; etas: numbers)")  # fmt: skip
    if a.shard is not None:
        try:
            ReportConfig(shard=a.shard)
        except ValueError as e:
            fail(f"--{e}")
    if a.teachers_only and (a.render_only or a.shard is not None or not a.etas):
        fail("--teachers_only builds the --etas teachers: give --etas, and neither --render_only nor --shard")
    if a.gold and "sft" not in a.recipes:
        fail("--gold trains students by sft on gold text: add sft to --recipes")
    if "traces" in a.gold and a.setting == "real" and real_task(a.real_dataset) is None:
        fail(f"--gold traces needs a task's traces: --real_dataset {a.real_dataset} has answers only (tasks: "
             f"addition, {', '.join(TASKS)})")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked (`check_args`); a bad flag exits 2 with one line naming it.

    Example:
        >>> parse_args(["--seeds", "0,1"]).seeds
        ['0', '1']
    """
    ap = argparse.ArgumentParser(description=DESCRIPTION)
    ap.add_argument("--setting", default="tiny", choices=["tiny", "real"])
    ap.add_argument(
        "--task",
        default="add21",
        choices=list(TASKS),
        help="tiny setting: the task (knob_tasks.py); add21 = 2-digit + 1-digit, mul21 = 2-digit × 1-digit",
    )
    ap.add_argument(
        "--student_size",
        default="64x2",
        help="tiny setting: the students' HIDDENxLAYERS (the proxy stays 64x2)",
    )
    ap.add_argument(
        "--real_models",
        default="",
        help="real setting: teacher=M,proxy=M,student_a=M,student_b=M (dir/gguf/name)",
    )
    ap.add_argument("--workdir", default="~/.cache/distill-ortho-merge/efficacy_knob")
    ap.add_argument(
        "--out", default=None, help="default benchmarks/results/efficacy_knob (tiny), …/real (real)"
    )
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--etas", default="-1,1", help="calibrated variants besides the η = 0 control")
    ap.add_argument("--attackers", default="t1,t1_correct,greedy,t07,t1_3x")
    ap.add_argument("--students", default="b,a")
    ap.add_argument(
        "--recipes",
        default="sft",
        help="sft (samples), kd (logits, shared vocabulary), uld (logits, ByteLevel)",
    )
    ap.add_argument(
        "--logit_on_policy",
        type=float,
        default=DistillConfig.on_policy_fraction,
        help="kd/uld: share of the student's own samples (GKD's lambda; 0 = the teacher's samples only)",
    )
    ap.add_argument(
        "--logit_beta",
        type=float,
        default=DistillConfig.divergence_beta,
        help="kd/uld: generalized JSD interpolation (0 = forward KL, 1 = reverse KL)",
    )
    ap.add_argument(
        "--gold",
        default="",
        help="gold references besides the teachers: direct (bare #### N answers), traces (the task's gold traces)",
    )
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--calibration_steps", type=int, default=60)
    ap.add_argument("--teacher_steps", type=int, default=1000)
    ap.add_argument("--proxy_steps", type=int, default=400)
    ap.add_argument("--distill_steps", type=int, default=600)
    ap.add_argument("--distill_lr", type=float, default=3e-3)
    ap.add_argument("--n_distill", type=int, default=1000)
    ap.add_argument("--n_test", type=int, default=200)
    ap.add_argument("--n_val", type=int, default=100)
    ap.add_argument("--calibration_lr", type=float, default=CALIBRATION_DEFAULTS["calibration_lr"])
    ap.add_argument(
        "--calibration_batch",
        type=int,
        default=CALIBRATION_DEFAULTS["calibration_batch"],
        help="completions per GRPO step (8 per prompt)",
    )
    ap.add_argument(
        "--teacher_lr",
        type=float,
        default=None,
        help="real setting, task datasets: the teacher's SFT lr (5e-5)",
    )
    ap.add_argument(
        "--reward", default="default", choices=list(REWARD_VARIANTS), help="calibration reward variant"
    )
    ap.add_argument(
        "--max_new_tokens",
        type=int,
        default=None,
        help="default 48 (tiny, task datasets), 192 (real prompt datasets)",
    )
    ap.add_argument(
        "--real_dataset",
        default=None,
        help="real setting: a tiny-setting task on real models (`addition` = add21, or a knob_tasks.py name such as "
        "mul21: the teacher first learns its gold traces) or a built-in prompt dataset (default gsm_symbolic)",
    )
    ap.add_argument(
        "--real_n_train", type=int, default=None, help="real setting: train prompts (default 600)"
    )
    ap.add_argument(
        "--shard",
        default=None,
        help="i/n: run only the i-th of n blocks of each (attacker, seed)'s student cells, in the order teachers "
        "(original, eta0, then --etas), students, recipes; n processes share one report (`distillguard report "
        "--shard`). Each process still builds every teacher of its seeds first",
    )
    ap.add_argument(
        "--teachers_only",
        action="store_true",
        help="a pilot: build, score and diagnose the original and the --etas teachers of --seeds (no control, no "
        "students), to see a calibration's teachers before spending hours on their students",
    )
    ap.add_argument(
        "--render_only",
        action="store_true",
        help="run nothing: file the student cells that stopped or running reports have finished, then render",
    )
    a = ap.parse_args(argv)
    check_args(a)
    return a
