"""Command line of `peft_orthoreg`."""

from __future__ import annotations

import argparse
import sys

from peft_orthoreg import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peft-orthoreg", description="OrthoReg for PEFT and full fine-tuning."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("plugins", help="list the registered plugins and where they come from")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "plugins":
        from peft_orthoreg.plugins import plugin_registry

        for name, item in sorted(plugin_registry.registry().items()):
            print(f"{name}\t{item.distribution}\t{item.plugin}")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
