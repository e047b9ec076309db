"""A small, honest distillability report on CPU (minutes): does the teacher change how well students learn?

1. Task: "What is a + b?" with a in [10, 1000), b in [1, 10) (" The answer is c. #### c", `math_answer`), on
   ByteLevel-BPE tokenizers that split digits (so that the tiny models can generalise to unseen sums).
   A tiny Qwen2 teacher (tokenizer A) is trained by SFT on all but `--n_eval` held-out pairs.
2. A proxy student (Llama, tokenizer B, seed 1) is distilled by `sft` from the original teacher; with
   `--calibrate`, teachers are post-hoc calibrated by issue 5's `DistillGuardTrainer` (GRPO with `math_answer`
   plus η · the calibration reward against that proxy) at η = 0 (task reward only: the fair control), +1 and −1.
   Without it (or if calibration fails) a `perturbed` teacher (Gaussian weight noise) stands in and `run.json`
   says so.
3. Students that are NOT the proxy: a Llama on tokenizer B (another seed) and a Llama on tokenizer A; recipe
   `sft` (and any others in `--recipes`); `--seeds` seeds; greedy evaluation on the held-out pairs.
4. `distillguard report` machinery writes report.json/.md/.png; `distillguard diagnose` runs on the original
   teacher and its sft student (the proxy, tokenizer B) into `OUT/diagnose/`; `OUT/run.json` records the run.

    python benchmarks/distillability_report.py --out benchmarks/results/report_arith --seeds 3 --calibrate

Everything runs offline, one thread per process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ[_var] = "1"
os.environ.setdefault("WANDB_DISABLED", "true")
ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

torch.set_num_threads(1)

from efficacy_knob_task import write_jsonl  # noqa: E402
from transformers import LlamaForCausalLM, Qwen2ForCausalLM  # noqa: E402

from distill_ortho_merge import testing as tiny  # noqa: E402
from distill_ortho_merge.outputs import json_safe  # noqa: E402
from distill_ortho_merge.run_record import git_commit, machine  # noqa: E402
from trl_distillguard.diagnose import DiagnoseConfig, diagnose  # noqa: E402
from trl_distillguard.distill import distill  # noqa: E402
from trl_distillguard.distill_config import DistillConfig  # noqa: E402
from trl_distillguard.loading import load_causal_lm  # noqa: E402
from trl_distillguard.plugins import resolve_reward  # noqa: E402
from trl_distillguard.report import run_report  # noqa: E402
from trl_distillguard.report_config import ReportConfig  # noqa: E402


def arithmetic_rows(pairs) -> list[dict]:
    return [{"prompt": f"What is {a} + {b}?", "answer": str(a + b)} for a, b in pairs]


def split_pairs(n_eval: int, seed: int = 0):
    pairs = [(a, b) for a in range(10, 1000) for b in range(1, 10)]
    random.Random(seed).shuffle(pairs)
    return pairs[n_eval:], pairs[:n_eval]


def tiny_lm(model_cls, tok, hidden: int, layers: int, seed: int):
    """A small randomly initialised `model_cls` (Qwen2ForCausalLM / LlamaForCausalLM) on tokenizer `tok`."""
    torch.manual_seed(seed)
    return model_cls(
        model_cls.config_class(
            vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False,
            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
            attn_implementation="eager",
        )
    )  # fmt: skip


def train_teacher(tok, train_pairs, out: Path, steps: int, seed: int = 0) -> Path:
    """Plain TRL SFT of the teacher on gold completions (the 'pretrained teacher' of this toy setting)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"prompt": f"What is {a} + {b}?", "completion": f" The answer is {a + b}. #### {a + b}"}
        for a, b in train_pairs
    ]
    model = tiny_lm(Qwen2ForCausalLM, tok, hidden=128, layers=3, seed=seed)
    args = SFTConfig(
        output_dir=str(out / "_sft"), max_steps=steps, learning_rate=3e-3, per_device_train_batch_size=32,
        lr_scheduler_type="cosine", warmup_steps=20, logging_steps=max(1, steps // 5), save_strategy="no",
        report_to="none", use_cpu=True, bf16=False, seed=seed, max_length=None, disable_tqdm=True,
        activation_checkpointing=False,  # SFTConfig turns it on: it only recomputes, on CPU and small models
    )  # fmt: skip
    SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok).train()
    shutil.rmtree(out / "_sft", ignore_errors=True)
    return tiny.save_model(model.eval(), tok, out)


def perturb(src: Path, out: Path, scale: float, seed: int = 0) -> Path:
    model, tok = load_causal_lm(str(src), "teacher")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale * p.std())
    return tiny.save_model(model, tok, out)


def calibrate(src: Path, proxy: Path, train_rows, out: Path, eta: float, steps: int, seed: int = 0) -> Path:
    """η-calibration by issue 5's DistillGuardTrainer (GRPO + calibration reward against the proxy)."""
    from datasets import Dataset

    from trl_distillguard.distillguard_config import DistillGuardConfig
    from trl_distillguard.distillguard_trainer import DistillGuardTrainer

    args = DistillGuardConfig(
        output_dir=str(out / "_grpo"), max_steps=steps, learning_rate=5e-5, per_device_train_batch_size=16,
        num_generations=8, max_completion_length=16, beta=0.1, temperature=1.0, logging_steps=max(1, steps // 5),
        save_strategy="no", report_to="none", use_cpu=True, bf16=False, seed=seed, disable_tqdm=True,
        proxy_model_name_or_path=str(proxy), distillability=eta,
    )  # fmt: skip
    trainer = DistillGuardTrainer(
        model=str(src), reward_funcs=[resolve_reward("math_answer", "verifier")], args=args,
        train_dataset=Dataset.from_list(train_rows),
    )  # fmt: skip
    trainer.train()
    shutil.rmtree(out / "_grpo", ignore_errors=True)
    trainer.model.save_pretrained(out)
    trainer.processing_class.save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="benchmarks/results/report_arith")
    ap.add_argument("--work", default="/tmp/distillguard_report_arith")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n_eval", type=int, default=150)
    ap.add_argument("--n_distill_prompts", type=int, default=800)
    ap.add_argument("--teacher_steps", type=int, default=600)
    ap.add_argument("--proxy_steps", type=int, default=300)
    ap.add_argument("--distill_steps", type=int, default=300)
    ap.add_argument("--calibrate", action="store_true", help="calibrated teachers via DistillGuardTrainer")
    ap.add_argument("--calibration_steps", type=int, default=40)
    ap.add_argument("--recipes", default="sft")
    ap.add_argument("--students", default="b,a", help="held-out students: b (tokenizer B), a (tokenizer A)")
    ap.add_argument("--distill_batch", type=int, default=16)
    ap.add_argument("--reuse", action="store_true", help="reuse the teachers and proxy already in --work")
    args = ap.parse_args()
    t0 = time.perf_counter()
    work = Path(args.work)
    if not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    # A: Qwen2's own pipeline (digits split), the one AutoTokenizer imposes on a qwen2 teacher; B: explicit.
    tok_a = tiny.make_tokenizer(400, tiny.corpus(1, mix=(0.8, 0.1, 0.1)), model_type="qwen2")
    tok_b = tiny.digit_tokenizer(640, tiny.corpus(2, mix=(0.1, 0.6, 0.3)))
    train_pairs, eval_pairs = split_pairs(args.n_eval)
    distill_rows = arithmetic_rows(train_pairs[: args.n_distill_prompts])
    train = write_jsonl(distill_rows, work / "train.jsonl")
    evals = write_jsonl(arithmetic_rows(eval_pairs), work / "eval.jsonl")
    seconds = {}

    teacher = work / "teacher"
    if not (args.reuse and teacher.exists()):
        train_teacher(tok_a, train_pairs, teacher, args.teacher_steps)
    seconds["teacher_sft"] = time.perf_counter() - t0
    # The proxy is a real (if small) student of the original teacher, as in the paper: a random proxy's log q
    # would reward noise.
    proxy_init = tiny.save_model(
        tiny_lm(LlamaForCausalLM, tok_b, 64, 2, seed=1).eval(), tok_b, work / "proxy_init"
    )
    proxy = work / "proxy_llama_b"
    if not (args.reuse and proxy.exists()):
        distill(
        DistillConfig(
            recipe="sft", teacher_model_name_or_path=str(teacher), student_model_name_or_path=str(proxy_init),
            dataset_name_or_path=str(train), output_dir=str(work / "proxy_llama_b"), max_steps=args.proxy_steps,
            per_device_train_batch_size=16, learning_rate=3e-3, max_completion_length=16, generation_batch_size=64,
            seed=100,
        ),
        quiet=True,
        )  # fmt: skip
    seconds["proxy"] = time.perf_counter() - t0 - sum(seconds.values())
    teachers = {"original": str(teacher)}
    note = ""
    if args.calibrate:
        try:
            for eta in (0.0, 1.0, -1.0):
                name = f"eta={eta:+g}" if eta else "eta=0"
                out = work / f"teacher_{name}"
                if not (args.reuse and out.exists()):
                    calibrate(teacher, proxy, distill_rows, out, eta, args.calibration_steps)
                teachers[name] = str(out)
        except Exception as err:  # report honestly what ran instead
            teachers = {"original": str(teacher)}
            note = f"calibration failed ({type(err).__name__}: {err}); a perturbed teacher stands in"
    if len(teachers) == 1:
        teachers["perturbed"] = str(perturb(teacher, work / "teacher_perturbed", scale=0.1))
        note = (
            note or "no calibrated teacher: a perturbed teacher (weights + 0.1·std Gaussian noise) stands in"
        )
    seconds["calibration_or_perturbation"] = time.perf_counter() - t0 - sum(seconds.values())
    students = {}
    if "b" in args.students.split(","):
        init_b = tiny.save_model(
            tiny_lm(LlamaForCausalLM, tok_b, 64, 2, seed=2).eval(), tok_b, work / "student_b"
        )
        students["llama_b (held out)"] = str(init_b)
    if "a" in args.students.split(","):
        init_a = tiny.save_model(
            tiny_lm(LlamaForCausalLM, tok_a, 64, 2, seed=3).eval(), tok_a, work / "student_a"
        )
        students["llama_a (held out)"] = str(init_a)
    cfg = ReportConfig(
        teachers=teachers, baseline_teacher="original", attackers=["t1"], students=students, recipes=args.recipes.split(","),
        train_dataset=str(train), eval_dataset=str(evals), verifier="math_answer", seeds=args.seeds,
        distill={"max_steps": args.distill_steps, "per_device_train_batch_size": args.distill_batch, "learning_rate": 3e-3,
                 "max_completion_length": 16, "generation_batch_size": 64},
        eval_max_new_tokens=16, eval_batch_size=64, proxy_model_name_or_path=str(proxy),
        output_dir=args.out, overwrite_output_dir=True,
    )  # fmt: skip
    run_report(cfg)
    seconds["report"] = time.perf_counter() - t0 - sum(seconds.values())
    diag = diagnose(
        DiagnoseConfig(
            teacher_model_name_or_path=str(teacher), student_model_name_or_path=str(proxy),
            dataset_name_or_path=str(evals), output_dir=f"{args.out}/diagnose", overwrite_output_dir=True,
            max_prompts=64, num_samples=2, max_new_tokens=16, verifier="math_answer",
        )
    )  # fmt: skip
    seconds["diagnose"] = time.perf_counter() - t0 - sum(seconds.values())
    seconds["total"] = time.perf_counter() - t0
    meta = {
        "command": "python " + " ".join(sys.argv),
        "git_commit": git_commit(),
        "machine": f"{machine()}, {platform.platform()}",
        "wall_s": round(seconds["total"], 1),
        "note": note,
        "teachers": teachers,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "settings": vars(args),
        "torch_threads": torch.get_num_threads(),
        "diagnose_summary": {k: diag[k] for k in ("tail_noise", "teacher_student_gap", "off_policy")},
    }
    meta["diagnose_summary"]["tail_noise"].pop("tail_mass_by_position", None)
    Path(f"{args.out}/run.json").write_text(json.dumps(json_safe(meta), indent=2))
    print((Path(args.out) / "report.md").read_text())
    print(json.dumps(json_safe(meta), indent=2))


if __name__ == "__main__":
    main()
