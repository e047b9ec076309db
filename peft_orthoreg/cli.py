"""Command line of `peft_orthoreg`.

peft-orthoreg diagnose TV_OR_ADAPTER... [--base BASE] --out DIR   # cosine heat maps + orthogonality stats
peft-orthoreg export ADAPTER_OR_MODEL --base BASE --out DIR [--alpha A] [--save-task-vector DIR]
peft-orthoreg train --config train.yaml [--field value ...]      # TRL's sft with OrthoReg: one LoRA adapter
peft-orthoreg plugins
"""

from __future__ import annotations

import argparse
import json
import sys

from distill_ortho_merge.cli import InputError, print_plugins, run_cli
from distill_ortho_merge.offline import set_offline_env
from peft_orthoreg import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peft-orthoreg", description="OrthoReg for PEFT and full fine-tuning."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("plugins", help="list the registered plugins and where they come from")
    sub.add_parser(
        "train",
        add_help=False,
        help="--config FILE.yaml [--field value ...]: TRL's sft with OrthoReg, writes one LoRA adapter "
        "(SFTConfig, ModelConfig lora_* and orthoreg_* fields; `train --help` lists them)",
    )
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
    set_offline_env()  # never reach the hub by accident; export the variable as 0 to allow it
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "train":  # everything after `train` belongs to its TRL-style parser
        set_offline_env(extra=("TRL_EXPERIMENTAL_SILENCE",))
        from peft_orthoreg.train import main as train_main

        return train_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0

    def body() -> int:
        try:
            return _run(args)
        except (ValueError, FileNotFoundError, FileExistsError) as exc:  # what our loaders raise on bad input
            raise InputError(str(exc)) from None

    return run_cli(body, f"peft-orthoreg {args.command}")


def _run(args: argparse.Namespace) -> int:
    if args.command == "plugins":
        from peft_orthoreg.plugins import plugin_registry

        return print_plugins(plugin_registry.registry(), lambda form: ", ".join(form.capabilities()))
    if args.command == "diagnose":
        from peft_orthoreg.diagnostics import diagnose, write_report

        report = diagnose(args.inputs, base=args.base, names=args.names)
        write_report(report, args.out)
        print(
            json.dumps({"out": args.out, "mean_abs_cosine": report["mean_abs_cosine"], **report["summary"]})
        )
        return 0
    from peft_orthoreg.diagnostics import load_input  # export

    tv = load_input(args.input, base=args.base)
    if args.save_task_vector:
        tv.save(args.save_task_vector)
    tv.export_model(args.base, args.out, alpha=args.alpha)
    print(f"wrote {args.out} (base {args.base} + {args.alpha} * task vector of {args.input})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
