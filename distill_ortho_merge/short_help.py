"""`distillguard COMMAND --help` (and every TRL-style command of the project) on one screen: usage with `--config`, the command's own fields, where the fields
it inherits from TRL / transformers are documented; `--help_all` prints every field (TRL's parser help).

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Demo:
    ...     seeds: int = field(default=1, metadata={"help": "Seeds per cell."})
    >>> print(short_help("distillguard demo", [Demo]))  # doctest: +NORMALIZE_WHITESPACE
    usage: distillguard demo --config FILE.yaml [--FIELD VALUE ...]   (--help_all: every field)
    <BLANKLINE>
    Fields (in the YAML or as --FIELD VALUE; the command line wins):
      --seeds  (default 1)  Seeds per cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

HELP_FLAGS = ("-h", "--help", "--help_all")
OUR_PACKAGES = ("distill_ortho_merge", "trl_distillguard", "peft_orthoreg", "mergekit_plugins")

# dataclasses defined outside this project -> (the most used of their fields, where all are documented)
INHERITED_DOCS = {
    "GRPOConfig": (
        "output_dir, max_steps, learning_rate, per_device_train_batch_size, num_generations, ...",
        "https://huggingface.co/docs/trl/grpo_trainer#trl.GRPOConfig",
    ),
    "SFTConfig": (
        "output_dir, max_steps, learning_rate, per_device_train_batch_size, ...",
        "https://huggingface.co/docs/trl/sft_trainer#trl.SFTConfig",
    ),
    "TrainingArguments": (
        "output_dir, max_steps, learning_rate, per_device_train_batch_size, ...",
        "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments",
    ),
    "ModelConfig": (
        "model_name_or_path (the model trained), use_peft, lora_r, ...",
        "https://huggingface.co/docs/trl/model_config",
    ),
}


def _own_fields(cls: type) -> list[dataclasses.Field]:
    """The fields `cls` (or a base class of this project) declares itself, not those inherited from TRL."""
    own: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in OUR_PACKAGES:
            own.update(vars(klass).get("__annotations__", {}))
    return [f for f in dataclasses.fields(cls) if f.init and f.name in own]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default) if isinstance(f.default, str) else str(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return str(f.default_factory())  # type: ignore[misc]
    return "required"


def short_help(prog: str, dataclass_types: Sequence[type]) -> str:
    """The one-screen help of a `TrlParser` command over `dataclass_types` (see the module docstring)."""
    lines = [
        f"usage: {prog} --config FILE.yaml [--FIELD VALUE ...]   (--help_all: every field)",
        "",
        "Fields (in the YAML or as --FIELD VALUE; the command line wins):",
    ]
    inherited = []
    for cls in dataclass_types:
        for f in _own_fields(cls):
            lines.append(f"  --{f.name}  (default {_default(f)})  {_one_line(f.metadata.get('help', ''))}")
        for klass in cls.__mro__:
            if klass.__name__ in INHERITED_DOCS and klass.__name__ not in [n for n, _ in inherited]:
                inherited.append((klass.__name__, INHERITED_DOCS[klass.__name__]))
                break
    if inherited:
        lines.append("")
        for name, (fields, url) in inherited:
            lines += [f"Also every field of {name}: {fields}", f"  documented at {url}"]
    return "\n".join(line if len(line) <= 118 else line[:115] + "..." for line in lines)


def maybe_print_help(parser: Any, argv: Sequence[str]) -> None:
    """Print the short help (or, with `--help_all`, the parser's full help) and exit 0 when asked for.

    Example:
        >>> maybe_print_help(None, ["--config", "x.yaml"])  # no help flag: nothing happens
    """
    if not any(a in HELP_FLAGS for a in argv):
        return
    if "--help_all" in argv:
        parser.print_help()
    else:
        print(short_help(parser.prog, parser.dataclass_types))
    raise SystemExit(0)
