"""CPU-safe defaults for TRL-style training configs: the Python API runs on a CPU-only machine as the CLIs do.

TRL's configs turn `bf16` on unless told otherwise, which transformers refuses on a machine without an
accelerator ("Your setup doesn't support bf16/gpu"). `CpuSafeDefaults` turns it off there, and only when the
caller left `bf16` unset; an explicit `bf16=True` still reaches transformers' own check.

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
        super().__post_init__()  # type: ignore[misc]
