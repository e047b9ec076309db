"""Command line of `trl_distillguard`."""

from __future__ import annotations

import argparse
import sys

from trl_distillguard import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distillguard", description="Distillability calibration for TRL.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("plugins", help="list the registered plugins and where they come from")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "plugins":
        from trl_distillguard.plugins import plugin_registry

        for name, item in sorted(plugin_registry.registry().items()):
            print(f"{name}\t{item.distribution}\t{item.plugin}")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
