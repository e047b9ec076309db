"""`distillguard calibrate`: calibrate a teacher's distillability with `DistillGuardTrainer`.

    distillguard calibrate --config examples/configs/tiny.yaml [--any_field value ...]

TRL-style: `TrlParser` over (`CalibrateArguments`, `DistillGuardConfig`, `ModelConfig`), so the YAML holds any field
of the three at top level and command-line flags override it. The run trains in ``<output_dir>.partial`` (its
checkpoints live there; resume with ``--resume_from_checkpoint <output_dir>.partial/checkpoint-N``) and, when it
has finished, writes the calibrated teacher, its tokenizer and ``calibration.json`` there and renames it to
``output_dir``: a directory at ``output_dir`` is always complete.

Example:
    >>> from trl_distillguard.calibrate import main
    >>> main(["--config", "examples/configs/tiny.yaml", "--max_steps", "2"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import importlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Also sets the offline env vars before TRL/transformers are imported.
from trl_distillguard.evaluate import InputError, json_safe, resolve_model_path, run_cli


@dataclass
class CalibrateArguments:
    """Arguments of `distillguard calibrate` beyond `DistillGuardConfig` and TRL's `ModelConfig`.

    Example:
        >>> CalibrateArguments(dataset_name="arithmetic").reward_funcs
        ['math_answer']
    """

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Training prompts: a local .jsonl/.json/.parquet file or a directory of them, or a built-in "
            "dataset name (see trl_distillguard.data). Rows need a `prompt` column plus the gold columns the "
            "rewards read (e.g. `answer`)."
        },
    )
    dataset_size: int | None = field(
        default=None,
        metadata={"help": "Use at most this many rows (built-ins generate this many; default 64)."},
    )
    prompt_column: str = field(default="prompt", metadata={"help": "Column holding the prompts."})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["math_answer"],
        metadata={
            "help": "Task rewards: registered names (`distillguard plugins` lists them) or import paths "
            "`module.attr` (taken as is, like `trl grpo --reward_funcs`). The calibration reward is added with "
            "weight `distillability`."
        },
    )


def resolve_reward(name: str) -> Any:
    """A reward function by registry name, else by import path ``module.attr`` (the attribute is used as is).

    Example:
        >>> resolve_reward("math_answer").__name__
        'math_answer'
    """
    from trl_distillguard.plugins import registry

    items = registry()
    if name in items:
        return items[name].obj
    if "." in name:
        module, attr = name.rsplit(".", 1)
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise InputError(f"reward_funcs: cannot import {name!r} ({type(exc).__name__}: {exc})") from None
    raise InputError(
        f"reward_funcs: {name!r} is not a registered reward ({', '.join(sorted(items))}) nor a `module.attr` path"
    )


def _check_output_dir(out: Path, resume: str | None) -> Path:
    if out.exists() and any(out.iterdir()):
        raise InputError(f"output_dir: {out} already exists and is not empty; choose another or remove it")
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not resume:
        raise InputError(
            f"output_dir: {partial} holds an interrupted run; resume it with --resume_from_checkpoint "
            f"{partial}/checkpoint-N, or remove it"
        )
    return partial


def calibrate(script: CalibrateArguments, args: Any, model_args: Any) -> Path:
    """Run the calibration and return the output directory (see the module docstring)."""
    from trl import get_peft_config

    from trl_distillguard.calibration_reward import load_proxy_tokenizer
    from trl_distillguard.data import is_conversational_prompt, load_prompt_dataset
    from trl_distillguard.distillguard_trainer import DistillGuardTrainer

    if not model_args.model_name_or_path:
        raise InputError("model_name_or_path: the teacher to calibrate is required")
    if not script.dataset_name:
        raise InputError("dataset_name: a prompt dataset (path or built-in name) is required")
    rewards = [resolve_reward(name) for name in script.reward_funcs]
    try:
        dataset = load_prompt_dataset(
            script.dataset_name, prompt_column=script.prompt_column, size=script.dataset_size, seed=args.seed
        )
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"dataset_name: {exc}") from None
    # TRL's GRPOTrainer takes the teacher as a path string (and reloads the KL anchor from it): resolve names
    # and GGUF files to a local directory first, like the proxy.
    teacher = resolve_model_path(model_args.model_name_or_path, "model_name_or_path")
    proxy_spec = args.proxy_model_name_or_path  # as given (a name stays a name in calibration.json)
    if args.proxy_model_name_or_path:
        args.proxy_model_name_or_path = resolve_model_path(
            args.proxy_model_name_or_path, "proxy_model_name_or_path"
        )
        if args.proxy_tokenizer_name_or_path:
            args.proxy_tokenizer_name_or_path = resolve_model_path(
                args.proxy_tokenizer_name_or_path, "proxy_tokenizer_name_or_path"
            )
        if is_conversational_prompt(dataset[0]["prompt"]):
            try:
                tok = load_proxy_tokenizer(args.proxy_tokenizer_name_or_path or args.proxy_model_name_or_path)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            if not getattr(tok, "chat_template", None):
                raise InputError(
                    "proxy_tokenizer_name_or_path: the prompts are conversational but the proxy tokenizer has no "
                    "chat template"
                )
    out = Path(args.output_dir)
    partial = _check_output_dir(out, args.resume_from_checkpoint)
    args.output_dir = str(partial)
    created = not partial.exists()
    try:
        trainer = DistillGuardTrainer(
            teacher,
            reward_funcs=rewards,
            args=args,
            train_dataset=dataset,
            peft_config=get_peft_config(model_args),
        )
    except ValueError as exc:
        if created and partial.exists():
            shutil.rmtree(partial)
        raise InputError(str(exc).splitlines()[0]) from None
    result = trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    trainer.save_model(str(partial))
    trainer.processing_class.save_pretrained(str(partial))
    history = [h for h in trainer.state.log_history if "loss" in h]
    summary = {
        "teacher": model_args.model_name_or_path,
        "proxy": proxy_spec,
        "distillability": args.distillability,
        "calibration_mode": args.calibration_mode,
        "calibration_normalization": args.calibration_normalization,
        "beta": args.beta,
        "learning_rate": args.learning_rate,
        "num_generations": args.num_generations,
        "reward_funcs": trainer.reward_func_names,
        "reward_weights": trainer.reward_weights.tolist(),
        "peft": bool(model_args.use_peft),
        "steps": trainer.state.global_step,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "final_metrics": json_safe(history[-1]) if history else {},
        "history": json_safe(history),
    }
    tmp = partial / "calibration.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(partial / "calibration.json")
    if out.exists():  # an empty directory (checked above)
        out.rmdir()
    partial.rename(out)
    return out


def main(argv: list[str]) -> int:
    """`distillguard calibrate --config calibrate.yaml [--field value ...]`; returns the exit status."""
    from trl import ModelConfig, TrlParser

    from trl_distillguard.distillguard_config import DistillGuardConfig

    parser = TrlParser((CalibrateArguments, DistillGuardConfig, ModelConfig), prog="distillguard calibrate")

    def body() -> int:
        try:
            script, args, model_args = parser.parse_args_and_config(argv)
            out = calibrate(script, args, model_args)
        except ValueError as exc:  # config validation and TRL errors too, not only InputError
            raise InputError(str(exc).splitlines()[0]) from None
        summary = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
        print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
        print(f"calibrated teacher written to {out}")
        return 0

    return run_cli(body, "calibrate")
