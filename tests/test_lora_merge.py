"""`lora_merge` end to end on tiny models: stock PEFT loads the output, and its merge equals the dense methods on
PEFT's own densified deltas; `--merge-into-base`; mergekit reads the output as `base+adapter`; PEFT's `cat`."""

from __future__ import annotations

import dataclasses
import json

import peft
import pytest
import torch
import yaml
from lora_fixtures import ADAPTERS, config, dense_reference, make_adapter, peft_deltas, save_base, state_dict
from packaging.version import Version
from peft import LoraConfig
from safetensors.torch import load_file

from mergekit_plugins import cli
from mergekit_plugins.lora import lora_merge

DTYPES = {"fp32": torch.float32, "fp64": torch.float64}
TOL = {"fp32": dict(rtol=1e-5, atol=2e-5), "fp64": dict(rtol=1e-10, atol=1e-10)}
# PEFT 0.22 stopped rescaling an rsLoRA `cat` merge by lora_alpha/√R a second time; before it, `cat` of rsLoRA
# adapters was √R too large (our merge is exact either way; the test checks PEFT's behaviour for each version).
PEFT_CAT_EXACT_FOR_RSLORA = Version(peft.__version__) >= Version("0.22")


@pytest.fixture(scope="module")
def build(tmp_path_factory, student_dir):
    """build(dtype) → (dtype, base dir, adapter dirs, base weights, PEFT-densified deltas per adapter), cached."""
    cache = {}

    def get(dtype: str = "fp32"):
        if dtype not in cache:
            root = tmp_path_factory.mktemp(f"lora_{dtype}")
            base = save_base(student_dir, root / "base", DTYPES[dtype])
            adapters = [
                make_adapter(base, root / n, seed=i, **kw) for i, (n, kw) in enumerate(ADAPTERS.items())
            ]
            cache[dtype] = dtype, base, adapters, state_dict(base), [peft_deltas(base, a) for a in adapters]
        return cache[dtype]

    return get


@pytest.fixture
def setup(build):
    return build("fp32")


CASES = {
    "task_arithmetic": {"alpha": 0.7},
    "tsv": {"alpha": 0.7},
    "iso_c": {"alpha": 1.3, "rank_rtol": 1e-6},
    "iso_cts": {"alpha": 0.9, "common_space_fraction": 0.6},
}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("method", sorted(CASES))
def test_stock_peft_output_equals_dense_merge_of_densified_adapters(method, dtype, build, tmp_path):
    dtype, base, adapters, theta0, deltas = build(dtype)
    weights = [1.0, -0.5, 2.0]
    params = dict(CASES[method])
    summary = lora_merge(config(base, adapters, method, weights, **params), tmp_path / "out", progress=False)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging sibling left
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and not cfg["use_rslora"] and not cfg["use_dora"]
    assert set(cfg) <= {f.name for f in dataclasses.fields(LoraConfig)}  # nothing but stock PEFT fields
    assert summary["adapters"] == 3 and summary["modules"] == len(set().union(*deltas))
    alpha = params.pop("alpha")
    expected = dense_reference(theta0, deltas, method, weights, alpha, **params)
    got = state_dict(base, out)  # stock PEFT: PeftModel.from_pretrained(base, out).merge_and_unload()
    assert got.keys() == expected.keys()
    for name, value in got.items():
        assert value.dtype == DTYPES[dtype]
        torch.testing.assert_close(value.double(), expected[name], **TOL[dtype], msg=name)
    if method == "task_arithmetic":  # rank Σ r_t where all three adapters meet, so the ranks differ
        assert cfg["rank_pattern"] and cfg["alpha_pattern"] == cfg["rank_pattern"]


def test_partial_targeting_lists_module_names_and_short_names_where_complete(setup, tmp_path):
    _, base, adapters, _, _ = setup
    lora_merge({**config(base, adapters, "tsv"), "dtype": "bfloat16"}, tmp_path / "out", progress=False)
    tensors = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}  # `dtype` sets the written factors' dtype
    targets = set(json.loads((tmp_path / "out" / "adapter_config.json").read_text())["target_modules"])
    assert {"q_proj", "v_proj", "up_proj", "down_proj", "lm_head"} <= targets  # every layer: short names
    assert (
        "model.layers.0.self_attn.k_proj" in targets and "k_proj" not in targets
    )  # layer 0 only: full names


def test_merge_into_base_equals_peft_merge_and_copies_config_and_tokenizer(setup, tmp_path):
    dtype, base, adapters, _, _ = setup
    cfg = config(base, adapters, "iso_c", [1.0, 1.0, 0.5], alpha=1.1)
    lora_merge(cfg, tmp_path / "adapter", progress=False)
    lora_merge(cfg, tmp_path / "full", merge_into_base=True, progress=False)
    names = {p.name for p in (tmp_path / "full").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    via_peft, full = state_dict(base, tmp_path / "adapter"), state_dict(tmp_path / "full")
    for name, value in full.items():
        torch.testing.assert_close(value, via_peft[name], **TOL[dtype], msg=name)


def test_mergekit_reads_the_output_as_base_plus_adapter_and_its_dense_tsv_agrees(setup, tmp_path):
    """mergekit densifies `base+adapter` paths into --lora-merge-cache: our adapter gives our merge, and mergekit's
    own dense route (our `tsv` method on `base+adapter_t` models) gives the same result as the factor route."""
    dtype, base, adapters, _, _ = setup
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    import mergekit_plugins

    mergekit_plugins.load_plugins()
    lora_merge(
        config(base, adapters, "tsv", alpha=0.8), tmp_path / "ours", merge_into_base=True, progress=False
    )
    dense = {
        "merge_method": "tsv",
        "base_model": str(base),
        "models": [{"model": f"{base}+{a}"} for a in adapters],
        "parameters": {"alpha": 0.8},
        "dtype": "float32",
    }
    passthrough = {
        "merge_method": "passthrough",
        "models": [{"model": f"{base}+{tmp_path / 'ours_adapter'}"}],
    }
    lora_merge(config(base, adapters, "tsv", alpha=0.8), tmp_path / "ours_adapter", progress=False)
    options = MergeOptions(quiet=True, lora_merge_cache=str(tmp_path / "cache"))
    for name, cfg in (("dense", dense), ("passthrough", passthrough)):
        run_merge(MergeConfiguration.model_validate(cfg), str(tmp_path / name), options=options)
    ours = state_dict(tmp_path / "ours")
    for name in ("dense", "passthrough"):
        got = state_dict(tmp_path / name)
        for key, value in ours.items():
            torch.testing.assert_close(got[key], value, rtol=1e-5, atol=2e-5, msg=f"{name}: {key}")


def _peft_cat(base, adapters, weights):
    """PEFT's add_weighted_adapter(..., "cat") → {weight name: merged Δ} and the reference Σ w_t Δ_t."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base), adapters[0], adapter_name="t0"
    )
    for i, a in enumerate(adapters[1:], 1):
        model.load_adapter(a, adapter_name=f"t{i}")
    names = [f"t{i}" for i in range(len(adapters))]
    model.add_weighted_adapter(names, weights, "cat", combination_type="cat")
    out = {}
    for name, module in model.base_model.model.named_modules():
        if isinstance(module, LoraLayer) and "cat" in module.lora_A:
            out[f"{name}.weight"] = module.get_delta_weight("cat").double()
    return out


@pytest.mark.parametrize("rslora", [False, True])
def test_against_peft_add_weighted_adapter_cat(rslora, tmp_path, student_dir):
    base = save_base(student_dir, tmp_path / "base", torch.float32)
    kw = dict(r=4, lora_alpha=8, use_rslora=rslora, target_modules=["q_proj", "v_proj", "down_proj"])
    adapters = [
        make_adapter(base, tmp_path / f"a{i}", seed=i, **{**kw, "r": r}) for i, r in enumerate((4, 8))
    ]
    weights = [0.6, 1.5]
    peft_cat = _peft_cat(base, adapters, weights)
    deltas = [peft_deltas(base, a) for a in adapters]
    truth = {k: weights[0] * deltas[0][k] + weights[1] * deltas[1][k] for k in peft_cat}
    lora_merge(config(base, adapters, "task_arithmetic", weights), tmp_path / "ours", progress=False)
    ours = peft_deltas(base, tmp_path / "ours")
    for key in truth:
        torch.testing.assert_close(ours[key], truth[key], rtol=1e-5, atol=1e-6)
        if not rslora or PEFT_CAT_EXACT_FOR_RSLORA:  # PEFT's cat is the exact weighted sum, as ours is
            torch.testing.assert_close(peft_cat[key], ours[key], rtol=1e-5, atol=1e-6)
        else:  # rsLoRA before PEFT 0.22: its cat scales the concatenation by lora_alpha/√R again (√12 here)
            ratio = float(peft_cat[key].norm() / truth[key].norm())
            assert abs(ratio - 12**0.5) < 1e-3


def test_cli_prints_a_summary_and_rank_truncation_reports_discarded_energy(setup, tmp_path, capsys):
    _, base, adapters, _, _ = setup
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(base, adapters, "task_arithmetic", rank=3)))
    assert cli.main(["lora-merge", str(path), str(tmp_path / "out"), "--no-progress"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("lora-merge: task_arithmetic of 3 adapters") and "rank ≤ 3 discards" in line
    cfg = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert cfg["r"] == 3 and cfg["rank_pattern"] == {"lm_head": 2}  # only adapter c (r = 2) targets it
