"""`mergekit-plugins lora-merge CONFIG OUT_DIR [--merge-into-base] [--allow-base-mismatch] [--overwrite]` (argparse glue;
importing it imports no torch).

Exit codes: 0 done, 2 refused input (one line on stderr, nothing written), 1 runtime failure.

Example:
    $ mergekit-plugins lora-merge merge_lora.yaml ./merged-adapter
"""

from __future__ import annotations

import argparse
from typing import Any


def add_lora_parser(sub: Any) -> None:
    """The `lora-merge` sub-command."""
    p = sub.add_parser(
        "lora-merge",
        help="merge LoRA adapters in factor space into a LoRA adapter (methods with a factor kernel: see `list`)",
    )
    p.add_argument(
        "config", help="mergekit-style YAML: merge_method, base_model, models (adapter directories)"
    )
    p.add_argument(
        "out_dir", help="output: a PEFT LoRA adapter directory (a full model with --merge-into-base)"
    )
    p.add_argument(
        "--merge-into-base", action="store_true", help="write base + α·merged as a full model (safetensors)"
    )
    p.add_argument(
        "--allow-base-mismatch",
        action="store_true",
        help="accept adapters whose base_model_name_or_path names another model (shapes are still checked)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty OUT_DIR (never one of the merge's inputs)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def run_lora_from_args(args: argparse.Namespace) -> int:
    """CLI entry (under `run_cli`: `LoraMergeError` is exit 2 with one line, a runtime failure 1)."""
    from mergekit_plugins.lora.merge import lora_merge

    summary = lora_merge(
        args.config,
        args.out_dir,
        merge_into_base=args.merge_into_base,
        allow_base_mismatch=args.allow_base_mismatch,
        progress=args.progress,
        overwrite=args.overwrite,
    )
    print(summary["line"])
    return 0
