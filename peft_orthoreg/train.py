"""`peft-orthoreg train`: TRL's ``sft`` command line with OrthoReg — one LoRA adapter per run.

The YAML `--config` (or ``--field value`` flags) holds any field of TRL's `SFTConfig`, the LoRA fields of TRL's
`ModelConfig` (``model_name_or_path``, ``lora_r``, ``lora_alpha``, ``lora_dropout``, ``lora_target_modules``,
``use_rslora``, ...) and `OrthoRegTrainArguments` (the dataset and the OrthoReg fields). The model is a directory,
a ``*.gguf`` file or a built-in name; the dataset a file or a spec (``reasoning_gym:gcd?split=train``, ...).
Rows with ``prompt`` + ``answer`` become prompt-completion pairs (the completion is the answer after
``Answer:``, so the ``reasoning_gym`` verifier reads it); ``messages``, ``text`` and ``prompt`` + ``completion``
rows are used as they are. ``orthoreg_form: inter_task`` trains against ``orthoreg_reference_adapters``
(directories of earlier adapters of the same base; loaded frozen, never applied in the forward pass).

Writes OUTPUT_DIR (staged: nothing partial on failure) with the PEFT adapter (``adapter_config.json`` says
``"peft_type": "LORA"`` and keeps the ``orthoreg_*`` fields), the tokenizer, and ``orthoreg_train.json`` (the
log history, with the ``orthoreg`` term per logging step, and the reference directories).

Example:
    $ peft-orthoreg train --config examples/configs/orthoreg_train_tiny.yaml --output_dir adapters/gcd
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill_ortho_merge.cli import InputError
from peft_orthoreg.orthoreg import FORMS, NORMS

#: Defaults of this command that differ from `SFTConfig`'s (a LoRA adapter, no checkpoints, on any machine).
TRAIN_DEFAULTS = {
    "learning_rate": "1e-4",  # LoRA's usual rate (SFTConfig's 2e-5 is for full fine-tuning)
    "gradient_checkpointing": "false",  # SFTConfig turns it on; on CPU and small models it only costs time
    "save_strategy": "no",  # the adapter is written once, at the end
    "logging_steps": "1",
    "report_to": "none",
}


@dataclass
class OrthoRegTrainArguments:
    """The dataset and OrthoReg fields of `peft-orthoreg train` (SFTConfig and TRL's ModelConfig give the rest).

    Example:
        >>> OrthoRegTrainArguments(dataset="reasoning_gym:gcd?split=train").orthoreg_form
        'paper'
    """

    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Training data: a .jsonl/.json/.parquet file or directory, or a dataset spec such as "
            "'reasoning_gym:gcd?size=512&split=train&format=text&prompt=bare' (distillguard data list)."
        },
    )
    dataset_size: int | None = field(
        default=None,
        metadata={"help": "Rows to train on (first N of a file; a spec generates N, default 64)."},
    )
    dataset_seed: int = field(
        default=0, metadata={"help": "Seed of generated datasets (a spec's ?seed= wins)."}
    )
    orthoreg_weight: float = field(
        default=1.0, metadata={"help": "OrthoReg weight λ ≥ 0 (0: plain LoRA, the term is still logged)."}
    )
    orthoreg_norm: str = field(
        default="fro", metadata={"help": f"Per-layer norm of the term: {', '.join(NORMS)}."}
    )
    orthoreg_form: str = field(
        default="paper",
        metadata={"help": f"OrthoReg form: {', '.join(FORMS)} or a form a peft_orthoreg plugin registers."},
    )
    orthoreg_reference_adapters: list[str] | None = field(
        default=None,
        metadata={
            "help": "orthoreg_form inter_task: directories of already-trained adapters of the same base model "
            "(trained sequentially: each new adapter stays orthogonal to the earlier ones)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace an existing non-empty output_dir (else refused)."}
    )

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("give --dataset (a file or a dataset spec; or `dataset:` in the --config YAML)")
        if self.dataset_size is not None and self.dataset_size < 1:
            raise ValueError(f"--dataset_size must be >= 1, got {self.dataset_size}")


def completion_for(prompt: Any, answer: Any) -> Any:
    """The completion that teaches `answer` after `prompt`: right after a prompt ending in ``Answer:``, else
    ``Answer: <answer>`` (the convention the answer extraction of the verifiers reads); chat prompts get an
    assistant message.

    Example:
        >>> completion_for("What is 2 + 2?\\nAnswer:", 4)
        ' 4'
        >>> completion_for([{"role": "user", "content": "What is 2 + 2?"}], 4)
        [{'role': 'assistant', 'content': 'Answer: 4'}]
    """
    text = prompt[-1]["content"] if isinstance(prompt, list) else str(prompt)
    bare = text.rstrip().endswith("Answer:")
    if isinstance(prompt, list):
        return [{"role": "assistant", "content": str(answer) if bare else f"Answer: {answer}"}]
    return f" {answer}" if bare else f"\nAnswer: {answer}"


def sft_rows(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Rows in a format `SFTTrainer` trains on; a one-line `InputError` naming the columns otherwise.

    Example:
        >>> sft_rows([{"prompt": "1 + 1?\\nAnswer:", "answer": "2", "rg_task": "x"}], "data.jsonl")
        [{'prompt': '1 + 1?\\nAnswer:', 'completion': ' 2'}]
        >>> sft_rows([{"question": "1 + 1?"}], "data.jsonl")
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: --dataset data.jsonl: needs the columns messages, text, prompt + completion or prompt + answer; it has question
    """
    columns = {k for r in rows for k in r}
    for keep in (("messages",), ("prompt", "completion"), ("text",)):
        if set(keep) <= columns:
            return [{k: r[k] for k in keep} for r in rows]
    if {"prompt", "answer"} <= columns:
        return [{"prompt": r["prompt"], "completion": completion_for(r["prompt"], r["answer"])} for r in rows]
    raise InputError(
        f"--dataset {where}: needs the columns messages, text, prompt + completion or prompt + answer; it has "
        f"{', '.join(sorted(columns))}"
    )


def lora_config(model_args: Any, args: OrthoRegTrainArguments, references: list[str]):
    """`OrthoLoraConfig` from TRL's ModelConfig LoRA fields and the OrthoReg fields (checked before any loading)."""
    from peft_orthoreg.config import OrthoLoraConfig

    if model_args.use_dora:
        raise InputError("use_dora: OrthoReg supports plain LoRA only")
    try:
        return OrthoLoraConfig(
            task_type=model_args.lora_task_type,
            r=model_args.lora_r,
            lora_alpha=model_args.lora_alpha,
            lora_dropout=model_args.lora_dropout,
            target_modules=model_args.lora_target_modules,
            modules_to_save=model_args.lora_modules_to_save,
            use_rslora=model_args.use_rslora,
            orthoreg_weight=args.orthoreg_weight,
            orthoreg_norm=args.orthoreg_norm,
            orthoreg_form=args.orthoreg_form,
            orthoreg_reference_adapters=references or None,
        )
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc).splitlines()[0]) from None


def train(args: OrthoRegTrainArguments, sft: Any, model_args: Any) -> Path:
    """Train one OrthoReg LoRA adapter; every input is checked before the model is loaded. Returns OUTPUT_DIR."""
    from distill_ortho_merge.data import load_dataset_rows
    from distill_ortho_merge.models import ModelError, resolve_model
    from distill_ortho_merge.outputs import check_output_dir, json_safe, staged_dir
    from distill_ortho_merge.scoring import adapter_shapes, check_adapter_fits

    if not sft.output_dir:
        raise InputError("give --output_dir (the adapter's directory)")
    if not model_args.model_name_or_path:
        raise InputError("give --model_name_or_path (a model directory, a *.gguf file or a built-in name)")
    refs = list(args.orthoreg_reference_adapters or [])
    inputs = [model_args.model_name_or_path, args.dataset, *refs]
    out = check_output_dir(sft.output_dir, args.overwrite_output_dir, inputs=inputs)  # before any work
    for ref in refs:
        adapter_shapes(ref, "orthoreg_reference_adapters:")
    names = [f"reference_{i}" for i in range(len(refs))]
    peft_config = lora_config(model_args, args, names)
    try:
        rows = load_dataset_rows(args.dataset, size=args.dataset_size, seed=args.dataset_seed)
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"--dataset {args.dataset}: {exc}") from None
    if not rows:
        raise InputError(f"--dataset {args.dataset}: no rows")
    train_rows = sft_rows(list(rows), args.dataset)
    try:
        model_dir = resolve_model(model_args.model_name_or_path, "model_name_or_path")
    except ModelError as exc:
        raise InputError(str(exc)) from None

    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    from peft_orthoreg.trainer import with_orthoreg

    dtype = model_args.dtype if model_args.dtype not in (None, "auto") else "float32"
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    for ref in refs:  # an adapter of another base: refused before training starts
        check_adapter_fits(ref, model, "orthoreg_reference_adapters:")
    peft_model = get_peft_model(model, peft_config)
    for name, ref in zip(names, refs, strict=True):
        peft_model.load_adapter(ref, adapter_name=name, is_trainable=False)
    peft_model.set_adapter("default")  # only the new adapter is trained and applied
    peft_model.peft_config["default"].base_model_name_or_path = str(model_args.model_name_or_path)
    with staged_dir(out) as staging:
        sft.output_dir = str(staging)
        trainer = with_orthoreg(SFTTrainer)(
            model=peft_model,
            args=sft,
            train_dataset=Dataset.from_list(train_rows),
            processing_class=tokenizer,
        )
        trainer.train()
        peft_model.save_pretrained(str(staging), selected_adapters=["default"])
        tokenizer.save_pretrained(str(staging))
        for leftover in staging.glob("checkpoint-*"):  # save_strategy other than "no": keep only the adapter
            import shutil

            shutil.rmtree(leftover)
        record = {
            "model": str(model_args.model_name_or_path),
            "dataset": args.dataset,
            "rows": len(train_rows),
            "orthoreg_form": args.orthoreg_form,
            "orthoreg_weight": args.orthoreg_weight,
            "orthoreg_reference_adapters": dict(zip(names, refs, strict=True)),
            "log_history": trainer.state.log_history,
        }
        (staging / "orthoreg_train.json").write_text(json.dumps(json_safe(record), indent=1) + "\n")
    sft.output_dir = str(out)
    return out


def main(argv: list[str]) -> int:
    """`peft-orthoreg train --config FILE.yaml [--field value ...]`; exit 2 with one line on bad input.

    Example:
        >>> main(["--output_dir", "x"])  # stderr: one line asking for --dataset
        2
    """
    from distill_ortho_merge.cli import run_cli

    def body() -> int:
        try:
            from trl import ModelConfig, SFTConfig, TrlParser
        except ImportError:
            raise InputError("peft-orthoreg train needs TRL: pip install trl") from None
        from distill_ortho_merge.config_file import parse_config

        parser = TrlParser((OrthoRegTrainArguments, SFTConfig, ModelConfig), prog="peft-orthoreg train")
        given = {a[2:].split("=", 1)[0].replace("-", "_") for a in argv if a.startswith("--")}
        if "--config" in argv and argv.index("--config") + 1 < len(argv):
            from distill_ortho_merge.config_file import read_yaml_config

            given |= set(read_yaml_config(argv[argv.index("--config") + 1]))
        if "warmup_ratio" in given:  # gone from transformers 5's TrainingArguments; say what replaced it
            raise InputError("warmup_ratio: not a field with transformers 5; give warmup_steps as a fraction < 1 "
                             "of the training steps (e.g. warmup_steps: 0.1)")  # fmt: skip
        ours = dict(TRAIN_DEFAULTS)
        if (
            "activation_checkpointing" in SFTConfig.__dataclass_fields__
        ):  # transformers ≥ 5.25: the old name warns
            ours["activation_checkpointing"] = ours.pop("gradient_checkpointing")
        names = {"gradient_checkpointing", "activation_checkpointing"}
        defaults = [
            f"--{k}={v}" for k, v in ours.items() if k not in given and not (k in names and names & given)
        ]
        try:
            args, sft, model_args = parse_config(parser, [*argv, *defaults], cpu_defaults=True)
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc).splitlines()[0]) from None
        out = train(args, sft, model_args)
        logged = [h["orthoreg"] for h in json.loads((out / "orthoreg_train.json").read_text())["log_history"]
                  if "orthoreg" in h]  # fmt: skip
        last = f"; orthoreg {logged[-1]:.4g} (first {logged[0]:.4g})" if logged else ""
        print(f"adapter written to {out}{last}; log: {out / 'orthoreg_train.json'}")
        return 0

    return run_cli(body, "peft-orthoreg train")
