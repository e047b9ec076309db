"""Multi-process equivalence: 2 data-parallel CPU processes (torchrun, gloo) give the same metrics curve as one process
with the same global batch, for `distillguard calibrate`, `distillguard distill` (recipes sft and kd) and a
`with_orthoreg(SFTTrainer)` LoRA run.

Every case runs in three layouts with global batch 4 (= per-device batch × processes × gradient accumulation):
1 process × batch 4, 1 process × batch 2 × GA 2, and `torchrun --nproc_per_node 2` × batch 2 each. Compared per
logged step: the loss, the rewards (calibrate), `orthoreg` (OrthoReg) and the gradient norm; after the run, the
saved weights. The commands run as shipped (the CLIs' own `main`, the tiny example configs, the models that
`examples/data/*.py` build), with one change made by this script:

Layout-independent sampling. GRPO (calibrate) and the on-policy/teacher samples of `kd` sample completions during
training, and TRL seeds each process differently, so two processes legitimately draw other completions than one
process: their reward/loss curves then agree only statistically (case `calibrate_native` shows how far apart
4 steps are). Greedy decoding is no way out (GRPO needs distinct completions per prompt), so while
training this script makes sampling a function of the row: `generate` draws each row alone, seeded by (generation
call, the row's index in the global batch). Both layouts then train on identical completions and the comparison is
exact up to float32 reduction order. (`sft` samples the teacher before training, identically in every process.)

Run:  python benchmarks/multiprocess_equivalence.py [--cases calibrate,sft,kd,orthoreg,calibrate_native]
      (≈ 10 min on 2 shared cores; writes benchmarks/results/multiprocess.json and .md)
Workers are this file with --worker. CPU only: the GPU launch paths (accelerate configs) are not exercised here.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
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
# float32 sums taken in another order differ by ~1e-7 relative; a few optimizer steps amplify that a little. A
# metric may differ by metrics_rel × the largest |value| of its reference curve (+ metrics_abs, for all-zero curves);
# a weight by weights_abs, below one Adam step at the smallest learning rate here (5e-4).
TOLERANCE = {"metrics_rel": 1e-4, "metrics_abs": 1e-7, "weights_abs": 1e-4}
LAYOUTS = {  # name -> (processes, per-device batch, gradient accumulation)
    "1 process, batch 4": (1, 4, 1),
    "1 process, batch 2 x GA 2": (1, 2, 2),
    "2 processes (torchrun, gloo), batch 2 each": (2, 2, 1),
}
SEEDED = "per-row seeds (layout-independent)"
NONE = "none"
NATIVE = "TRL's own (per-process seeds): agreement is statistical only, not checked against the tolerance"
CALIBRATE = "distillguard calibrate --config examples/configs/tiny.yaml"
DISTILL = "distillguard distill --config examples/configs/distill_tiny.yaml"
CASES = {  # name -> (what runs, metrics compared, sampling during training)
    "calibrate": (
        CALIBRATE,
        ["loss", "reward", "rewards/calibration/mean", "kl", "completions/mean_length", "grad_norm"],
        SEEDED,
    ),
    "sft": (DISTILL, ["loss", "grad_norm"], NONE),
    "kd": (
        f"{DISTILL} --recipe kd --student_model_name_or_path examples/data/report_tiny/student_llama_a",
        ["loss", "grad_norm"],
        SEEDED,
    ),
    "orthoreg": (
        "with_orthoreg(SFTTrainer), LoRA r=4 on q_proj/v_proj, λ=0.5 (this script's worker)",
        ["loss", "orthoreg", "grad_norm"],
        NONE,
    ),
    "calibrate_native": (CALIBRATE, ["loss", "reward", "reward_std", "grad_norm"], NATIVE),
}
# TRL logs these as the mean over micro-batches of (global) token means: under gradient accumulation that is not the
# global token mean of one big batch, so they are shown but not held to the tolerance in GA layouts.
MICROBATCH_MEANS = {"kl"}
NATIVE_LAYOUTS = ["1 process, batch 4", "2 processes (torchrun, gloo), batch 2 each"]

# ------------------------------------------------------------------------------------------------- worker side
_STATE: dict = {"training": False, "calls": 0, "logs": []}


def install_hooks(seeded: bool) -> None:
    """Record every logged training step; with `seeded`, make sampling during training layout-independent."""
    import transformers
    from transformers.generation.utils import GenerationMixin

    train, log, generate = transformers.Trainer.train, transformers.Trainer.log, GenerationMixin.generate

    def train_hook(self, *args, **kwargs):
        _STATE["training"] = True
        try:
            return train(self, *args, **kwargs)
        finally:
            _STATE["training"] = False

    def log_hook(self, logs, *args, **kwargs):
        if "loss" in logs:
            _STATE["logs"].append(dict(logs))
        return log(self, logs, *args, **kwargs)

    def generate_hook(self, input_ids=None, attention_mask=None, **kwargs):
        if not (seeded and _STATE["training"]) or input_ids is None:
            return generate(self, input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return seeded_generate(generate, self, input_ids, attention_mask, **kwargs)

    transformers.Trainer.train, transformers.Trainer.log = train_hook, log_hook
    GenerationMixin.generate = generate_hook


def seeded_generate(generate, model, input_ids, attention_mask, **kwargs):
    """`generate` row by row (no padding), each row seeded by (call, its index in the global batch)."""
    import torch
    import torch.distributed as dist

    offset = 0
    if dist.is_available() and dist.is_initialized():  # rows of lower ranks come first in the global batch
        counts: list = [None] * dist.get_world_size()
        dist.all_gather_object(counts, input_ids.shape[0])
        offset = sum(counts[: dist.get_rank()])
    call, _STATE["calls"] = _STATE["calls"], _STATE["calls"] + 1
    rows = []
    for i in range(input_ids.shape[0]):
        keep = (
            attention_mask[i].bool() if attention_mask is not None else torch.ones_like(input_ids[i]).bool()
        )
        ids = input_ids[i][keep][None]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1_000_003 * call + offset + i)
            out = generate(model, input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
        rows.append(out[0, ids.shape[1] :])
    config = kwargs.get("generation_config") or model.generation_config
    pad_id = config.pad_token_id if config.pad_token_id is not None else 0
    width = max(len(r) for r in rows)
    tail = torch.full((len(rows), width), pad_id, dtype=input_ids.dtype, device=input_ids.device)
    for i, r in enumerate(rows):
        tail[i, : len(r)] = r
    return torch.cat([input_ids, tail], dim=1)


def run_orthoreg(a: argparse.Namespace, out: Path) -> None:
    """A short LoRA SFT with OrthoReg on the tiny teacher; saves the LoRA weights to out/adapter.safetensors."""
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from peft_orthoreg import OrthoLoraConfig, with_orthoreg

    tok = AutoTokenizer.from_pretrained(a.models / "orthoreg_teacher")
    texts = [f"What is {x} + {y}? The answer is {x + y}." for x in range(10) for y in range(10, 90, 10)]
    lengths = [
        len(tok(t)["input_ids"]) for t in texts
    ]  # one token length: the split cannot change the padding
    common = max(set(lengths), key=lengths.count)
    texts = [t for t, n in zip(texts, lengths, strict=True) if n == common][:16]
    model = AutoModelForCausalLM.from_pretrained(a.models / "orthoreg_teacher")
    torch.manual_seed(0)
    cfg = OrthoLoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], orthoreg_weight=0.5
    )
    model = get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # B ≠ 0 so that the term has a gradient from step 1
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    args = SFTConfig(
        output_dir=str(out / "_trainer"), max_steps=STEPS, per_device_train_batch_size=a.per_device,
        gradient_accumulation_steps=a.ga, learning_rate=1e-2, max_grad_norm=0.0,
        train_sampling_strategy="sequential", bf16=False, use_cpu=True, report_to=[], logging_steps=1,
        save_strategy="no", seed=0, max_length=32, disable_tqdm=True,
    )  # fmt: skip
    trainer = with_orthoreg(SFTTrainer)(
        model=model, args=args, train_dataset=Dataset.from_dict({"text": texts}), processing_class=tok
    )
    trainer.train()
    if trainer.accelerator.is_main_process:
        lora = {n: p.detach().contiguous() for n, p in model.named_parameters() if "lora_" in n}
        save_file(lora, str(out / "adapter.safetensors"))


def worker(a: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    install_hooks(seeded=CASES[a.case][2] != NATIVE)
    out, m = Path(a.tmp) / "out", a.models
    batch = ["--per_device_train_batch_size", str(a.per_device), "--max_steps", str(STEPS)]
    if a.case in ("calibrate", "calibrate_native"):
        from trl_distillguard.calibrate import main

        rc = main(["--config", "examples/configs/tiny.yaml", "--model_name_or_path", str(m / "calibrate_tiny/teacher"),
                   "--proxy_model_name_or_path", str(m / "calibrate_tiny/proxy"), "--output_dir", str(out), *batch,
                   "--gradient_accumulation_steps", str(a.ga), "--disable_tqdm", "true"])  # fmt: skip
    elif a.case in ("sft", "kd"):
        from trl_distillguard.distill import main

        student = "student_llama_a" if a.case == "kd" else "student_llama_b"
        rc = main(["--config", "examples/configs/distill_tiny.yaml", "--recipe", a.case,
                   "--teacher_model_name_or_path", str(m / "report_tiny/teacher"),
                   "--student_model_name_or_path", str(m / "report_tiny" / student), "--output_dir", str(out),
                   *batch, "--trainer_kwargs", json.dumps({"gradient_accumulation_steps": a.ga,
                                                           "disable_tqdm": True})])  # fmt: skip
    else:
        out.mkdir(parents=True, exist_ok=True)  # every rank
        run_orthoreg(a, out)
        rc = 0
    if rc:
        raise SystemExit(rc)
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        weights = out / ("adapter.safetensors" if a.case == "orthoreg" else "model.safetensors")
        record = {"processes": state.num_processes, "distributed_type": str(state.distributed_type),
                  "logs": _STATE["logs"], "weights": str(weights)}  # fmt: skip
        Path(a.record).write_text(json.dumps(record))


# ------------------------------------------------------------------------------------------------- driver side
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(case: str, layout: str, models: Path, tmp: Path) -> dict:
    """Run one (case, layout) worker and return its record (the main process's logged steps and weights path)."""
    procs, per_device, ga = LAYOUTS[layout]
    if procs == 1:
        cmd = [sys.executable, __file__]
    else:
        torchrun = str(Path(sys.executable).parent / "torchrun")
        cmd = [torchrun, "--nproc_per_node", str(procs), "--master_port", str(free_port()), __file__]
    record = tmp / "record.json"
    cmd += ["--worker", "--case", case, "--models", str(models), "--tmp", str(tmp), "--record", str(record),
            "--per-device", str(per_device), "--ga", str(ga)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"{case} / {layout}: worker failed ({proc.returncode})")
    run = json.loads(record.read_text())
    run["wall_s"] = round(time.perf_counter() - t0, 1)
    return run


def weight_diff(a: str, b: str) -> float:
    from safetensors.torch import load_file

    ta, tb = load_file(a), load_file(b)
    if ta.keys() != tb.keys():
        raise SystemExit(f"weights differ in their tensor names: {a} vs {b}")
    return max((ta[k].double() - tb[k].double()).abs().max().item() for k in ta)


def compare(case: str, runs: dict) -> dict:
    """Per layout: the curves, max |Δ| of each metric and of the weights against the first layout."""
    metrics = CASES[case][1]
    ref_name = next(iter(runs))
    ref = runs[ref_name]
    rows = {}
    for name, run in runs.items():
        curves = {k: [h.get(k) for h in run["logs"]] for k in metrics}
        if len(run["logs"]) != len(ref["logs"]):
            raise SystemExit(
                f"{case} / {name}: {len(run['logs'])} logged steps, reference {len(ref['logs'])}"
            )
        diffs, ok = {}, True
        for k in metrics:
            pairs = [(h[k], r[k]) for h, r in zip(run["logs"], ref["logs"], strict=True)]
            diffs[k] = max(abs(x - y) for x, y in pairs)
            bound = TOLERANCE["metrics_rel"] * max(abs(y) for _, y in pairs) + TOLERANCE["metrics_abs"]
            if not (k in MICROBATCH_MEANS and LAYOUTS[name][2] > 1):
                ok = ok and diffs[k] <= bound
        wdiff = weight_diff(run["weights"], ref["weights"])
        rows[name] = {
            "processes": run["processes"], "distributed_type": run["distributed_type"], "wall_s": run["wall_s"],
            "curves": curves, "max_abs_diff": diffs, "weights_max_abs_diff": wdiff,
            "within_tolerance": ok and wdiff <= TOLERANCE["weights_abs"],
        }  # fmt: skip
    return {
        "command": CASES[case][0],
        "sampling": CASES[case][2],
        "reference": ref_name,
        "layouts": rows,
    }


def fmt(x: float) -> str:
    return "0" if x == 0 else f"{x:.2g}" if abs(x) < 1e-3 else f"{x:.4g}"


def render_markdown(res: dict) -> str:
    run = res["run"]
    lines = [
        "# Multi-process equivalence (CPU, gloo)",
        "",
        f"`{run['command']}` — commit `{run['git_commit']}`, {run['machine']}, {run['wall_s']:.0f} s wall. "
        f"Global batch 4 in every layout, {STEPS} optimizer steps. Tolerance: each logged metric within "
        f"{TOLERANCE['metrics_rel']:g} × the largest |value| of its reference curve (+ {TOLERANCE['metrics_abs']:g}), "
        f"saved weights within {TOLERANCE['weights_abs']:g}.",
        "",
    ]
    for case, c in res["cases"].items():
        lines += [f"## {case}", "", f"`{c['command']}`; sampling during training: {c['sampling']}; "
                  f"reference: {c['reference']}.", ""]  # fmt: skip
        metrics = list(next(iter(c["layouts"].values()))["curves"])
        lines += ["| layout | " + " | ".join(f"{m} per step" for m in metrics[:2]) + " | max abs Δ per metric "
                  "| weights max abs Δ | within tolerance |", "|---" * (len(metrics[:2]) + 4) + "|"]  # fmt: skip
        for name, r in c["layouts"].items():
            curves = " | ".join(", ".join(fmt(v) for v in r["curves"][m]) for m in metrics[:2])
            unchecked = MICROBATCH_MEANS if LAYOUTS[name][2] > 1 else set()
            diffs = ", ".join(f"{m} {fmt(d)}" + (" (not checked)" if m in unchecked else "")
                              for m, d in r["max_abs_diff"].items())  # fmt: skip
            ok = "yes" if r["within_tolerance"] else "**no**"
            ok = ok if c["sampling"] != NATIVE else "— (statistical)"
            lines.append(f"| {name} | {curves} | {diffs} | {fmt(r['weights_max_abs_diff'])} | {ok} |")
        lines.append("")
    lines += [
        f"Not checked under gradient accumulation: {', '.join(sorted(MICROBATCH_MEANS))}, which TRL logs as the "
        "mean of the micro-batch means (each a token mean over all processes), not as one token mean over the "
        "global batch; what training uses (loss, gradient norm, weights) is checked.",
        "",
        "Not run here: GPU launches (`accelerate launch --config_file examples/accelerate/*.yaml`: multi-GPU DDP, "
        "FSDP, DeepSpeed ZeRO-2/3); this machine has no GPU.",
        "",
    ]
    return "\n".join(lines)


def driver(cases: list[str], out_dir: Path) -> int:
    from distill_ortho_merge import testing as tiny

    calibrate_tiny = runpy.run_path(str(ROOT / "examples" / "data" / "calibrate_tiny.py"))
    report_tiny = runpy.run_path(str(ROOT / "examples" / "data" / "report_tiny.py"))

    # the code the run measures (files edited while it runs do not count)
    commit = git_commit()
    t0 = time.perf_counter()
    res: dict = {"cases": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if any(c.startswith("calibrate") for c in cases):
            calibrate_tiny["build"](tmp / "calibrate_tiny")
        if "sft" in cases or "kd" in cases:
            report_tiny["build"](tmp / "report_tiny")
        if "orthoreg" in cases:
            tok = tiny.tokenizer_a()
            tiny.save_model(tiny.make_teacher(tok), tok, tmp / "orthoreg_teacher")
        for case in cases:
            runs = {}
            for layout in NATIVE_LAYOUTS if case == "calibrate_native" else LAYOUTS:
                work = tmp / "runs" / case / str(len(runs))
                work.mkdir(parents=True)
                runs[layout] = launch(case, layout, tmp, work)
                print(case, "|", layout, "|", runs[layout]["wall_s"], "s", flush=True)
            res["cases"][case] = compare(case, runs)
            print(
                json.dumps({k: v["within_tolerance"] for k, v in res["cases"][case]["layouts"].items()}),
                flush=True,
            )
    res["run"] = {
        "command": "python benchmarks/multiprocess_equivalence.py " + " ".join(sys.argv[1:]),
        "git_commit": commit,
        "machine": machine() + ", no GPU",
        "versions": versions(),
        "wall_s": round(time.perf_counter() - t0, 1),
        "tolerance": TOLERANCE,
    }
    write_files(
        out_dir,
        {"multiprocess.json": json.dumps(res, indent=1) + "\n", "multiprocess.md": render_markdown(res)},
    )
    expected = [
        r["within_tolerance"]
        for c, v in res["cases"].items()
        if CASES[c][2] != NATIVE
        for r in v["layouts"].values()
    ]
    return 0 if all(expected) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results directory")
    for flag in (
        "--worker",
        "--case",
        "--models",
        "--tmp",
        "--record",
        "--per-device",
        "--ga",
    ):  # worker only
        parser.add_argument(
            flag, **({"action": "store_true"} if flag == "--worker" else {}), help=argparse.SUPPRESS
        )
    a = parser.parse_args()
    if a.worker:
        a.models, a.per_device, a.ga = Path(a.models), int(a.per_device), int(a.ga)
        worker(a)
    else:
        unknown = sorted(set(a.cases.split(",")) - set(CASES))
        if unknown:
            parser.exit(2, f"--cases: unknown {', '.join(unknown)} (choose from {', '.join(CASES)})\n")
        sys.exit(driver(a.cases.split(","), Path(a.out)))
