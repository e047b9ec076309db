"""`distillguard calibrate`: calibrate a teacher's distillability with `DistillGuardTrainer`.

    distillguard calibrate --config examples/configs/tiny.yaml [--any_field value ...]

TRL-style: `TrlParser` over (`CalibrateArguments`, `DistillGuardConfig`, `ModelConfig`), so the YAML holds any field
of the three at top level and command-line flags override it. The run trains in ``<output_dir>.partial`` (its
checkpoints live there; resume with ``--resume_from_checkpoint <output_dir>.partial/checkpoint-N``) and, when it
has finished, writes the calibrated teacher, its tokenizer and ``calibration.json`` there and renames it to
``output_dir``: a directory at ``output_dir`` is always complete. Under ``torchrun`` / ``accelerate launch`` only
the main process writes it; the others wait.

Example:
    >>> from trl_distillguard.calibrate import main
    >>> main(["--config", "examples/configs/tiny.yaml", "--max_steps", "2"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_ortho_merge.cli import InputError, run_cli
from distill_ortho_merge.outputs import check_output_dir, json_safe
from trl_distillguard.loading import resolve_model_path
from trl_distillguard.plugins import resolve_reward


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
            "dataset name (see distill_ortho_merge.data). Rows need a `prompt` column plus the gold columns the "
            "rewards read (e.g. `answer`)."
        },
    )
    dataset_size: int | None = field(
        default=None,
        metadata={"help": "Use at most this many rows (built-ins generate this many; default 64)."},
    )
    prompt_column: str = field(default="prompt", metadata={"help": "Column holding the prompts."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace a non-empty output_dir (it is replaced only when the run ends)."},
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["math_answer"],
        metadata={
            "help": "Task rewards: registered names (`distillguard plugins` lists them) or import paths "
            "`module.attr` (taken as is, like `trl grpo --reward_funcs`). The calibration reward is added with "
            "weight `distillability`."
        },
    )


def _check_output_dir(out: Path, resume: str | None, overwrite: bool = False, inputs: Any = ()) -> Path:
    check_output_dir(out, overwrite, inputs=[*inputs, resume])
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not resume:
        last = latest_checkpoint(partial)
        if last is None:  # an interrupted run that saved nothing resumable: start again
            shutil.rmtree(partial)
        else:
            raise InputError(
                f"output_dir: {partial} holds an interrupted run; resume it with --resume_from_checkpoint {last}, "
                "or remove it"
            )
    return partial


def latest_checkpoint(partial: Path) -> Path | None:
    """The highest `checkpoint-N` directory of an interrupted run, or None.

    Example:
        >>> latest_checkpoint(Path("no/such/run.partial")) is None
        True
    """
    if not partial.is_dir():
        return None
    found = [p for p in partial.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def calibrate(script: CalibrateArguments, args: Any, model_args: Any) -> Path:
    """Run the calibration and return the output directory (see the module docstring)."""
    from trl import get_peft_config

    from distill_ortho_merge.data import is_conversational_prompt, load_prompt_dataset
    from trl_distillguard.distillguard_trainer import DistillGuardTrainer
    from trl_distillguard.proxy_loading import load_proxy_tokenizer

    if not model_args.model_name_or_path:
        raise InputError("model_name_or_path: the teacher to calibrate is required")
    if not script.dataset_name:
        raise InputError("dataset_name: a prompt dataset (path or built-in name) is required")
    out = Path(args.output_dir)
    inputs = [model_args.model_name_or_path, script.dataset_name]
    inputs += [args.proxy_model_name_or_path, args.proxy_tokenizer_name_or_path]
    partial = _check_output_dir(
        out, args.resume_from_checkpoint, script.overwrite_output_dir, inputs
    )  # before any work
    rewards = [resolve_reward(name, "reward_funcs") for name in script.reward_funcs]
    try:
        dataset = load_prompt_dataset(
            script.dataset_name, prompt_column=script.prompt_column, size=script.dataset_size, seed=args.seed
        )
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"dataset_name: {exc}") from None
    if args.distillability != 0.0 and not args.proxy_model_name_or_path:
        raise InputError("proxy_model_name_or_path: required when distillability != 0 (the proxy student)")
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
    # Under torchrun / accelerate launch every rank checks before any rank creates `partial`. `args.device` sets up
    # the process group once, as the trainer would.
    _ = args.device
    state = args.distributed_state
    state.wait_for_everyone()
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
    trainer.save_model(str(partial))  # collective under FSDP/DeepSpeed; writes on the main process only
    if not state.is_main_process:  # the main process writes the rest and renames; the others wait for it
        state.wait_for_everyone()
        return out
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
        # no logged step when max_steps < logging_steps: the end-of-training metrics instead
        "final_metrics": json_safe(history[-1] if history else result.metrics),
        "history": json_safe(history),
    }
    tmp = partial / "calibration.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(partial / "calibration.json")
    if out.is_dir():  # empty, or replaced with --overwrite_output_dir (checked above)
        shutil.rmtree(out)
    elif out.exists():
        out.unlink()
    partial.rename(out)
    state.wait_for_everyone()
    return out


def main(argv: list[str]) -> int:
    """`distillguard calibrate --config calibrate.yaml [--field value ...]`; returns the exit status."""
    from trl import ModelConfig, TrlParser

    from trl_distillguard.config_file import parse_config
    from trl_distillguard.distillguard_config import DistillGuardConfig

    parser = TrlParser((CalibrateArguments, DistillGuardConfig, ModelConfig), prog="distillguard calibrate")

    outputs: list[Path] = []

    def resume_hint() -> str:
        partial = outputs[0].with_name(outputs[0].name + ".partial") if outputs else None
        last = latest_checkpoint(partial) if partial else None
        if last is not None:
            return f"resume with: distillguard calibrate {' '.join(argv)} --resume_from_checkpoint {last}"
        if partial and partial.is_dir():  # nothing resumable was saved: leave nothing behind
            shutil.rmtree(partial, ignore_errors=True)
            return "no checkpoint was saved; run the same command again to start over"
        return ""

    def body() -> int:
        try:
            script, args, model_args = parse_config(parser, argv, cpu_defaults=True)
        except ValueError as exc:  # the config dataclasses' own validation (TRL's too): bad input
            raise InputError(str(exc).splitlines()[0]) from None
        outputs.append(Path(args.output_dir))
        out = calibrate(script, args, model_args)  # a ValueError from training is a runtime failure (exit 1)
        if args.process_index != 0:
            return 0
        summary = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
        final = summary["final_metrics"]
        shown = [k for k in final if k in ("reward", "kl", "train_loss") or k.startswith("rewards/")]
        shown = [k for k in shown if k.endswith("/mean") or "/" not in k]
        numbers = ", ".join(f"{k} {final[k]:.4g}" for k in shown if isinstance(final[k], (int, float)))
        print(
            f"calibrated teacher written to {out} ({summary['steps']} steps; last logged: {numbers or '-'})"
        )
        print(f"details: {out / 'calibration.json'}")
        return 0

    return run_cli(body, "distillguard calibrate", on_interrupt=resume_hint)
