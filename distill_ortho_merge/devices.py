"""CPU-safe defaults for TRL-style training configs: the Python API runs on a CPU-only machine as the CLIs do.

TRL's configs turn `bf16` on unless told otherwise, which transformers refuses on a machine without an
accelerator ("Your setup doesn't support bf16/gpu"). `CpuSafeDefaults` turns it off there, and only when the
caller left `bf16` unset; an explicit `bf16=True` still reaches transformers' own check. It also carries TRL's
`gradient_checkpointing` default over to transformers' new name `activation_checkpointing`, so a config the user
left at its defaults does not warn about a deprecated field they never set.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Base:
    ...     bf16: bool | None = None
    ...     def __post_init__(self):
    ...         self.bf16 = True if self.bf16 is None else self.bf16  # what TRL's configs do
    >>> @dataclass
    ... class Safe(CpuSafeDefaults, Base):
    ...     pass
    >>> Safe().bf16 == has_accelerator(), Safe(bf16=True).bf16
    (True, True)
"""

from __future__ import annotations


def has_accelerator() -> bool:
    """Whether torch sees a CUDA, MPS, XPU or NPU device.

    Example:
        >>> isinstance(has_accelerator(), bool)
        True
    """
    import torch

    if torch.cuda.is_available():
        return True
    for name in ("mps", "xpu", "npu"):
        backend = getattr(torch, name, None) or getattr(torch.backends, name, None)
        if backend is not None and getattr(backend, "is_available", lambda: False)():
            return True
    return False


class CpuSafeDefaults:
    """Mixin for a `TrainingArguments` dataclass (put it first in the bases): an unset `bf16` (None) becomes
    False when no accelerator is present, before the config's own `__post_init__` picks its default.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Config:
        ...     bf16: bool | None = None
        ...     def __post_init__(self):
        ...         pass
        >>> @dataclass
        ... class SafeConfig(CpuSafeDefaults, Config):
        ...     pass
        >>> SafeConfig().bf16 is None if has_accelerator() else SafeConfig().bf16 is False
        True
    """

    def __post_init__(self) -> None:
        if getattr(self, "bf16", False) is None and not has_accelerator():
            self.bf16 = False
        # transformers >= 5.25 renamed `gradient_checkpointing` to `activation_checkpointing` and warns whenever the
        # old name is set, which TRL's configs do by default: carry TRL's default over to the new name, so only a
        # value the user passed under the old name warns.
        fields = getattr(self, "__dataclass_fields__", {})
        if (
            "activation_checkpointing" in fields
            and self.activation_checkpointing is None  # type: ignore[attr-defined]
            and "gradient_checkpointing" in fields
            and self.gradient_checkpointing == fields["gradient_checkpointing"].default  # type: ignore[attr-defined]
        ):
            self.activation_checkpointing = self.gradient_checkpointing  # type: ignore[attr-defined]
        super().__post_init__()  # type: ignore[misc]
