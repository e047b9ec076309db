"""First and second load time of the built-in models (`distill_ortho_merge.models`).

First load = resolve the name (find/assemble the GGUF, de-quantise, build the tokenizer, save into an empty cache)
plus `from_pretrained` of model and tokenizer from the cache; second load = the same call once the cache exists.
Each measurement runs in a fresh Python process (imports excluded from the timed part, reported separately).

    python benchmarks/model_load.py [--models smollm2-135m-instruct gemma-3-270m] [--threads 1]

Writes benchmarks/results/model_load.json and .md (a `run` block: git commit, command, machine, wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distill_ortho_merge.run_record import git_commit, machine

CHILD = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from distill_ortho_merge.models import resolve_model, dir_size
torch.set_num_threads(int(sys.argv[2]))
t1 = time.perf_counter()
path = resolve_model(sys.argv[1], "model")
t2 = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(path)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "resolve_s": t2 - t1, "from_pretrained_s": t3 - t2, "total_s": t3 - t1,
                  "params_M": sum(p.numel() for p in model.parameters()) / 1e6, "vocab": len(tok),
                  "cache_MB": dir_size(path) / 2**20,
                  "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(name: str, threads: int, env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name}: {proc.stderr.strip().splitlines()[-1]}")
    return {k: round(v, 2) for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}


def render_markdown(res: dict) -> str:
    lines = [
        "# Built-in model load times (first = convert GGUF into an empty cache + load; second = load from cache)",
        "",
        f"Command: `{res['run']['command']}`; commit {res['run']['git_commit']}; {res['run']['machine']}; "
        f"{res['run']['threads']} torch thread(s); load average before {res['run']['loadavg_before']}; "
        f"wall {res['run']['wall_s']} s.",
        "",
        "| model | params (M) | vocab | first load (s) | second load (s) | cache (MB) | peak RSS first / second (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in res["models"].items():
        f, s = r["first"], r["second"]
        lines.append(
            f"| {name} | {f['params_M']} | {f['vocab']} | {f['total_s']} | {s['total_s']} | {f['cache_MB']} "
            f"| {f['peak_rss_MB']} / {s['peak_rss_MB']} |"
        )
    lines += ["", "Times exclude Python imports (torch + transformers, measured separately in the JSON)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    commit = git_commit()
    run = {
        "command": "python benchmarks/model_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "git_commit": commit,
        "machine": machine(),
        "threads": args.threads,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }
    t0 = time.perf_counter()
    models = {}
    with tempfile.TemporaryDirectory(
        prefix="model-load-cache-"
    ) as cache:  # an empty cache: a true first load
        env = {**os.environ, "DISTILL_ORTHO_MERGE_CACHE": cache, "OMP_NUM_THREADS": str(args.threads),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
        for name in args.models:
            models[name] = {
                "first": measure(name, args.threads, env),
                "second": measure(name, args.threads, env),
            }
            print(name, json.dumps(models[name]), flush=True)
    run["wall_s"] = round(time.perf_counter() - t0, 1)
    run["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    res = {"run": run, "models": models}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_load.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "model_load.md").write_text(render_markdown(res))
    print(render_markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
