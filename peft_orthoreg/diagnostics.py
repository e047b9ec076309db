"""Disentanglement diagnostics of task vectors: pairwise cosine (global and per layer type) and per-matrix
orthogonality statistics of each ΔW (the OrthoReg value, singular-value spread). `peft-orthoreg diagnose`
is a thin wrapper over `diagnose` + `write_report`.

Example:
    >>> import torch
    >>> from peft_orthoreg.task_vector import TaskVector
    >>> a = TaskVector({"layers.0.q.weight": torch.eye(2)})
    >>> b = TaskVector({"layers.0.q.weight": -torch.eye(2)})
    >>> diagnose([a, b], names=["a", "b"])["cosine"]["global"]
    [[1.0, -1.0], [-1.0, 1.0]]
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from distill_ortho_merge.outputs import staged_dir
from peft_orthoreg.errors import MissingInputError, OrthoRegInputError, OutputExistsError
from peft_orthoreg.task_vector import TaskVector


def layer_type(key: str) -> str:
    """``model.layers.3.self_attn.q_proj.weight`` -> ``self_attn.q_proj.weight`` (the part after the layer index)."""
    parts = key.split(".")
    idx = [i for i, p in enumerate(parts) if p.isdigit()]
    return ".".join(parts[idx[-1] + 1 :]) if idx else key


def matrix_stats(delta: torch.Tensor) -> dict[str, float]:
    """Orthogonality statistics of one 2-D update ΔW (singular values in float64, exact)."""
    sigma = torch.linalg.svdvals(delta.detach().double())
    dev_sq = float(((sigma**2 - 1) ** 2).sum())  # ‖G − I_k‖²_F from G's eigenvalues σ²
    tol = float(sigma.max()) * max(delta.shape) * torch.finfo(torch.float32).eps if sigma.numel() else 0.0
    kept = sigma[sigma > tol]
    p = kept**2 / kept.pow(2).sum() if kept.numel() else kept
    return {
        "orthoreg": math.sqrt(dev_sq),
        "orthoreg_squared": dev_sq,
        "fro_norm": float(sigma.pow(2).sum().sqrt()),
        "sv_max": float(sigma.max()) if sigma.numel() else 0.0,
        "sv_min_nonzero": float(kept.min()) if kept.numel() else 0.0,
        "sv_mean": float(kept.mean()) if kept.numel() else 0.0,
        "sv_std": float(kept.std()) if kept.numel() > 1 else 0.0,
        "sv_spread": float(kept.max() / kept.min()) if kept.numel() else 0.0,  # condition number on the rank
        "numerical_rank": int(kept.numel()),
        "effective_rank": float(torch.exp(-(p * p.log()).sum())) if kept.numel() else 0.0,
        "k": int(min(delta.shape)),
    }


def _pair_dots(tvs: Sequence[TaskVector], key: str) -> list[list[float]]:
    """⟨τ_i[key], τ_j[key]⟩ for i ≤ j (0 where a task vector lacks the key)."""
    n = len(tvs)
    flats = [tv.deltas[key].double().reshape(-1) if key in tv.deltas else None for tv in tvs]
    dots = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            if flats[i] is not None and flats[j] is not None:
                dots[i][j] = float(flats[i] @ flats[j])
    return dots


def _cosine(per_key: Sequence[list[list[float]]], n: int) -> list[list[float]]:
    dots = [[0.0] * n for _ in range(n)]
    for key_dots in per_key:
        for i in range(n):
            for j in range(i, n):
                dots[i][j] += key_dots[i][j]
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            denom = math.sqrt(dots[i][i] * dots[j][j])
            out[i][j] = out[j][i] = round(dots[i][j] / denom, 10) if denom > 0 else 0.0
    return out


def diagnose(
    task_vectors: Sequence[TaskVector | str | os.PathLike],
    base: str | os.PathLike | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Cosine similarity matrices and per-matrix stats; inputs are TaskVectors or paths (see `load_input`)."""
    tvs = [tv if isinstance(tv, TaskVector) else load_input(tv, base) for tv in task_vectors]
    if names is None:
        names = [
            Path(str(tv)).name if not isinstance(tv, TaskVector) else f"tv{i}"
            for i, tv in enumerate(task_vectors)
        ]
    if len(names) != len(tvs):
        raise OrthoRegInputError(f"names: {len(names)} names for {len(tvs)} task vectors")
    for tv in tvs[1:]:
        tvs[0]._check_same_base(tv)
    keys = sorted(set().union(*(tv.deltas for tv in tvs)))
    types = sorted({layer_type(k) for k in keys})
    dots = {k: _pair_dots(tvs, k) for k in keys}  # once per key: the global and per-type sums share them
    cosine = {"global": _cosine(list(dots.values()), len(tvs))}
    for t in types:
        cosine[t] = _cosine([d for k, d in dots.items() if layer_type(k) == t], len(tvs))
    per_matrix = {
        name: {k: matrix_stats(d) for k, d in tv.deltas.items() if d.dim() == 2}
        for name, tv in zip(names, tvs, strict=True)
    }
    summary = {
        name: {
            "norm": tv.norm(),
            "orthoreg_total": sum(s["orthoreg"] for s in per_matrix[name].values()),
            "mean_sv_spread": _mean([s["sv_spread"] for s in per_matrix[name].values()]),
            "mean_effective_rank": _mean([s["effective_rank"] for s in per_matrix[name].values()]),
        }
        for name, tv in zip(names, tvs, strict=True)
    }
    off = [abs(cosine["global"][i][j]) for i in range(len(tvs)) for j in range(len(tvs)) if i < j]
    return {
        "names": list(names),
        "base_model": tvs[0].base_model,
        "mean_abs_cosine": _mean(off),
        "layer_types": types,
        "cosine": cosine,
        "summary": summary,
        "per_matrix": per_matrix,
    }


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else 0.0


def load_input(path: str | os.PathLike, base: str | os.PathLike | None = None) -> TaskVector:
    """A task-vector directory, a PEFT adapter directory, or a full model directory (needs ``base``)."""
    p = Path(path)
    if (p / "task_vector.safetensors").is_file() or p.suffix == ".safetensors":
        return TaskVector.load(p)
    if (p / "adapter_config.json").is_file():
        return TaskVector.from_peft(p, base=base)
    if p.is_dir() and any(p.glob("*.safetensors")):
        if base is None:
            raise OrthoRegInputError(
                f"{p}: a full model directory; pass --base so its task vector can be computed"
            )
        return TaskVector.from_models(base, p)
    raise MissingInputError(f"{p}: not a task vector, PEFT adapter or safetensors model directory")


def write_report(report: dict[str, Any], out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``diagnose.json`` and ``cosine.png`` (global + one panel per layer type) into `out_dir`, atomically;
    a directory holding other files than an earlier report's is replaced only with `overwrite`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    ours = {"diagnose.json", "cosine.png"}
    taken = out_dir.exists() and (not out_dir.is_dir() or {f.name for f in out_dir.iterdir()} - ours)
    if taken and not overwrite:
        raise OutputExistsError(f"{out_dir} exists and holds other files; choose a new --out directory")
    panels = ["global", *report["layer_types"]]
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    n = len(report["names"])
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        im = ax.imshow(report["cosine"][panel], vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(re.sub(r"\.weight$", "", panel), fontsize=8)
        ax.set_xticks(range(n), report["names"], rotation=90, fontsize=6)
        ax.set_yticks(range(n), report["names"], fontsize=6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="cosine")
    with staged_dir(out_dir) as tmp:
        (tmp / "diagnose.json").write_text(json.dumps(report, indent=1) + "\n")
        fig.savefig(tmp / "cosine.png", dpi=110)
    plt.close(fig)
    return out_dir
