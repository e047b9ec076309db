"""Merge speed: whole `mergekit-yaml` runs of tsv / iso_c / iso_cts against mergekit's task_arithmetic and ties,
and `mergekit-plugins search-alpha` (one merge + in-memory sweep) against separate runs per α.

Inputs (same for every method): a Llama-shaped model built from a config (hidden 576, 30 layers, MLP 1536,
vocab 49,152, tied embeddings, ~135 M parameters, fp32) plus 4 "fine-tunes" (every weight + N(0, 1e-3)),
saved to --workdir once and reused. Each run is a separate process under `/usr/bin/time -v` (wall time and peak
RSS); built-ins run through plain `mergekit-yaml`, ours through `mergekit-plugins yaml`. Also measured: the
accuracy of the fp32 kernels on layer 0's real deltas against an fp64 reference, with and without the
QR-preconditioned SVD.

Usage (about 10 minutes on 2 shared cores):
    python benchmarks/merge_speed.py --repeats 1 --separate-runs 1
Results: benchmarks/results/merge_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402
import yaml  # noqa: E402

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
METHODS = {
    "task_arithmetic": {"parameters": {"lambda": 1.0}, "model_parameters": {"weight": 1.0}},
    "ties": {"parameters": {"lambda": 1.0}, "model_parameters": {"weight": 1.0, "density": 0.5}},
    "tsv": {"parameters": {"alpha": 1.0}},
    "iso_c": {"parameters": {"alpha": 1.0}},
    "iso_cts": {"parameters": {"alpha": 1.0, "common_space_fraction": 0.8}},
}
N_TASKS = 4


def build_models(workdir: Path, layers: int = 30) -> list[Path]:
    """Base + N_TASKS perturbed copies on disk (reused when present)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    paths = [workdir / "base"] + [workdir / f"ft{i}" for i in range(N_TASKS)]
    if all(
        (p / "model.safetensors").exists() or (p / "model.safetensors.index.json").exists() for p in paths
    ):
        return paths
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=layers,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(paths[0])
    base = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    for path in paths[1:]:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(base[name] + 1e-3 * torch.randn(p.shape, generator=gen))
        model.save_pretrained(path)
    return paths


def write_config(path: Path, method: str, paths: list[Path], **overrides) -> Path:
    spec = METHODS[method]
    models = [{"model": str(p), "parameters": dict(spec.get("model_parameters", {}))} for p in paths[1:]]
    for m in models:
        if not m["parameters"]:
            del m["parameters"]
    params = {**spec["parameters"], **overrides}
    config = {"merge_method": method, "base_model": str(paths[0]), "models": models, "parameters": params}
    config["dtype"] = "float32"
    path.write_text(yaml.safe_dump(config))
    return path


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run under /usr/bin/time -v; wall seconds and peak RSS (MiB) of the process tree's largest process."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(int(rss.group(1)) / 1024) if rss else None}


def merge_cmd(method: str, cfg: Path, out: Path, threads: int, wrapper: bool | None = None) -> list[str]:
    ours = method in ("tsv", "iso_c", "iso_cts") if wrapper is None else wrapper
    head = [str(BIN / "mergekit-plugins"), "yaml"] if ours else [str(BIN / "mergekit-yaml")]
    return [*head, str(cfg), str(out), "--quiet", "--num-threads", str(threads), "--no-copy-tokenizer"]


def loss_eval(model, tokenizer) -> dict[str, float]:
    """A cheap, deterministic validation score: negative LM loss on fixed random tokens (1 × 64)."""
    ids = torch.randint(0, model.config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return {"neg_loss": -float(model(ids, labels=ids).loss)}


def kernel_accuracy(paths: list[Path]) -> dict:
    """Relative Frobenius error of the fp32 kernels (QR-preconditioned and plain SVD) against fp64, layer 0."""
    from safetensors import safe_open

    from mergekit_plugins import core

    fns = {
        "tsv": core.tsv_merge,
        "iso_c": core.iso_c_merge,
        "iso_cts": lambda d: core.iso_cts_merge(d, 0.8),
    }
    handles = [safe_open(str(p / "model.safetensors"), "pt") for p in paths]
    names = [n for n in handles[0].keys() if n.startswith("model.layers.0.") and n.endswith("proj.weight")]
    out = {}
    for method, fn in fns.items():
        worst = {"qr": 0.0, "plain": 0.0}
        seconds = {"qr": 0.0, "plain": 0.0}
        for name in names:
            base = handles[0].get_tensor(name)
            deltas = [h.get_tensor(name) - base for h in handles[1:]]
            ref = fn([d.double() for d in deltas])
            for mode in ("qr", "plain"):
                core.QR_PRECONDITION = mode == "qr"
                t = time.perf_counter()
                got = fn(deltas)
                seconds[mode] += time.perf_counter() - t
                worst[mode] = max(worst[mode], float((got.double() - ref).norm() / ref.norm()))
        core.QR_PRECONDITION = True
        out[method] = {
            "max_rel_error_fp32_qr": worst["qr"],
            "max_rel_error_fp32_plain_svd": worst["plain"],
            "layer0_seconds_qr": round(seconds["qr"], 3),
            "layer0_seconds_plain_svd": round(seconds["plain"], 3),
        }
    return out


def search_comparison(method: str, paths: list[Path], workdir: Path, threads: int, n_separate: int) -> dict:
    """search-alpha over 21 α against separate merges (+ load + the same evaluation) per α."""
    from transformers import AutoModelForCausalLM

    grid = "0.1:2.1:0.1" if method != "task_arithmetic" else "0.0:1.0:0.05"
    param = "alpha" if method != "task_arithmetic" else "lambda"
    cfg = write_config(workdir / f"search_{method}.yaml", method, paths)
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        str(BIN / "mergekit-plugins"), "search-alpha", str(cfg), "--eval", "merge_speed:loss_eval",
        "--grid", grid, "--output-json", str(workdir / f"search_{method}.json"), "--no-progress",
        "--num-threads", str(threads),
    ]  # fmt: skip
    search = timed(cmd, env=env)
    result = json.loads((workdir / f"search_{method}.json").read_text())
    values = result["grid"]
    separate = []
    torch.set_num_threads(threads)
    for alpha in values[1 : 1 + n_separate]:
        t = time.perf_counter()
        one = write_config(workdir / f"sep_{method}.yaml", method, paths, **{param: alpha})
        run = timed(merge_cmd(method, one, workdir / "sep_out", threads, wrapper=method != "task_arithmetic"))
        model = AutoModelForCausalLM.from_pretrained(workdir / "sep_out", dtype=torch.float32)
        score = loss_eval(model, None)["neg_loss"]
        del model
        shutil.rmtree(workdir / "sep_out")
        expected = next(r for r in result["results"] if r["alpha"] == alpha)["scores"]["neg_loss"]
        separate.append(
            {"alpha": alpha, "wall_s": round(time.perf_counter() - t, 2), "merge_only": run, "score": score,
             "search_alpha_score": expected}
        )  # fmt: skip
    per_run = statistics.mean(s["wall_s"] for s in separate)
    extrapolated = per_run * len(values)
    return {
        "method": method,
        "grid": grid,
        "n_alpha": len(values),
        "search_alpha": search,
        "search_alpha_internal_s": result["seconds"],
        "separate_runs_measured": separate,
        "separate_run_mean_s": round(per_run, 2),
        "separate_21_runs_s_extrapolated": round(extrapolated, 1),
        "speedup": round(extrapolated / search["wall_s"], 1),
        "max_abs_score_diff_search_vs_separate": max(
            abs(s["score"] - s["search_alpha_score"]) for s in separate
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", default="/tmp/merge_speed", help="where models and outputs go")
    parser.add_argument("--repeats", type=int, default=1, help="whole-run repetitions per method (median)")
    parser.add_argument("--threads", type=int, default=1, help="mergekit --num-threads (torch threads)")
    parser.add_argument(
        "--separate-runs", type=int, default=1, help="separate runs measured per search method"
    )
    parser.add_argument(
        "--search-methods", default="tsv,task_arithmetic", help="methods for the α comparison"
    )
    parser.add_argument("--layers", type=int, default=30, help="decoder layers (30 = the ~135 M model)")
    parser.add_argument("--out", default=str(HERE / "results" / "merge_speed"), help="results path stem")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = build_models(workdir, args.layers)
    from safetensors import safe_open

    with safe_open(str(paths[0] / "model.safetensors"), "pt") as f:  # shapes from the header, no tensor read
        n_params = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    runs["task_arithmetic (via mergekit-plugins yaml)"] = []
    for _ in range(args.repeats):
        for method in METHODS:
            cfg = write_config(workdir / f"{method}.yaml", method, paths)
            runs[method].append(timed(merge_cmd(method, cfg, workdir / "out", args.threads)))
            shutil.rmtree(workdir / "out")
            print(method, runs[method][-1], flush=True)
        cfg = workdir / "task_arithmetic.yaml"
        runs["task_arithmetic (via mergekit-plugins yaml)"].append(
            timed(merge_cmd("task_arithmetic", cfg, workdir / "out", args.threads, wrapper=True))
        )
        shutil.rmtree(workdir / "out")
    ta = statistics.median(r["wall_s"] for r in runs["task_arithmetic"])
    ta_rss = statistics.median(r["peak_rss_mib"] for r in runs["task_arithmetic"])
    summary = {
        m: {
            "wall_s_median": statistics.median(r["wall_s"] for r in rs),
            "peak_rss_mib_median": statistics.median(r["peak_rss_mib"] for r in rs),
            "wall_ratio_vs_task_arithmetic": round(statistics.median(r["wall_s"] for r in rs) / ta, 2),
            "rss_ratio_vs_task_arithmetic": round(
                statistics.median(r["peak_rss_mib"] for r in rs) / ta_rss, 2
            ),
            "runs": rs,
        }
        for m, rs in runs.items()
    }
    torch.set_num_threads(args.threads)
    accuracy = kernel_accuracy(paths)
    print("accuracy", accuracy, flush=True)
    search = [
        search_comparison(m, paths, workdir, args.threads, args.separate_runs)
        for m in args.search_methods.split(",")
        if m
    ]
    report = {
        "command": "python benchmarks/merge_speed.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "load_avg_before": [round(x, 2) for x in load_before],
            "load_avg_after": [round(x, 2) for x in os.getloadavg()],
            "note": "2-core machine shared with other engineers' jobs: absolute times are noisy; ratios were "
            "measured side by side in one run.",
        },
        "model": {
            "parameters": n_params,
            "layers": args.layers,
            "tasks": N_TASKS,
            "dtype": "float32",
            "threads": args.threads,
        },
        "repeats": args.repeats,
        "merge_runs": summary,
        "kernel_accuracy_layer0": accuracy,
        "search_alpha": search,
        "total_benchmark_s": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(render_markdown(report))
    print(render_markdown(report))


def render_markdown(r: dict) -> str:
    """The .md table, rendered from the JSON report only (tests/test_benchmark_results.py re-renders it)."""
    lines = [
        "# Merge speed (`benchmarks/merge_speed.py`)",
        "",
        f"Command: `{r['command']}`  ",
        f"Model: Llama-shaped, {r['model']['parameters'] / 1e6:.1f} M parameters (fp32), {r['model']['tasks']} task "
        f"models; torch threads {r['model']['threads']}; {r['repeats']} repetition(s) per method (median).  ",
        f"Machine: {r['machine']['cpus']} CPUs, **shared with other engineers' jobs** (load average "
        f"{r['machine']['load_avg_before']} before, {r['machine']['load_avg_after']} after): absolute times are "
        "noisy; the ratios come from runs taken side by side.",
        "",
        "| method (whole run) | wall s | × task_arithmetic | peak RSS MiB | × task_arithmetic |",
        "|---|---|---|---|---|",
    ]
    for m, s in r["merge_runs"].items():
        lines.append(
            f"| `{m}` | {s['wall_s_median']} | {s['wall_ratio_vs_task_arithmetic']} | {s['peak_rss_mib_median']} | "
            f"{s['rss_ratio_vs_task_arithmetic']} |"
        )
    lines += [
        "",
        "Kernel accuracy on layer 0's seven projections (relative Frobenius error of the fp32 result vs fp64):",
        "",
        "| method | QR-preconditioned SVD | plain torch.linalg.svd | layer-0 s (QR) | layer-0 s (plain) |",
        "|---|---|---|---|---|",
    ]
    for m, a in r["kernel_accuracy_layer0"].items():
        lines.append(
            f"| `{m}` | {a['max_rel_error_fp32_qr']:.1e} | {a['max_rel_error_fp32_plain_svd']:.1e} | "
            f"{a['layer0_seconds_qr']} | {a['layer0_seconds_plain_svd']} |"
        )
    lines += [
        "",
        "search-alpha (one merge + in-memory sweep + evaluation per α) vs separate runs (merge + load + the same "
        "evaluation per α; the mean of the measured separate runs × the number of α):",
        "",
        "| method | α values | search-alpha wall s | peak RSS MiB | separate run s (measured n) | 21 separate runs s | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in r["search_alpha"]:
        lines.append(
            f"| `{s['method']}` | {s['n_alpha']} ({s['grid']}) | {s['search_alpha']['wall_s']} | "
            f"{s['search_alpha']['peak_rss_mib']} | {s['separate_run_mean_s']} ({len(s['separate_runs_measured'])}) | "
            f"{s['separate_21_runs_s_extrapolated']} | {s['speedup']}× |"
        )
    lines += ["", f"Total benchmark time: {r['total_benchmark_s']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
