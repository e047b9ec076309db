"""Diagnostics (Python API and `peft-orthoreg diagnose` / `export`), and the built-in regularisers plugin."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM

from peft_orthoreg import OrthoLoraConfig, TaskVector, dense_orthoreg_loss, orthoreg_loss
from peft_orthoreg.cli import main
from peft_orthoreg.diagnostics import diagnose, layer_type


def reference_cosine(a: TaskVector, b: TaskVector, keys) -> float:
    """Obvious form: concatenate every delta (zeros where a key is absent), then one cosine."""
    va = torch.cat([a[k].double().flatten() if k in a.deltas else torch.zeros(b[k].numel()) for k in keys])
    vb = torch.cat([b[k].double().flatten() if k in b.deltas else torch.zeros(a[k].numel()) for k in keys])
    return float(va @ vb / (va.norm() * vb.norm()))


@pytest.fixture
def three_tvs(teacher_dir, make_finetuned_copies):
    base = AutoModelForCausalLM.from_pretrained(teacher_dir)
    copies = make_finetuned_copies(base, 2, scale=0.01, seed=7)
    tvs = [TaskVector.from_models(base, c) for c in copies]
    tvs.append(tvs[0] * 0.5 + tvs[1])  # correlated with both
    return tvs


def test_cosines_and_matrix_stats_match_references(three_tvs):
    report = diagnose(three_tvs, names=["a", "b", "c"])
    keys = sorted(three_tvs[0].keys())
    for i in range(3):
        for j in range(3):
            assert report["cosine"]["global"][i][j] == pytest.approx(
                reference_cosine(three_tvs[i], three_tvs[j], keys), abs=1e-8
            )
    q_keys = [k for k in keys if layer_type(k) == "self_attn.q_proj.weight"]
    assert len(q_keys) == 2
    assert report["cosine"]["self_attn.q_proj.weight"][0][2] == pytest.approx(
        reference_cosine(three_tvs[0], three_tvs[2], q_keys), abs=1e-8
    )
    stats = report["per_matrix"]["a"]["model.layers.1.mlp.down_proj.weight"]
    delta = three_tvs[0]["model.layers.1.mlp.down_proj.weight"]
    assert stats["orthoreg"] == pytest.approx(dense_orthoreg_loss([delta.double()]).item(), rel=1e-9)
    sigma = torch.linalg.svdvals(delta.double())
    assert stats["sv_spread"] == pytest.approx((sigma.max() / sigma.min()).item(), rel=1e-9)
    assert stats["numerical_rank"] == min(delta.shape) == stats["k"]
    assert report["mean_abs_cosine"] == pytest.approx(
        (
            abs(report["cosine"]["global"][0][1])
            + abs(report["cosine"]["global"][0][2])
            + abs(report["cosine"]["global"][1][2])
        )
        / 3
    )
    assert report["summary"]["b"]["norm"] == pytest.approx(three_tvs[1].norm())


def trained_lora(teacher_dir, r, target):
    """A seeded LoRA model with B ≠ 0 (as after training; B = 0 at init)."""
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir), OrthoLoraConfig(r=r, target_modules=[target])
    )
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.3)
    return model


def test_lora_stats_see_the_low_rank(teacher_dir):
    model = trained_lora(teacher_dir, 3, "q_proj")
    tv = TaskVector.from_peft(model)
    report = diagnose([tv, tv], names=["x", "y"])
    assert {s["numerical_rank"] for s in report["per_matrix"]["x"].values()} == {3}
    # The per-matrix OrthoReg values sum to the trainer's factor-space term.
    assert report["summary"]["x"]["orthoreg_total"] == pytest.approx(orthoreg_loss(model).item(), rel=1e-5)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli(*args):
    """In-process (a subprocess per call costs seconds of imports); test_plugins covers the console script."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in args])
    return Result(rc, out.getvalue(), err.getvalue())


def test_cli_diagnose_and_export(three_tvs, teacher_dir, tmp_path):
    # Inputs of all three kinds: a saved task vector, a PEFT adapter, a full model directory.
    three_tvs[0].save(tmp_path / "tv_a")
    peft_model = trained_lora(teacher_dir, 2, "v_proj")
    peft_model.save_pretrained(tmp_path / "adapter")
    res = run_cli(
        "export",
        tmp_path / "adapter",
        "--base",
        teacher_dir,
        "--out",
        tmp_path / "full",
        "--save-task-vector",
        tmp_path / "tv_lora",
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "full" / "config.json").is_file() and (
        tmp_path / "tv_lora" / "task_vector.safetensors"
    ).is_file()
    out = tmp_path / "report"
    res = run_cli(
        "diagnose",
        tmp_path / "tv_a",
        tmp_path / "adapter",
        tmp_path / "full",
        "--base",
        teacher_dir,
        "--out",
        out,
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((out / "diagnose.json").read_text())
    assert report["names"] == ["tv_a", "adapter", "full"]
    # The exported full model's task vector is the adapter's: cosine 1.
    assert report["cosine"]["global"][1][2] == pytest.approx(1.0, abs=1e-5)
    assert (out / "cosine.png").read_bytes()[:4] == b"\x89PNG"
    # Bad input: one line on stderr, exit code 2, nothing written.
    res = run_cli("diagnose", tmp_path / "full", "--out", tmp_path / "r2")
    assert res.returncode == 2 and "pass --base" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r2").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    res = run_cli("diagnose", tmp_path / "tv_a", "--out", tmp_path / "busy")
    assert res.returncode == 2 and "exists and is not empty (pass --overwrite_output_dir true)" in res.stderr


def test_builtin_regularisers_are_registered(teacher_dir):
    from peft_orthoreg import registry

    items = registry()
    assert {"orthoreg", "orthoreg_squared"} <= set(items) and items["orthoreg"].builtin
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(teacher_dir), OrthoLoraConfig(r=2, target_modules=["q_proj"])
    )
    value = items["orthoreg"].obj(model)
    assert items["orthoreg_squared"].obj(model).item() == pytest.approx(2 * 64.0)  # 2 layers × ‖0 − I_64‖²
    assert value.item() == pytest.approx(2 * 8.0)


def test_package_attribute_is_the_function_even_after_the_module_is_imported():
    import importlib

    import peft_orthoreg

    importlib.import_module("peft_orthoreg.diagnostics")  # importing the module must not shadow the function
    from peft_orthoreg import diagnose as imported

    assert callable(imported) and imported is diagnose and peft_orthoreg.diagnose is diagnose
