"""The command lines of the α sweep: `mergekit-plugins search-alpha` and `mergekit-plugins single-scores`.

One option per `SearchAlphaConfig` field (kebab-case, as `mergekit-yaml`); under `run_cli`, bad input exits 2 with
one line (`SearchError`, an `InputError`), a runtime failure 1.

Example:
    $ mergekit-plugins search-alpha merge.yaml --eval math_answer --eval-data task_math=val.jsonl
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from distill_ortho_merge.outputs import check_not_input
from distill_ortho_merge.yaml_files import read_yaml
from mergekit_plugins.search import (
    SearchError,
    make_evaluator,
    read_merge_config,
    search_alpha,
    use_num_threads,
    write_json,
)
from mergekit_plugins.search_config import CRITERIA, SearchAlphaConfig
from mergekit_plugins.yaml_command import config_inputs


def add_search_parser(sub: Any) -> None:
    """The `search-alpha` sub-command, one option per `SearchAlphaConfig` field, and `single-scores`."""
    p = sub.add_parser("search-alpha", help="choose α on validation with one merge and an in-memory sweep")
    helps = {f.name: f.metadata["help"] for f in fields(SearchAlphaConfig)}
    s = sub.add_parser(
        "single-scores", help="write {task: score of its single-task model} for --single-task-scores"
    )
    for q in (p, s):
        q.add_argument("config", help=helps["config"])
        q.add_argument("--eval", required=True, help=helps["eval"])
        q.add_argument(
            "--eval-data", action="append", default=None, metavar="TASK=FILE", help=helps["eval_data"]
        )
        q.add_argument("--max-new-tokens", type=int, default=64, help=helps["max_new_tokens"])
        q.add_argument("--output-dir", default="outputs/search-alpha", help=helps["output_dir"])
        q.add_argument("--output-json", default=None, help=helps["output_json"])
    s.set_defaults(single_scores=True)
    for name in ("grid", "single_task_scores", "output_png", "save_best"):
        p.add_argument(f"--{name.replace('_', '-')}", default=None, help=helps[name])
    for q in (p, s):
        q.add_argument("--criterion", default="mean_score", choices=CRITERIA, help=helps["criterion"])
        q.add_argument("--device", default="cpu", help=helps["device"])
        q.add_argument("--trust-remote-code", action="store_true", help=helps["trust_remote_code"])
        q.add_argument("--num-threads", type=int, default=None, help=helps["num_threads"])
    p.add_argument("--overwrite", action="store_true", help=helps["overwrite"])
    p.add_argument("--save-best-merged", action="store_true", help=helps["save_best_merged"])
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def run_search_from_args(args: argparse.Namespace) -> int:
    """CLI entry, under `run_cli`: exit 2 on bad input (`SearchError`), 1 on a runtime failure."""
    if getattr(args, "single_scores", False):
        return run_single_scores(args)
    cfg = SearchAlphaConfig(**{f.name: getattr(args, f.name) for f in fields(SearchAlphaConfig)})
    report = search_alpha(cfg)
    best = report["best"]
    both = "".join(
        f", {name} {best['task_mean'][name]:.4f}" for name in ("exact_accuracy", "mean_score")
        if name in best.get("task_mean", {})
    )  # fmt: skip
    print(
        f"best {report['parameter']} = {best['alpha']:g} ({report['criterion']} {best['mean']:.4f}{both}); "
        f"results in {cfg.output_json}" + (f"; saved {report['saved']}" if "saved" in report else "")
    )
    return 0


def run_single_scores(args: argparse.Namespace) -> int:
    """`mergekit-plugins single-scores`: evaluate every model (or adapter) of the merge, write {task: its
    model's score} (exact accuracy and mean score for a verifier --eval)."""
    from mergekit_plugins.evals import single_task_scores
    from mergekit_plugins.lora.sweep import is_lora_config, single_scores_lora

    cfg = SearchAlphaConfig(
        config=args.config, eval=args.eval, eval_data=args.eval_data, max_new_tokens=args.max_new_tokens,
        output_dir=args.output_dir, output_json=args.output_json or str(Path(args.output_dir) / "single.json"),
        device=args.device, trust_remote_code=args.trust_remote_code, criterion=args.criterion,
        num_threads=args.num_threads,
    )  # fmt: skip
    eval_files = [item.partition("=")[2] for item in cfg.eval_data or []]
    use_num_threads(cfg)
    if is_lora_config(cfg.config):
        inputs = config_inputs(read_yaml(cfg.config, SearchError))
        check_not_input(cfg.output_json, [cfg.config, *inputs, *eval_files], what="--output-json")
        scores = single_scores_lora(cfg, make_evaluator(cfg))
    else:
        config = read_merge_config(cfg.config)
        check_not_input(
            cfg.output_json, [cfg.config, *config_inputs(config), *eval_files], what="--output-json"
        )
        models = {Path(str(m["model"])).name: str(m["model"]) for m in config.get("models") or []}
        scores = single_task_scores(
            models, make_evaluator(cfg), device=cfg.device, trust_remote_code=cfg.trust_remote_code
        )
    write_json(Path(cfg.output_json), scores)
    shown = {
        task: {k: round(v[k], 4) for k in ("exact_accuracy", "mean_score")} if isinstance(v, dict) else v
        for task, v in scores.items()
    }
    print(f"single-task scores {shown} written to {cfg.output_json}")
    return 0
