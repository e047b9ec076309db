"""`peft-orthoreg train`: TRL's sft with OrthoReg from a YAML config and flags, writing a PEFT adapter and the
logged `orthoreg` term; inter-task training against an earlier adapter; bad input is one line, exit 2, before
training, nothing written."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import yaml
from lora_fixtures import make_adapter, save_base
from safetensors.torch import load_file

from peft_orthoreg import cli
from peft_orthoreg.config import OrthoLoraConfig

pytest.importorskip("reasoning_gym")
SPEC = "reasoning_gym:gcd?size=8&split=train&format=text&prompt=bare"
FLAGS = ["--max_steps", "2", "--per_device_train_batch_size", "4", "--lora_r", "2", "--lora_alpha", "4",
         "--lora_target_modules", "q_proj", "v_proj", "--learning_rate", "1e-2"]  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory, student_dir):
    return save_base(student_dir, tmp_path_factory.mktemp("train") / "base", torch.float32)


def run(capsys, *argv):
    rc = cli.main(["train", *map(str, argv)])
    captured = capsys.readouterr()
    return rc, captured.out, [line for line in captured.err.splitlines() if line.startswith("peft-orthoreg")]


def test_train_from_yaml_then_inter_task(base, tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "model_name_or_path": str(base), "dataset": SPEC, "output_dir": str(tmp_path / "gcd"), "max_steps": 2,
        "per_device_train_batch_size": 4, "lora_r": 2, "lora_alpha": 4, "lora_target_modules": ["q_proj", "v_proj"],
        "warmup_steps": 0.5, "learning_rate": 1e-2, "orthoreg_weight": 0.5,
    }))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, out, err = run(capsys, "--config", config)
    assert rc == 0, err
    # our CPU default turns checkpointing off under the name this transformers knows (the old one warns)
    # (PEFT's own read of `is_gradient_checkpointing` still warns: not ours)
    old_name = [
        str(w.message) for w in caught if str(w.message).startswith("`gradient_checkpointing` is deprecated")
    ]
    assert not old_name, old_name
    first = tmp_path / "gcd"
    cfg = OrthoLoraConfig.from_pretrained(str(first))
    assert cfg.peft_type.value == "LORA" and cfg.orthoreg_weight == 0.5 and cfg.r == 2
    assert json.loads((first / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    factors = load_file(first / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in factors.items())  # trained (B starts at 0)
    log = json.loads((first / "orthoreg_train.json").read_text())
    assert len([h["orthoreg"] for h in log["log_history"] if "orthoreg" in h]) == 2
    assert "orthoreg" in out and not list(tmp_path.glob(".*partial*"))
    # the next task, orthogonal to the first adapter (inter_task form, logged; the reference is recorded)
    second = tmp_path / "lcm"
    rc, out, err = run(capsys, "--model_name_or_path", base, "--dataset", SPEC.replace("gcd", "lcm"),
                       "--output_dir", second, *FLAGS, "--orthoreg_form", "inter_task",
                       "--orthoreg_reference_adapters", first)  # fmt: skip
    assert rc == 0, err
    log = json.loads((second / "orthoreg_train.json").read_text())
    values = [h["orthoreg"] for h in log["log_history"] if "orthoreg" in h]
    assert values[0] == 0.0 and values[-1] > 0  # B = 0 at the start: no overlap yet, then some
    assert log["orthoreg_reference_adapters"] == {"reference_0": str(first)}
    saved = load_file(second / "adapter_model.safetensors")
    assert set(saved) == set(factors) and not any("reference" in k for k in saved)  # only the new adapter


def test_bad_input_is_one_line_before_training(base, teacher_dir, tmp_path, capsys):
    no_cols = tmp_path / "q.jsonl"
    no_cols.write_text('{"question": "1 + 1?"}\n')
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("x")
    other = make_adapter(teacher_dir, tmp_path / "other", 1, r=2, lora_alpha=2, target_modules=["q_proj"])
    out = tmp_path / "out"
    good = {"--model_name_or_path": base, "--dataset": SPEC, "--output_dir": out}
    cases = [
        ({"--orthoreg_form": "nope"}, "orthoreg_form='nope'"),
        ({"--orthoreg_form": "inter_task", "--orthoreg_reference_adapters": tmp_path / "missing"},
         "orthoreg_reference_adapters: " + str(tmp_path / "missing") + ": not a PEFT adapter directory"),
        ({"--orthoreg_form": "inter_task", "--orthoreg_reference_adapters": other}, "an adapter of another base"),
        ({"--orthoreg_form": "inter_task"}, "needs orthoreg_reference_adapters"),
        ({"--dataset": no_cols}, "needs the columns messages, text, prompt + completion or prompt + answer"),
        ({"--dataset": None}, "give --dataset"),
        ({"--output_dir": occupied}, "exists and is not empty"),
        ({"--model_name_or_path": "no-such-model"}, "'no-such-model' is not a local directory"),
        ({"--warmup_ratio": 0.1}, "give warmup_steps as a fraction < 1"),
        ({"--orthoreg_wieght": 1}, "did you mean 'orthoreg_weight'?"),
    ]  # fmt: skip
    for change, needle in cases:
        args = {**good, **change}
        rc, _, err = run(capsys, *[x for k, v in args.items() if v is not None for x in (k, v)], *FLAGS)
        assert rc == 2 and len(err) == 1 and needle in err[0], (change, err)
        assert not out.exists() and (occupied / "keep.txt").exists()
