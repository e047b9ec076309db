"""TaskVector: densified LoRA equals PEFT's own merge; arithmetic, apply, save/load, export, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from peft import get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from peft_orthoreg import OrthoLoraConfig, TaskVector


def randomise_lora(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def trained_adapter(teacher_dir, seed=0, **overrides):
    cfg = dict(
        r=4,
        lora_alpha=6,
        use_rslora=True,
        target_modules=["q_proj", "down_proj", "embed_tokens"],
        alpha_pattern={"down_proj": 3},
        rank_pattern={"down_proj": 2},
        modules_to_save=["lm_head"],
    )
    cfg.update(overrides)
    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(teacher_dir), OrthoLoraConfig(**cfg))
    randomise_lora(model, seed)
    return model


def merged_reference(peft_model):
    """θ_merged − θ₀ through PEFT's own merge_and_unload (independent of our densification)."""
    import copy

    merged = copy.deepcopy(peft_model).merge_and_unload()
    return merged


def assert_tv_equal(a, b, tol=1e-6):
    assert sorted(a.keys()) == sorted(b.keys())
    for k in a.keys():
        torch.testing.assert_close(a[k], b[k], rtol=tol, atol=tol, msg=k)


def test_from_peft_path_model_and_merge_agree(teacher_dir, tmp_path):
    peft_model = trained_adapter(teacher_dir)
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = merged_reference(peft_model)
    ref = TaskVector.from_models(teacher_dir, merged)
    changed = {k for k in ref.keys() if ref[k].abs().max() > 0}
    ref = TaskVector(
        {k: ref[k] for k in changed}, base_model=ref.base_model, base_fingerprint=ref.base_fingerprint
    )
    from_obj = TaskVector.from_peft(peft_model)
    from_dir = TaskVector.from_peft(tmp_path / "adapter", base=teacher_dir)
    assert_tv_equal(from_obj, ref)
    assert_tv_equal(from_dir, ref)
    assert "lm_head.weight" in changed and "model.embed_tokens.weight" in changed
    assert from_dir.base_fingerprint == from_obj.base_fingerprint == ref.base_fingerprint
    # modules_to_save needs the base when reading a directory.
    with pytest.raises(ValueError, match="lm_head.weight' is a fully trained module; pass base="):
        TaskVector.from_peft(tmp_path / "adapter")


def test_arithmetic_apply_and_round_trip(teacher_dir, tmp_path, make_finetuned_copies):
    base = AutoModelForCausalLM.from_pretrained(teacher_dir)
    ft1, ft2 = make_finetuned_copies(base, 2, scale=0.01, seed=3)
    t1, t2 = TaskVector.from_models(base, ft1), TaskVector.from_models(base, ft2)
    s1, s2 = ft1.state_dict(), ft2.state_dict()
    b = base.state_dict()
    for k in list(b)[:5]:
        torch.testing.assert_close((t1 + t2)[k], s1[k] + s2[k] - 2 * b[k], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close((-t1)[k], b[k] - s1[k])
        torch.testing.assert_close((0.5 * t1)[k], 0.5 * (s1[k] - b[k]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close((t1 * 0.5)[k], 0.5 * (s1[k] - b[k]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close((t1 - t2)[k], s1[k] - s2[k], rtol=1e-5, atol=1e-6)
    # base + τ = fine-tuned; α scales.
    target = AutoModelForCausalLM.from_pretrained(teacher_dir)
    t1.apply_to(target)
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, s1[k], rtol=1e-5, atol=1e-6, msg=k)
    half = AutoModelForCausalLM.from_pretrained(teacher_dir)
    t1.apply_to(half, alpha=0.5)
    k = "model.layers.0.self_attn.q_proj.weight"
    torch.testing.assert_close(half.state_dict()[k], b[k] + 0.5 * (s1[k] - b[k]), rtol=1e-5, atol=1e-6)
    # save / load keeps tensors and metadata.
    t1.save(tmp_path / "tv1")
    back = TaskVector.load(tmp_path / "tv1")
    assert_tv_equal(back, t1, tol=0)
    assert (back.base_model, back.base_fingerprint, back.source) == (
        t1.base_model,
        t1.base_fingerprint,
        t1.source,
    )
    assert json.loads((tmp_path / "tv1" / "task_vector.json").read_text())["num_tensors"] == len(t1)
    assert back.norm() == pytest.approx(t1.norm())
    with pytest.raises(FileExistsError):
        t1.save(tmp_path / "tv1")


def test_export_model_is_a_loadable_model_directory(teacher_dir, tmp_path, make_finetuned_copies):
    base = AutoModelForCausalLM.from_pretrained(teacher_dir)
    (ft,) = make_finetuned_copies(base, 1, scale=0.01, seed=4)
    tv = TaskVector.from_models(teacher_dir, ft)
    out = tv.export_model(teacher_dir, tmp_path / "exported", alpha=1.0)
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    for k, v in reloaded.state_dict().items():
        torch.testing.assert_close(v, ft.state_dict()[k], rtol=1e-5, atol=1e-6, msg=k)
    with pytest.raises(FileExistsError):
        tv.export_model(teacher_dir, out)
    # mergekit reads the exported directory as a model (its own loader, lazily, tensor by tensor).
    from mergekit.io.lazy_tensor_loader import LazyTensorLoader

    loader = LazyTensorLoader.from_disk(str(out))
    key = "model.layers.0.self_attn.q_proj.weight"
    torch.testing.assert_close(loader.get_tensor(key), ft.state_dict()[key])


def test_bad_inputs(teacher_dir, student_dir, tmp_path, make_finetuned_copies):
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir)
    student = AutoModelForCausalLM.from_pretrained(student_dir)
    (t_ft,) = make_finetuned_copies(teacher, 1, seed=1)
    (s_ft,) = make_finetuned_copies(student, 1, seed=1)
    tv_t, tv_s = TaskVector.from_models(teacher, t_ft), TaskVector.from_models(student, s_ft)
    with pytest.raises(ValueError, match="TaskVector arithmetic across different bases"):
        tv_t + tv_s
    # Same base name but a changed shape: the error names the key.
    odd = TaskVector({"model.norm.weight": torch.zeros(3)}, base_fingerprint=tv_t.base_fingerprint)
    with pytest.raises(ValueError, match="key 'model.norm.weight' has shapes"):
        tv_t + odd
    with pytest.raises(ValueError, match="key 'model.norm.weight' has shape \\(3,\\), the model's is"):
        odd.apply_to(teacher)
    with pytest.raises(ValueError, match="key 'nope.weight' is not in the model's state dict"):
        TaskVector({"nope.weight": torch.zeros(1)}).apply_to(teacher)
    with pytest.raises(
        ValueError, match=r"key 'lm_head.weight' has shape \(640, 32\) in the fine-tuned model"
    ):
        TaskVector.from_models(teacher_dir, student)
    # Exporting onto another base is refused, nothing written.
    with pytest.raises(ValueError, match="is not this task vector's base"):
        tv_s.export_model(teacher_dir, tmp_path / "wrong")
    assert not (tmp_path / "wrong").exists() and not list(tmp_path.iterdir())
    # Files that are not ours, or truncated.
    save_file({"x": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="not a peft_orthoreg task vector"):
        TaskVector.load(tmp_path / "foreign.safetensors")
    tv_t.save(tmp_path / "tv")
    data = (tmp_path / "tv" / "task_vector.safetensors").read_bytes()
    (tmp_path / "tv" / "task_vector.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="unreadable safetensors file"):
        TaskVector.load(tmp_path / "tv")
    with pytest.raises(FileNotFoundError, match="no task_vector.safetensors"):
        TaskVector.load(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="not a PEFT adapter"):
        TaskVector.from_peft(tmp_path)


def test_exported_models_merge_with_mergekit_like_task_arithmetic(
    teacher_dir, tmp_path, make_finetuned_copies
):
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    base = AutoModelForCausalLM.from_pretrained(teacher_dir)
    tvs = [
        TaskVector.from_models(teacher_dir, ft) for ft in make_finetuned_copies(base, 2, scale=0.01, seed=8)
    ]
    dirs = [tv.export_model(teacher_dir, tmp_path / f"ft{i}") for i, tv in enumerate(tvs)]
    config = {
        "merge_method": "task_arithmetic",
        "base_model": str(teacher_dir),
        "models": [{"model": str(d), "parameters": {"weight": 0.5}} for d in dirs],
        "dtype": "float32",
    }
    options = MergeOptions(copy_tokenizer=False, lazy_unpickle=False, low_cpu_memory=False)
    run_merge(MergeConfiguration.model_validate(config), str(tmp_path / "merged"), options=options)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    expected = (0.5 * tvs[0] + 0.5 * tvs[1]).apply_to(base)
    for key, value in merged.state_dict().items():
        torch.testing.assert_close(value, expected.state_dict()[key], rtol=1e-5, atol=1e-6, msg=key)


def test_trainable_tokens_adapter_gets_a_clear_error(teacher_dir, tmp_path):
    model = trained_adapter(
        teacher_dir,
        target_modules=["q_proj"],
        alpha_pattern={},
        rank_pattern={},
        modules_to_save=None,
        trainable_token_indices=[3, 4],
    )
    model.save_pretrained(tmp_path / "adapter")
    with pytest.raises(
        ValueError, match="trainable_token_indices is set: trainable tokens .*merge_and_unload"
    ):
        TaskVector.from_peft(tmp_path / "adapter", base=teacher_dir)
