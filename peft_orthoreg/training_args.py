"""`OrthoSFTConfig`: TRL's `SFTConfig` that also runs on a machine without an accelerator.

TRL's `SFTConfig` turns `bf16` on unless told otherwise, which transformers refuses without a GPU; here an unset
`bf16` is off on such a machine (an explicit value is kept). Use it wherever `SFTConfig` goes, e.g. with
`with_orthoreg(SFTTrainer)`.

Example:
    >>> from peft_orthoreg import OrthoSFTConfig
    >>> args = OrthoSFTConfig(output_dir="task_a", report_to=[])
    >>> from distill_ortho_merge.devices import has_accelerator
    >>> args.bf16 or not has_accelerator()
    True
"""

from __future__ import annotations

from dataclasses import dataclass

from trl import SFTConfig

from distill_ortho_merge.devices import CpuSafeDefaults


@dataclass
class OrthoSFTConfig(CpuSafeDefaults, SFTConfig):
    """`SFTConfig` with `bf16` off by default when no accelerator is present (every field is `SFTConfig`'s).

    Example:
        >>> OrthoSFTConfig(output_dir="task_a", bf16=False, report_to=[]).bf16
        False
    """
