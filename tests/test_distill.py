"""`distillguard distill`: the three recipes on the tiny fixtures, LoRA, and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from distill_ortho_merge import testing as tiny
from distill_ortho_merge.cli import InputError
from trl_distillguard.distill import check_byte_level, distill, main, sample_teacher
from trl_distillguard.distill_config import DistillConfig
from trl_distillguard.loading import load_causal_lm


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"What is {a} + {a + 2}?"}) + "\n" for a in range(8)))
    return path


@pytest.fixture(scope="module")
def student_a_dir(tmp_path_factory, tokenizer_a):
    """A Llama student on the teacher's tokenizer A (shared vocabulary, for `kd`)."""
    return tiny.save_model(
        tiny.make_student(tokenizer_a, seed=3), tokenizer_a, tmp_path_factory.mktemp("student_a")
    )


def _cfg(recipe, teacher, student, data, out, **kw):
    base = dict(max_steps=2, per_device_train_batch_size=4, max_completion_length=8, learning_rate=1e-2)
    return DistillConfig(
        recipe=recipe,
        teacher_model_name_or_path=str(teacher),
        student_model_name_or_path=str(student),
        dataset_name_or_path=str(data),
        output_dir=str(out),
        **{**base, **kw},
    )


def _weights_changed(before_dir, after_dir) -> bool:
    a = AutoModelForCausalLM.from_pretrained(before_dir).state_dict()
    b = AutoModelForCausalLM.from_pretrained(after_dir).state_dict()
    return any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("recipe", ["sft", "uld"])
def test_cross_tokenizer_recipes_train_and_save(recipe, teacher_dir, student_dir, prompts_file, tmp_path):
    out = distill(_cfg(recipe, teacher_dir, student_dir, prompts_file, tmp_path / "out"))
    summary = json.loads((out / "distill.json").read_text())
    assert summary["recipe"] == recipe and summary["global_step"] == 2
    assert (
        summary["final_loss"] is not None and summary["final_loss"] == summary["final_loss"]
    )  # finite, not NaN
    assert _weights_changed(student_dir, out)
    model, tok = load_causal_lm(str(out), "distilled")
    assert len(tok) == 640  # the student keeps its own tokenizer
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp sibling left


def test_kd_shared_vocabulary_with_on_policy_fraction(teacher_dir, student_a_dir, prompts_file, tmp_path):
    out = distill(
        _cfg("kd", teacher_dir, student_a_dir, prompts_file, tmp_path / "kd", on_policy_fraction=0.0)
    )
    assert json.loads((out / "distill.json").read_text())["global_step"] == 2
    assert _weights_changed(student_a_dir, out)


@pytest.mark.parametrize("recipe", ["kd", "uld"])
def test_logit_recipes_refuse_fewer_rows_than_one_batch(
    recipe, teacher_dir, student_dir, student_a_dir, prompts_file, tmp_path
):
    # TRL's logit trainers train on whole batches: 8 prompts at batch 16 would run 0 steps and ship an
    # untrained student as if distilled.
    student = student_a_dir if recipe == "kd" else student_dir
    cfg = _cfg(recipe, teacher_dir, student, prompts_file, tmp_path / "out", per_device_train_batch_size=16)
    with pytest.raises(InputError, match=rf"^dataset: 8 \S.* for recipe {recipe}, fewer than one batch"):
        distill(cfg)
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())  # nothing partial left


def test_kd_trainer_uses_teacher_samples_off_policy(teacher_dir, student_a_dir, tokenizer_a):
    """on_policy_fraction=0: the completions come from the teacher's generate, not the student's."""
    from trl_distillguard import distill as distill_mod

    teacher, _ = load_causal_lm(str(teacher_dir), "t")
    student, _ = load_causal_lm(str(student_a_dir), "s")
    cls = distill_mod._mixed_policy_trainer_class()
    calls = []
    original = teacher.generate

    def spy(*a, **k):
        calls.append(1)
        return original(*a, **k)

    teacher.generate = spy
    from datasets import Dataset
    from trl import DistillationConfig

    args = DistillationConfig(
        output_dir="/tmp/unused-kd", max_steps=1, per_device_train_batch_size=2, max_completion_length=4,
        use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none", save_strategy="no",
    )  # fmt: skip
    trainer = cls(
        model=student, teacher_model=teacher, args=args, processing_class=tokenizer_a,
        train_dataset=Dataset.from_list([{"prompt": "What is 1 + 2?"}, {"prompt": "What is 3 + 4?"}]),
        on_policy_fraction=0.0,
    )  # fmt: skip
    trainer.model.train()
    ids = trainer._generate_single_turn([[5, 6, 7], [8, 9]], None, {})
    assert calls and len(ids) == 2 and all(len(x) <= 4 for x in ids)
    assert trainer._metrics["train"]["on_policy"] == [0.0]


def test_lora_student_is_merged(teacher_dir, student_dir, prompts_file, tmp_path):
    out = distill(
        _cfg("sft", teacher_dir, student_dir, prompts_file, tmp_path / "lora", use_peft=True, lora_r=4)
    )
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").exists()
    assert _weights_changed(student_dir, out)


def test_sample_teacher_rows(teacher_dir):
    teacher, tok = load_causal_lm(str(teacher_dir), "t")
    rows = sample_teacher(
        teacher, tok, ["a", [{"role": "user", "content": "b"}]], num_samples=2, max_new_tokens=4
    )
    assert len(rows) == 4 and rows[0]["prompt"] == "a" and isinstance(rows[0]["completion"], str)
    assert rows[2]["completion"][0]["role"] == "assistant"


def test_kd_with_different_vocabularies_points_to_uld(
    teacher_dir, student_dir, prompts_file, tmp_path, capsys
):
    out = tmp_path / "kd"
    argv = ["--recipe", "kd", "--teacher_model_name_or_path", str(teacher_dir), "--student_model_name_or_path",
            str(student_dir), "--dataset_name_or_path", str(prompts_file), "--output_dir", str(out)]  # fmt: skip
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith(
        "distillguard distill: error: recipe kd needs a shared vocabulary"
    )
    assert "uld" in err[0] and "sft" in err[0]
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("teacher_model_name_or_path", "prompts", "not a model directory"),
        ("dataset_name_or_path", "empty", "empty"),
        ("dataset_name_or_path", "missing.jsonl", "does not exist"),
    ],
)
def test_bad_input_one_line_nothing_written(
    field, value, match, teacher_dir, student_dir, prompts_file, tmp_path
):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    paths = {
        "prompts": str(prompts_file),
        "empty": str(empty),
        "missing.jsonl": str(tmp_path / "missing.jsonl"),
    }
    cfg = _cfg("sft", teacher_dir, student_dir, prompts_file, tmp_path / "out")
    setattr(cfg, field, paths[value])
    with pytest.raises(InputError, match=match):
        distill(cfg)
    assert not (tmp_path / "out").exists()


def test_uld_rejects_non_bytelevel_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw)
    with pytest.raises(InputError, match="ByteLevel.*use recipe sft"):
        check_byte_level(tok, "student")


def test_config_validation_and_round_trip():
    cfg = DistillConfig(recipe="uld", on_policy_fraction=0.25, trainer_kwargs='{"warmup_steps": 3}')
    assert cfg.trainer_kwargs == {"warmup_steps": 3}
    assert DistillConfig(**cfg.to_dict()) == cfg
    for bad in ({"recipe": "gkd"}, {"on_policy_fraction": 1.5}, {"sample_temperature": float("nan")},
                {"sample_temperature": 0.0, "num_samples_per_prompt": 2}, {"max_steps": 0}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad))):
            DistillConfig(**bad)


def test_unsupported_sharded_launches_are_refused_nothing_written(
    teacher_dir, student_a_dir, prompts_file, tmp_path, monkeypatch
):
    import trl_distillguard.distill as distill_module

    for sharding, kw, message in (
        ("DeepSpeed ZeRO-3", {}, "ZeRO-3 partitions the student.*launch with FSDP2"),
        ("DTensor (parameter w is sharded)", {}, "sharded outside an FSDP launch"),
        ("FSDP", {"use_peft": True}, "use_peft: under FSDP the trainer saves the adapter"),
    ):
        monkeypatch.setattr(distill_module, "sharded_parameters", lambda trainer, model, s=sharding: s)
        with pytest.raises(InputError, match=message):
            distill(_cfg("kd", teacher_dir, student_a_dir, prompts_file, tmp_path / "out", **kw))
        assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_fsdp_launch_saves_through_trainer_save_model(
    teacher_dir, student_a_dir, prompts_file, tmp_path, monkeypatch
):
    # Under FSDP2 the student is written by Trainer.save_model (its full-state-dict gather needs GPUs: on this CPU
    # launch save_model takes its plain branch); the directory is the same loadable student as the plain path's.
    import trl_distillguard.distill as distill_module

    plain = distill(_cfg("kd", teacher_dir, student_a_dir, prompts_file, tmp_path / "plain"))
    from transformers import Trainer

    calls, original = [], Trainer.save_model

    def spy(self, output_dir=None, _internal_call=False):
        calls.append(output_dir)
        return original(self, output_dir, _internal_call)

    monkeypatch.setattr(Trainer, "save_model", spy)
    monkeypatch.setattr(distill_module, "sharded_parameters", lambda trainer, model: "FSDP")
    out = distill(_cfg("kd", teacher_dir, student_a_dir, prompts_file, tmp_path / "fsdp"))
    assert len(calls) == 1  # into the staged directory, renamed into place afterwards
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in plain.iterdir())
    a = AutoModelForCausalLM.from_pretrained(plain).state_dict()
    b = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
