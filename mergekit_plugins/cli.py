"""Command line of `mergekit_plugins`: `yaml`, `list`, `search-alpha`, `lora-merge`, `plugins`.

Example:
    $ mergekit-plugins yaml merge.yaml ./merged --cuda
    $ mergekit-plugins list
    $ mergekit-plugins search-alpha merge.yaml --eval my_pkg.evals:score --output-json alpha.json
    $ mergekit-plugins lora-merge merge_lora.yaml ./merged-adapter
"""

from __future__ import annotations

import argparse
import sys

from distill_ortho_merge.cli import run_cli
from distill_ortho_merge.offline import set_offline_env
from mergekit_plugins import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mergekit-plugins", description="Task-arithmetic merge methods for mergekit."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser(
        "yaml",
        help="CONFIG OUT [mergekit-yaml options]: load the plugins, then run mergekit-yaml",
        add_help=False,
    )
    sub.add_parser("list", help="every merge method mergekit can run, with its distribution and parameters")
    sub.add_parser("plugins", help="list the registered plugins and where they come from")
    from mergekit_plugins.search_cli import add_search_parser

    add_search_parser(sub)
    from mergekit_plugins.lora.cli import add_lora_parser

    add_lora_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; Ctrl-C prints one line (status 130): outputs are staged, so nothing partial is left."""
    set_offline_env()  # never reach the hub by accident; export the variable as 0 to allow it
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_cli(lambda: _main(argv), f"mergekit-plugins {argv[0]}" if argv else "mergekit-plugins")


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "yaml":  # everything after `yaml` belongs to mergekit-yaml
        from mergekit_plugins.yaml_command import run_yaml

        return run_yaml(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "plugins":
        from distill_ortho_merge.cli import print_plugins
        from mergekit_plugins.plugins import plugin_registry

        return print_plugins(plugin_registry.registry(), lambda d: ", ".join(d.capabilities()) or "-")
    if args.command == "list":
        from mergekit_plugins.listing import format_methods

        print(format_methods())
        return 0
    if args.command in ("search-alpha", "single-scores"):
        from mergekit_plugins.search_cli import run_search_from_args

        return run_search_from_args(args)
    if args.command == "lora-merge":
        from mergekit_plugins.lora.cli import run_lora_from_args

        return run_lora_from_args(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
