"""Step-time overhead of `DistillGuardTrainer` (task + calibration reward) against a plain `GRPOTrainer` (task
reward only): same model, data, generation settings, β and seed, measured side by side (runs interleaved, so
both see the same machine load).

    python benchmarks/calibration_overhead.py                 # tiny fixtures + a ~135M Llama-shaped model
    python benchmarks/calibration_overhead.py --sizes tiny    # seconds

Step time is measured per optimiser step (generation + scoring + loss + update) as process CPU time (one torch
thread: the work done, whatever else loads the machine) and wall time; the first step of each run is warm-up and
dropped; the figure is the median over the remaining steps of all repeats, and the CPU ratio per repeat. Models are random
(from configs): speed only. Tokens that would decode to non-ASCII (invalid UTF-8 on their own) are suppressed at
sampling time so that nearly all completions are scorable and the proxy really runs. The machine is a shared
2-core CPU: wall times are noisy; the CPU-time ratio, measured side by side, is the figure to read.

Results: benchmarks/results/calibration_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from distill_ortho_merge import testing as tiny  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def llama(tokenizer, hidden, layers, inter, heads, kv, vocab, seed):
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        attn_implementation="eager",
    )
    return LlamaForCausalLM(cfg).eval()


def build_models(size: str, root: Path) -> tuple[Path, Path, list[int], dict]:
    """Save a teacher (tokenizer A) and a proxy (tokenizer B) under root; return paths, suppressed ids, shapes."""
    tok_a, tok_b = tiny.tokenizer_a(), tiny.tokenizer_b()
    if size == "tiny":
        teacher, proxy = tiny.make_teacher(tok_a), tiny.make_student(tok_b)
    else:  # SmolLM2-135M shapes (hidden 576, 30 layers, MLP 1536, 9/3 heads, vocab 49,152); proxy ~ 1/6 of it
        teacher = llama(tok_a, 576, 30, 1536, 9, 3, 49152, seed=0)
        proxy = llama(tok_b, 256, 8, 768, 4, 2, 49152, seed=1)
    tiny.save_model(teacher, tok_a, root / "teacher")
    tiny.save_model(proxy, tok_b, root / "proxy")
    vocab = teacher.config.vocab_size
    suppress = [
        i
        for i in range(vocab)
        if i >= len(tok_a)
        or (i in tok_a.all_special_ids and i != tok_a.eos_token_id)
        or not tok_a.decode([i]).isascii()
    ]
    shapes = {
        "teacher_params_M": round(sum(p.numel() for p in teacher.parameters()) / 1e6, 2),
        "proxy_params_M": round(sum(p.numel() for p in proxy.parameters()) / 1e6, 2),
    }
    return root / "teacher", root / "proxy", suppress, shapes


class StepTimer:
    """Trainer callback: wall and process-CPU time of each optimiser step (generation, scoring, loss, update).

    CPU time of this single-threaded process is what the step costs, whatever else loads the shared machine.
    """

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer._t = (time.perf_counter(), time.process_time())

            def on_step_end(self, args, state, control, **kwargs):
                timer.wall.append(time.perf_counter() - timer._t[0])
                timer.cpu.append(time.process_time() - timer._t[1])

        return _Callback()


def run_once(kind: str, teacher: Path, proxy: Path, suppress: list[int], setting: dict, seed: int, out: Path):
    from trl import GRPOConfig, GRPOTrainer

    from distill_ortho_merge.data import load_dataset_rows
    from distill_ortho_merge.verifiers import math_answer
    from trl_distillguard import DistillGuardConfig, DistillGuardTrainer

    common = dict(
        output_dir=str(out),
        per_device_train_batch_size=setting["batch"],
        num_generations=setting["generations"],
        max_completion_length=setting["completion"],
        max_steps=setting["steps"],
        learning_rate=1e-5,
        beta=0.1,
        multi_objective_aggregation="normalize_then_sum",
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        seed=seed,
        disable_tqdm=True,
        generation_kwargs={"suppress_tokens": suppress},
    )
    data = Dataset.from_list(load_dataset_rows("arithmetic", size=64, seed=seed))
    timer = StepTimer()
    cb = [timer.callback()]
    if kind == "grpo":
        args = GRPOConfig(**common)
        trainer = GRPOTrainer(
            str(teacher), reward_funcs=[math_answer], args=args, train_dataset=data, callbacks=cb
        )
    else:
        args = DistillGuardConfig(**common, proxy_model_name_or_path=str(proxy), distillability=1.0)
        trainer = DistillGuardTrainer(
            str(teacher), reward_funcs=[math_answer], args=args, train_dataset=data, callbacks=cb
        )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "step_time" in h]
    extra = {}
    if kind == "distillguard":
        extra = {
            "unscorable_frac": statistics.fmean(h.get("calibration/unscorable_frac", 0.0) for h in logs),
            "extra_policy_forwards": trainer.calibration_policy_forwards,
        }
    return timer.wall, timer.cpu, extra


def measure(size: str, setting: dict, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        teacher, proxy, suppress, shapes = build_models(size, root / "models")
        walls = {"grpo": [], "distillguard": []}
        cpus = {"grpo": [], "distillguard": []}
        paired = []  # per repeat: median CPU step time of distillguard / grpo
        extras = []
        for r in range(repeats):
            order = (
                ["grpo", "distillguard"] if r % 2 == 0 else ["distillguard", "grpo"]
            )  # alternate the first
            this = {}
            for kind in order:
                wall, cpu, extra = run_once(
                    kind, teacher, proxy, suppress, setting, seed=r, out=root / f"{kind}{r}"
                )
                walls[kind].extend(wall[1:])  # drop the warm-up step
                cpus[kind].extend(cpu[1:])
                this[kind] = statistics.median(cpu[1:])
                if extra:
                    extras.append(extra)
                print(f"[{size}] repeat {r} {kind}: cpu s {[round(x, 3) for x in cpu]}", flush=True)
            paired.append(this["distillguard"] / this["grpo"])
    cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
    wall_med = {k: statistics.median(v) for k, v in walls.items()}
    return {
        "size": size,
        **shapes,
        **setting,
        "repeats": repeats,
        "median_step_cpu_s": {k: round(v, 4) for k, v in cpu_med.items()},
        "median_step_wall_s": {k: round(v, 4) for k, v in wall_med.items()},
        "step_cpu_s": {k: [round(x, 4) for x in v] for k, v in cpus.items()},
        "step_wall_s": {k: [round(x, 4) for x in v] for k, v in walls.items()},
        "ratio_cpu": round(cpu_med["distillguard"] / cpu_med["grpo"], 3),
        "ratio_cpu_per_repeat": [round(x, 3) for x in paired],
        "ratio_wall": round(wall_med["distillguard"] / wall_med["grpo"], 3),
        "unscorable_frac": round(statistics.fmean(e["unscorable_frac"] for e in extras), 3),
        "extra_policy_forwards_per_run": extras[0]["extra_policy_forwards"],
    }


SETTINGS = {
    "tiny": {"batch": 8, "generations": 4, "completion": 32, "steps": 6},
    "135m": {"batch": 4, "generations": 4, "completion": 32, "steps": 4},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "135m"], choices=sorted(SETTINGS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(RESULTS / "calibration_overhead"))
    cli = parser.parse_args()
    torch.set_num_threads(cli.threads)
    results = [measure(size, SETTINGS[size], cli.repeats) for size in cli.sizes]
    import trl

    report = {
        "command": "python benchmarks/calibration_overhead.py " + " ".join(sys.argv[1:]),
        "torch_threads": cli.threads,
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared with other jobs)",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },
        "goal": "ratio <= 1.3",
        "results": results,
    }
    out = Path(cli.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out.with_suffix(".json"))
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(report))
    tmp.replace(out.with_suffix(".md"))
    print(render_markdown(report))


def render_markdown(report: dict) -> str:
    """The .md table, rendered from the JSON report only (tests/test_benchmark_results.py re-renders it)."""
    results = report["results"]
    versions = report["versions"]
    lines = [
        "# Calibration overhead: DistillGuardTrainer vs GRPOTrainer (step time, side by side)",
        "",
        f"`{report['command']}` — {report['machine']}, torch threads {report['torch_threads']}, "
        f"torch {versions['torch']}, transformers {versions['transformers']}, trl {versions['trl']}.",
        "",
        "| model | teacher / proxy M params | completions/step x gens/prompt x max tokens | GRPO step CPU s | "
        "DistillGuard step CPU s | **ratio (CPU)** | ratio per repeat (CPU) | ratio (wall) | unscorable | "
        "extra policy forwards / run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']} | {r['teacher_params_M']} / {r['proxy_params_M']} | {r['batch']}x{r['generations']}x"
            f"{r['completion']} | {r['median_step_cpu_s']['grpo']} | {r['median_step_cpu_s']['distillguard']} | "
            f"**{r['ratio_cpu']}x** | {', '.join(map(str, r['ratio_cpu_per_repeat']))} | {r['ratio_wall']}x | "
            f"{r['unscorable_frac']} | {r['extra_policy_forwards_per_run']} |"
        )
    lines += [
        "",
        "Both trainers: β = 0.1 (reference forward in both), same seeds, data (`arithmetic` built-in), generation",
        "settings; the first step of each run is dropped; medians over the other steps of all repeats. Step time",
        "is measured by a trainer callback from step begin to step end (generation, rewards, loss, update), as",
        "process CPU time (one torch thread, so it is the work done, robust to the shared machine's load) and as",
        "wall time (noisy here: other jobs ran on the same 2 cores).",
        "DistillGuard adds the proxy forward and one no-grad policy forward per generation batch (GRPO computes",
        "no old log-probs when generation and optimisation steps are aligned).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
