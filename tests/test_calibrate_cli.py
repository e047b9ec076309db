"""`distillguard calibrate`: runs examples/configs/tiny.yaml on the fixtures; bad input is one line, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from distill_ortho_merge import testing as tiny
from trl_distillguard.cli import main as cli_main
from trl_distillguard.plugins import resolve_reward

ROOT = Path(__file__).resolve().parents[1]
TINY_YAML = ROOT / "examples" / "configs" / "tiny.yaml"
TINY_DATA = ROOT / "examples" / "data" / "calibrate_tiny.jsonl"


def ascii_only(teacher_dir) -> str:
    """--generation_kwargs suppressing tokens that decode to non-ASCII (random tiny models emit invalid UTF-8)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(teacher_dir)
    ids = [
        i
        for i in range(len(tok))
        if (i in tok.all_special_ids and i != tok.eos_token_id) or not tok.decode([i]).isascii()
    ]
    return json.dumps({"suppress_tokens": ids})


def run(argv):
    return cli_main(["calibrate", *argv])


def fixture_args(tmp_path, teacher_dir, student_dir, **extra):
    args = [
        "--config", str(TINY_YAML),
        "--model_name_or_path", str(teacher_dir),
        "--proxy_model_name_or_path", str(student_dir),
        "--dataset_name", str(TINY_DATA),
        "--output_dir", str(tmp_path / "calibrated"),
        "--max_steps", "2",
        "--num_generations", "2",
        "--max_completion_length", "6",
        "--disable_tqdm", "true",
    ]  # fmt: skip
    for key, value in extra.items():
        args += [f"--{key}", *(map(str, value) if isinstance(value, list) else [str(value)])]
    return args


def test_tiny_yaml_runs_and_writes_a_complete_output(tmp_path, teacher_dir, student_dir, capsys):
    out = tmp_path / "calibrated"
    assert (
        run(fixture_args(tmp_path, teacher_dir, student_dir, generation_kwargs=ascii_only(teacher_dir))) == 0
    )
    summary = json.loads((out / "calibration.json").read_text())
    assert summary["distillability"] == 1.0 and summary["steps"] == 2
    assert summary["reward_funcs"] == ["math_answer", "calibration"] and summary["reward_weights"] == [
        1.0,
        1.0,
    ]
    assert len(summary["history"]) == 2 and "rewards/calibration/mean" in summary["final_metrics"]
    assert not (tmp_path / "calibrated.partial").exists()
    model = AutoModelForCausalLM.from_pretrained(out)  # the calibrated teacher is a regular model directory
    assert model.config.model_type == "qwen2"
    assert "calibrated teacher written to" in capsys.readouterr().out


def test_negative_eta_and_peft(tmp_path, teacher_dir, student_dir):
    argv = fixture_args(
        tmp_path,
        teacher_dir,
        student_dir,
        distillability=-1.0,
        use_peft="true",
        lora_r=4,
        lora_target_modules=["q_proj", "v_proj"],
    )
    assert run(argv) == 0
    summary = json.loads((tmp_path / "calibrated" / "calibration.json").read_text())
    assert summary["reward_weights"] == [1.0, -1.0] and summary["peft"] is True
    assert (tmp_path / "calibrated" / "adapter_config.json").exists()


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"reward_funcs": "no_such_reward"}, "reward_funcs: 'no_such_reward' is not a registered reward"),
        ({"reward_funcs": "no_such_module.fn"}, "reward_funcs: cannot import 'no_such_module.fn'"),
        ({"distillability": "nan"}, "distillability must be a finite number"),
        ({"calibration_normalization": "chars"}, "calibration_normalization"),
        ({"num_generations": 1, "per_device_train_batch_size": 1}, "generations"),
        (
            {"proxy_model_name_or_path": "/no/such/proxy"},
            "proxy_model_name_or_path: /no/such/proxy does not exist",
        ),
        ({"proxy_model_name_or_path": ""}, "proxy_model_name_or_path: required when distillability != 0"),
        ({"dataset_name": "/no/such.jsonl"}, "dataset_name: /no/such.jsonl does not exist"),
        ({"dataset_name": "BAD_PROMPTS"}, "has no 'prompt' column"),
        ({"dataset_name": "CHAT_PROMPTS", "proxy_tokenizer_name_or_path": "NO_TEMPLATE"}, "no chat template"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, teacher_dir, student_dir, capsys, extra, message):
    from transformers import AutoTokenizer

    if extra.get("dataset_name") == "BAD_PROMPTS":
        extra["dataset_name"] = write_jsonl(tmp_path / "bad.jsonl", [{"question": "1+1", "answer": "2"}])
    if extra.get("dataset_name") == "CHAT_PROMPTS":
        extra["dataset_name"] = write_jsonl(
            tmp_path / "chat.jsonl", [{"prompt": [{"role": "user", "content": "1+1?"}], "answer": "2"}]
        )
        tok = AutoTokenizer.from_pretrained(student_dir)
        tok.chat_template = None
        tok.save_pretrained(tmp_path / "no_template")
        (tmp_path / "no_template" / "chat_template.jinja").unlink(missing_ok=True)
        extra["proxy_tokenizer_name_or_path"] = tmp_path / "no_template"
    assert run(fixture_args(tmp_path, teacher_dir, student_dir, **extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("distillguard calibrate: error:") and message in err[0], err
    assert not (tmp_path / "calibrated").exists() and not (tmp_path / "calibrated.partial").exists()


def test_existing_output_dir_is_refused(tmp_path, teacher_dir, student_dir, capsys):
    (tmp_path / "calibrated").mkdir()
    (tmp_path / "calibrated" / "keep.txt").write_text("mine")
    assert run(fixture_args(tmp_path, teacher_dir, student_dir)) == 2
    assert "exists and is not empty (pass --overwrite_output_dir true)" in capsys.readouterr().err
    assert (tmp_path / "calibrated" / "keep.txt").read_text() == "mine"


def test_rewards_resolve_by_name_or_import_path():
    from distill_ortho_merge import verifiers

    assert resolve_reward("qa_f1") is verifiers.qa_f1
    assert resolve_reward("distill_ortho_merge.verifiers.multiple_choice") is verifiers.multiple_choice


def test_example_builder_and_configs_parse(tmp_path):
    """Every example config parses with the calibrate parser (the GPU ones are not run)."""
    from trl import ModelConfig, TrlParser

    from trl_distillguard.calibrate import CalibrateArguments
    from trl_distillguard.distillguard_config import DistillGuardConfig

    names = ["tiny.yaml", "smollm2.yaml", "qwen3_8b.yaml", "gemma3_12b.yaml"]
    for name in names:
        parser = TrlParser((CalibrateArguments, DistillGuardConfig, ModelConfig))
        cfg = ROOT / "examples" / "configs" / name
        overrides = [
            "--use_cpu",
            "true",
            "--bf16",
            "false",
            "--use_vllm",
            "false",
            "--output_dir",
            str(tmp_path),
        ]
        script, args, model = parser.parse_args_and_config(["--config", str(cfg), *overrides])
        assert script.dataset_name and model.model_name_or_path and args.proxy_model_name_or_path, name
    assert tiny  # the fixture module the example builder uses is importable


def test_example_builder_then_the_unmodified_tiny_yaml(tmp_path):
    """`python examples/data/calibrate_tiny.py` then `distillguard calibrate --config examples/configs/tiny.yaml`
    (only the model and output paths moved to tmp)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "calibrate_tiny", ROOT / "examples" / "data" / "calibrate_tiny.py"
    )
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    models = builder.build(tmp_path / "models", steps=80)
    argv = [
        "--config", str(TINY_YAML),
        "--model_name_or_path", str(models / "teacher"),
        "--proxy_model_name_or_path", str(models / "proxy"),
        "--dataset_name", str(TINY_DATA),
        "--output_dir", str(tmp_path / "out"),
    ]  # fmt: skip
    assert run(argv) == 0
    summary = json.loads((tmp_path / "out" / "calibration.json").read_text())
    assert summary["steps"] == 4 and summary["final_metrics"]["calibration/unscorable_frac"] < 0.5
