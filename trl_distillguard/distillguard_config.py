"""`DistillGuardConfig`: `GRPOConfig` plus the distillability-calibration knobs.

Example:
    >>> from trl_distillguard import DistillGuardConfig
    >>> args = DistillGuardConfig(output_dir="out", proxy_model_name_or_path="proxy_dir", distillability=-1.0,
    ...                           report_to=[])  # no accelerator: bf16 stays off
    >>> args.multi_objective_aggregation, args.beta
    ('normalize_then_sum', 0.1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trl import GRPOConfig

from distill_ortho_merge.devices import CpuSafeDefaults
from trl_distillguard.calibration_reward import MODES, NORMALIZATIONS, check_policy_tokenization


@dataclass
class DistillGuardConfig(CpuSafeDefaults, GRPOConfig):
    r"""
    Configuration of [`DistillGuardTrainer`]: every `GRPOConfig` field, plus the calibration reward. On a machine
    without an accelerator an unset `bf16` defaults to False (`distill_ortho_merge.devices.CpuSafeDefaults`).

    The advantage of completion i in its group is z(r_task)_i + η · z(r_cal)_i (each reward normalised within its
    group, TRL's `multi_objective_aggregation="normalize_then_sum"` with `reward_weights=[1, …, 1, η]`), and the loss
    keeps TRL's KL anchor β · KL(π_θ ‖ π₀) to the original teacher.

    Parameters:
        proxy_model_name_or_path (`str` or `None`):
            Local path (or hub id) of the proxy student q. Required when `distillability != 0`.
        proxy_tokenizer_name_or_path (`str` or `None`):
            Tokenizer of the proxy; defaults to `proxy_model_name_or_path`.
        distillability (`float`, defaults to `0.0`):
            η. > 0 makes the teacher more distillable, < 0 less (undistillable); 0 is plain GRPO on the task rewards
            (a proxy, if given, is still scored and logged: the fair η = 0 control).
        calibration_mode (`str`, defaults to `"log_ratio"`):
            `"log_ratio"`: r = log q − log π; `"proxy_logprob"`: r = log q.
        calibration_normalization (`str`, defaults to `"bytes"`):
            `"bytes"` (UTF-8 bytes of the completion, tokenizer-independent), `"tokens"` (proxy tokens) or `"none"`.
        calibration_batch_size (`int`, defaults to `16`):
            Sequences per proxy forward.
        calibration_policy_tokenization (`str`, defaults to `"sampled"`):
            log π of the sampled ids (`"sampled"`) or of the policy tokenizer's canonical re-encoding of the
            completion text (`"canonical"`, one extra no-grad policy forward over the rows that differ): removes
            the bias of sampled token paths that re-encoding never produces (the proxy always sees canonical text).
        beta (`float`, defaults to `0.1`, TRL's default is `0.0`):
            The KL anchor to the original teacher. Calibration must move *how* the teacher writes, not *what* it
            knows, and η < 0 rewards text the proxy finds unlikely, which gibberish satisfies: without an anchor the
            teacher degrades (in a CPU pilot, lr 5e-4 / β 0.02 wrecked the teacher and η = −1 reward-hacked into
            gibberish, while lr 5e-5 / β 0.1 kept it intact). 0.1 is that stable setting; lower it with care.
        multi_objective_aggregation (`str`, defaults to `"normalize_then_sum"`):
            Each reward normalised within its group before the weighted sum, so η is a ratio of z-scores whatever
            the scales of the task and calibration rewards.
    """

    proxy_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Path (or hub id) of the frozen proxy student q. Required when distillability != 0."
        },
    )
    proxy_tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Tokenizer of the proxy; defaults to proxy_model_name_or_path."},
    )
    distillability: float = field(
        default=0.0,
        metadata={
            "help": "η, the weight of the calibration reward: > 0 distillable, < 0 undistillable, 0 = plain GRPO "
            "(calibration still logged when a proxy is given)."
        },
    )
    calibration_mode: str = field(
        default="log_ratio",
        metadata={"help": "`log_ratio` (log q - log pi) or `proxy_logprob` (log q only)."},
    )
    calibration_normalization: str = field(
        default="bytes",
        metadata={
            "help": "Divide the calibration reward by the completion's UTF-8 `bytes` (tokenizer-independent), the "
            "proxy's `tokens`, or `none`."
        },
    )
    calibration_batch_size: int = field(
        default=16,
        metadata={"help": "Sequences per proxy forward pass."},
    )
    calibration_policy_tokenization: str = field(
        default="sampled",
        metadata={
            "help": "log pi of the `sampled` ids or of the `canonical` re-tokenization of the completion text."
        },
    )
    beta: float = field(
        default=0.1,
        metadata={
            "help": "KL coefficient of the anchor to the original teacher (TRL's default is 0.0). Calibration should "
            "change how the teacher writes, not what it knows; 0.1 kept a CPU-pilot teacher intact at lr 5e-5 where "
            "0.02 let it degrade."
        },
    )
    multi_objective_aggregation: str = field(
        default="normalize_then_sum",
        metadata={
            "help": "How rewards combine: `normalize_then_sum` (default here) normalises each reward within its group "
            "before the weighted sum, so the advantage is z(task) + eta * z(calibration)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()  # GRPOConfig already rejects num_generations < 2 (rewards are group-normalised)
        self.distillability = float(self.distillability)
        if not math.isfinite(self.distillability):
            raise ValueError(f"distillability must be a finite number, got {self.distillability}")
        if self.calibration_mode not in MODES:
            raise ValueError(
                f"calibration_mode={self.calibration_mode!r} is unknown; choose one of {', '.join(MODES)}"
            )
        if self.calibration_normalization not in NORMALIZATIONS:
            raise ValueError(
                f"calibration_normalization={self.calibration_normalization!r} is unknown; choose one of "
                f"{', '.join(NORMALIZATIONS)}"
            )
        check_policy_tokenization(self.calibration_policy_tokenization, self.calibration_mode)
        if self.calibration_batch_size < 1:
            raise ValueError(f"calibration_batch_size must be >= 1, got {self.calibration_batch_size}")
        # A proxy may also come as an object (`DistillGuardTrainer(proxy_model=...)`), so "η != 0 needs a proxy" is
        # checked by the trainer, which sees both.
