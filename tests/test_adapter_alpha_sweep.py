"""`search-alpha` / `single-scores` on a `lora-merge` config (factor-space route): each α's score equals the score
of `lora-merge` at that α applied by stock PEFT; `--save-best` writes that adapter; bad input is one line, exit 2,
nothing written; built-in model names work as `base_model`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from lora_fixtures import ADAPTERS, config, make_adapter, save_base, state_dict

from mergekit_plugins import cli
from mergekit_plugins.lora import lora_merge

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "calibrate_tiny.jsonl"
PROBE = "model.layers.0.self_attn.q_proj.weight"


@pytest.fixture(scope="module")
def lora_setup(tmp_path_factory, student_dir):
    root = tmp_path_factory.mktemp("lora_sweep")
    base = save_base(student_dir, root / "base", torch.float32)
    adapters = [
        make_adapter(base, root / name, seed, **ADAPTERS[name]) for seed, name in enumerate(("a", "c"), 1)
    ]
    return root, base, adapters


def write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def probe_eval(model, tokenizer):
    """A score that depends on one weight the merge changes (custom `--eval` callable)."""
    assert tokenizer is not None
    w = dict(model.named_parameters())[PROBE].detach().double()
    return {"probe": float(w.sum()), "norm": float(w.norm())}


def test_factor_sweep_equals_lora_merge_then_peft(lora_setup, tmp_path, capsys):
    root, base, adapters = lora_setup
    cfg = write(tmp_path / "m.yaml", config(base, adapters, "tsv", weights=[1.0, 0.5]))
    out = tmp_path / "o"
    argv = [
        "search-alpha",
        str(cfg),
        "--eval",
        "test_adapter_alpha_sweep:probe_eval",
        "--grid",
        "0.5,1.5,2.5",
    ]
    argv += ["--output-dir", str(out), "--save-best", str(tmp_path / "best"), "--no-progress"]
    assert cli.main(argv) == 0, capsys.readouterr().err
    report = json.loads((out / "search_alpha.json").read_text())
    assert report["route"].startswith("factor space") and report["parameter"] == "alpha"
    for r in report["results"]:  # reference: lora-merge at α, applied by stock PEFT (merge_and_unload)
        merged = lora_merge(config(base, adapters, "tsv", weights=[1.0, 0.5], alpha=r["alpha"]),
                            tmp_path / f"ref{r['alpha']}", progress=False)  # fmt: skip
        w = state_dict(base, Path(merged["out_dir"]))[PROBE].double()
        assert r["scores"]["probe"] == pytest.approx(float(w.sum()), rel=1e-4, abs=1e-4)
        assert r["scores"]["norm"] == pytest.approx(float(w.norm()), rel=1e-5)
    best = max(report["results"], key=lambda r: r["mean"])["alpha"]
    assert report["best"]["alpha"] == best and report["saved"] == str(tmp_path / "best")
    saved = state_dict(base, tmp_path / "best")[PROBE]
    assert torch.allclose(saved, state_dict(base, tmp_path / f"ref{best}")[PROBE], atol=1e-6)
    assert "best alpha" in capsys.readouterr().out
    # --save-best-merged: the full model base + α·merged at the best α
    argv[argv.index("--save-best") + 1] = str(tmp_path / "best_full")
    assert cli.main([*argv, "--save-best-merged"]) == 0, capsys.readouterr().err
    assert torch.allclose(state_dict(tmp_path / "best_full")[PROBE], saved, atol=1e-5)


def test_verifier_sweep_and_single_scores_report_both_numbers(lora_setup, tmp_path, capsys):
    root, base, adapters = lora_setup
    cfg = write(tmp_path / "m.yaml", config(base, adapters, "task_arithmetic"))
    names = [a.name for a in adapters]
    common = ["--eval", "math_answer", "--max-new-tokens", "3", "--output-dir", str(tmp_path / "o")]
    for name in names:
        common += ["--eval-data", f"{name}={DATA}"]
    threads = torch.get_num_threads()
    try:  # --num-threads as in search-alpha
        torch.set_num_threads(2)
        assert cli.main(["single-scores", str(cfg), *common, "--num-threads", "1"]) == 0, (
            capsys.readouterr().err
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    single = json.loads((tmp_path / "o" / "single.json").read_text())
    assert set(single) == set(names)
    assert all({"exact_accuracy", "mean_score", "n_items", "n_exact"} <= set(v) for v in single.values())
    try:  # the factor-space route honours --num-threads too
        torch.set_num_threads(2)
        argv = ["search-alpha", str(cfg), *common, "--grid", "0,0.5", "--criterion", "exact_accuracy"]
        assert cli.main([*argv, "--num-threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    report = json.loads((tmp_path / "o" / "search_alpha.json").read_text())
    assert report["parameter"] == "lambda" and report["criterion"] == "mean exact accuracy"
    for r in report["results"]:
        assert r["scores"] == r["exact_accuracy"] and set(r["mean_score"]) == set(names)
    assert "exact_accuracy" in capsys.readouterr().out


def test_builtin_model_name_as_base(lora_setup, tmp_path, monkeypatch, capsys):
    root, base, adapters = lora_setup
    cache = tmp_path / "cache"
    shutil.copytree(base, cache / "models" / "smollm2-135m-instruct")  # what `models install` leaves there
    monkeypatch.setenv("DISTILL_ORTHO_MERGE_CACHE", str(cache))
    cfg = config(base, adapters[:1], "iso_c")
    cfg["base_model"] = "smollm2-135m-instruct"
    rc = cli.main(
        ["lora-merge", str(write(tmp_path / "m.yaml", cfg)), str(tmp_path / "out"), "--allow-base-mismatch"]
    )
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(
    "change,args,needle",
    [
        ({}, ["--grid", ""], "--grid: grid '' is empty"),
        ({}, ["--grid", "2:1:0.5"], "--grid: grid '2:1:0.5' is empty"),
        ({"merge_method": "ties"}, [], "no factor-space α sweep; search-alpha runs it on the dense route"),
        ({"base_model": "teacher"}, [], "base_model_name_or_path is"),
        ({}, ["--eval", "math_answer", "--eval-data", f"a={ROOT / 'pyproject.toml'}"], "--eval-data a="),
    ],
)
def test_bad_input_is_one_line_before_merging(
    change, args, needle, lora_setup, teacher_dir, tmp_path, capsys
):
    root, base, adapters = lora_setup
    cfg = config(base, adapters, "tsv")
    cfg.update({k: str(teacher_dir) if v == "teacher" else v for k, v in change.items()})
    argv = [
        "search-alpha",
        str(write(tmp_path / "m.yaml", cfg)),
        "--eval",
        "test_adapter_alpha_sweep:probe_eval",
    ]
    argv += ["--grid", "1.0", "--output-dir", str(tmp_path / "o"), "--save-best", str(tmp_path / "best")]
    for i in range(0, len(args), 2):
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i : i + 2]
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mergekit-plugins")]
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists() and not (tmp_path / "best").exists()
