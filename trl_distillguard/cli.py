"""Command line of `trl_distillguard`: `distillguard SUBCOMMAND ...`.

Each subcommand lives in its own module and parses its own arguments (TRL-style `TrlParser` with a YAML
`--config`), so this file only dispatches.

Example:
    $ distillguard calibrate --config examples/configs/tiny.yaml
"""

from __future__ import annotations

import importlib
import sys

from distill_ortho_merge.offline import set_offline_env
from trl_distillguard import __version__

# subcommand -> ("module:function taking argv and returning an exit code", one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("trl_distillguard.cli:list_plugins", "list the registered reward functions and their origin"),
    "calibrate": ("trl_distillguard.calibrate:main", "calibrate a teacher's distillability by RL"),
    "distill": ("trl_distillguard.distill:main", "distil a student from a teacher (recipes sft, kd, uld)"),
    "report": ("trl_distillguard.report:main", "distillability report: teachers x students x recipes"),
    "diagnose": ("trl_distillguard.diagnose:main", "trap diagnostics of a teacher-student pair"),
    "evaluate": (
        "trl_distillguard.evaluate_cli:main",
        "score a model (or base + adapter) on a dataset with a verifier: exact accuracy, mean score",
    ),
    "models": ("trl_distillguard.catalog_cli:models_main", "built-in pretrained models: list, install, path"),
    "data": ("trl_distillguard.catalog_cli:data_main", "built-in datasets and reasoning_gym:<task> specs"),
}

USAGE = "usage: distillguard [--help] [--version] COMMAND [ARGS]"


def list_plugins(argv: list[str]) -> int:
    """Print every registered reward function with the distribution it came from."""
    if any(a in ("-h", "--help") for a in argv):
        print(f"usage: distillguard plugins\n\n{SUBCOMMANDS['plugins'][1]}: name, distribution, plugin")
        return 0
    from distill_ortho_merge.cli import print_plugins
    from trl_distillguard.plugins import registry

    return print_plugins(registry())


def print_help() -> None:
    print(f"{USAGE}\n\nDistillability calibration for TRL.\n\ncommands:")
    for name, (_, help_text) in sorted(SUBCOMMANDS.items()):
        print(f"  {name:<12} {help_text}")
    print("\noptions:\n  -h, --help   show this help and exit\n  --version    show the version and exit")


def main(argv: list[str] | None = None) -> int:
    # Before any subcommand imports transformers/TRL (they read these at import time); users may export 0.
    set_offline_env(extra=("TRL_EXPERIMENTAL_SILENCE",))
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print_help()
        return 0
    if argv[0] == "--version":
        print(f"distillguard {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(
            f"{USAGE}\ndistillguard: error: unknown command {command!r} (choose from {', '.join(sorted(SUBCOMMANDS))})",
            file=sys.stderr,
        )
        return 2
    module, function = SUBCOMMANDS[command][0].split(":")
    try:  # Ctrl-C while TRL / transformers / torch are still importing: one line too, not their traceback
        return int(getattr(importlib.import_module(module), function)(rest) or 0)
    except KeyboardInterrupt:
        print(f"distillguard {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
