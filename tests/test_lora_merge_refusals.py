"""`mergekit-plugins lora-merge` refusals: one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from lora_fixtures import ADAPTERS, config, edit_config, make_adapter, save_base
from safetensors.torch import load_file, save_file

from mergekit_plugins import cli
from mergekit_plugins.lora import lora_merge


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, student_dir):
    root = tmp_path_factory.mktemp("lora_refusals")
    base = save_base(student_dir, root / "base", torch.float32)
    return base, [make_adapter(base, root / n, seed=i, **ADAPTERS[n]) for i, n in enumerate(("a", "b"))]


def run(tmp_path, capsys, cfg, *flags, out=None) -> tuple[int, str]:
    path = tmp_path / "c.yaml"
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    out = out or tmp_path / "out"
    before = sorted(p.name for p in tmp_path.iterdir())
    capsys.readouterr()  # drop what building the inputs printed
    code = cli.main(["lora-merge", str(path), str(out), "--no-progress", *flags])
    err = capsys.readouterr().err
    if code == 2:
        assert err.startswith("mergekit-plugins lora-merge: error: ") and err.count("\n") == 1, err
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no staging sibling
    return code, err


def _yaml_alpha(value):
    return lambda base, ads, tmp: yaml.safe_dump(config(base, ads, "tsv")).replace(
        "parameters: {}", f"parameters: {{alpha: {value}}}"
    )


def _adapter_edit(**changes):
    return lambda base, ads, tmp: config(
        base, [edit_config(ads[0], tmp / "edited", **changes), ads[1]], "tsv"
    )


def _adapter_tensor(key, shape, *more):
    def make(base, ads, tmp):
        bad = shutil.copytree(ads[0], tmp / "bad")
        tensors = load_file(bad / "adapter_model.safetensors")
        for k, s in [(key, shape), *zip(more[::2], more[1::2], strict=True)]:
            tensors[k] = torch.zeros(s)
        save_file(tensors, bad / "adapter_model.safetensors")
        return config(base, [bad], "tsv")

    return make


def _bin_only(base, ads, tmp):
    bad = shutil.copytree(ads[0], tmp / "bad")
    (bad / "adapter_model.safetensors").rename(bad / "adapter_model.bin")
    return config(base, [bad], "tsv")


def _config_only_base(base, ads, tmp):
    (tmp / "meta").mkdir()
    shutil.copy2(base / "config.json", tmp / "meta" / "config.json")
    return config(tmp / "meta", ads, "tsv")


CASES = {
    "ties": (lambda b, a, t: config(b, a, "ties"), "merge_method 'ties' is not factorable"),
    "dare_linear": (lambda b, a, t: config(b, a, "dare_linear"), "mergekit-plugins yaml"),
    "unknown method": (lambda b, a, t: config(b, a, "no_such_method"), "merge_method must be one of"),
    "no factor kernel": (lambda b, a, t: config(b, a, "slerp"), "merge_method 'slerp' is not factorable"),
    "no models": (lambda b, a, t: config(b, [], "tsv"), "models must be a non-empty list"),
    "negative alpha": (lambda b, a, t: config(b, a, "tsv", alpha=-1.0), "parameters.alpha must be > 0"),
    "nan alpha": (_yaml_alpha(".nan"), "parameters.alpha must be > 0"),
    "inf alpha": (_yaml_alpha(".inf"), "parameters.alpha must be > 0"),
    "nan weight": (lambda b, a, t: config(b, a, "tsv", [float("nan"), 1.0]), "models[0].parameters.weight"),
    "no base": (
        lambda b, a, t: {**config(b, a, "tsv"), "base_model": None},
        "base_model (a model directory) is required",
    ),
    "base not a model": (lambda b, a, t: config(t, a, "tsv"), "not a local model directory"),
    "unknown field": (
        lambda b, a, t: {**config(b, a, "tsv"), "tokenizer_source": "base"},
        "tokenizer_source is not supported",
    ),
    "unknown parameter": (
        lambda b, a, t: config(b, a, "tsv", density=0.5),
        "parameters.density is not supported",
    ),
    "rtol for TA": (
        lambda b, a, t: config(b, a, "task_arithmetic", rank_rtol=1e-3),
        "for merge_method task_arithmetic",
    ),
    "fraction for tsv": (
        lambda b, a, t: config(b, a, "tsv", common_space_fraction=0.5),
        "parameters.common_space_fraction",
    ),
    "rank 0": (lambda b, a, t: config(b, a, "iso_c", rank=0), "parameters.rank must be a positive integer"),
    "not YAML mapping": (lambda b, a, t: "- just\n- a list\n", "must be a mapping"),
    "DoRA": (_adapter_edit(use_dora=True), "use_dora is set: DoRA"),
    "modules_to_save": (_adapter_edit(modules_to_save=["lm_head"]), "modules_to_save is set"),
    "trainable tokens": (_adapter_edit(trainable_token_indices=[1, 2]), "trainable_token_indices is set"),
    "lora_bias": (_adapter_edit(lora_bias=True), "lora_bias is set"),
    "PiSSA": (_adapter_edit(init_lora_weights="pissa"), "changes the base weights"),
    "not LoRA": (_adapter_edit(peft_type="IA3"), "peft_type is 'IA3'"),
    "other base name": (
        _adapter_edit(base_model_name_or_path="someone/other-model"),
        "--allow-base-mismatch",
    ),
    "conv LoRA": (_adapter_tensor("base_model.model.model.conv.lora_A.weight", (4, 3, 3, 3)), "conv LoRA"),
    "embedding LoRA": (
        _adapter_tensor(
            "base_model.model.model.embed_tokens.lora_embedding_A",
            (4, 640),
            "base_model.model.model.embed_tokens.lora_embedding_B",
            (32, 4),
        ),
        "module model.embed_tokens is an embedding LoRA",
    ),
    "lone embedding factor": (
        _adapter_tensor("base_model.model.model.embed_tokens.lora_embedding_A", (4, 640)),
        "has lora_embedding_A without its partner",
    ),
    "DoRA tensor": (
        _adapter_tensor("base_model.model.model.layers.0.mlp.up_proj.lora_magnitude_vector", (64,)),
        "is not a plain LoRA factor",
    ),
    "fully trained module": (
        _adapter_tensor("base_model.model.lm_head.weight", (640, 32)),
        "a fully trained module",
    ),
    "lone lora_A": (
        _adapter_tensor("base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight", (4, 32)),
        "without its partner",
    ),
    "pickle only": (_bin_only, "adapter_model.bin exists, but no adapter_model.safetensors"),
    "no adapter": (lambda b, a, t: config(b, [t / "missing"], "tsv"), "no adapter_config.json"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusal(case, tiny, tmp_path, capsys):
    base, adapters = tiny
    (tmp_path / "out").mkdir()  # an existing output is left as it was
    (tmp_path / "out" / "keep.txt").write_text("x")
    make, message = CASES[case]
    code, err = run(tmp_path, capsys, make(base, adapters, tmp_path), "--overwrite")
    assert code == 2 and message in err, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_adapter_of_another_model_is_refused_by_shape_even_with_allow_base_mismatch(
    tiny, teacher_dir, tmp_path, capsys
):
    base, adapters = tiny
    other = make_adapter(teacher_dir, tmp_path / "teacher_lora", seed=0, r=2, target_modules=["q_proj"])
    cfg = config(base, [adapters[0], other], "iso_c")
    code, err = run(tmp_path, capsys, cfg)
    assert code == 2 and "--allow-base-mismatch" in err
    code, err = run(tmp_path, capsys, cfg, "--allow-base-mismatch")
    assert code == 2 and "updates a 64×64 weight, base_model's is 32×32" in err


def test_allow_base_mismatch_accepts_a_differently_named_base(tiny, tmp_path, capsys):
    base, adapters = tiny
    renamed = edit_config(adapters[0], tmp_path / "renamed", base_model_name_or_path="someone/other-model")
    code, _ = run(tmp_path, capsys, config(base, [renamed, adapters[1]], "tsv"), "--allow-base-mismatch")
    assert code == 0 and (tmp_path / "out" / "adapter_model.safetensors").is_file()


def test_output_over_an_input_is_refused(tiny, tmp_path, capsys):
    base, adapters = tiny
    code, err = run(tmp_path, capsys, config(base, adapters, "tsv"), "--overwrite", out=adapters[1])
    assert code == 2 and f"OUT_DIR: {adapters[1]} is input {adapters[1]}; choose another directory" in err
    assert (adapters[1] / "adapter_model.safetensors").is_file()


def test_config_only_base_gives_the_same_adapter_and_refuses_merge_into_base(tiny, tmp_path, capsys):
    base, adapters = tiny
    meta_cfg = _config_only_base(base, adapters, tmp_path)
    lora_merge(meta_cfg, tmp_path / "meta_out", progress=False, allow_base_mismatch=True)  # dir named "meta"
    lora_merge(config(base, adapters, "tsv"), tmp_path / "full_out", progress=False)
    a, b = (load_file(tmp_path / d / "adapter_model.safetensors") for d in ("meta_out", "full_out"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cfg_a, cfg_b = (
        json.loads((tmp_path / d / "adapter_config.json").read_text()) for d in ("meta_out", "full_out")
    )
    assert sorted(cfg_a["target_modules"]) == sorted(cfg_b["target_modules"])
    code, err = run(tmp_path, capsys, meta_cfg, "--merge-into-base", "--allow-base-mismatch")
    assert code == 2 and "needs its safetensors weights" in err


def test_runtime_failure_exits_1_with_one_line(tiny, tmp_path, capsys, monkeypatch):
    base, adapters = tiny
    import mergekit_plugins.lora.merge as merge

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(merge, "_write_adapter", broken)
    code, err = run(tmp_path, capsys, config(base, adapters, "tsv"))
    assert code == 1 and err.count("\n") == 1 and "disk on fire" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_example_config_parses():
    from pathlib import Path

    from mergekit_plugins.lora.config import parse_config

    cfg = parse_config(Path(__file__).parents[1] / "examples" / "configs" / "merge_lora.yaml")
    assert cfg.merge_method == "tsv" and [m.weight for m in cfg.models] == [1.0, 1.0, 0.5]
