"""LoRA merging in factor space (`mergekit_plugins.lora`) against densify + the dense method (`mergekit_plugins.core`).

Part 1, per matrix (4096 × 4096 and 4096 × 11008, r = 16, T = 4 and 8; task_arithmetic, tsv, iso_c; random
factors): wall time, peak extra memory (a forked child's VmHWM minus its starting RSS) and relative Frobenius error
of `merge_factors` against densify + the dense method in fp64 (the reference) and in fp32. A dense SVD of these
matrices takes minutes on one thread, so by default the dense route runs only where marked `measured` (every
task_arithmetic; iso_c at T = 4; tsv at 4096 × 4096, T = 4); elsewhere its time is extrapolated as the measured
densify time + (number of m × n SVDs the method needs) × the measured SVD time of that shape and dtype, and no
error is reported. `--full` measures everything (hours on one thread).

Part 2, whole adapters: 4 random r = 16 adapters on every linear layer of a Llama-7B-shaped model (LlamaConfig's
defaults; the base is a config.json only: `lora-merge` reads the shapes from the model built on the meta device),
`mergekit-plugins lora-merge` end to end in a subprocess under /usr/bin/time (wall, peak RSS). The dense route is
not run: its time is extrapolated from part 1's SVD times (one SVD per task and module for tsv, one per module for
iso_c), a lower bound that leaves out densifying and writing four full models.

Usage (about 20 minutes on one busy thread):
    OMP_NUM_THREADS=1 python benchmarks/lora_merge.py
Results: benchmarks/results/lora_merge.json and .md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from distill_ortho_merge.run_record import git_commit, machine
from mergekit_plugins import core
from mergekit_plugins.lora import merge_factors

HERE = Path(__file__).resolve().parent
SHAPES = [(4096, 4096), (4096, 11008)]
TASKS = [4, 8]
RANK = 16
METHODS = ["task_arithmetic", "tsv", "iso_c"]
DTYPES = {"fp64": torch.float64, "fp32": torch.float32}
DENSE = {"tsv": core.tsv_merge, "iso_c": core.iso_c_merge, "task_arithmetic": lambda d: torch.stack(d).sum(0)}
GOALS = {"speedup": 100.0, "fp64": 1e-5, "fp32": 1e-4}


def n_svds(method: str, T: int) -> int:
    """m × n SVDs of the dense route: TSV-M one per task, Iso-C one of the sum, task arithmetic none."""
    return {"tsv": T, "iso_c": 1, "task_arithmetic": 0}[method]


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _child(fn, conn):
    torch.set_num_threads(1)
    start = _rss_kb("VmRSS")
    result = fn()
    conn.send((result, (_rss_kb("VmHWM") - start) / 1024))
    conn.close()


def in_child(fn):
    """Run fn() in a forked child (inherits the inputs); returns (fn's result, peak extra MiB)."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, child))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def factors_for(m: int, n: int, T: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    scale = 2.0 / RANK  # lora_alpha / r with alpha = 2r folded into B, as lora-merge does
    return [
        (
            scale * torch.randn(m, RANK, generator=g, dtype=torch.float64),
            torch.randn(RANK, n, generator=g, dtype=torch.float64) / n**0.5,
        )
        for _ in range(T)
    ]


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(x.double() - ref) / torch.linalg.matrix_norm(ref))


def per_matrix(full: bool, repeats: int, shapes: list[tuple[int, int]]) -> tuple[list[dict], dict]:
    rows, svd_s = [], {}
    for m, n in shapes:
        for T in TASKS:
            fac64 = factors_for(m, n, T, seed=m + n + T)
            for method in METHODS:
                row = {"shape": f"{m}x{n}", "T": T, "method": method, "rank_in": RANK}
                results = {}
                for dname, dtype in DTYPES.items():
                    fac = [(b.to(dtype), a.to(dtype)) for b, a in fac64]

                    def run_factor(fac=fac, method=method):
                        times = []
                        for _ in range(repeats):
                            t = time.perf_counter()
                            out = merge_factors(method, fac)
                            times.append(time.perf_counter() - t)
                        return min(times), (out[0].numpy(), out[1].numpy())  # plain arrays through the pipe

                    (seconds, out), mem = in_child(run_factor)
                    out = (torch.from_numpy(out[0]), torch.from_numpy(out[1]))
                    results[dname] = out
                    row[f"factor_{dname}_s"], row[f"factor_{dname}_mib"] = round(seconds, 4), round(mem, 1)
                    row["rank_out"] = out[0].shape[1]
                measure = (
                    full
                    or method == "task_arithmetic"
                    or (method == "iso_c" and T == 4)
                    or (method == "tsv" and (m, n) == shapes[0] and T == 4)
                )
                for dname, dtype in DTYPES.items():
                    if not measure:
                        continue

                    def run_dense(dtype=dtype, dname=dname, method=method, fac64=fac64, results=results):
                        t = time.perf_counter()
                        deltas = [b.to(dtype) @ a.to(dtype) for b, a in fac64]
                        t_densify = time.perf_counter() - t
                        merged = DENSE[method](deltas)
                        seconds = time.perf_counter() - t
                        errors = {}
                        if dname == "fp64":  # the reference: errors of both factor results against it
                            errors = {d: rel(b @ a, merged) for d, (b, a) in results.items()}
                        return seconds, t_densify, errors

                    (seconds, t_densify, errors), mem = in_child(run_dense)
                    row[f"dense_{dname}_s"], row[f"dense_{dname}_mib"] = round(seconds, 2), round(mem, 1)
                    row[f"densify_{dname}_s"] = round(t_densify, 3)
                    for d, e in errors.items():
                        row[f"err_{d}"] = e
                    if method != "task_arithmetic":  # SVD time of this shape for the extrapolations
                        per = (seconds - t_densify) / n_svds(method, T)
                        svd_s.setdefault(f"{m}x{n}", {}).setdefault(dname, round(per, 2))
                row["dense"] = "measured" if measure else "extrapolated"
                rows.append(row)
                print(json.dumps(row), flush=True)
    for row in rows:  # fill the extrapolated dense times
        if row["dense"] == "extrapolated":
            for dname in DTYPES:
                svd = svd_s.get(row["shape"], {}).get(dname)
                ta = next(
                    r
                    for r in rows
                    if r["shape"] == row["shape"] and r["T"] == row["T"] and r["method"] == "task_arithmetic"
                )
                if svd is not None:
                    row[f"dense_{dname}_s"] = round(
                        ta[f"densify_{dname}_s"] + n_svds(row["method"], row["T"]) * svd, 2
                    )
        for dname in DTYPES:
            if f"dense_{dname}_s" in row:
                row[f"speedup_{dname}"] = round(row[f"dense_{dname}_s"] / row[f"factor_{dname}_s"], 1)
    return rows, svd_s


def llama7b_adapters(
    workdir: Path, size: dict, n_adapters: int = 4
) -> tuple[Path, list[Path], dict[str, tuple[int, int]]]:
    """A config-only Llama-7B-shaped base and `n_adapters` random r = 16 PEFT adapters on all linear layers."""
    from peft import LoraConfig
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    base = workdir / "llama7b"
    # default (size = {}): LlamaConfig's own defaults, Llama-7B's shapes (hidden 4096, MLP 11008, 32 layers)
    c = LlamaConfig(**size)
    c.save_pretrained(base)
    shapes = {}
    for layer in range(c.num_hidden_layers):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[f"model.layers.{layer}.self_attn.{proj}"] = (c.hidden_size, c.hidden_size)
        for proj, shape in (
            ("gate_proj", (c.intermediate_size, c.hidden_size)),
            ("up_proj", (c.intermediate_size, c.hidden_size)),
            ("down_proj", (c.hidden_size, c.intermediate_size)),
        ):
            shapes[f"model.layers.{layer}.mlp.{proj}"] = shape
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    paths = []
    for i in range(n_adapters):
        path = workdir / f"adapter{i}"
        LoraConfig(
            r=RANK,
            lora_alpha=2 * RANK,
            target_modules=targets,
            task_type="CAUSAL_LM",
            base_model_name_or_path=str(base),
        ).save_pretrained(str(path))
        g = torch.Generator().manual_seed(i)
        tensors = {}
        for module, (m, n) in shapes.items():
            tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(RANK, n, generator=g) / n**0.5
            tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(m, RANK, generator=g) * 0.01
        save_file(tensors, str(path / "adapter_model.safetensors"))
        paths.append(path)
    return base, paths, shapes


def whole_adapter(workdir: Path, svd_s: dict, methods: list[str], size: dict) -> list[dict]:
    import yaml

    base, adapters, shapes = llama7b_adapters(workdir, size)
    out = []
    for method in methods:
        cfg = workdir / f"{method}.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "merge_method": method,
                    "base_model": str(base),
                    "models": [{"model": str(a)} for a in adapters],
                }
            )
        )
        cmd = [
            sys.executable,
            "-m",
            "mergekit_plugins.cli",
            "lora-merge",
            str(cfg),
            str(workdir / f"out_{method}"),
            "--no-progress",
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        rss = int(
            next(line for line in proc.stderr.splitlines() if "Maximum resident set size" in line).split()[-1]
        )
        wall = next(line for line in proc.stderr.splitlines() if "Elapsed (wall clock)" in line).split()[-1]
        parts = [float(x) for x in wall.split(":")]
        wall_s = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
        dense = (
            sum(n_svds(method, len(adapters)) * svd_s[f"{min(s)}x{max(s)}"]["fp32"] for s in shapes.values())
            if method != "task_arithmetic"
            else None
        )
        row = {
            "method": method,
            "adapters": len(adapters),
            "modules": len(shapes),
            "rank_in": RANK,
            "lora_merge_wall_s": round(wall_s, 1),
            "lora_merge_peak_rss_mib": round(rss / 1024),
            "summary": proc.stdout.strip().splitlines()[-1],
            "dense_route_extrapolated_s": round(dense, 1) if dense is not None else None,
        }
        if dense is not None:
            row["speedup_vs_dense_lower_bound"] = round(dense / wall_s, 1)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def render_markdown(report: dict) -> str:
    run = report["run"]
    lines = [
        "# LoRA merging in factor space vs densify + dense method",
        "",
        f"Command: `{run['command']}`  ",
        f"Commit: `{run['commit']}`; wall {run['wall_s']:.0f} s; {run['machine']}",
        "",
        "## Per matrix (r = 16 per adapter, random factors)",
        "",
        "Dense times marked *extrapolated* = measured densify time + SVD count × measured SVD time of that shape "
        "(dense SVDs take minutes each on one thread); errors are relative Frobenius errors of the factor route "
        "against the dense route in fp64, where the dense route was measured.",
        "",
        "| shape | T | method | rank out | factor fp32 s | dense fp32 s | speedup fp32 | factor fp64 s | dense fp64 s | "
        "speedup fp64 | factor MiB (fp32) | dense MiB (fp32) | err fp64 | err fp32 | dense |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def f(row, key, fmt="{:.3g}"):
        return fmt.format(row[key]) if row.get(key) is not None else "–"

    for r in report["per_matrix"]:
        lines.append(
            f"| {r['shape']} | {r['T']} | {r['method']} | {r['rank_out']} | {f(r, 'factor_fp32_s')} | {f(r, 'dense_fp32_s')} | "
            f"{f(r, 'speedup_fp32', '{:.0f}×')} | {f(r, 'factor_fp64_s')} | {f(r, 'dense_fp64_s')} | "
            f"{f(r, 'speedup_fp64', '{:.0f}×')} | {f(r, 'factor_fp32_mib', '{:.0f}')} | {f(r, 'dense_fp32_mib', '{:.0f}')} | "
            f"{f(r, 'err_fp64', '{:.1e}')} | {f(r, 'err_fp32', '{:.1e}')} | {r['dense']} |"
        )
    g = report["goals"]
    lines += [
        "",
        f"Goals (≥ {GOALS['speedup']:.0f}× faster, err ≤ {GOALS['fp64']:g} fp64, ≤ {GOALS['fp32']:g} fp32): "
        f"speed {g['speed']}; fp64 error {g['fp64']}; fp32 error {g['fp32']}.",
        "",
    ]
    lines += [
        "## Whole adapters: 4 × r = 16 on every linear layer of a Llama-7B-shaped model",
        "",
        "| method | modules | lora-merge wall s | peak RSS MiB | dense route s (extrapolated lower bound) | speedup |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["whole_adapter"]:
        dense = r["dense_route_extrapolated_s"]
        lines.append(
            f"| {r['method']} | {r['modules']} | {r['lora_merge_wall_s']} | {r['lora_merge_peak_rss_mib']} | "
            f"{dense if dense is not None else '– (no SVD)'} | {str(r.get('speedup_vs_dense_lower_bound', '–')) + ('×' if dense is not None else '')} |"
        )
    lines += [
        "",
        "The dense route's whole-model time is Σ over modules of its SVD count × part 1's measured fp32 "
        "SVD time of that shape; it leaves out densifying and writing four 7B models, so the real route is "
        "slower still.",
        "",
    ]
    return "\n".join(lines)


def goals(rows: list[dict]) -> dict:
    speed = [r["speedup_fp32"] for r in rows if r["method"] != "task_arithmetic" and "speedup_fp32" in r]
    out = {
        "speed": f"min fp32 speedup of tsv/iso_c {min(speed):.0f}× ({'met' if min(speed) >= GOALS['speedup'] else 'NOT met'})"
    }
    for d in ("fp64", "fp32"):
        errs = [r[f"err_{d}"] for r in rows if f"err_{d}" in r]
        worst = max(errs)
        out[d] = (
            f"max {worst:.1e} over {len(errs)} measured cases ({'met' if worst <= GOALS[d] else 'NOT met'})"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="measure the dense route everywhere (hours)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the factor route (best taken)")
    parser.add_argument("--whole-methods", default="tsv,iso_c,task_arithmetic")
    parser.add_argument("--out", default=str(HERE / "results" / "lora_merge"))
    parser.add_argument(
        "--shapes", default="4096x4096,4096x11008", help="per-matrix shapes (first: tsv measured)"
    )
    parser.add_argument("--no-whole", action="store_true", help="skip the whole-adapter part")
    parser.add_argument(
        "--whole-size", default="", help="smoke tests only: hidden,mlp,layers of the Llama model"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    load_before = os.getloadavg()
    commit = git_commit()
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    rows, svd_s = per_matrix(args.full, args.repeats, shapes)
    whole = []
    if not args.no_whole:
        with tempfile.TemporaryDirectory(prefix="lora_merge_bench_") as tmp:
            keys = ("hidden_size", "intermediate_size", "num_hidden_layers")
            size = (
                dict(zip(keys, map(int, args.whole_size.split(",")), strict=True)) if args.whole_size else {}
            )
            whole = whole_adapter(Path(tmp), svd_s, args.whole_methods.split(","), size)
    report = {
        "run": {
            "commit": commit,
            "command": "OMP_NUM_THREADS=1 python benchmarks/lora_merge.py " + " ".join(sys.argv[1:]),
            "machine": f"{machine(1)}, {platform.platform()}; "
            f"shared with other jobs (load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after): "
            "absolute times are noisy, ratios were measured side by side",
            "wall_s": round(time.perf_counter() - start, 1),
        },
        "per_matrix": rows,
        "svd_seconds": svd_s,
        "goals": goals(rows),
        "whole_adapter": whole,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(render_markdown(report))
    print(render_markdown(report))


if __name__ == "__main__":
    main()
