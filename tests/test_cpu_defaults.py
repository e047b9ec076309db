"""Our TRL config classes pick CPU-safe defaults without an accelerator, only for fields the user left unset."""

from __future__ import annotations

import pytest

from distill_ortho_merge import devices
from peft_orthoreg import OrthoSFTConfig
from trl_distillguard import DistillGuardConfig

CONFIGS = [
    (DistillGuardConfig, {"proxy_model_name_or_path": "proxy"}),
    (OrthoSFTConfig, {}),
]


@pytest.mark.parametrize("cls,extra", CONFIGS, ids=lambda c: getattr(c, "__name__", ""))
def test_bf16_off_without_an_accelerator(cls, extra, tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "has_accelerator", lambda: False)
    assert cls(output_dir=str(tmp_path), report_to=[], **extra).bf16 is False


@pytest.mark.parametrize("cls,extra", CONFIGS, ids=lambda c: getattr(c, "__name__", ""))
def test_explicit_bf16_is_kept(cls, extra, tmp_path, monkeypatch):
    """An explicit bf16=True is the user's choice: transformers' own check still refuses it on a CPU."""
    monkeypatch.setattr(devices, "has_accelerator", lambda: False)
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: False)
    with pytest.raises(ValueError, match="bf16"):
        cls(output_dir=str(tmp_path), report_to=[], bf16=True, **extra)


def test_with_an_accelerator_trl_default_is_untouched(monkeypatch):
    """The mixin only runs before the config's own __post_init__: with an accelerator, TRL's default applies."""
    from dataclasses import dataclass

    seen = {}

    @dataclass
    class Base:
        bf16: bool | None = None

        def __post_init__(self):
            seen["bf16"] = self.bf16

    @dataclass
    class Safe(devices.CpuSafeDefaults, Base):
        pass

    monkeypatch.setattr(devices, "has_accelerator", lambda: True)
    Safe()
    assert seen["bf16"] is None
    monkeypatch.setattr(devices, "has_accelerator", lambda: False)
    Safe()
    assert seen["bf16"] is False
    Safe(bf16=True)
    assert seen["bf16"] is True
