"""Shared helpers (no tests) of the mergekit_plugins end-to-end tests: task models on disk, YAML, expected merges."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from references import ref_iso_c, ref_iso_cts, ref_tsv
from safetensors.torch import load_file

EMBEDDINGS = ("embed_tokens", "lm_head")


def save_task_models(root: Path, teacher_dir: Path, make_finetuned_copies, n: int = 3) -> list[Path]:
    """`n` perturbed copies of the tiny teacher saved under root/ft{i}, with the teacher's tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(teacher_dir)
    paths = []
    for i, model in enumerate(make_finetuned_copies(base, n, scale=0.02, seed=1)):
        path = root / f"ft{i}"
        model.save_pretrained(path)
        tok.save_pretrained(path)
        paths.append(path)
    return paths


def write_config(path: Path, method: str, base: Path, models: list[Path], weights=None, **params) -> Path:
    """An ordinary mergekit YAML."""
    entries = []
    for i, m in enumerate(models):
        entry = {"model": str(m)}
        if weights is not None:
            entry["parameters"] = {"weight": weights[i]}
        entries.append(entry)
    config = {"merge_method": method, "models": entries, "dtype": "float32"}
    if base is not None:
        config["base_model"] = str(base)
    if params:
        config["parameters"] = params
    path.write_text(yaml.safe_dump(config))
    return path


def state_dict(path: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        out.update(load_file(f))
    return out


def reference_merge(method: str, base: Path, models: list[Path], weights=None, alpha: float = 1.0, **kw):
    """θ₀ + α·reference(Δs) per tensor in fp64, from the test-side reference implementations."""
    theta0 = state_dict(base)
    tasks = [state_dict(m) for m in models]
    weights = weights or [1.0] * len(models)
    out = {}
    for name, b in theta0.items():
        deltas = [w * (t[name].double() - b.double()) for w, t in zip(weights, tasks)]
        is_matrix = b.ndim == 2 and (kw.get("svd_embeddings") or not any(e in name for e in EMBEDDINGS))
        if method == "task_arithmetic":
            merged = sum(deltas)
        elif not is_matrix:
            merged = sum(deltas) / len(deltas)
        elif method == "tsv":
            merged = ref_tsv(deltas)
        elif method == "iso_c":
            merged = ref_iso_c(deltas)
        else:
            merged = ref_iso_cts(deltas, kw.get("common_space_fraction", 0.8))
        out[name] = b.double() + alpha * merged
    return out


def assert_merge_equals(out_dir: Path, expected: dict[str, torch.Tensor], atol: float = 1e-5) -> None:
    got = state_dict(out_dir)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == torch.float32, name
        torch.testing.assert_close(
            got[name].double(), value, rtol=1e-5, atol=atol, msg=lambda m: f"{name}: {m}"
        )
