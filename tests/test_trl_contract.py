"""Pins exactly what DistillGuardTrainer relies on inside TRL's GRPOTrainer (private methods, their signatures,
the fields of `_generate`'s tuple, and the condition under which GRPO computes old_per_token_logps). A TRL upgrade
that changes any of these fails here, in one place."""

from __future__ import annotations

import inspect
import re
import warnings

import pytest
import trl
from trl import GRPOTrainer

from trl_distillguard.distillguard_trainer import DistillGuardTrainer
from trl_distillguard.trl_contract import GENERATE_FIELDS, check_trl_version, generate_fields


def params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_overridden_private_methods_exist_with_the_signatures_we_call():
    assert params(GRPOTrainer._generate) == ["self", "prompts"]
    assert params(GRPOTrainer._calculate_rewards) == [
        "self",
        "inputs",
        "prompts",
        "completions",
        "completion_ids_list",
    ]
    assert params(GRPOTrainer._get_per_token_logps_and_entropies)[:6] == [
        "self",
        "model",
        "input_ids",
        "attention_mask",
        "logits_to_keep",
        "batch_size",
    ]
    for name in ("_generate", "_calculate_rewards", "_get_per_token_logps_and_entropies"):
        assert name in vars(DistillGuardTrainer), name  # we really override these, and only through them


def test_generate_tuple_fields_are_the_ones_grpo_unpacks():
    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    unpack = re.search(r"\(\s*([\w,\s]+?)\s*\)\s*=\s*self\._generate\(prompts\)", source)
    assert unpack, "GRPOTrainer no longer unpacks self._generate(prompts) into a tuple"
    names = [n.strip() for n in unpack.group(1).split(",") if n.strip()]
    # Our names for the fields we read, position by position.
    theirs = dict(zip(GENERATE_FIELDS, names, strict=True))
    assert theirs["prompt_ids"] == "prompt_ids_list"
    assert theirs["completion_ids"] == "completion_ids_list"
    assert theirs["sampling_logps"] == "sampling_per_token_logps_list"


def test_old_logps_condition_is_grpos():
    source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    assert "generate_every = self.args.steps_per_generation * self.num_iterations" in source
    assert "self.args.gradient_accumulation_steps % generate_every != 0 or (" in source
    assert "self.use_vllm and self.vllm_importance_sampling_correction" in source
    # old logps first, reference logps second: DistillGuardTrainer records the first no-grad pass.
    assert source.index("old_per_token_logps, _, _ = self._get_per_token_logps_and_entropies") < source.index(
        "ref_per_token_logps, _, _ = self._get_per_token_logps_and_entropies"
    )


def test_attributes_we_read_are_set_by_grpo_init():
    source = inspect.getsource(GRPOTrainer.__init__)
    for attr in ("eos_token_ids", "_tokenizer", "mask_truncated_completions", "use_vllm", "_metrics"):
        assert f"self.{attr} =" in source, attr


def test_generate_fields_refuses_another_shape():
    assert generate_fields(tuple(range(8)))["sampling_logps"] == 4
    with pytest.raises(RuntimeError, match="returned tuple of 7 fields, expected 8"):
        generate_fields(tuple(range(7)))


def test_installed_trl_is_in_the_tested_range_and_outside_warns():
    assert check_trl_version(trl.__version__)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not check_trl_version("1.17.0") and not check_trl_version("1.15.2")
    assert len(caught) == 2 and "outside the range" in str(caught[0].message)
