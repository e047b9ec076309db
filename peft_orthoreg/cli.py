"""Command line of `peft_orthoreg`, in TRL's style (snake_case options, `--output_dir`, `--overwrite_output_dir`).

peft-orthoreg diagnose TV_OR_ADAPTER... [--base BASE] --output_dir DIR   # cosine heat maps + orthogonality stats
peft-orthoreg export ADAPTER_OR_MODEL --base BASE --output_dir DIR [--alpha A] [--save_task_vector DIR]
peft-orthoreg train --config train.yaml [--field value ...]      # TRL's sft with OrthoReg: one LoRA adapter
peft-orthoreg plugins

The three writing commands follow the output-directory rule (`distill_ortho_merge.outputs.check_output_dir`): a
non-empty output is refused unless `--overwrite_output_dir`, an input is never replaced. As with `TrlParser`,
the kebab-case spelling of an option (`--output-dir`) is accepted too, and so are the older `--out` and
`--save-task-vector`; the help lists the snake_case name only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from distill_ortho_merge.cli import InputError, print_plugins, run_cli
from distill_ortho_merge.offline import set_offline_env
from distill_ortho_merge.outputs import check_output_dir
from peft_orthoreg import __version__


def _bool(text: str) -> bool:
    if text.lower() in {"true", "1", "yes"}:
        return True
    if text.lower() in {"false", "0", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_option(parser: argparse.ArgumentParser, name: str, *old: str, **kwargs: Any) -> None:
    """`--name` (snake_case, shown in the help) plus hidden spellings: its kebab-case form and `old` ones."""
    parser.add_argument(f"--{name}", dest=name, **kwargs)
    hidden = {f"--{name.replace('_', '-')}", *old} - {f"--{name}"}
    if hidden:
        kwargs = {k: v for k, v in kwargs.items() if k not in {"help", "default", "metavar"}}
        parser.add_argument(
            *sorted(hidden), dest=name, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs
        )


def add_output_options(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--output_dir` (required) and `--overwrite_output_dir`, as TRL/transformers name them."""
    add_option(parser, "output_dir", "--out", metavar="DIR", help=help_text + " (required)")
    add_option(
        parser,
        "overwrite_output_dir",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        metavar="BOOL",
        help="replace a non-empty output_dir (never one of the inputs)",
    )


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
    add_output_options(diag, "output directory")
    diag.add_argument("--names", nargs="+", help="display names, one per input (default: directory names)")
    exp = sub.add_parser(
        "export",
        help="write base + alpha * task vector as a full model directory that mergekit-yaml accepts",
    )
    exp.add_argument("input", metavar="ADAPTER_OR_MODEL_OR_TV")
    exp.add_argument("--base", required=True, help="base model: directory, *.gguf file or built-in name")
    add_output_options(exp, "output model directory")
    exp.add_argument("--alpha", type=float, default=1.0, help="scaling of the task vector (default 1.0)")
    add_option(
        exp, "save_task_vector", "--save-task-vector", metavar="DIR", help="also save the task vector there"
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
    return run_cli(lambda: _run(args), f"peft-orthoreg {args.command}")


def _run(args: argparse.Namespace) -> int:
    if args.command == "plugins":
        from peft_orthoreg.plugins import plugin_registry

        return print_plugins(plugin_registry.registry(), lambda form: ", ".join(form.capabilities()))
    if not args.output_dir:
        raise InputError("--output_dir: required (the directory to write)")
    inputs = [*getattr(args, "inputs", [getattr(args, "input", None)]), args.base]
    check_output_dir(args.output_dir, args.overwrite_output_dir, inputs=inputs)  # before any work
    if args.command == "diagnose":
        from peft_orthoreg.diagnostics import diagnose, write_report

        report = diagnose(args.inputs, base=args.base, names=args.names)
        write_report(report, args.output_dir, overwrite=True)  # the rule was checked above
        print(
            json.dumps(
                {"out": args.output_dir, "mean_abs_cosine": report["mean_abs_cosine"], **report["summary"]}
            )
        )
        return 0
    if args.save_task_vector:
        check_output_dir(
            args.save_task_vector, args.overwrite_output_dir, inputs=inputs, what="save_task_vector"
        )
        a, b = Path(args.save_task_vector).resolve(), Path(args.output_dir).resolve()
        if a == b or a.is_relative_to(b) or b.is_relative_to(a):
            raise InputError(
                f"save_task_vector: {args.save_task_vector} overlaps output_dir {args.output_dir}"
            )
    from peft_orthoreg.diagnostics import load_input

    tv = load_input(args.input, base=args.base)
    if args.save_task_vector:
        tv.save(args.save_task_vector, overwrite=True)
    tv.export_model(args.base, args.output_dir, alpha=args.alpha, overwrite=True)
    print(f"wrote {args.output_dir} (base {args.base} + {args.alpha} * task vector of {args.input})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
