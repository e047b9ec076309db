"""Multi-process check: a short SFT run with OrthoReg in 2 data-parallel CPU processes (torchrun, gloo) gives the
same losses, `orthoreg` values and final LoRA weights as one process with the same global batch (4), and as one
process with gradient accumulation (2 × 2). The same three runs with λ = 0 show how much of any difference comes
from the data-parallel split itself rather than from OrthoReg.

Run:  python benchmarks/orthoreg_multiprocess.py     (≈ 2 min; writes benchmarks/results/orthoreg_multiprocess.json)

The driver builds the tiny Qwen2 teacher of tests/tiny.py in a temporary directory, runs the workers (this file
with --worker) and compares their logs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [f"What is {a} + {b}? The answer is {a + b}." for a in range(10) for b in range(10, 90, 10)]


def worker(args: argparse.Namespace) -> None:
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from peft_orthoreg import OrthoLoraConfig, with_orthoreg

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(args.model)
    # Texts of one token length: no padding, so how a global batch is split cannot change the LM loss.
    lengths = [len(tok(t)["input_ids"]) for t in TEXTS]
    common = max(set(lengths), key=lengths.count)
    texts = [t for t, n in zip(TEXTS, lengths, strict=True) if n == common][:16]
    model = AutoModelForCausalLM.from_pretrained(args.model)
    torch.manual_seed(0)
    cfg = OrthoLoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], orthoreg_weight=args.weight
    )
    model = get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # B ≠ 0 so that the term has a gradient from step 1
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    sft_args = SFTConfig(
        output_dir=args.tmp,
        max_steps=4,
        per_device_train_batch_size=args.per_device,
        gradient_accumulation_steps=args.ga,
        learning_rate=1e-2,
        max_grad_norm=0.0,
        train_sampling_strategy="sequential",  # the same global batches however they are split
        bf16=False,
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        seed=0,
        max_length=32,
        disable_tqdm=True,
    )
    trainer = with_orthoreg(SFTTrainer)(
        model=model, args=sft_args, train_dataset=Dataset.from_dict({"text": texts}), processing_class=tok
    )
    trainer.train()
    if trainer.accelerator.is_main_process:
        logs = [h for h in trainer.state.log_history if "loss" in h]
        record = {
            "processes": trainer.accelerator.num_processes,
            "distributed_type": str(trainer.accelerator.distributed_type),
            "orthoreg_weight": args.weight,
            "loss": [h["loss"] for h in logs],
            "orthoreg": [h["orthoreg"] for h in logs],
            "lora_param_sums": {
                n: p.detach().double().sum().item() for n, p in model.named_parameters() if "lora_" in n
            },
        }
        Path(args.out).write_text(json.dumps(record))


def max_diff(key: str, run: dict, ref: dict) -> float:
    if key == "lora_param_sums":
        return max(abs(run[key][k] - ref[key][k]) for k in ref[key])
    return max(abs(a - b) for a, b in zip(run[key], ref[key], strict=True))


def driver() -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    import tiny

    results: dict = {}
    single = [sys.executable, __file__]
    # `accelerate launch --num_processes 2 --cpu` starts ONE process in accelerate 1.x (its simple launcher; multi-CPU
    # needs an MPI hostfile). torchrun (what `accelerate launch --multi_gpu` runs) starts two gloo DDP processes.
    multi = [
        str(Path(sys.executable).parent / "torchrun"),
        "--nproc_per_node",
        "2",
        "--master_port",
        "29513",
        __file__,
    ]
    runs = {}
    for w in ("0.5", "0"):  # λ = 0 runs show what the split does to the plain SFT loss, without OrthoReg
        runs[f"λ={w}: 1 process, batch 4"] = [*single, "--per-device", "4", "--ga", "1", "--weight", w]
        runs[f"λ={w}: 1 process, batch 2 x GA 2"] = [*single, "--per-device", "2", "--ga", "2", "--weight", w]
        runs[f"λ={w}: 2 processes (torchrun, gloo DDP on CPU), batch 2 each"] = [
            *multi,
            "--per-device",
            "2",
            "--weight",
            w,
        ]
    with tempfile.TemporaryDirectory() as tmp:
        tok = tiny.tokenizer_a()
        model_dir = tiny.save_model(tiny.make_teacher(tok), tok, Path(tmp) / "teacher")
        for name, cmd in runs.items():
            out = Path(tmp) / f"{len(results)}.json"
            full = [
                *cmd,
                "--worker",
                "--model",
                str(model_dir),
                "--out",
                str(out),
                "--tmp",
                str(Path(tmp) / "run"),
            ]
            proc = subprocess.run(
                full, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
            )
            if proc.returncode != 0:
                print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
                raise SystemExit(f"{name}: worker failed ({proc.returncode})")
            results[name] = json.loads(out.read_text())
            print(name, results[name]["loss"], results[name]["orthoreg"], flush=True)
    summary = {}
    for name, run in results.items():
        ref = results[name.split(":")[0] + ": 1 process, batch 4"]
        summary[name] = {k: max_diff(k, run, ref) for k in ("loss", "orthoreg", "lora_param_sums")}
    record = {
        "command": "python benchmarks/orthoreg_multiprocess.py",
        "runs": results,
        "max_abs_diff_vs_1_process_batch_4_same_weight": summary,
    }
    out = ROOT / "benchmarks" / "results" / "orthoreg_multiprocess.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = out.with_name(f".{out.name}.tmp")
    tmp_file.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp_file, out)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--model")
    parser.add_argument("--out")
    parser.add_argument("--tmp")
    parser.add_argument("--per-device", type=int, default=4)
    parser.add_argument("--ga", type=int, default=1)
    parser.add_argument("--weight", type=float, default=0.5)
    a = parser.parse_args()
    if a.worker:
        worker(a)
    else:
        sys.exit(driver())
