"""`distillguard distill`: distil a student from a teacher with one of three recipes, reusing TRL's trainers.

- `sft` — sequence-level KD: sample the teacher's completions, then `SFTTrainer` on them (any tokenizers);
- `kd`  — logit distillation over a shared vocabulary: TRL `DistillationTrainer` (generalized JSD), with a
  GKD-style on-policy fraction: each generation batch is the student's own samples with probability
  `on_policy_fraction`, else the teacher's samples;
- `uld` — cross-tokenizer logit distillation: TRL `experimental.gold.GOLDTrainer` with the ULD loss and its byte-offset
  alignment (ByteLevel-BPE tokenizers only); `lmbda` = `on_policy_fraction`.

The student is saved as a full model (a LoRA student is merged) with its tokenizer and a `distill.json` summary,
written to a temporary sibling of `output_dir` and renamed into place (by the main process only under `torchrun` /
`accelerate launch`). Under FSDP2 the student is saved through the trainer's own full-state-dict path
(`Trainer.save_model`: every rank takes part in gathering the weights, the main process writes them); FSDP1, a
sharded state dict, a LoRA student under FSDP2 and DeepSpeed ZeRO-3 are refused before training.

Example:
    $ distillguard distill --config examples/configs/distill_tiny.yaml --recipe sft
    >>> from trl_distillguard.distill import distill
    >>> from trl_distillguard.distill_config import DistillConfig
    >>> cfg = DistillConfig(recipe="sft", teacher_model_name_or_path="t", student_model_name_or_path="s",
    ...                     dataset_name_or_path="prompts.jsonl", output_dir="student-sft", max_steps=50)
    >>> cfg.recipe, cfg.max_steps  # `distill(cfg)` trains and saves the student (tests/test_distill.py)
    ('sft', 50)
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from distill_ortho_merge.cli import InputError, run_cli
from distill_ortho_merge.evaluate import load_rows, prompts_of
from distill_ortho_merge.generation import cut_at_eos, generate
from distill_ortho_merge.outputs import atomic_output_dir, check_output_dir
from distill_ortho_merge.sharding import sharded_parameters
from trl_distillguard.distill_config import DistillConfig
from trl_distillguard.loading import load_causal_lm, resolve_model_path


def sample_teacher(
    teacher,
    tokenizer,
    prompts: list[Any],
    *,
    num_samples: int = 1,
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    batch_size: int = 16,
    seed: int = 0,
    desc: str | None = "teacher samples",
) -> list[dict[str, Any]]:
    """The teacher's completions as prompt-completion rows (conversational prompts get assistant completions).

    Example:
        >>> from distill_ortho_merge.testing import make_teacher, tokenizer_a
        >>> tok = tokenizer_a()
        >>> teacher = make_teacher(tok)
        >>> rows = sample_teacher(teacher, tok, ["What is 2 + 3?"], num_samples=2, max_new_tokens=4)
        >>> [row["prompt"] for row in rows], all(isinstance(row["completion"], str) for row in rows)
        (['What is 2 + 3?', 'What is 2 + 3?'], True)
    """
    gens = generate(
        teacher, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
        num_return_sequences=num_samples, batch_size=batch_size, seed=seed, desc=desc,
    )  # fmt: skip
    rows = []
    for prompt, group in zip(prompts, gens, strict=True):
        for g in group:
            completion: Any = (
                g.text if isinstance(prompt, str) else [{"role": "assistant", "content": g.text}]
            )
            rows.append({"prompt": prompt, "completion": completion})
    return rows


def check_shared_vocab(teacher_tok, student_tok, teacher_model=None, student_model=None) -> None:
    """`kd` compares full next-token distributions: both must use the very same vocabulary.

    Example:
        >>> from distill_ortho_merge.testing import tokenizer_a, tokenizer_b
        >>> check_shared_vocab(tokenizer_a(), tokenizer_b())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        distill_ortho_merge.errors.InputError: recipe kd needs a shared vocabulary, but the teacher's ...
    """
    same = teacher_tok.get_vocab() == student_tok.get_vocab()
    if same and teacher_model is not None and student_model is not None:
        same = (
            teacher_model.config.get_text_config().vocab_size
            == student_model.config.get_text_config().vocab_size
        )
    if not same:
        raise InputError(
            f"recipe kd needs a shared vocabulary, but the teacher's ({len(teacher_tok)} tokens) and the student's "
            f"({len(student_tok)} tokens) differ: use recipe uld (ByteLevel-BPE tokenizers) or sft (any tokenizers)"
        )


def check_byte_level(tokenizer, role: str) -> None:
    """`uld` aligns tokens by byte offsets, which TRL GOLD computes for ByteLevel-BPE tokenizers only.

    Example:
        >>> from tokenizers import Tokenizer, models
        >>> from transformers import PreTrainedTokenizerFast
        >>> word_level = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0}, "a")))
        >>> check_byte_level(word_level, "student")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        distill_ortho_merge.errors.InputError: recipe uld needs ByteLevel-BPE tokenizers, ... use recipe sft ...
    """
    from trl.experimental.utils import is_byte_level_tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not is_byte_level_tokenizer(backend):
        raise InputError(
            f"recipe uld needs ByteLevel-BPE tokenizers, and the {role} tokenizer "
            f"({type(tokenizer).__name__}, {tokenizer.name_or_path!r}) is not: use recipe sft instead"
        )


def _trainer_args(cfg: DistillConfig, out: Path) -> dict[str, Any]:
    on_gpu = torch.cuda.is_available()
    args = {
        "output_dir": str(out),
        "max_steps": cfg.max_steps,
        "learning_rate": cfg.learning_rate,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "seed": cfg.seed,
        "logging_steps": max(1, cfg.max_steps // 10),
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": not on_gpu,
        "bf16": False,
        "activation_checkpointing": False,
        "dataloader_num_workers": 0,
    }
    args.update(cfg.trainer_kwargs or {})
    return args


def _peft_config(cfg: DistillConfig):
    if not cfg.use_peft:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules or "all-linear",
        task_type="CAUSAL_LM",
    )


def _train_sft(cfg, student, student_tok, samples, work: Path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**_trainer_args(cfg, work), max_length=None, dataset_num_proc=None)
    return SFTTrainer(
        model=student,
        args=args,
        train_dataset=Dataset.from_list(samples),
        processing_class=student_tok,
        peft_config=_peft_config(cfg),
    )


def _mixed_policy_trainer_class():
    from trl import DistillationTrainer
    from trl.trainer.utils import pad

    class MixedPolicyDistillationTrainer(DistillationTrainer):
        """`DistillationTrainer` whose generation batches are the student's own samples with probability
        `on_policy_fraction` and the teacher's samples otherwise (GKD's lambda; core TRL is always on-policy)."""

        def __init__(self, *args, on_policy_fraction: float = 1.0, **kwargs):
            super().__init__(*args, **kwargs)
            self.on_policy_fraction = on_policy_fraction
            self._policy_rng = random.Random(self.args.seed)

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, has_tool_images=False):
            mode = "train" if self.model.training else "eval"
            on_policy = mode == "eval" or self._policy_rng.random() < self.on_policy_fraction
            self._metrics[mode]["on_policy"].append(float(on_policy))
            if on_policy or images is not None or self.use_vllm:
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields, has_tool_images)
            teacher = self.accelerator.unwrap_model(self.teacher_model)
            tensors = [torch.tensor(ids) for ids in prompt_ids]
            input_ids = pad(tensors, padding_value=self._tokenizer.pad_token_id, padding_side="left")
            mask = pad([torch.ones_like(t) for t in tensors], padding_value=0, padding_side="left")
            with torch.no_grad():
                out = teacher.generate(
                    input_ids=input_ids.to(teacher.device),
                    attention_mask=mask.to(teacher.device),
                    generation_config=self.generation_config,
                )
            return [cut_at_eos(ids, self.eos_token_ids)[0] for ids in out[:, input_ids.shape[1] :].tolist()]

    return MixedPolicyDistillationTrainer


def _train_kd(cfg, student, student_tok, teacher, prompts, work: Path):
    from datasets import Dataset
    from trl import DistillationConfig

    args = DistillationConfig(
        **_trainer_args(cfg, work),
        max_completion_length=cfg.max_completion_length,
        beta=cfg.divergence_beta,
        temperature=cfg.sample_temperature if cfg.sample_temperature > 0 else 1.0,
    )
    return _mixed_policy_trainer_class()(
        model=student,
        teacher_model=teacher,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=student_tok,
        peft_config=_peft_config(cfg),
        on_policy_fraction=cfg.on_policy_fraction,
    )


def _train_uld(cfg, student, student_tok, teacher_path, samples, work: Path):
    from datasets import Dataset
    from trl.experimental.gold import GOLDConfig, GOLDTrainer

    args = GOLDConfig(
        **_trainer_args(cfg, work),
        use_uld_loss=True,
        teacher_tokenizer_name_or_path=teacher_path,
        lmbda=cfg.on_policy_fraction,
        beta=cfg.divergence_beta,
        max_completion_length=cfg.max_completion_length,
        max_length=max(1024, 2 * cfg.max_completion_length),
        temperature=cfg.sample_temperature if cfg.sample_temperature > 0 else 1.0,
        top_p=1.0,
        dataset_num_proc=None,
    )
    return GOLDTrainer(
        model=student,
        teacher_model=teacher_path,
        args=args,
        train_dataset=Dataset.from_list(samples),
        processing_class=student_tok,
        peft_config=_peft_config(cfg),
    )


def _final_loss(trainer) -> float | None:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return float(losses[-1]) if losses else None


def distill(
    cfg: DistillConfig,
    *,
    samples: list[dict[str, Any]] | None = None,
    teacher=None,
    quiet: bool = False,
) -> Path:
    """Run one recipe and save the distilled student (full weights + tokenizer + `distill.json`) to `output_dir`.

    `samples` (prompt-completion rows from `sample_teacher`) and `teacher` (a loaded `(model, tokenizer)`) let a
    caller that distils several students from one teacher sample and load it once.

    Usage: ``distill(DistillConfig(recipe="uld", teacher_model_name_or_path="t",
    student_model_name_or_path="s", dataset_name_or_path="prompts.jsonl", output_dir="out"))`` returns
    ``Path("out")`` (it trains, too slow for a doctest: `tests/test_distill.py` runs every recipe on tiny models).
    """
    for name in ("teacher_model_name_or_path", "student_model_name_or_path", "output_dir"):
        if not getattr(cfg, name):
            raise InputError(f"{name}: required")
    if samples is None and not cfg.dataset_name_or_path:
        raise InputError("dataset_name_or_path: required")
    inputs = [cfg.teacher_model_name_or_path, cfg.student_model_name_or_path, cfg.dataset_name_or_path]
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, inputs=inputs)  # before loading anything
    started = time.perf_counter()
    t_model, t_tok = teacher or load_causal_lm(cfg.teacher_model_name_or_path, "teacher_model_name_or_path")
    student, s_tok = load_causal_lm(cfg.student_model_name_or_path, "student_model_name_or_path")
    # Fail on incompatible tokenizers before any sampling or training (the only place they are checked).
    if cfg.recipe == "kd":
        check_shared_vocab(t_tok, s_tok, t_model, student)
    elif cfg.recipe == "uld":
        check_byte_level(s_tok, "student")
        check_byte_level(t_tok, "teacher")
    if samples is None:
        prompts = prompts_of(
            load_rows(cfg.dataset_name_or_path, "dataset_name_or_path"), cfg.prompt_column, "dataset"
        )
        if cfg.recipe != "kd":
            samples = sample_teacher(
                t_model, t_tok, prompts, num_samples=cfg.num_samples_per_prompt, temperature=cfg.sample_temperature,
                max_new_tokens=cfg.max_completion_length, batch_size=cfg.generation_batch_size, seed=cfg.seed,
            )  # fmt: skip
    else:
        prompts = [s["prompt"] for s in samples]
        if not samples:
            raise InputError("dataset: the prompt set is empty")
    if cfg.recipe != "sft":
        _check_whole_batch(cfg, len(_unique(prompts)) if cfg.recipe == "kd" else len(samples))
    # Under torchrun / accelerate launch only the main process writes `output_dir`; the others train in scratch.
    main = _is_main_process()
    staged = atomic_output_dir(cfg.output_dir, overwrite=cfg.overwrite_output_dir) if main else _scratch_dir()
    with staged as out:
        work = out / "_trainer"
        if cfg.recipe == "sft":
            trainer = _train_sft(cfg, student, s_tok, samples, work)
        elif cfg.recipe == "kd":
            trainer = _train_kd(cfg, student, s_tok, t_model, _unique(prompts), work)
        else:
            teacher_dir = resolve_model_path(cfg.teacher_model_name_or_path, "teacher_model_name_or_path")
            trainer = _train_uld(cfg, student, s_tok, teacher_dir, samples, work)
        sharding = sharded_parameters(trainer, trainer.model)
        if sharding is not None:
            _check_sharded_save(trainer, sharding, cfg)
        if quiet:  # inside a report: one outer progress bar, no per-step log lines
            from transformers.trainer_callback import PrinterCallback, ProgressCallback

            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
        trainer.train()
        if trainer.state.global_step == 0 and cfg.max_steps != 0:  # a student that never trained is no result
            raise InputError(
                f"recipe {cfg.recipe}: training ran 0 steps on {len(prompts)} prompts (per_device_train_batch_size "
                f"{cfg.per_device_train_batch_size}); give more prompts or lower per_device_train_batch_size"
            )
        if sharding is not None:  # FSDP2: a collective; only the main process writes (model, tokenizer, args)
            trainer.save_model(str(out))
        if not main:
            trainer.accelerator.wait_for_everyone()
            return Path(cfg.output_dir)
        shutil.rmtree(work, ignore_errors=True)
        if sharding is None:
            model = trainer.model
            # a LoRA student: ship plain full weights any evaluator can load
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
            model.save_pretrained(out)
        else:
            (out / "training_args.bin").unlink(missing_ok=True)
        s_tok.save_pretrained(out)
        summary = {
            "recipe": cfg.recipe,
            "config": cfg.to_dict(),
            "num_train_samples": len(samples) if samples is not None else len(prompts),
            "global_step": trainer.state.global_step,
            "final_loss": _final_loss(trainer),
            "seconds": round(time.perf_counter() - started, 2),
        }
        (out / "distill.json").write_text(json.dumps(summary, indent=2, default=str))
    trainer.accelerator.wait_for_everyone()
    return Path(cfg.output_dir)


def _check_whole_batch(cfg: DistillConfig, rows: int) -> None:
    """The logit recipes' trainers (TRL's `DistillationTrainer`, `GOLDTrainer`) only train on whole batches: with
    fewer rows than one batch they run 0 steps without a word, so refuse that before loading a trainer.

    Example:
        >>> _check_whole_batch(DistillConfig(recipe="kd", per_device_train_batch_size=16), 8)
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: dataset: 8 prompts for recipe kd, fewer than one batch (per_device_train_batch_size 16): TRL's logit distillation trains on whole batches and would run 0 steps; give more prompts or lower per_device_train_batch_size
    """
    if rows < cfg.per_device_train_batch_size:
        what = "prompts" if cfg.recipe == "kd" else "teacher samples"
        raise InputError(
            f"dataset: {rows} {what} for recipe {cfg.recipe}, fewer than one batch (per_device_train_batch_size "
            f"{cfg.per_device_train_batch_size}): TRL's logit distillation trains on whole batches and would run 0 "
            "steps; give more prompts or lower per_device_train_batch_size"
        )


def _check_sharded_save(trainer: Any, sharding: str, cfg: DistillConfig) -> None:
    """Refuse, before training, the sharded launches whose student `Trainer.save_model` cannot write whole."""
    if sharding.startswith("DeepSpeed"):
        raise InputError(
            f"distill: {sharding} partitions the student, which this project does not save: launch with FSDP2 "
            "(examples/accelerate/fsdp.yaml) or DDP / DeepSpeed ZeRO-1/2"
        )
    if sharding != "FSDP":
        raise InputError(
            f"distill: the student's parameters are sharded outside an FSDP launch ({sharding}): launch with FSDP2 "
            "(examples/accelerate/fsdp.yaml) or DDP"
        )
    plugin = getattr(getattr(trainer.accelerator, "state", None), "fsdp_plugin", None)
    if getattr(plugin, "fsdp_version", 2) != 2:
        raise InputError(
            "distill: FSDP1 is not supported: set fsdp_version: 2 (examples/accelerate/fsdp.yaml)"
        )
    if plugin is not None and "FULL_STATE_DICT" not in str(getattr(plugin, "state_dict_type", "")):
        raise InputError(
            "distill: FSDP saves a sharded checkpoint, not a loadable model: set fsdp_state_dict_type: "
            "FULL_STATE_DICT (examples/accelerate/fsdp.yaml)"
        )
    if cfg.use_peft:
        raise InputError(
            "use_peft: under FSDP the trainer saves the adapter, not the merged student: set use_peft false or "
            "launch a LoRA student with DDP (examples/accelerate/ddp.yaml)"
        )


def _is_main_process() -> bool:
    # torchrun and accelerate launch set RANK; a plain `python` run is the main (only) process.
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def _scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="distill-rank-") as tmp:
        yield Path(tmp)


def _unique(prompts: list[Any]) -> list[Any]:
    # Conversational prompts are lists (unhashable): dedupe on their JSON form, keep the originals in order.
    seen: set[str] = set()
    unique = []
    for p in prompts:
        key = json.dumps(p, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def main(argv: list[str]) -> int:
    """`distillguard distill --config distill.yaml [--field value ...]`.

    Example:
        >>> main(["--config", "no/such/distill.yaml"])  # bad input: one line on stderr, exit status 2
        2
    """
    from trl import TrlParser

    from trl_distillguard.config_file import parse_config

    def body() -> int:
        try:
            (cfg,) = parse_config(TrlParser((DistillConfig,), prog="distillguard distill"), argv)
        except ValueError as err:
            raise InputError(str(err)) from None
        path = distill(cfg)
        if not _is_main_process():
            return 0
        print(json.dumps(json.loads((path / "distill.json").read_text()), indent=2))
        return 0

    return run_cli(body, "distillguard distill")
