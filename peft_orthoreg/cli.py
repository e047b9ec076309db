"""Command line of `peft_orthoreg`.

peft-orthoreg diagnose TV_OR_ADAPTER... [--base BASE] --out DIR   # cosine heat maps + orthogonality stats
peft-orthoreg export ADAPTER_OR_MODEL --base BASE --out DIR [--alpha A] [--save-task-vector DIR]
peft-orthoreg plugins
"""

from __future__ import annotations

import argparse
import json
import sys

from mergekit_plugins.offline import set_offline_env
from peft_orthoreg import __version__

set_offline_env()  # never reach the hub by accident; export the variable as 0 to allow it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peft-orthoreg", description="OrthoReg for PEFT and full fine-tuning."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("plugins", help="list the registered plugins and where they come from")
    diag = sub.add_parser(
        "diagnose",
        help="pairwise task-vector cosine (global, per layer type) and per-matrix orthogonality statistics",
        description="Inputs: task-vector directories (TaskVector.save), PEFT LoRA adapter directories, or full model "
        "directories (these need --base). Writes DIR/diagnose.json and DIR/cosine.png.",
    )
    diag.add_argument("inputs", nargs="+", metavar="TV_OR_ADAPTER")
    diag.add_argument(
        "--base", help="base model: directory, *.gguf or built-in name (for full models and modules_to_save)"
    )
    diag.add_argument("--out", required=True, help="output directory (new, or one holding an earlier report)")
    diag.add_argument("--names", nargs="+", help="display names, one per input (default: directory names)")
    exp = sub.add_parser(
        "export",
        help="write base + alpha * task vector as a full model directory that mergekit-yaml accepts",
    )
    exp.add_argument("input", metavar="ADAPTER_OR_MODEL_OR_TV")
    exp.add_argument("--base", required=True, help="base model: directory, *.gguf file or built-in name")
    exp.add_argument("--out", required=True, help="new output directory")
    exp.add_argument("--alpha", type=float, default=1.0, help="scaling of the task vector (default 1.0)")
    exp.add_argument(
        "--save-task-vector", metavar="DIR", help="also save the task vector (safetensors) there"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "plugins":
            from peft_orthoreg.plugins import plugin_registry

            for name, item in sorted(plugin_registry.registry().items()):
                print(f"{name}\t{item.distribution}\t{item.plugin}")
            return 0
        if args.command == "diagnose":
            from peft_orthoreg.diagnose import diagnose, write_report

            report = diagnose(args.inputs, base=args.base, names=args.names)
            write_report(report, args.out)
            print(
                json.dumps(
                    {"out": args.out, "mean_abs_cosine": report["mean_abs_cosine"], **report["summary"]}
                )
            )
            return 0
        if args.command == "export":
            from peft_orthoreg.diagnose import load_input

            tv = load_input(args.input, base=args.base)
            if args.save_task_vector:
                tv.save(args.save_task_vector)
            tv.export_model(args.base, args.out, alpha=args.alpha)
            print(f"wrote {args.out} (base {args.base} + {args.alpha} * task vector of {args.input})")
            return 0
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"peft-orthoreg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
