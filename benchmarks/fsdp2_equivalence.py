"""FSDP2 on CPU (torchrun --nproc_per_node 2, gloo): OrthoReg on parameters sharded with `fully_shard` gives the
1-process numbers, and sharding cuts each rank's parameter memory by about the number of ranks.

Rows:
- terms: every OrthoReg form's value and gradients on `fully_shard`-ed fp64 parameters vs whole tensors
  (tests/fsdp2_orthoreg_worker.py, run here as a subprocess);
- trainer: a `with_orthoreg(SFTTrainer)` step sequence (LoRA, and full fine-tuning) on a model sharded with
  `fully_shard` (every decoder layer, then the root) vs the same run in one process: loss, orthoreg and grad_norm
  per step and the saved weights (gathered with `get_model_state_dict(full_state_dict=True)`, what accelerate's
  `get_state_dict` does for FSDP2). accelerate offers FSDP only on GPUs and refuses to wrap a DTensor model in
  DDP, so the sharded workers hide torchrun's variables from accelerate after joining the process group: the
  trainer sees one process, and both ranks train on the same batches (FSDP2 averages their identical gradients,
  which is the 1-process gradient); the data-parallel split itself is covered by multiprocess_equivalence.py.
- memory: a SmolLM2-135M-sized Llama (30 layers, hidden 576, vocabulary 49152), parameters per rank and peak
  RSS after one AdamW step, unsharded (1 process) vs `fully_shard` over 2 ranks (built on the meta device).
- proxy: the same model as a frozen calibration proxy, replicated vs sharded and gathered per forward: memory
  per rank and forward time.

Run:  OMP_NUM_THREADS=1 nice -n 10 python benchmarks/fsdp2_equivalence.py  (writes benchmarks/results/fsdp2/)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distill_ortho_merge.run_record import git_commit, machine, versions, write_files

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
STEPS = 4
TOLERANCE = 1e-4  # × the largest |value| of the 1-process curve (weights: × their largest |value|)
TRAINER_CASES = {
    "lora": "LoRA r=4 on q_proj/v_proj, λ=0.5",
    "full_ft": "full fine-tuning, λ=0.05 (paper, exact)",
}
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "GROUP_WORLD_SIZE",
                 "ROLE_WORLD_SIZE", "TORCHELASTIC_RUN_ID")  # fmt: skip


# ------------------------------------------------------------------------------------------------- worker side
def join_and_hide() -> None:
    """Join the gloo group, then hide torchrun from accelerate (see the module docstring)."""
    import torch.distributed as dist

    dist.init_process_group("gloo")
    for var in TORCHRUN_VARS:
        os.environ.pop(var, None)


def build_tiny(models: Path) -> None:
    """A word-level tokenizer and a 2-layer Llama saved to models/ (offline, deterministic)."""
    import torch
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers import models as tm
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = ["<pad>", "<eos>", "<unk>", "What", "is", "+", "?", "The", "answer", *map(str, range(200))]
    tok = Tokenizer(tm.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, eos_token_id=1, bos_token_id=1, tie_word_embeddings=False)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(models / "model")
    fast.save_pretrained(models / "model")


def shard_model(model) -> None:
    from torch.distributed.fsdp import fully_shard

    for layer in model.get_decoder().layers:
        fully_shard(layer)
    fully_shard(model)


def run_trainer(a: argparse.Namespace) -> None:
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from peft_orthoreg import OrthoLoraConfig, with_orthoreg

    if a.shard:
        join_and_hide()
    tok = AutoTokenizer.from_pretrained(a.models / "model")
    texts = [f"What is {x} + {y} ? The answer is {x + y}" for x in range(8) for y in range(10, 50, 10)]
    model = AutoModelForCausalLM.from_pretrained(a.models / "model", dtype=torch.float32)
    kwargs = {}
    if a.case == "lora":
        torch.manual_seed(0)
        cfg = OrthoLoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                              orthoreg_weight=0.5)  # fmt: skip
        model = get_peft_model(model, cfg)
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():  # B ≠ 0 so that the term has a gradient from step 1
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    else:
        kwargs["orthoreg_weight"] = 0.05
    if a.shard:
        shard_model(model)
    args = SFTConfig(
        output_dir=str(a.tmp / "_trainer"), max_steps=STEPS, per_device_train_batch_size=4, learning_rate=1e-2,
        max_grad_norm=1e6, train_sampling_strategy="sequential", bf16=False, use_cpu=True, report_to=[],
        logging_steps=1, save_strategy="no", seed=0, max_length=32, disable_tqdm=True,
    )  # fmt: skip
    trainer = with_orthoreg(SFTTrainer)(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"text": texts}),
        processing_class=tok,
        **kwargs,
    )
    trainer.train()
    if a.shard:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = model.state_dict()
    import torch.distributed as dist

    if not a.shard or dist.get_rank() == 0:
        keep = {n: t.detach().contiguous() for n, t in state.items() if a.case != "lora" or "lora_" in n}
        save_file(keep, str(a.tmp / "weights.safetensors"))
        logs = [h for h in trainer.state.log_history if "loss" in h]
        record = {"logs": logs, "weights": str(a.tmp / "weights.safetensors"),
                  "sharded_types": sorted({type(p).__name__ for p in model.parameters()})}  # fmt: skip
        Path(a.record).write_text(json.dumps(record))


def smollm2_sized(shard: bool):
    """A SmolLM2-135M-sized Llama with random weights; sharded ones are built on the meta device first."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                         tie_word_embeddings=True)  # fmt: skip
    torch.manual_seed(0)
    if not shard:
        return LlamaForCausalLM(config)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    shard_model(model)
    model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    return model


def run_memory(a: argparse.Namespace) -> None:
    import resource

    import torch

    if a.shard:
        join_and_hide()
    model = smollm2_sized(bool(a.shard))
    local = sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in model.parameters())
    total = sum(p.numel() for p in model.parameters())
    record = {
        "parameters": total,
        "parameters_this_rank": local,
        "parameter_mib_this_rank": local * 4 / 2**20,
    }
    if a.worker == "memory":  # one AdamW training step
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(0, model.config.vocab_size, (1, 32))
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        held = [p for p in model.parameters()] + [p.grad for p in model.parameters()]
        held += [t for state in optimizer.state.values() for t in state.values() if t.dim() > 0]
        local_bytes = sum((t.to_local() if hasattr(t, "to_local") else t).nbytes for t in held)
        record["params_grads_adam_mib_this_rank"] = local_bytes / 2**20
    else:  # the calibration proxy's job: frozen forwards (replicated, or sharded and gathered per forward)
        model.eval().requires_grad_(False)
        ids = torch.randint(0, model.config.vocab_size, (4, 64))
        times = []
        with torch.no_grad():
            for _ in range(4):
                t0 = time.perf_counter()
                model(input_ids=ids)
                times.append(time.perf_counter() - t0)
        record["forward_s_median_of_3"] = sorted(times[1:])[1]  # the first forward warms up
    record["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    import torch.distributed as dist

    rank = dist.get_rank() if a.shard else 0
    Path(f"{a.record}.{rank}").write_text(json.dumps(record))


# ------------------------------------------------------------------------------------------------- driver side
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], procs: int, timeout: int = 900) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if procs == 1:
        cmd = [sys.executable, *argv]
    else:
        torchrun = str(Path(sys.executable).parent / "torchrun")
        cmd = [torchrun, "--nproc_per_node", str(procs), "--master_port", str(free_port()), *argv]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-5000:], sep="\n")
        raise SystemExit(f"{' '.join(argv[:4])}: failed ({proc.returncode})")
    return round(time.perf_counter() - t0, 1)


def compare_trainer(one: dict, two: dict) -> dict:
    from safetensors.torch import load_file

    rows, ok = {}, True
    for k in ("loss", "orthoreg", "grad_norm"):
        a, b = [h[k] for h in one["logs"]], [h[k] for h in two["logs"]]
        scale = max(abs(x) for x in a)
        diff = max(abs(x - y) for x, y in zip(a, b, strict=True))
        rows[k] = {"one_process": a, "fsdp2": b, "max_abs_diff": diff, "scale": scale}
        ok = ok and len(a) == len(b) == STEPS and diff <= TOLERANCE * scale
    wa, wb = load_file(one["weights"]), load_file(two["weights"])
    scale = max(t.abs().max().item() for t in wa.values())
    wdiff = (
        max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)
        if wa.keys() == wb.keys()
        else 1e9
    )
    rows["weights"] = {"tensors": len(wa), "max_abs_diff": wdiff, "scale": scale}
    ok = ok and wdiff <= TOLERANCE * scale
    return {"metrics": rows, "sharded_parameter_types": two["sharded_types"], "within_tolerance": ok}


def driver(out_dir: Path) -> int:
    commit = git_commit()
    t0 = time.perf_counter()
    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        terms = tmp / "terms.json"
        wall = launch([str(ROOT / "tests" / "fsdp2_orthoreg_worker.py"), str(terms)], 2)
        res["terms"] = {**json.loads(terms.read_text()), "wall_s": wall}
        print("terms", wall, "s", flush=True)
        build_tiny(tmp / "models")
        res["trainer"] = {}
        for case, what in TRAINER_CASES.items():
            records = {}
            for shard in (0, 1):
                work = tmp / case / str(shard)
                work.mkdir(parents=True)
                record = work / "record.json"
                wall = launch([__file__, "--worker", "trainer", "--case", case, "--models", str(tmp / "models"),
                               "--tmp", str(work), "--record", str(record), "--shard", str(shard)],
                              2 if shard else 1)  # fmt: skip
                records[shard] = {**json.loads(record.read_text()), "wall_s": wall}
                print(case, shard, wall, "s", flush=True)
            res["trainer"][case] = {"what": what, **compare_trainer(records[0], records[1])}
        for row in ("memory", "proxy"):
            res[row] = {}
            for shard in (0, 1):
                record = tmp / f"{row}{shard}"
                wall = launch([__file__, "--worker", row, "--tmp", str(tmp), "--record", str(record),
                               "--shard", str(shard)], 2 if shard else 1)  # fmt: skip
                ranks = [json.loads(Path(f"{record}.{r}").read_text()) for r in range(2 if shard else 1)]
                layout = "2 ranks, fully_shard" if shard else "1 process, unsharded"
                res[row][layout] = {"ranks": ranks, "wall_s": wall}
                print(row, shard, wall, "s", flush=True)
    res["run"] = {
        "command": "OMP_NUM_THREADS=1 nice -n 10 python benchmarks/fsdp2_equivalence.py "
        + " ".join(sys.argv[1:]),
        "git_commit": commit,
        "machine": machine(1) + ", no GPU",
        "versions": versions(),
        "wall_s": round(time.perf_counter() - t0, 1),
        "tolerance": TOLERANCE,
    }
    write_files(out_dir, {"run.json": json.dumps(res, indent=1) + "\n", "results.md": render_markdown(res)})
    terms_ok = all(c["value"] <= 1e-10 and c["grad"] <= 1e-10 for c in res["terms"]["cases"].values())
    return 0 if terms_ok and all(c["within_tolerance"] for c in res["trainer"].values()) else 1


def fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}" if abs(x) < 1e-3 else f"{x:.4g}"


def render_markdown(res: dict) -> str:
    run = res["run"]
    lines = ["# FSDP2 on CPU (torchrun --nproc_per_node 2, gloo)", "",
             f"`{run['command']}` — commit `{run['git_commit']}`, {run['machine']}, {run['wall_s']:.0f} s wall.", "",
             "## OrthoReg terms on `fully_shard`-ed fp64 parameters vs one process", "",
             "| form | value (1 process) | relative error: value | gradients |", "|---|---|---|---|"]  # fmt: skip
    for name, c in res["terms"]["cases"].items():
        lines.append(f"| {name} | {c['one_process']:.6g} | {fmt(c['value'])} | {fmt(c['grad'])} |")
    lines += ["", f"## `with_orthoreg(SFTTrainer)`, {STEPS} steps: FSDP2 (2 ranks) vs one process", "",
              f"Tolerance: {TOLERANCE:g} × the largest |value| of the 1-process curve (weights: of the weights).", "",
              "| case | loss max abs Δ | orthoreg max abs Δ | grad_norm max abs Δ | weights max abs Δ | within |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for _case, c in res["trainer"].items():
        m = c["metrics"]
        cells = " | ".join(fmt(m[k]["max_abs_diff"]) for k in ("loss", "orthoreg", "grad_norm", "weights"))
        lines.append(f"| {c['what']} | {cells} | {'yes' if c['within_tolerance'] else '**no**'} |")
    lines += ["", "## Parameter memory per rank, SmolLM2-135M-sized Llama", "",
              "| layout | parameters on the rank | parameters MiB (fp32) | parameters + gradients + AdamW state MiB "
              "| peak RSS MiB after one AdamW step |", "|---|---|---|---|---|"]  # fmt: skip
    for layout, m in res["memory"].items():
        for i, r in enumerate(m["ranks"]):
            lines.append(f"| {layout}, rank {i} | {r['parameters_this_rank']:,} of {r['parameters']:,} | "
                         f"{r['parameter_mib_this_rank']:.0f} | {r['params_grads_adam_mib_this_rank']:.0f} | "
                         f"{r['peak_rss_mib']:.0f} |")  # fmt: skip
    lines += ["", "Peak RSS also counts the libraries, activations (a 49152-word vocabulary), FSDP2's all-gathered "
              "layers during the step and the root module's parameters, which FSDP2 keeps whole between its forward "
              "and backward."]  # fmt: skip
    lines += ["", "## Calibration proxy, SmolLM2-135M-sized, frozen forward of 4 × 64 tokens", "",
              "Replicated (what `calibrate` does under FSDP2: every rank holds the whole proxy, as the 1-process row) "
              "vs sharded with `fully_shard` and gathered for each forward.", "",
              "| layout | parameters on the rank | MiB (fp32) | forward s (median of 3) | peak RSS MiB |",
              "|---|---|---|---|---|"]  # fmt: skip
    for layout, m in res["proxy"].items():
        for i, r in enumerate(m["ranks"]):
            lines.append(f"| {layout}, rank {i} | {r['parameters_this_rank']:,} | {r['parameter_mib_this_rank']:.0f} | "
                         f"{r['forward_s_median_of_3']:.3f} | {r['peak_rss_mib']:.0f} |")  # fmt: skip
    lines += ["", "CPU only: the trainer-level FSDP2 launch (`accelerate launch --config_file "
              "examples/accelerate/fsdp.yaml`) needs GPUs and is not run here.", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "fsdp2"), help="results directory"
    )
    for flag in ("--worker", "--case", "--models", "--tmp", "--record", "--shard"):  # worker only
        parser.add_argument(flag, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        a.models = Path(a.models) if a.models else None
        a.tmp, a.shard = Path(a.tmp), int(a.shard)
        import torch

        torch.set_num_threads(1)
        {"trainer": run_trainer, "memory": run_memory, "proxy": run_memory}[a.worker](a)
    else:
        sys.exit(driver(Path(a.out)))
