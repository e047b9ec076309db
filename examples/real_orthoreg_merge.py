"""Smoke-scale OrthoReg LoRA on a real model and two reasoning-gym tasks, then a dense merge with mergekit.

    python examples/real_orthoreg_merge.py --out runs/real_orthoreg [--model smollm2-135m-instruct]
        [--tasks letter_counting gcd] [--steps 4] [--orthoreg-weight 1.0] [--method task_arithmetic]

Per task: SFT of a LoRA adapter (`OrthoLoraConfig`, `with_orthoreg(SFTTrainer)`) on ``reasoning_gym:<task>`` train
rows (completion = ``Answer: <gold>``), exported as θ₀ + τ (`TaskVector.export_model`); then
``mergekit-plugins yaml`` merges the two exported models with `--method` (the base given by its built-in name,
which the resolver turns into the cached directory). Writes OUT/summary.json (orthoreg terms, ‖τ‖, cosine, and
the reasoning_gym score of base / each task model / the merge on `--eval-size` test rows per task).
Smoke scale: a few steps, not a result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch


def sft_rows(task: str, size: int, seed: int) -> list[dict]:
    from distill_ortho_merge.data import load_dataset_rows

    rows = load_dataset_rows(f"reasoning_gym:{task}?size={size}&split=train", seed=seed)
    return [{"prompt": r["prompt"], "completion": [{"role": "assistant", "content": f"Answer: {r['answer']}"}]}
            for r in rows]  # fmt: skip


def train(base: str, task: str, args, out: Path):
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from peft_orthoreg import OrthoLoraConfig, TaskVector, with_orthoreg

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(base)
    config = OrthoLoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, orthoreg_weight=args.orthoreg_weight,
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"])  # fmt: skip
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), config)
    sft = SFTConfig(output_dir=str(out / "runs" / task), max_steps=args.steps, per_device_train_batch_size=args.batch,
                    learning_rate=3e-4, max_length=160, logging_steps=1, save_strategy="no", report_to=[],
                    disable_tqdm=True, use_cpu=True, bf16=False, seed=0)  # fmt: skip
    data = Dataset.from_list(sft_rows(task, args.steps * args.batch, seed=0))
    trainer = with_orthoreg(SFTTrainer)(model=model, args=sft, train_dataset=data, processing_class=tok)
    trainer.train()
    tv = TaskVector.from_peft(model)
    model.save_pretrained(out / "adapters" / task)  # the LoRA adapter itself, for `lora-merge`
    exported = tv.export_model(base, out / "models" / task)
    logs = [
        {k: h[k] for k in ("step", "loss", "orthoreg") if k in h}
        for h in trainer.state.log_history
        if "loss" in h
    ]
    return tv, exported, logs


def score(path: str, tasks: list[str], size: int) -> dict[str, float]:
    from distill_ortho_merge.evaluate import evaluate, load_rows
    from trl_distillguard.loading import load_causal_lm
    from trl_distillguard.plugins import resolve_reward

    model, tok = load_causal_lm(path, "model")
    out = {}
    for task in tasks:
        rows = load_rows(f"reasoning_gym:{task}?size={size}&split=test&seed=12345")
        res = evaluate(
            model,
            tok,
            rows,
            resolve_reward("reasoning_gym", "verifier"),
            max_new_tokens=24,
            batch_size=8,
            desc=None,
        )
        out[task] = round(res.score, 3)
    return out


def lora_merge_both_ways(args, base: str, out: Path) -> dict:
    """The same merge in factor space (`mergekit-plugins lora-merge` of the two adapters, into the base), timed and
    compared weight by weight with the dense merge of the densified task models."""
    from safetensors.torch import load_file

    cfg = {"merge_method": args.method, "base_model": base,
           "models": [{"model": str(out / "adapters" / t), "parameters": {"weight": 1.0}} for t in args.tasks]}  # fmt: skip
    (out / "lora_merge.yaml").write_text(json.dumps(cfg, indent=1))
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "mergekit_plugins.cli", "lora-merge", str(out / "lora_merge.yaml"), str(out / "models" / "lora_merged"),
                          "--merge-into-base", "--no-progress"], capture_output=True, text=True)  # fmt: skip
    result: dict = {"exit": run.returncode, "wall_s": round(time.perf_counter() - t0, 1)}
    if run.returncode != 0:
        result["error"] = run.stderr.strip().splitlines()[-1:]
        return result
    dense = {
        k: v
        for f in sorted((out / "models" / "merged").glob("*.safetensors"))
        for k, v in load_file(f).items()
    }
    factor = {
        k: v
        for f in sorted((out / "models" / "lora_merged").glob("*.safetensors"))
        for k, v in load_file(f).items()
    }
    shared = sorted(set(dense) & set(factor))
    diffs = [float((dense[k].double() - factor[k].double()).abs().max()) for k in shared]
    rel = [
        float((dense[k].double() - factor[k].double()).norm() / dense[k].double().norm().clamp_min(1e-30))
        for k in shared
    ]
    result.update(tensors_compared=len(shared), max_abs_diff=max(diffs), max_rel_diff=max(rel))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tasks", nargs=2, default=["letter_counting", "gcd"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--orthoreg-weight", type=float, default=1.0)
    parser.add_argument(
        "--method", default="task_arithmetic", help="mergekit method (task_arithmetic, tsv, ...)"
    )
    parser.add_argument("--eval-size", type=int, default=8, help="test rows per task (0: no evaluation)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from distill_ortho_merge.models import resolve_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=False)
    t0 = time.perf_counter()
    base = str(resolve_model(args.model, "--model"))
    summary: dict = {"command": "python examples/real_orthoreg_merge.py " + " ".join(argv or sys.argv[1:])}
    tvs, models = {}, {}
    for task in args.tasks:
        tvs[task], models[task], summary[f"train_{task}"] = train(base, task, args, out)
    a, b = (tvs[t] for t in args.tasks)
    summary["tau_norms"] = {t: round(float(tvs[t].norm()), 4) for t in args.tasks}
    from peft_orthoreg.diagnostics import diagnose

    summary["tau_abs_cosine"] = round(diagnose([a, b])["mean_abs_cosine"], 4)
    cfg = {"merge_method": args.method, "base_model": args.model, "dtype": "float32",
           "models": [{"model": str(models[t]), "parameters": {"weight": 1.0}} for t in args.tasks]}  # fmt: skip
    (out / "merge.yaml").write_text(json.dumps(cfg, indent=1))  # JSON is YAML
    merge = subprocess.run([sys.executable, "-m", "mergekit_plugins.cli", "yaml", str(out / "merge.yaml"), str(out / "models" / "merged")],
                           capture_output=True, text=True)  # fmt: skip
    summary["merge_exit"] = merge.returncode
    if merge.returncode != 0:
        summary["merge_error"] = merge.stderr.strip().splitlines()[-1:]
    else:
        summary["lora_merge"] = lora_merge_both_ways(args, base, out)
    if args.eval_size and merge.returncode == 0:
        summary["scores"] = {name: score(path, args.tasks, args.eval_size)
                             for name, path in [("base", base), *((t, str(models[t])) for t in args.tasks),
                                                ("merged", str(out / "models" / "merged"))]}  # fmt: skip
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0 if merge.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
