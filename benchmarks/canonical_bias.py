"""How much does sampled-vs-canonical tokenization bias the calibration reward?

With a model as its own proxy, r_cal = (log q(text) - log pi(y)) / bytes should be 0: q scores the policy
tokenizer's *canonical* encoding of the completion text, pi the *sampled* token path y, and the two differ whenever
the model samples a path that re-encoding never produces (e.g. " 4" + "2" where the tokenizer has " 42"). For each
model: sample completions at T = 1, count the non-canonical ones and average r_cal per byte with
`CalibrationReward(policy_tokenization="sampled")` (the default) and `"canonical"` (the fix: 0 by construction).

    python benchmarks/canonical_bias.py                                   # the tiny teacher (built in seconds)
    python benchmarks/canonical_bias.py --model smollm2=models/smollm2 --chat smollm2   # + a real tokenizer

`models/smollm2` comes from `examples/data/smollm2_from_gguf.py`. Writes benchmarks/results/canonical_bias.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import runpy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from distill_ortho_merge.run_record import git_commit, machine

ROOT = Path(__file__).resolve().parents[1]


def measure(path: str, rows: list[dict], chat: bool, samples: int, max_new_tokens: int, seed: int) -> dict:
    """Sample, then score every completion with the model as its own proxy, both ways."""
    from distill_ortho_merge.generation import generate
    from trl_distillguard.calibration_reward import CalibrationReward
    from trl_distillguard.loading import load_causal_lm
    from trl_distillguard.plugins import resolve_reward

    model, tok = load_causal_lm(path, "model")
    prompts = [[{"role": "user", "content": r["prompt"]}] if chat else r["prompt"] for r in rows]
    gens = generate(
        model, tok, prompts, max_new_tokens=max_new_tokens, temperature=1.0, num_return_sequences=samples,
        seed=seed,
    )  # fmt: skip
    flat = [(p, r, g) for p, r, group in zip(prompts, rows, gens, strict=True) for g in group]
    ps, texts, ids = [f[0] for f in flat], [f[2].text for f in flat], [f[2].token_ids for f in flat]
    out: dict = {"model": path, "chat": chat, "samples": len(flat)}
    for how in ("sampled", "canonical"):
        reward = CalibrationReward(model, tok, policy_tokenization=how)
        reward.bind_policy(model, tok)
        out[how] = reward(prompts=ps, completions=texts, completion_ids=ids)
    keep = [i for i, r in enumerate(out["sampled"]) if r is not None]
    eos = [g.token_ids[-1:] * g.ended_with_eos for _, _, g in flat]
    canonical = [
        list(tok(texts[i], add_special_tokens=False)["input_ids"]) + eos[i] for i in range(len(flat))
    ]
    odd = [i for i in keep if canonical[i] != ids[i]]
    verifier = resolve_reward("math_answer", "verifier")
    right = verifier(prompts=ps, completions=texts, answer=[f[1].get("answer", "") for f in flat])
    mean = lambda xs: statistics.fmean(xs) if xs else None  # noqa: E731
    return {
        "model": path,
        "chat": chat,
        "samples": len(flat),
        "scorable": len(keep),
        "non_canonical_frac": len(odd) / max(len(keep), 1),
        "r_cal_sampled_mean": mean([out["sampled"][i] for i in keep]),
        "r_cal_sampled_mean_non_canonical": mean([out["sampled"][i] for i in odd]),
        "r_cal_canonical_mean": mean([out["canonical"][i] for i in keep]),
        "r_cal_canonical_max_abs": max((abs(out["canonical"][i]) for i in keep), default=None),
        "math_answer_mean": mean([x for x in right if x is not None]),
        "examples": [
            {"text": texts[i], "sampled": tok.convert_ids_to_tokens(ids[i]), "r_cal": out["sampled"][i]}
            for i in odd[:3]
        ],
    }


def render_markdown(result: dict) -> str:
    lines = [
        "# Sampled-vs-canonical tokenization bias of the calibration reward",
        "",
        "Each model is its own proxy, so the unbiased r_cal is 0. `sampled` is the default "
        '(log pi of the sampled ids), `canonical` is `policy_tokenization="canonical"`. Per byte, T = 1.',
        "",
        "| model | samples (scorable) | non-canonical | mean r_cal, sampled | … on non-canonical samples "
        "| mean r_cal, canonical | max abs, canonical | math_answer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    f = lambda x, d=4: "—" if x is None else f"{x:+.{d}f}"  # noqa: E731
    for name, r in result["models"].items():
        lines.append(
            f"| {name} | {r['samples']} ({r['scorable']}) | {r['non_canonical_frac']:.1%} | "
            f"{f(r['r_cal_sampled_mean'])} | {f(r['r_cal_sampled_mean_non_canonical'])} | "
            f"{f(r['r_cal_canonical_mean'], 6)} | {f(r['r_cal_canonical_max_abs'], 6)} | "
            f"{f(r['math_answer_mean'], 3)} |"
        )
    run = result["run"]
    lines += [
        "",
        f"`{run['command']}` — commit {run['git_commit'][:12]}, {run['machine']}, {run['wall_s']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model", action="append", default=[], help="NAME=DIR (repeatable); default: the tiny teacher"
    )
    ap.add_argument(
        "--chat", default="", help="comma-separated NAMEs whose prompts go through the chat template"
    )
    ap.add_argument("--no_tiny", action="store_true", help="skip the tiny teacher")
    ap.add_argument("--data", default=str(ROOT / "examples" / "data" / "calibrate_tiny.jsonl"))
    ap.add_argument("--samples", type=int, default=8, help="completions per prompt")
    ap.add_argument("--max_new_tokens", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "canonical_bias"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()

    commit = git_commit()  # the code that runs: recorded at the start (edits made while it runs do not count)
    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    models = dict(m.split("=", 1) for m in args.model)
    chat = set(filter(None, args.chat.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        if (
            not args.no_tiny
        ):  # the calibrate/quick-start teacher, built as `examples/data/calibrate_tiny.py` does
            build = runpy.run_path(str(ROOT / "examples" / "data" / "calibrate_tiny.py"))["build"]
            models = {"tiny_teacher": str(build(Path(tmp) / "tiny") / "teacher"), **models}
        result = {
            "models": {
                name: measure(path, rows, name in chat, args.samples, args.max_new_tokens, args.seed)
                for name, path in models.items()
            }
        }

    result["run"] = {
        "git_commit": commit,
        "command": "python benchmarks/canonical_bias.py " + " ".join(sys.argv[1:]),
        "machine": machine(1),
        "wall_s": time.perf_counter() - t0,
        "data": str(Path(args.data).resolve().relative_to(ROOT))
        if ROOT in Path(args.data).resolve().parents
        else args.data,
        "samples_per_prompt": args.samples,
        "max_new_tokens": args.max_new_tokens,
        "temperature": 1.0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(render_markdown(result))
    print(render_markdown(result))


if __name__ == "__main__":
    main()
