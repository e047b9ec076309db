"""Choosing α for K LoRA adapters: the factor-space sweep against the dense routes, same grid, same evaluation.

Routes, each timed end to end (in one process, imports excluded), each scoring every α of the grid with the same
verifier evaluation (`math_answer`, greedy, on K small arithmetic tasks):

- ``factor``: `search-alpha` on the `lora-merge` config (adapter directories): one factor-space merge at α = 1,
  base loaded once, W = W₀ + α·B·A written in memory per α.
- ``dense_once``: export base + adapter as K full models (`peft-orthoreg export`'s `TaskVector.export_model`),
  then `search-alpha` on the dense mergekit config (mergekit once at α = 1, in-memory sweep).
- ``dense_per_alpha``: the K exports, then per α a mergekit run at that α, a load from disk and the evaluation
  (what a user without `search-alpha` does).

Scores must be equal across routes (up to float32 rounding; the report lists the largest difference).

The model is a random Llama built here (`--hidden`, `--layers`; a character-level tokenizer) because the built-in
SmolLM2 may not be installed; the report says which model ran.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/adapter_alpha_sweep.py [--k 4] [--hidden 512] [--layers 8]
Results: benchmarks/results/adapter_alpha_sweep/{results.json,results.md,run.json}.
"""

from __future__ import annotations

import argparse
import json
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
    base, adapters = build(root, args.k, args.hidden, args.layers, args.rank)
    data = eval_data(root, args.k, args.items)
    common = dict(eval="math_answer", eval_data=data, max_new_tokens=args.max_new_tokens, grid=args.grid,
                  progress=False)  # fmt: skip
    times, curves = {}, {}

    t0 = time.perf_counter()
    cfg = SearchAlphaConfig(config=str(write_yaml(root / "lora.yaml", base, adapters)),
                            output_json=str(root / "factor.json"), **common)  # fmt: skip
    report = search_alpha(cfg)
    times["factor"] = time.perf_counter() - t0
    curves["factor"] = [r["mean_score"] for r in report["results"]]

    t0 = time.perf_counter()
    exported = []
    for a in adapters:
        load_input(str(a), base=str(base)).export_model(str(base), str(root / f"full_{a.name}"), alpha=1.0)
        exported.append(root / f"full_{a.name}")
    export_s = time.perf_counter() - t0
    dense_yaml = write_yaml(root / "dense.yaml", base, exported)
    t0 = time.perf_counter()
    report = search_alpha(
        SearchAlphaConfig(config=str(dense_yaml), output_json=str(root / "dense.json"), **common)
    )
    times["dense_once"] = export_s + time.perf_counter() - t0
    curves["dense_once"] = [r["mean_score"] for r in report["results"]]

    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    evaluate = make_evaluator(SearchAlphaConfig(config=str(dense_yaml), **common))
    config = read_merge_config(str(dense_yaml))
    curve = []
    for alpha in parse_grid(args.grid):
        out = root / f"merged_{alpha}"
        _run_mergekit(_with_scale(config, "alpha", alpha), str(out), SearchAlphaConfig(config="", eval=""))
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        scores = evaluate(model, AutoTokenizer.from_pretrained(out))
        curve.append({t: m["mean_score"] for t, m in scores.items()})
    times["dense_per_alpha"] = export_s + time.perf_counter() - t0
    curves["dense_per_alpha"] = curve

    diff = max(abs(a[t] - b[t]) for name in ("dense_once", "dense_per_alpha")
               for a, b in zip(curves["factor"], curves[name], strict=True) for t in a)  # fmt: skip
    return {
        "model": f"random Llama, hidden {args.hidden}, {args.layers} layers, char tokenizer (SmolLM2 not used)",
        "k": args.k, "rank": args.rank, "method": METHOD, "grid": parse_grid(args.grid), "items_per_task": args.items,
        "max_new_tokens": args.max_new_tokens, "export_seconds": round(export_s, 2),
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "speedup": {k: round(v / times["factor"], 2) for k, v in times.items() if k != "factor"},
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
    parser.add_argument("--out", default=str(HERE / "results" / "adapter_alpha_sweep"))
    args = parser.parse_args()
    start = time.perf_counter()
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    s, x = result["seconds"], result["speedup"]
    (out / "results.md").write_text(
        f"# α sweep for {result['k']} LoRA adapters ({result['method']}, {len(result['grid'])} α values)\n\n"
        f"Model: {result['model']}; rank {result['rank']}; {result['items_per_task']} items per task, "
        f"{result['max_new_tokens']} new tokens.\n\n| route | seconds | factor route faster by |\n|---|---|---|\n"
        f"| factor (search-alpha on the lora-merge config) | {s['factor']} | — |\n"
        f"| dense_once (export K + search-alpha dense) | {s['dense_once']} | {x['dense_once']}× |\n"
        f"| dense_per_alpha (export K + mergekit per α) | {s['dense_per_alpha']} | {x['dense_per_alpha']}× |\n\n"
        f"Largest score difference between routes: {result['max_score_difference']:.3g}.\n"
    )  # fmt: skip
    (out / "run.json").write_text(json.dumps({
        "git_commit": git_commit(), "command": "python " + " ".join(sys.argv),
        "machine": machine(torch.get_num_threads()), "wall_seconds": round(time.perf_counter() - start, 1),
    }, indent=1) + "\n")  # fmt: skip
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()
