"""OrthoReg for PEFT and full fine-tuning.

Public API (imported lazily, so `import peft_orthoreg` stays light): `OrthoLoraConfig`, `orthoreg_loss`,
`scale_free_loss`, `flat_spectrum_loss`, `inter_task_loss`, `form_loss`, `dense_orthoreg_loss`,
`dense_scale_free_loss`, `dense_flat_spectrum_loss`, `dense_inter_task_loss`, `with_orthoreg`, `TaskVector`,
`diagnose`, `OrthoSFTConfig` (TRL's `SFTConfig` with CPU-safe defaults), `load_plugins`, `registry`.

Example:
    >>> import peft_orthoreg
    >>> callable(peft_orthoreg.dense_orthoreg_loss)
    True
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("distill-ortho-merge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from peft_orthoreg.plugins import load_plugins, registry  # noqa: E402

# public name -> module that defines it (peft / transformers / trl are imported only when used)
_LAZY = {
    "OrthoLoraConfig": "peft_orthoreg.config",
    "orthoreg_loss": "peft_orthoreg.lora",
    "scale_free_loss": "peft_orthoreg.lora",
    "flat_spectrum_loss": "peft_orthoreg.lora",
    "inter_task_loss": "peft_orthoreg.lora",
    "form_loss": "peft_orthoreg.lora",
    "dense_orthoreg_loss": "peft_orthoreg.orthoreg",
    "dense_scale_free_loss": "peft_orthoreg.orthoreg",
    "factor_scale_free_loss": "peft_orthoreg.orthoreg",
    "dense_flat_spectrum_loss": "peft_orthoreg.orthoreg",
    "factor_flat_spectrum_loss": "peft_orthoreg.orthoreg",
    "dense_inter_task_loss": "peft_orthoreg.orthoreg",
    "factor_inter_task_loss": "peft_orthoreg.orthoreg",
    "factor_orthoreg_loss": "peft_orthoreg.orthoreg",
    "with_orthoreg": "peft_orthoreg.trainer",
    "OrthoSFTConfig": "peft_orthoreg.training_args",
    "TaskVector": "peft_orthoreg.task_vector",
    "diagnose": "peft_orthoreg.diagnostics",
}

__all__ = ["__version__", "load_plugins", "registry", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'peft_orthoreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
