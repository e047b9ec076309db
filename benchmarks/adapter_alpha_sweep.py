"""Choosing α for K LoRA adapters: the factor-space sweep against the dense routes, same grid, same evaluation.

Routes, each timed end to end (in one process, imports excluded), each scoring every α of the grid with the same
verifier evaluation (`math_answer`, greedy, on K small arithmetic tasks):

- ``factor``: `search-alpha` on the `lora-merge` config (adapter directories): one factor-space merge at α = 1,
  base loaded once, W = W₀ + α·B·A written in memory per α.
- ``dense_once``: export base + adapter as K full models (`peft-orthoreg export`'s `TaskVector.export_model`),
  then `search-alpha` on the dense mergekit config (mergekit once at α = 1, in-memory sweep).
- ``dense_per_alpha``: the K exports, then per α a mergekit run at that α, a load from disk and the evaluation
  (what a user without `search-alpha` does).

Scores must be equal across routes (up to float32 rounding; the report lists the largest difference). The default
evaluation, `text_checksum`, is greedy generation on each task's prompts scored by a checksum of the completion's
characters: on a random model a verifier scores 0 everywhere, which would make "equal scores" say nothing.

The model is a random Llama built here (`--hidden`, `--layers`; a character-level tokenizer) with K random adapters,
or a real model with trained adapters (`--model`, `--adapters`, scored by a verifier on `--eval-data`); the
report says which model ran.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/adapter_alpha_sweep.py [--k 4] [--hidden 512] [--layers 8]
    OMP_NUM_THREADS=1 python benchmarks/adapter_alpha_sweep.py --model smollm2-135m-instruct \
        --adapters DIR1 DIR2 DIR3 DIR4 --eval reasoning_gym --eval-data 'chain_sum=reasoning_gym:chain_sum?...' ... \
        --out benchmarks/results/adapter_alpha_sweep_smollm2
Results: benchmarks/results/adapter_alpha_sweep/{results.json,results.md,run.json}.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from distill_ortho_merge.run_record import git_commit, machine

HERE = Path(__file__).resolve().parent
METHOD = "tsv"


def char_tokenizer():
    """A character-level tokenizer (offline, no download): printable ASCII and newline, with pad/eos."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {"<pad>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), "isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def build(root: Path, k: int, hidden: int, layers: int, rank: int) -> tuple[Path, list[Path]]:
    """A random Llama base and K random LoRA adapters (every linear layer, rank `rank`)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = char_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 8 // 3 // 8 * 8,
                         num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                         num_key_value_heads=max(1, hidden // 64), max_position_embeddings=512,
                         pad_token_id=0, eos_token_id=1, bos_token_id=1, tie_word_embeddings=False)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    adapters = []
    for t in range(k):
        model = LlamaForCausalLM.from_pretrained(root / "base")
        peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=rank, target_modules=targets))
        gen = torch.Generator().manual_seed(100 + t)
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
        peft_model.save_pretrained(root / f"task{t}")
        adapters.append(root / f"task{t}")
    return root / "base", adapters


def eval_data(root: Path, k: int, n: int) -> list[str]:
    from distill_ortho_merge.data import load_dataset_rows

    out = []
    for t in range(k):
        path = root / f"task{t}.jsonl"
        rows = load_dataset_rows("arithmetic", size=n, seed=t)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out.append(f"task{t}={path}")
    return out


def text_checksum(model, tokenizer) -> dict[str, float]:
    """The evaluation every route runs: greedy completions of each task's prompts, each scored by a checksum of its
    characters in [0, 1] (a number that moves with any change of a completion, unlike exact match on a random
    model, where every verifier gives 0)."""
    from distill_ortho_merge.generation import generate

    root = Path(os.environ["ALPHA_SWEEP_DATA"])
    out = {}
    for path in sorted(root.glob("task*.jsonl")):
        prompts = [json.loads(line)["prompt"] for line in path.read_text().splitlines()]
        texts = [
            g[0].text
            for g in generate(model, tokenizer, prompts, max_new_tokens=int(os.environ["ALPHA_SWEEP_TOKENS"]))
        ]
        out[path.stem] = sum(sum(map(ord, t)) % 101 / 100 for t in texts) / len(texts)
    return out


def write_yaml(path: Path, base: Path, models: list[Path]) -> Path:
    path.write_text(yaml.safe_dump({"merge_method": METHOD, "base_model": str(base), "dtype": "float32",
                                    "models": [{"model": str(m)} for m in models]}))  # fmt: skip
    return path


def run(args: argparse.Namespace) -> dict:
    from mergekit_plugins.search import (
        _run_mergekit,
        _with_scale,
        make_evaluator,
        read_merge_config,
        search_alpha,
    )
    from mergekit_plugins.search_config import SearchAlphaConfig, parse_grid
    from peft_orthoreg.diagnostics import load_input

    root = Path(tempfile.mkdtemp(prefix="alpha-sweep-"))
    if args.model:
        from distill_ortho_merge.models import resolve_model

        base, adapters, data = (
            Path(resolve_model(args.model)),
            [Path(a) for a in args.adapters],
            args.eval_data,
        )
        args.k = len(adapters)
        args.rank = json.loads((adapters[0] / "adapter_config.json").read_text())["r"]
        from distill_ortho_merge.data import load_dataset_rows

        args.items = len(load_dataset_rows(data[0].partition("=")[2]))
    else:
        base, adapters = build(root, args.k, args.hidden, args.layers, args.rank)
        data = eval_data(root, args.k, args.items)
    os.environ["ALPHA_SWEEP_DATA"], os.environ["ALPHA_SWEEP_TOKENS"] = str(root), str(args.max_new_tokens)
    if args.eval == "text_checksum":
        common = dict(eval="adapter_alpha_sweep:text_checksum", grid=args.grid, progress=False)
    else:  # a verifier: exact accuracy and mean score (0 on the random model: equal scores then say little)
        common = dict(eval=args.eval, eval_data=data, max_new_tokens=args.max_new_tokens, grid=args.grid,
                      progress=False)  # fmt: skip
    times: dict[str, list[float]] = {}
    curves, parts = {}, {}
    lora_yaml = write_yaml(root / "lora.yaml", base, adapters)

    def export() -> tuple[float, Path]:
        t0 = time.perf_counter()
        exported = []
        for a in adapters:
            out = root / f"full_{a.name}"
            shutil.rmtree(out, ignore_errors=True)
            load_input(str(a), base=str(base)).export_model(str(base), str(out), alpha=1.0)
            exported.append(out)
        return time.perf_counter() - t0, write_yaml(root / "dense.yaml", base, exported)

    def factor() -> float:
        t0 = time.perf_counter()
        report = search_alpha(
            SearchAlphaConfig(config=str(lora_yaml), output_json=str(root / "factor.json"), **common)
        )
        curves["factor"], parts["factor"] = [r["scores"] for r in report["results"]], report["seconds"]
        return time.perf_counter() - t0

    def dense_once() -> float:
        export_s, dense_yaml = export()
        t0 = time.perf_counter()
        report = search_alpha(
            SearchAlphaConfig(config=str(dense_yaml), output_json=str(root / "dense.json"), **common)
        )
        curves["dense_once"] = [r["scores"] for r in report["results"]]
        parts["dense_once"] = {"export": round(export_s, 3), **report["seconds"]}
        return export_s + time.perf_counter() - t0

    def dense_per_alpha() -> float:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        export_s, dense_yaml = export()
        t0 = time.perf_counter()
        evaluate = make_evaluator(SearchAlphaConfig(config=str(dense_yaml), **common))
        config = read_merge_config(str(dense_yaml))
        curve = []
        for alpha in parse_grid(args.grid):
            out = root / f"merged_{alpha}"
            shutil.rmtree(out, ignore_errors=True)
            _run_mergekit(
                _with_scale(config, "alpha", alpha), str(out), SearchAlphaConfig(config="", eval="")
            )
            model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
            with torch.no_grad():
                scores = evaluate(model, AutoTokenizer.from_pretrained(out))
            curve.append({t: m["mean_score"] if isinstance(m, dict) else m for t, m in scores.items()})
        curves["dense_per_alpha"] = curve
        return export_s + time.perf_counter() - t0

    routes = {"factor": factor, "dense_once": dense_once, "dense_per_alpha": dense_per_alpha}
    for rep in range(args.repeats):  # alternate the order: the machine's load drifts
        for name in list(routes)[:: 1 if rep % 2 == 0 else -1]:
            times.setdefault(name, []).append(routes[name]())
    best = {k: min(v) for k, v in times.items()}

    diff = max(abs(a[t] - b[t]) for name in ("dense_once", "dense_per_alpha")
               for a, b in zip(curves["factor"], curves[name], strict=True) for t in a)  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    model = f"{args.model}, trained adapters" if args.model else f"random Llama, hidden {args.hidden}, {args.layers} layers, char tokenizer"  # fmt: skip
    return {
        "model": model,
        "k": args.k, "rank": args.rank, "method": METHOD, "grid": parse_grid(args.grid), "items_per_task": args.items,
        "max_new_tokens": args.max_new_tokens, "repeats": args.repeats, "eval": args.eval,
        "seconds": {k: round(v, 2) for k, v in best.items()},
        "all_seconds": {k: [round(x, 2) for x in v] for k, v in times.items()}, "parts_last_run": parts,
        "speedup": {k: round(v / best["factor"], 2) for k, v in best.items() if k != "factor"},
        "max_score_difference": diff, "curves": curves,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--items", type=int, default=8, help="eval rows per task")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--grid", default="0.2:1.0:0.2")
    parser.add_argument("--eval", default="text_checksum", help="text_checksum, or a verifier (math_answer)")
    parser.add_argument("--model", default=None, help="a real base model (directory or built-in name)")
    parser.add_argument(
        "--adapters", nargs="+", default=[], help="with --model: its LoRA adapter directories"
    )
    parser.add_argument(
        "--eval-data", action="append", default=[], help="with --model: TASK=FILE or TASK=SPEC"
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs per route (order alternated); min reported"
    )
    parser.add_argument("--out", default=str(HERE / "results" / "adapter_alpha_sweep"))
    args = parser.parse_args()
    if args.model and (not args.adapters or not args.eval_data or args.eval == "text_checksum"):
        parser.error("--model needs --adapters, --eval-data and a verifier --eval")
    start = time.perf_counter()
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result["run"] = {
        "git_commit": git_commit(), "command": "python " + shlex.join(sys.argv),
        "machine": machine(torch.get_num_threads()), "wall_seconds": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "run.json").write_text(json.dumps(result["run"], indent=1) + "\n")
    (out / "results.md").write_text(render_markdown(result))
    print(render_markdown(result))


def render_markdown(result: dict) -> str:
    """The results table (benchmarks/selfcheck.py checks the committed one against its JSON)."""
    s, x = result["seconds"], result["speedup"]
    return (
        f"# α sweep for {result['k']} LoRA adapters ({result['method']}, {len(result['grid'])} α values)\n\n"
        f"Model: {result['model']}; rank {result['rank']}; {result['items_per_task']} items per task, "
        f"{result['max_new_tokens']} new tokens; evaluation {result['eval']}; {result['run']['machine']}.\n\n"
        "| route | seconds | factor route faster by |\n|---|---|---|\n"
        f"| factor (search-alpha on the lora-merge config) | {s['factor']} | — |\n"
        f"| dense_once (export K + search-alpha dense) | {s['dense_once']} | {x['dense_once']}× |\n"
        f"| dense_per_alpha (export K + mergekit per α) | {s['dense_per_alpha']} | {x['dense_per_alpha']}× |\n\n"
        f"Seconds: the fastest of {result['repeats']} runs per route (order alternated; all runs in results.json). "
        f"Largest score difference between routes: {result['max_score_difference']:.3g}.\n"
    )  # fmt: skip


if __name__ == "__main__":
    main()
