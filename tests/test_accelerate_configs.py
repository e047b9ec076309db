"""examples/accelerate/*.yaml: accelerate's own config format with valid keys (the launcher ignores unknown nested
keys silently, so they are checked here against `accelerate launch`'s options)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CONFIGS = sorted((Path(__file__).parents[1] / "examples" / "accelerate").glob("*.yaml"))


def test_the_four_launch_modes_ship():
    assert [p.stem for p in CONFIGS] == ["ddp", "fsdp", "zero2", "zero3"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_valid_for_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    config = ClusterConfig.from_yaml_file(str(path))  # rejects unknown top-level keys
    options = {action.dest for action in launch_command_parser()._actions}
    raw = yaml.safe_load(path.read_text())
    nested = [("fsdp_" + k if not k.startswith("fsdp") else k) for k in raw.get("fsdp_config", {})]
    nested += list(raw.get("deepspeed_config", {}))
    assert set(nested) <= options, sorted(set(nested) - options)
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED"}[path.stem]
    assert config.distributed_type.value == expected and config.num_processes > 1 and not config.use_cpu
    if path.stem.startswith("zero"):
        assert raw["deepspeed_config"]["zero_stage"] == int(path.stem[-1])
    if path.stem == "fsdp":  # OrthoReg and distill support FSDP2 (DTensor rows), not FSDP1's flat parameters
        assert raw["fsdp_config"]["fsdp_version"] == 2
        assert (
            raw["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
        )  # distill saves a loadable model
