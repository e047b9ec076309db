"""The one PEFT adapter reader (`distill_ortho_merge.adapters`): `TaskVector.from_peft` and `lora-merge` refuse the
same folders with the same line, `TaskVector` reads everything the reader supports (also `lora_bias`), and
`lora-merge` refuses, by name, what it cannot merge."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from distill_ortho_merge.adapters import AdapterError, read_peft_adapter
from mergekit_plugins.lora.adapters import read_adapter
from mergekit_plugins.lora.config import LoraMergeError
from peft_orthoreg import TaskVector

A_KEY, B_KEY = "base_model.model.l.q.lora_A.weight", "base_model.model.l.q.lora_B.weight"


def write_adapter(path, tensors=None, weights_file="adapter_model.safetensors", **config):
    path.mkdir()
    (path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4, **config})
    )
    if tensors is None:
        tensors = {A_KEY: torch.randn(2, 5), B_KEY: torch.randn(3, 2)}
    save_file(tensors, str(path / weights_file))
    return path


REFUSALS = {
    "not an adapter": (lambda d: d.mkdir(), "not a PEFT adapter directory (no adapter_config.json)"),
    "not JSON": (
        lambda d: (d.mkdir(), (d / "adapter_config.json").write_text("{")),
        "adapter_config.json is not readable JSON",
    ),
    "IA3": (lambda d: write_adapter(d, peft_type="IA3"), "peft_type is 'IA3'"),
    "DoRA": (lambda d: write_adapter(d, use_dora=True), "use_dora is set: DoRA"),
    "PiSSA": (lambda d: write_adapter(d, init_lora_weights="pissa_niter_4"), "changes the base weights"),
    "trainable tokens": (
        lambda d: write_adapter(d, trainable_token_indices=[1]),
        "trainable_token_indices is set: trainable tokens",
    ),
    "pickle only": (
        lambda d: write_adapter(d, weights_file="adapter_model.bin"),
        "adapter_model.bin exists, but no adapter_model.safetensors",
    ),
    "conv LoRA": (
        lambda d: write_adapter(d, {A_KEY: torch.zeros(2, 3, 1, 1), B_KEY: torch.zeros(4, 2, 1, 1)}),
        "is 4-D: conv LoRA is not supported",
    ),
    "quantised": (
        lambda d: write_adapter(d, {A_KEY: torch.zeros(2, 5), B_KEY: torch.zeros(3, 2, dtype=torch.int8)}),
        "torch.int8; quantized factors",
    ),
    "lone factor": (lambda d: write_adapter(d, {A_KEY: torch.zeros(2, 5)}), "has lora_A without its partner"),
    "rank": (lambda d: write_adapter(d, r=3), "do not match r=3"),
    "variant tensor": (
        lambda d: write_adapter(d, {"base_model.model.l.q.lora_magnitude_vector": torch.ones(3)}),
        "is not a plain LoRA factor",
    ),
    "empty": (lambda d: write_adapter(d, {}), "holds no LoRA factors"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_both_callers_refuse_the_same_folders_with_the_same_line(case, tmp_path):
    make, needle = REFUSALS[case]
    make(tmp_path / "adapter")
    with pytest.raises(AdapterError) as shared:
        read_peft_adapter(tmp_path / "adapter")
    message = str(shared.value)
    assert (
        needle in message and message.startswith(f"adapter {tmp_path / 'adapter'}: ") and "\n" not in message
    )
    with pytest.raises(ValueError) as via_task_vector:
        TaskVector.from_peft(tmp_path / "adapter")
    with pytest.raises(LoraMergeError) as via_lora_merge:
        read_adapter(tmp_path / "adapter")
    assert str(via_task_vector.value) == str(via_lora_merge.value) == message
    if case == "not an adapter":  # still a FileNotFoundError for callers that catch that
        assert isinstance(via_task_vector.value, FileNotFoundError)


def test_scales_follow_patterns_and_rslora(tmp_path):
    tensors = {A_KEY: torch.ones(2, 5), B_KEY: torch.ones(3, 2)}
    tensors["base_model.model.l.k.lora_A.weight"] = torch.ones(4, 5)
    tensors["base_model.model.l.k.lora_B.weight"] = torch.ones(3, 4)
    adapter = read_peft_adapter(
        write_adapter(tmp_path / "a", tensors, use_rslora=True, rank_pattern={"k": 4}, alpha_pattern={"k": 8})
    )
    assert adapter.modules["l.q"].scale == pytest.approx(4 / 2**0.5)
    assert adapter.modules["l.k"].scale == pytest.approx(8 / 2.0)  # 8 / √4
    torch.testing.assert_close(adapter.modules["l.k"].delta(), torch.full((3, 5), 4 * 4.0))


def test_lora_bias_reads_like_peft_merges_it_and_lora_merge_refuses_it(teacher_dir, tmp_path):
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir),
        LoraConfig(r=2, lora_alpha=6, target_modules=["q_proj"], lora_bias=True),
    )
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    model.save_pretrained(tmp_path / "adapter")
    merged = copy.deepcopy(model).merge_and_unload()
    reference = TaskVector.from_models(teacher_dir, merged)
    got = TaskVector.from_peft(tmp_path / "adapter")
    assert any(k.endswith("q_proj.bias") for k in got.keys())
    for key in got.keys():
        torch.testing.assert_close(got[key], reference[key], rtol=1e-5, atol=1e-6, msg=key)
    changed = {k for k in reference.keys() if reference[k].abs().max() > 0}
    assert changed == set(got.keys())
    with pytest.raises(LoraMergeError, match="lora_bias is set: .* not supported by lora-merge"):
        read_adapter(tmp_path / "adapter")
