"""`DistillGuardTrainer`: GRPO with a calibration reward against a proxy student, weighted by η.

Where the policy log-probs come from (never two policy forwards for them): `GRPOTrainer` (TRL 1.16) computes
rewards *after* its no-grad pass. Per generation batch, in `_generate_and_score_completions`:

1. `_generate` samples completions (a vLLM backend also returns their sampling log-probs);
2. if generation and optimisation steps are misaligned (or for vLLM importance sampling), GRPO runs a no-grad
   policy forward for `old_per_token_logps`; then the reference forward when β > 0;
3. `_calculate_rewards` calls the reward functions.

This trainer records (1) and (2) and hands the calibration reward the summed log-probs of each completion from
`old_per_token_logps` when GRPO computed it, else from the backend's sampling log-probs, else from exactly **one**
extra batched no-grad forward through GRPO's own `_get_per_token_logps_and_entropies` (same padding, fused LM head
and temperature as GRPO). `calibration_policy_forwards` counts those extra forwards. A completion without an exact
log pi (a vLLM token scored None; with `mask_truncated_completions`, a truncated completion that GRPO's pass masked
out of attention) gets no calibration reward (None), like any unscorable completion.

Example:
    >>> from trl_distillguard import DistillGuardConfig, DistillGuardTrainer
    >>> from distill_ortho_merge.verifiers import math_answer
    >>> args = DistillGuardConfig(output_dir="out", proxy_model_name_or_path="proxy_dir", distillability=1.0)  # doctest: +SKIP
    >>> trainer = DistillGuardTrainer("teacher_dir", reward_funcs=[math_answer], args=args, train_dataset=ds)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import trl
from trl import GRPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import pad

from distill_ortho_merge.tokenizer_check import warn_if_tokenizer_differs
from trl_distillguard.calibration_reward import CalibrationReward
from trl_distillguard.distillguard_config import DistillGuardConfig
from trl_distillguard.trl_contract import check_trl_version, generate_fields

logger = logging.getLogger(__name__)
check_trl_version(trl.__version__)  # the overrides below follow GRPOTrainer's private methods of that range


@contextlib.contextmanager
def quiet_checkpointing_deprecations() -> Iterator[None]:
    """Silence transformers' (≥ 5.25) deprecation of `is_gradient_checkpointing` and
    `gradient_checkpointing_disable/enable` inside TRL's own helpers (generation, no-grad forwards), which call
    them on every step: not the user's to fix. Other warnings pass.

    Example:
        >>> with quiet_checkpointing_deprecations():
        ...     warnings.warn("`is_gradient_checkpointing` is deprecated", FutureWarning)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            "`(is_gradient_checkpointing|gradient_checkpointing_(disable|enable))` is deprecated",
            FutureWarning,
        )
        yield


class DistillGuardTrainer(GRPOTrainer):
    """`GRPOTrainer` whose rewards are the user's task rewards plus η · the calibration reward.

    Args:
        model, reward_funcs, train_dataset, ...: as for `GRPOTrainer` (`reward_funcs` are the *task* rewards).
        args: a `DistillGuardConfig`.
        proxy_model: a proxy model object to use instead of loading `args.proxy_model_name_or_path`.
        proxy_tokenizer: its tokenizer (object or path).
        **kwargs: passed to `GRPOTrainer` (`peft_config`, `callbacks`, ...).

    With a PEFT policy the KL anchor is the adapter-disabled model; with a full model and β > 0 TRL reloads the
    anchor from the model's path, so pass a path (or a model saved with `save_pretrained`).

    Example:
        >>> trainer = DistillGuardTrainer("teacher_dir", reward_funcs=[math_answer], args=args,
        ...                               train_dataset=ds)  # doctest: +SKIP
    """

    _tag_names = ["trl", "grpo", "distillguard"]

    def __init__(
        self,
        model: Any,
        reward_funcs: Any = None,
        args: DistillGuardConfig | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        *,
        proxy_model: Any = None,
        proxy_tokenizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            raise ValueError("DistillGuardTrainer needs args=DistillGuardConfig(...)")
        if not isinstance(args, DistillGuardConfig):
            raise TypeError(f"args must be a DistillGuardConfig, got {type(args).__name__}")
        task_rewards = (
            []
            if reward_funcs is None
            else list(reward_funcs if isinstance(reward_funcs, list) else [reward_funcs])
        )
        if isinstance(model, str):  # a built-in name or *.gguf becomes a local directory (converted once)
            from distill_ortho_merge.models import resolve_model

            model = str(resolve_model(model, "model"))
        eta = args.distillability
        has_proxy = proxy_model is not None or bool(args.proxy_model_name_or_path)
        if eta != 0.0 and not has_proxy:
            raise ValueError(
                "distillability != 0 needs a proxy student: set proxy_model_name_or_path or pass proxy_model="
            )
        if (
            not isinstance(model, str)
            and args.beta != 0.0
            and not _is_peft(model)
            and kwargs.get("peft_config") is None
        ):
            if not getattr(model.config, "_name_or_path", ""):
                raise ValueError(
                    "beta > 0 reloads the KL anchor from the model's path, but this model has none: save the teacher "
                    "with save_pretrained and pass its path (or set beta=0)"
                )
        self.calibration: CalibrationReward | None = None
        if has_proxy:
            self.calibration = CalibrationReward(
                proxy_model if proxy_model is not None else args.proxy_model_name_or_path,
                proxy_tokenizer if proxy_tokenizer is not None else args.proxy_tokenizer_name_or_path,
                normalization=args.calibration_normalization,
                mode=args.calibration_mode,
                batch_size=args.calibration_batch_size,
                trust_remote_code=args.trust_remote_code,
                policy_tokenization=args.calibration_policy_tokenization,
            )
            weights = args.reward_weights
            if weights is None:
                weights = [1.0] * len(task_rewards)
            elif len(weights) == len(task_rewards) + 1:
                raise ValueError(
                    "reward_weights: give one weight per task reward; the calibration weight is `distillability`"
                )
            args = copy.copy(args)  # do not change the caller's config object
            args.reward_weights = [float(w) for w in weights] + [eta]
            task_rewards = [*task_rewards, self.calibration]
        self.calibration_policy_forwards = (
            0  # extra no-grad policy forwards (at most one per generation batch)
        )
        self._dg_batch: dict[str, Any] | None = None
        super().__init__(
            model=model,
            reward_funcs=task_rewards,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        if self.calibration is not None:
            self.calibration.policy_eos_token_ids = set(self.eos_token_ids)
            self.calibration.to(self.accelerator.device)
            if args.calibration_policy_tokenization == "canonical":  # rescoring re-encoded text: the policy
                self.calibration.bind_policy(self)
        if isinstance(model, str) and processing_class is None:  # TRL loaded it with AutoTokenizer
            warn_if_tokenizer_differs(self.processing_class, model)

    # -- policy log-probs, taken from GRPO's own computation -----------------------------------------------
    def _old_logps_expected(self) -> bool:
        """GRPO's own condition (trl 1.16, `_generate_and_score_completions`) for computing old_per_token_logps."""
        generate_every = self.args.steps_per_generation * self.num_iterations
        return self.args.gradient_accumulation_steps % generate_every != 0 or (
            self.use_vllm and self.vllm_importance_sampling_correction
        )

    def _generate_and_score_completions(self, inputs):
        # TRL's generation and no-grad passes in here toggle checkpointing through transformers' deprecated names
        with quiet_checkpointing_deprecations():
            return super()._generate_and_score_completions(inputs)

    def _generate(self, prompts: list):
        out = super()._generate(prompts)
        fields = generate_fields(out)
        self._dg_batch = {
            "prompt_ids": fields["prompt_ids"],
            "completion_ids": fields["completion_ids"],
            "sampling_logps": fields["sampling_logps"],
            "old_logps": None,
            "expect_old": self._old_logps_expected(),
        }
        return out

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
    ):
        result = super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
        )
        batch = self._dg_batch
        # The first no-grad policy pass after generation is GRPO's old_per_token_logps (the reference pass comes
        # second); record it so the calibration reward reuses it.
        if (
            batch is not None
            and batch["expect_old"]
            and batch["old_logps"] is None
            and not torch.is_grad_enabled()
        ):
            batch["old_logps"] = result[0]
        return result

    def _policy_sequence_logps(self, completion_ids_list: list[list[int]]) -> list[float | None]:
        batch = self._dg_batch
        if batch is None or [list(c) for c in batch["completion_ids"]] != [
            list(c) for c in completion_ids_list
        ]:
            raise RuntimeError(
                "DistillGuardTrainer: rewards requested for completions it did not see generated"
            )
        lengths = torch.tensor([len(c) for c in completion_ids_list])
        if batch["old_logps"] is not None:
            per_token = batch["old_logps"].float()
            mask = (
                torch.arange(per_token.size(1), device=per_token.device)[None, :]
                < lengths.to(per_token.device)[:, None]
            )
            sums: list[float | None] = (per_token * mask).sum(dim=1).tolist()
            if self.mask_truncated_completions:
                # GRPO ran this pass with truncated completions masked out of attention: their log-probs are not
                # the policy's, and GRPO gives them no gradient anyway, so they are unscorable here.
                ends = {*self.eos_token_ids, self._tokenizer.pad_token_id}
                sums = [
                    None if not c or c[-1] not in ends else v
                    for c, v in zip(completion_ids_list, sums, strict=True)
                ]
            return sums
        if batch["sampling_logps"] is not None:
            # vLLM marks a token it could not score with None: that completion has no exact log pi
            return [None if any(x is None for x in lp) else float(sum(lp)) for lp in batch["sampling_logps"]]
        return self._one_policy_forward(batch["prompt_ids"], completion_ids_list)

    def _one_policy_forward(self, prompt_ids_list: list, completion_ids_list: list) -> list[float]:
        """The one extra batched no-grad forward, built exactly like GRPO's old_per_token_logps pass."""
        device = self.accelerator.device
        pad_id = self._tokenizer.pad_token_id
        prompt_ids = pad(
            [torch.tensor(p) for p in prompt_ids_list], padding_value=pad_id, padding_side="left"
        )
        prompt_mask = pad(
            [torch.ones(len(p), dtype=torch.long) for p in prompt_ids_list],
            padding_value=0,
            padding_side="left",
        )
        completion_ids = pad(
            [torch.tensor(c) for c in completion_ids_list], padding_value=pad_id, padding_side="right"
        )
        completion_mask = pad(
            [torch.ones(len(c), dtype=torch.long) for c in completion_ids_list],
            padding_value=0,
            padding_side="right",
        )
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1).to(device)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1).to(device)
        mode = "train" if self.model.training else "eval"
        batch_size = (
            self.args.per_device_train_batch_size if mode == "train" else self.args.per_device_eval_batch_size
        )
        # runs inside `_generate_and_score_completions` (via `_calculate_rewards`), whose override keeps TRL's
        # helper below from repeating transformers' checkpointing deprecations
        with (
            torch.no_grad(),
            disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
        ):
            logps, _, _ = super()._get_per_token_logps_and_entropies(
                self.model, input_ids, attention_mask, completion_ids.size(1), batch_size=batch_size
            )
        self.calibration_policy_forwards += 1
        return (logps.float() * completion_mask.to(logps.device)).sum(dim=1).tolist()

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        if self.calibration is None or self.calibration.mode != "log_ratio":
            return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        policy_logps = self._policy_sequence_logps(completion_ids_list)
        try:
            with self.calibration.using_policy_logps(policy_logps):
                return super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        finally:
            self._dg_batch = None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.calibration is not None:
            logs = {**logs, "calibration/distillability": self.args.distillability}
        super().log(logs, start_time)


def _is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)
