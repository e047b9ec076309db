"""What OrthoReg costs: factor-space vs dense reference, and per-step overhead on a ~135M Llama-shaped model.

(a) Exact LoRA factor form vs the dense reference at 1024², 4096², 4096×11008 for r ∈ {8, 16, 64}: time of value +
    gradient side by side, max relative difference of the value and of the gradients (fp32), and both fp32 forms
    against an fp64 dense truth.
(b) One LoRA training step (r = 16 on q,k,v,o,gate,up,down; AdamW) with and without λ·orthoreg_loss on a
    Llama-shaped model built from config (hidden 576, 30 layers, MLP 1536, vocab 49152, 9 heads, 3 KV heads;
    random weights), batch 8 × 128, alternated, medians: the overhead ratio.
(c) Full fine-tuning: model forward + backward vs the regulariser's forward + backward over every Linear weight,
    dense exact vs Hutchinson (p = 1, 4).

Run:  python benchmarks/orthoreg_cost.py            (≈ 5 min on one thread)
      python benchmarks/orthoreg_cost.py --quick    (smoke test, seconds)
Writes benchmarks/results/orthoreg_cost.json and .md. The CPU may be shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

from peft_orthoreg.orthoreg import dense_orthoreg_loss, factor_orthoreg_loss  # noqa: E402


def timed(fn, reps: int) -> tuple[float, object]:
    """Median wall time of `reps` calls (after one untimed warm-up when reps > 1) and the last result."""
    times, out = [], None
    if reps > 1:
        out = fn()
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


# -- (a) ------------------------------------------------------------------------------------------------------
def part_a(shapes, ranks, dense_reps: int, factor_reps: int) -> list[dict]:
    rows = []
    for m, n in shapes:
        for r in ranks:
            gen = torch.Generator().manual_seed(r)
            a64 = torch.randn(r, n, generator=gen, dtype=torch.float64) / n**0.5
            b64 = torch.randn(m, r, generator=gen, dtype=torch.float64) / r**0.5 * 1.5
            s = 1.0  # ΔW's singular values are O(1): G − I is far from trivial on the r-dim subspace

            def factor(a, b, s=s):
                a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
                v = factor_orthoreg_loss([(a, b, s)])
                ga, gb = torch.autograd.grad(v, [a, b])
                return v.detach(), ga, gb

            def dense(a, b, s=s):
                a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
                v = dense_orthoreg_loss([s * b @ a])
                ga, gb = torch.autograd.grad(v, [a, b])
                return v.detach(), ga, gb

            a32, b32 = a64.float(), b64.float()
            t_fac, (vf, gaf, gbf) = timed(lambda a=a32, b=b32: factor(a, b), factor_reps)
            t_den, (vd, gad, gbd) = timed(lambda a=a32, b=b32: dense(a, b), dense_reps)
            with torch.no_grad():  # fp64 truth (value only: the gradient in fp64 would double the cost again)
                truth = dense_orthoreg_loss([s * b64 @ a64])
            row = {
                "shape": [m, n],
                "r": r,
                "value": float(truth),
                "factor_s": t_fac,
                "dense_s": t_den,
                "speedup": t_den / t_fac,
                "rel_diff_value_factor_vs_dense_fp32": rel(vf, vd),
                "rel_diff_grad_factor_vs_dense_fp32": max(rel(gaf, gad), rel(gbf, gbd)),
                "rel_err_value_factor_fp32_vs_fp64": rel(vf, truth),
                "rel_err_value_dense_fp32_vs_fp64": rel(vd, truth),
                "dense_reps": dense_reps,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


# -- (b), (c) ---------------------------------------------------------------------------------------------------
def llama_135m(small: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=49152 if not small else 512,
        hidden_size=576 if not small else 64,
        intermediate_size=1536 if not small else 128,
        num_hidden_layers=30 if not small else 2,
        num_attention_heads=9 if not small else 4,
        num_key_value_heads=3 if not small else 2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        attn_implementation="eager",
    )
    return LlamaForCausalLM(cfg)


def part_b(small: bool, reps: int, batch: tuple[int, int]) -> dict:
    from peft import get_peft_model

    from peft_orthoreg import OrthoLoraConfig, orthoreg_loss

    model = llama_135m(small)
    n_params = sum(p.numel() for p in model.parameters())
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = OrthoLoraConfig(r=16, lora_alpha=16, lora_dropout=0.0, target_modules=targets, orthoreg_weight=1.0)
    model = get_peft_model(model, cfg)
    with torch.no_grad():  # as after some training: B ≠ 0, so the term has a real gradient
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.01)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, batch, generator=gen)

    def step(with_reg: bool) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        loss = model(input_ids=ids, labels=ids).loss
        if with_reg:
            loss = loss + cfg.orthoreg_weight * orthoreg_loss(model)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0, time.process_time() - c0

    step(False)  # warm-up
    plain, reg, plain_cpu, reg_cpu = [], [], [], []
    for i in range(reps):  # alternate so that load changes hit both sides alike
        order = (False, True) if i % 2 == 0 else (True, False)
        for flag in order:
            wall, cpu = step(flag)
            (reg if flag else plain).append(wall)
            (reg_cpu if flag else plain_cpu).append(cpu)

    def reg_only():
        v = orthoreg_loss(model)
        v.backward()
        opt.zero_grad(set_to_none=True)

    t_reg, _ = timed(reg_only, 5)
    n_layers = sum(1 for n, _ in model.named_modules() if n.endswith(tuple(targets)))
    return {
        "model_params": n_params,
        "lora_layers": n_layers,
        "batch": list(batch),
        "step_plain_s": plain,
        "step_orthoreg_s": reg,
        "median_plain_s": statistics.median(plain),
        "median_orthoreg_s": statistics.median(reg),
        "overhead_ratio": statistics.median(reg) / statistics.median(plain),
        "overhead_ratio_min": min(reg) / min(plain),  # less sensitive to load spikes on a shared CPU
        # CPU time of this (single-threaded) process: insensitive to other jobs taking the cores
        "step_plain_cpu_s": plain_cpu,
        "step_orthoreg_cpu_s": reg_cpu,
        "overhead_ratio_cpu_time": statistics.median(reg_cpu) / statistics.median(plain_cpu),
        "regulariser_fwd_bwd_s": t_reg,
        "regulariser_share_of_step": t_reg / statistics.median(plain),
    }


def part_c(small: bool, reps: int, batch: tuple[int, int]) -> dict:
    from peft_orthoreg.trainer import select_full_ft_weights

    model = llama_135m(small)
    model.train()
    weights = select_full_ft_weights(
        model
    )  # every Linear weight (lm_head is tied to the embedding: counted once)
    w0 = [p.detach().clone() for _, p in weights]
    with torch.no_grad():  # as after some training
        for _, p in weights:
            p.add_(torch.randn_like(p) * 1e-3)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, batch, generator=gen)

    def model_step():
        model(input_ids=ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)

    def reg(estimator: str, probes: int = 1):
        deltas = [p - w for (_, p), w in zip(weights, w0, strict=True)]
        dense_orthoreg_loss(deltas, estimator=estimator, probes=probes, seed=0).backward()
        model.zero_grad(set_to_none=True)

    t_model, _ = timed(model_step, reps)
    t_dense, _ = timed(lambda: reg("exact"), reps)
    t_h1, _ = timed(lambda: reg("hutchinson", 1), reps)
    t_h4, _ = timed(lambda: reg("hutchinson", 4), reps)
    return {
        "regularised_matrices": len(weights),
        "regularised_params": sum(p.numel() for _, p in weights),
        "batch": list(batch),
        "model_fwd_bwd_s": t_model,
        "dense_fwd_bwd_s": t_dense,
        "hutchinson_p1_fwd_bwd_s": t_h1,
        "hutchinson_p4_fwd_bwd_s": t_h4,
        "dense_overhead": t_dense / t_model,
        "hutchinson_p1_overhead": t_h1 / t_model,
        "hutchinson_p4_overhead": t_h4 / t_model,
        "w0_snapshot_MiB": sum(w.numel() * w.element_size() for w in w0) / 2**20,
    }


def render_markdown(res: dict) -> str:
    """The .md tables, rendered from the JSON results only (tests/test_benchmark_results.py re-renders them)."""
    lines = [
        "# OrthoReg cost",
        "",
        "Commands: "
        + "; ".join(f"({p}) `{c}`" for p, c in sorted(res.get("part_commands", {}).items()))
        + "  ",
        f"Machine: {res['machine']}; torch {res['torch']}, {res['threads']} thread(s); load average before/after "
        f"the last command: {res['loadavg_before']} / {res['loadavg_after']} (2 cores shared with other jobs: "
        "absolute times are noisy, ratios are measured side by side).",
        *([res["note"]] if "note" in res else []),
        "",
        "## (a) LoRA factor form vs dense reference (value + gradient, fp32)",
        "",
        "| shape | r | dense s | factor s | speed-up | rel diff value | rel diff grad | factor vs fp64 | dense vs fp64 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res.get("a", []):
        lines.append(
            f"| {r['shape'][0]}×{r['shape'][1]} | {r['r']} | {r['dense_s']:.4g} | {r['factor_s'] * 1e3:.3g} ms | "
            f"{r['speedup']:.0f}× | {r['rel_diff_value_factor_vs_dense_fp32']:.1e} | "
            f"{r['rel_diff_grad_factor_vs_dense_fp32']:.1e} | {r['rel_err_value_factor_fp32_vs_fp64']:.1e} | "
            f"{r['rel_err_value_dense_fp32_vs_fp64']:.1e} |"
        )
    if "b" in res:
        b = res["b"]
        lines += [
            "",
            f"## (b) LoRA training step, r = 16 on attention + MLP ({b['lora_layers']} layers), batch {b['batch']}",
            "",
            f"- model: {b['model_params'] / 1e6:.1f} M parameters (Llama-shaped, from config)",
            f"- step without OrthoReg (median): {b['median_plain_s']:.3f} s; with: {b['median_orthoreg_s']:.3f} s; "
            f"**overhead ratio {b['overhead_ratio']:.3f}** (medians; fastest vs fastest: {b.get('overhead_ratio_min', float('nan')):.3f})",
            f"- CPU time of the process (1 thread; not affected by other jobs' load): median step "
            f"{statistics.median(b['step_plain_cpu_s']):.3f} s without, {statistics.median(b['step_orthoreg_cpu_s']):.3f} s "
            f"with: **overhead ratio {b['overhead_ratio_cpu_time']:.3f}**"
            if "overhead_ratio_cpu_time" in b
            else "- (CPU-time ratio not measured in this run)",
            f"- the regulariser alone (forward + backward): {b['regulariser_fwd_bwd_s'] * 1e3:.1f} ms = "
            f"{100 * b['regulariser_share_of_step']:.2f} % of a plain step",
        ]
    if "c" in res:
        c = res["c"]
        lines += [
            "",
            f"## (c) Full fine-tuning: {c['regularised_matrices']} matrices, {c['regularised_params'] / 1e6:.1f} M "
            f"parameters regularised, batch {c['batch']}",
            "",
            "| | fwd + bwd s | relative to the model's fwd + bwd |",
            "|---|---|---|",
            f"| model | {c['model_fwd_bwd_s']:.3f} | 1 |",
            f"| dense exact OrthoReg | {c['dense_fwd_bwd_s']:.3f} | {c['dense_overhead']:.3f} |",
            f"| Hutchinson p = 1 | {c['hutchinson_p1_fwd_bwd_s']:.3f} | {c['hutchinson_p1_overhead']:.3f} |",
            f"| Hutchinson p = 4 | {c['hutchinson_p4_fwd_bwd_s']:.3f} | {c['hutchinson_p4_overhead']:.3f} |",
            "",
            f"W⁰ snapshot: {c['w0_snapshot_MiB']:.0f} MiB.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny shapes and model: a smoke test")
    parser.add_argument("--parts", default="abc", help="which parts to run (default abc)")
    parser.add_argument("--step-reps", type=int, default=3, help="alternated step pairs in (b) (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"), help="results directory")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    res: dict = {
        "command": "python benchmarks/orthoreg_cost.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "threads": args.threads,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    out = Path(args.out)
    name = "orthoreg_cost_quick" if args.quick else "orthoreg_cost"
    previous = out / f"{name}.json"
    res["part_commands"] = {p: res["command"] for p in "abc" if p in args.parts}
    if args.parts != "abc" and previous.is_file():  # re-running some parts keeps the others' figures
        kept = json.loads(previous.read_text())
        for p in "abc":
            if p in kept and p not in args.parts:
                res[p] = kept[p]
                res["part_commands"][p] = kept.get("part_commands", {}).get(p, kept["command"])
    t0 = time.perf_counter()
    if "a" in args.parts:
        shapes = [(64, 64), (128, 300)] if args.quick else [(1024, 1024), (4096, 4096), (4096, 11008)]
        ranks = [4, 8] if args.quick else [8, 16, 64]
        res["a"] = part_a(shapes, ranks, dense_reps=1 if not args.quick else 2, factor_reps=5)
    batch = (2, 16) if args.quick else (8, 128)
    if "b" in args.parts:
        res["b"] = part_b(args.quick, reps=2 if args.quick else args.step_reps, batch=batch)
        print(json.dumps(res["b"]), flush=True)
    if "c" in args.parts:
        res["c"] = part_c(args.quick, reps=1 if args.quick else 2, batch=batch)
        print(json.dumps(res["c"]), flush=True)
    res["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    res["total_s"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    for suffix, write in (
        (".json", lambda p: p.write_text(json.dumps(res, indent=1) + "\n")),
        (".md", lambda p: p.write_text(render_markdown(res))),
    ):
        tmp = out / f".{name}{suffix}.tmp"
        write(tmp)
        os.replace(tmp, out / f"{name}{suffix}")
    print(f"wrote {out / name}.json and .md in {res['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
