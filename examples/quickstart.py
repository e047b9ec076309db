"""Quick start: a miniature, fully offline tour of the three packages (about 20 s on a CPU).

    python examples/quickstart.py                 # work in a temporary directory, removed at the end
    python examples/quickstart.py --out qs        # keep every model, adapter and merge under ./qs

1. Build a tiny Qwen2 teacher (ByteLevel-BPE tokenizer A) and a tiny Llama proxy student (tokenizer B) from
   configs, with 200 steps of next-token training (`examples/data/calibrate_tiny.py`; no hub).
2. `peft_orthoreg`: two LoRA adapters (`OrthoLoraConfig`, `with_orthoreg(SFTTrainer)`) on two embedded tasks
   (addition, reversing letters), exported as full models from their task vectors; `diagnose` compares them
   with a λ = 0 control (cosine, norm, OrthoReg value, effective rank).
3. `mergekit_plugins`: merge base + both task models with `tsv` and `iso_c` through `mergekit-yaml`
   (in process), next to mergekit's own `task_arithmetic`; each task's loss for base / single / merged.
4. `trl_distillguard`: `CalibrationReward` of a few texts (teacher and proxy on different tokenizers), then two
   steps of `DistillGuardTrainer` (η = +1, the registered `math_answer` verifier) on the better of the merges.

The models are toys: the numbers show each method running on real training, not the papers' results.
Exits non-zero if any stage fails or a sanity check (listed at the end) does not hold.
"""

from __future__ import annotations

import os

for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ.setdefault(_key, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import runpy  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
TASKS = ("add", "reverse")
TRAIN_SIZE = 400  # examples per task
OUR_MERGES = ("tsv", "iso_c")
MERGES = ("task_arithmetic", *OUR_MERGES)  # mergekit's own task arithmetic as the reference


# ---------------------------------------------------------------------------------------------- data
def task_examples(task: str, n: int, seed: int) -> list[dict[str, str]]:
    """`n` prompt/completion pairs of an embedded task: 2-digit addition, or reversing 3–6 letters."""
    rng = random.Random(f"{task}-{seed}")
    rows = []
    for _ in range(n):
        if task == "add":
            a, b = rng.randrange(100), rng.randrange(100)
            rows.append({"prompt": f"What is {a} + {b}?", "completion": f" The answer is {a + b}."})
        else:
            s = "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randrange(3, 7)))
            rows.append({"prompt": f"Reverse {s}:", "completion": f" {s[::-1]}."})
    return rows


def held_out_examples(task: str, n: int) -> list[dict[str, str]]:
    """`n` examples of `task` whose prompts are not among the training examples."""
    seen = {row["prompt"] for row in task_examples(task, TRAIN_SIZE, seed=0)}
    rows = [row for row in task_examples(task, 4 * n, seed=1) if row["prompt"] not in seen]
    return rows[:n]


def task_loss(model, tokenizer, rows: list[dict[str, str]]) -> float:
    """Mean negative log-likelihood per completion token (EOS included) given the prompt: SFT's own objective."""
    from trl_distillguard.calibration_reward import completion_logprobs

    seqs, plens, n_tokens = [], [], 0
    for row in rows:
        p = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        c = tokenizer(row["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        seqs.append(p + c)
        plens.append(len(p))
        n_tokens += len(c)
    with torch.no_grad():
        lps = completion_logprobs(model.eval(), seqs, plens, pad_token_id=tokenizer.pad_token_id)
    return -sum(lps) / n_tokens


def quiet_trainer(trainer):
    """Drop the callback that prints every log dict (disable_tqdm=True installs it); we print summaries."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


# ---------------------------------------------------------------------------------------------- stages
def stage_build(work: Path, steps: int) -> tuple[Path, Path]:
    print("\n[1/4] tiny models from configs (offline)")
    # The builder shared with `distillguard calibrate`'s tiny example (it uses `distill_ortho_merge.testing`).
    build = runpy.run_path(str(HERE / "data" / "calibrate_tiny.py"))["build"]
    root = build(work / "models", steps=steps, sums=False)
    from transformers import AutoConfig, AutoTokenizer

    toks = []
    for name, role in (("teacher", "teacher / base"), ("proxy", "proxy student")):
        cfg, tok = AutoConfig.from_pretrained(root / name), AutoTokenizer.from_pretrained(root / name)
        toks.append(tok)
        print(
            f"  {role:<15} {cfg.model_type:<6} hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers, "
            f"vocab {len(tok)}  ->  {root / name}"
        )
    tok_a, tok_b = toks
    text = "What is 47 + 38? The answer is 85."
    print(
        f"  {text!r}: {len(tok_a(text)['input_ids'])} tokens (A), {len(tok_b(text)['input_ids'])} tokens (B)"
    )
    return root / "teacher", root / "proxy"


def train_lora(base: Path, tok, task: str, weight: float, work: Path, args):
    """One LoRA adapter on one task with `with_orthoreg(SFTTrainer)`; returns (PEFT model, orthoreg-logged steps)."""
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from peft_orthoreg import OrthoLoraConfig, with_orthoreg

    torch.manual_seed(0)  # LoRA's A initialisation draws from the global generator
    config = OrthoLoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        orthoreg_weight=weight,
    )
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), config)
    sft = SFTConfig(
        output_dir=str(work / "runs" / f"{task}_lambda{weight:g}"),
        max_steps=args.lora_steps,
        per_device_train_batch_size=16,
        learning_rate=args.lora_lr,
        lr_scheduler_type="constant",
        max_length=48,
        logging_steps=max(1, args.lora_steps // 4),
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    data = Dataset.from_list(task_examples(task, TRAIN_SIZE, seed=0))
    trainer = with_orthoreg(SFTTrainer)(model=model, args=sft, train_dataset=data, processing_class=tok)
    quiet_trainer(trainer).train()
    return model, [h for h in trainer.state.log_history if "orthoreg" in h]


def stage_orthoreg(base: Path, work: Path, args, checks: dict) -> dict[str, Path]:
    from transformers import AutoTokenizer

    from peft_orthoreg import TaskVector, diagnose

    lam = args.orthoreg_weight
    print(f"\n[2/4] peft_orthoreg: LoRA r=4 on every projection, {args.lora_steps} SFT steps per task")
    tok = AutoTokenizer.from_pretrained(base)
    exported, vectors, names = {}, [], []
    for weight in (lam, 0.0):  # λ = 0 is the control: same seed, data and steps without the term
        for task in TASKS:
            t0 = time.perf_counter()
            model, logs = train_lora(base, tok, task, weight, work, args)
            first, last = logs[0], logs[-1]
            # The logged loss is SFT's loss + λ·orthoreg, each averaged over the same logging window.
            sft_first, sft_last = (h["loss"] - weight * h["orthoreg"] for h in (first, last))
            print(
                f"  λ={weight:<5g} {task:<8} {time.perf_counter() - t0:4.1f} s: SFT loss {sft_first:.3f} -> "
                f"{sft_last:.3f}, orthoreg Σ‖ΔWᵀΔW − I‖_F {first['orthoreg']:.2f} -> {last['orthoreg']:.2f}"
            )
            checks[f"λ={weight:g} {task}: loss and orthoreg logged, finite, SFT loss decreased"] = all(
                math.isfinite(h["loss"]) and math.isfinite(h["orthoreg"]) for h in logs
            ) and (sft_last < sft_first)
            tv = TaskVector.from_peft(model)  # densified ΔW = s·B·A per LoRA layer
            if weight == lam:
                model.save_pretrained(work / "adapters" / task)  # plain LoRA (+ two orthoreg_* keys)
                exported[task] = tv.export_model(base, work / "models" / f"task_{task}")
            vectors.append(tv)
            names.append(f"{task}_lambda{weight:g}")
    report = diagnose(vectors, names=names)  # what `peft-orthoreg diagnose` writes as heat maps
    cos, summary = report["cosine"]["global"], report["summary"]

    def pair(key: str, i: int) -> str:  # (add, reverse) of run i (0: λ, 2: control)
        return ", ".join(f"{summary[names[i + k]][key]:.2f}" for k in (0, 1))

    print(f"  {'diagnose(task vectors)':<32} {'λ=' + format(lam, 'g'):>14} {'λ=0 (control)':>16}")
    print(f"  {'cosine(add, reverse)':<32} {cos[0][1]:>+14.4f} {cos[2][3]:>+16.4f}")
    for label, key in (
        ("‖τ‖ (add, reverse)", "norm"),
        ("orthoreg at the end", "orthoreg_total"),
        ("mean effective rank (of r=4)", "mean_effective_rank"),
        ("mean singular-value spread", "mean_sv_spread"),
    ):
        print(f"  {label:<32} {pair(key, 0):>14} {pair(key, 2):>16}")
    checks["diagnose: cosines finite, |cos| <= 1"] = all(
        math.isfinite(c) and abs(c) <= 1 + 1e-9 for row in cos for c in row
    )
    print("  (OrthoReg pulls each ΔW = s·B·A towards ΔWᵀΔW = I; the λ=0 column is the same run without it)")
    print(f"  exported θ₀ + τ as full models: {', '.join(str(p) for p in exported.values())}")
    return exported


def stage_merge(base: Path, exported: dict[str, Path], work: Path, checks: dict) -> Path:
    import yaml

    import mergekit_plugins
    from mergekit_plugins import cli

    print("\n[3/4] mergekit_plugins: merge base + both task models through mergekit-yaml")
    names = mergekit_plugins.load_plugins()
    print(f"  load_plugins() registered {sorted(names)} into mergekit's registry")
    merged = {}
    for method in MERGES:
        config = {
            "merge_method": method,
            "base_model": str(base),
            "models": [{"model": str(exported[t]), "parameters": {"weight": 1.0}} for t in TASKS],
            "parameters": {"lambda": 1.0} if method == "task_arithmetic" else {"alpha": 1.0},
            "dtype": "float32",
        }
        path = work / "merges" / f"{method}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        t0 = time.perf_counter()
        rc = cli.main(["yaml", str(path), str(work / "merges" / method), "--quiet"])
        checks[f"mergekit-plugins yaml ({method}) exit code 0"] = rc == 0
        if rc != 0:
            raise SystemExit(f"quickstart: mergekit-plugins yaml {path} failed with exit code {rc}")
        print(f"  {method:<16} merged in {time.perf_counter() - t0:4.1f} s  ->  {work / 'merges' / method}")
        merged[method] = work / "merges" / method

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    held_out = {t: held_out_examples(t, 64) for t in TASKS}
    rows = [("base", base)] + [(f"single: {t}", exported[t]) for t in TASKS] + list(merged.items())
    print("  task loss: NLL per completion token on 64 held-out prompts per task (lower is better);")
    print(
        "  kept = share of the single-task model's loss reduction that the merge keeps, (base − merge) / (base − single)"
    )
    print(f"  {'model':<16} {'add':>7} {'reverse':>8}   {'kept: add':>9} {'reverse':>8}")
    losses = {}
    for label, path in rows:
        model = AutoModelForCausalLM.from_pretrained(path)
        loss = losses[label] = {t: task_loss(model, tok, held_out[t]) for t in TASKS}
        line = f"  {label:<16} {loss['add']:7.3f} {loss['reverse']:8.3f}"
        if label in merged:
            kept = {
                t: (losses["base"][t] - loss[t]) / (losses["base"][t] - losses[f"single: {t}"][t])
                for t in TASKS
            }
            line += f"   {kept['add']:9.0%} {kept['reverse']:8.0%}"
        print(line)
    for t in TASKS:
        checks[f"single: {t} beats base on {t}"] = losses[f"single: {t}"][t] < losses["base"][t]
    for m in MERGES:
        checks[f"{m}: losses finite"] = all(math.isfinite(v) for v in losses[m].values())
    best = min(OUR_MERGES, key=lambda m: sum(losses[m].values()))
    # Not every method must win on a toy (here TSV, like task arithmetic, lets `reverse` swamp `add`); the merge
    # handed to stage 4 must beat the base on both tasks.
    checks[f"{best} (lowest mean loss of {' / '.join(OUR_MERGES)}): beats base on both tasks"] = all(
        losses[best][t] < losses["base"][t] for t in TASKS
    )
    print(f"  lowest mean loss of {' / '.join(OUR_MERGES)}: {best} (the teacher of stage 4)")
    return merged[best]


def stage_distillguard(teacher: Path, proxy: Path, work: Path, args, checks: dict) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import trl_distillguard
    from trl_distillguard import CalibrationReward, DistillGuardConfig, DistillGuardTrainer

    print(
        f"\n[4/4] trl_distillguard: teacher = the {teacher.name} merge (tokenizer A), proxy student (tokenizer B)"
    )
    tok = AutoTokenizer.from_pretrained(teacher)
    policy = AutoModelForCausalLM.from_pretrained(teacher)
    cal = CalibrationReward(str(proxy))  # the proxy scores the text with its own tokenizer
    cal.bind_policy(policy, tok)  # log π from the teacher (DistillGuardTrainer feeds GRPO's own log-probs)
    logq = CalibrationReward(  # log q / bytes alone, same proxy input (EOS included when the teacher's ended)
        cal.proxy, cal.proxy_tokenizer, mode="proxy_logprob", policy_eos_token_ids=cal.policy_eos_token_ids
    )
    prompt = "What is 47 + 38?"
    texts = [" The answer is 85.", " The answer is 58.", " Reverse the sum of 47 and 38.", " zq xv kk pp"]
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
    kw = dict(prompts=[prompt] * len(texts), completions=texts, completion_ids=ids)
    rewards, proxy_lp = cal(**kw), logq(**kw)
    print(f"  CalibrationReward r_cal = (log q − log π) / bytes on {prompt!r}: > 0 where the proxy student")
    print(
        "  finds the text likelier than the teacher does; η > 0 rewards such text (distillable), η < 0 penalises it"
    )
    print(f"  {'completion':<34} {'tokens A':>8} {'tokens B':>8} {'log q/B':>8} {'log π/B':>8} {'r_cal':>7}")
    for text, t_ids, r, q in zip(texts, ids, rewards, proxy_lp, strict=True):
        n_b = len(cal.proxy_tokenizer(text, add_special_tokens=False)["input_ids"])
        print(f"  {text!r:<34} {len(t_ids) - 1:8d} {n_b:8d} {q:8.3f} {q - r:8.3f} {r:+7.3f}")
    checks["CalibrationReward finite on every text"] = all(
        r is not None and math.isfinite(r) for r in rewards
    )

    verifier = trl_distillguard.registry()["math_answer"].obj  # a registered task reward
    rng = random.Random(0)
    pairs = [(rng.randrange(100), rng.randrange(100)) for _ in range(16)]
    data = Dataset.from_dict(
        {"prompt": [f"What is {a} + {b}?" for a, b in pairs], "answer": [str(a + b) for a, b in pairs]}
    )
    config = DistillGuardConfig(
        output_dir=str(work / "runs" / "distillguard"),
        proxy_model_name_or_path=str(proxy),
        distillability=1.0,
        max_steps=args.grpo_steps,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=12,
        learning_rate=5e-5,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        seed=0,
    )
    trainer = quiet_trainer(
        DistillGuardTrainer(str(teacher), reward_funcs=[verifier], args=config, train_dataset=data)
    )
    t0 = time.perf_counter()
    trainer.train()
    print(
        f"  DistillGuardTrainer η=+1, β={config.beta}: {args.grpo_steps} GRPO steps in "
        f"{time.perf_counter() - t0:4.1f} s, rewards {trainer.reward_func_names} weighted "
        f"{trainer.reward_weights.tolist()}"
    )
    keys = [
        ("rewards/math_answer/mean", "math_answer"),
        ("rewards/calibration/mean", "r_cal"),
        ("calibration/proxy_logp", "log q/B"),
        ("calibration/policy_logp", "log π/B"),
        ("calibration/unscorable_frac", "unscorable"),
        ("kl", "kl"),
    ]
    print("  step " + "".join(f"{short:>12}" for _, short in keys))
    logs = [h for h in trainer.state.log_history if "loss" in h]
    for h in logs:
        cells = (h.get(k) for k, _ in keys)
        print(
            f"  {h['step']:>4} " + "".join(f"{c:12.4f}" if c is not None else f"{'n/a':>12}" for c in cells)
        )
    print(
        "  (the advantage of each of the 4 completions per prompt is z(math_answer) + η·z(r_cal) within its group)"
    )
    checks["DistillGuardTrainer: calibration/* logged and finite every step"] = len(
        logs
    ) == args.grpo_steps and all(
        math.isfinite(h[k]) for h in logs for k in ("calibration/proxy_logp", "calibration/policy_logp")
    )


# ---------------------------------------------------------------------------------------------- main
def quiet_frameworks() -> None:
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    for name in ("mergekit", "peft", "trl", "accelerate", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Framework deprecation notices (transformers v6 renames); anything else, e.g. a PluginWarning, still shows.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--out", type=Path, default=None, help="work directory, kept (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the default temporary work directory")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: as fast as 2 for these tiny models)"
    )
    p.add_argument(
        "--pretrain_steps", type=int, default=200, help="next-token steps of the tiny models (200)"
    )
    p.add_argument("--lora_steps", type=int, default=80, help="SFT steps per LoRA adapter (80)")
    p.add_argument("--lora_lr", type=float, default=5e-3, help="LoRA learning rate (5e-3)")
    p.add_argument("--orthoreg_weight", type=float, default=0.01, help="OrthoReg λ (0.01)")
    p.add_argument("--grpo_steps", type=int, default=2, help="DistillGuardTrainer steps (2)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        print(
            f"quickstart: error: --out {args.out} exists and is not empty; choose a new directory",
            file=sys.stderr,
        )
        return 2
    torch.set_num_threads(args.threads)
    quiet_frameworks()
    work = args.out or Path(tempfile.mkdtemp(prefix="quickstart-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"distill-ortho-merge quick start: work directory {work}, {args.threads} torch thread(s)")
    checks: dict[str, bool] = {}
    try:
        base, proxy = stage_build(work, args.pretrain_steps)
        exported = stage_orthoreg(base, work, args, checks)
        teacher = stage_merge(base, exported, work, checks)
        stage_distillguard(teacher, proxy, work, args, checks)
    finally:
        if args.out is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, ok in checks.items() if not ok]
    print(f"\nchecks: {len(checks) - len(failed)}/{len(checks)} passed")
    for name in failed:
        print(f"  FAILED: {name}")
    where = f"; files in {work}" if args.out is not None or args.keep else ""
    print(f"quick start {'FAILED' if failed else 'OK'} in {time.perf_counter() - start:.0f} s{where}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
