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


@pytest.mark.parametrize("cls,extra", CONFIGS, ids=lambda c: getattr(c, "__name__", ""))
def test_default_checkpointing_does_not_warn_and_keeps_trl_default(cls, extra, tmp_path):
    """TRL's configs set the old `gradient_checkpointing` by default; with transformers' new name present, a config
    left at its defaults must not warn, and must keep TRL's value; a value the user gives under the old name still
    warns (it is the user's deprecated field) and still takes effect."""
    import warnings

    fields = cls.__dataclass_fields__
    if "activation_checkpointing" not in fields:
        pytest.skip("this transformers has no activation_checkpointing")
    trl_default = fields["gradient_checkpointing"].default
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        args = cls(output_dir=str(tmp_path), report_to=[], **extra)
    assert args.activation_checkpointing == trl_default
    assert args.gradient_checkpointing == trl_default
    with pytest.warns(FutureWarning, match="gradient_checkpointing"):
        args = cls(output_dir=str(tmp_path), report_to=[], gradient_checkpointing=not trl_default, **extra)
    assert args.activation_checkpointing is (not trl_default)
    args = cls(output_dir=str(tmp_path), report_to=[], activation_checkpointing=not trl_default, **extra)
    assert args.gradient_checkpointing is (not trl_default)
