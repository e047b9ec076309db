"""Distillability calibration for TRL.

The trainer classes import TRL (seconds), so they load on first use; `load_plugins`/`registry` stay cheap.

Example:
    >>> from trl_distillguard import CalibrationReward, DistillGuardConfig, DistillGuardTrainer
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("distill-ortho-merge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from trl_distillguard.plugins import load_plugins, registry  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from trl_distillguard.calibration_reward import CalibrationReward
    from trl_distillguard.distillguard_config import DistillGuardConfig
    from trl_distillguard.distillguard_trainer import DistillGuardTrainer

# public name -> module that defines it (imported lazily)
_LAZY = {
    "CalibrationReward": "trl_distillguard.calibration_reward",
    "DistillGuardConfig": "trl_distillguard.distillguard_config",
    "DistillGuardTrainer": "trl_distillguard.distillguard_trainer",
}

__all__ = [
    "__version__",
    "load_plugins",
    "registry",
    "CalibrationReward",
    "DistillGuardConfig",
    "DistillGuardTrainer",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trl_distillguard' has no attribute {name!r}")
