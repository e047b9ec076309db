"""`search-alpha` and `single-scores` on a `lora-merge` config: merge once in factor space, sweep α in memory.

The adapters are merged once at α = 1 (`lora_merge`'s own factor-space merge: per weight, factors (B, A)), the
base model is loaded once, and each α of the grid sets every targeted weight to W₀ + α·B·A in place before the
evaluation runs: no full model is exported, no mergekit run per α, and the scores equal those of
`lora-merge` at that α followed by ``merge_and_unload()``. ``--save-best`` writes the adapter `lora-merge` writes
at the best α. Methods without a declared factor kernel (``ties``, ``dare_*``, ..., which prune or sign-elect
entries of the dense delta) stay on the dense route (models written as ``BASE+ADAPTER``, which mergekit applies).

Example:
    >>> is_lora_config("no/such/merge.yaml")
    False
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from distill_ortho_merge.yaml_files import read_yaml
from mergekit_plugins.lora.config import LoraMergeError, parse_config
from mergekit_plugins.search_config import SearchAlphaConfig

ROUTE = "factor space (lora-merge once at α = 1, then W = W₀ + α·B·A in memory)"


def _adapter_dir(ref: Any) -> bool:
    return (
        isinstance(ref, str) and "+" not in ref and (Path(ref).expanduser() / "adapter_config.json").is_file()
    )


def is_lora_config(path: str) -> bool:
    """Whether the merge YAML at `path` lists PEFT adapter directories as its models (a `lora-merge` config).

    Example:
        >>> import tempfile, yaml
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "m.yaml").write_text(yaml.safe_dump({"merge_method": "tsv", "models": [{"model": str(d)}]}))
        >>> is_lora_config(str(d / "m.yaml"))
        False
    """
    try:
        config = read_yaml(path)
    except Exception:  # noqa: BLE001 - unreadable: the dense route reports it
        return False
    models = config.get("models") if isinstance(config, dict) else None
    return (
        isinstance(models, list)
        and bool(models)
        and all(isinstance(m, dict) and _adapter_dir(m.get("model")) for m in models)
    )


def _search_error(exc: Exception) -> Exception:
    from mergekit_plugins.search import SearchError

    return SearchError(str(exc))


def read_lora_config(path: str):
    """The validated `lora-merge` config, with a dense-route pointer for linear methods without a factor kernel."""
    from mergekit_plugins.plugins import declarations, linear_scale_parameter
    from mergekit_plugins.search import SearchError

    try:
        raw = read_yaml(path, LoraMergeError)
        method = raw.get("merge_method") if isinstance(raw, dict) else None
        declared = declarations().get(method) if isinstance(method, str) else None
        kernel = declared is not None and declared.factor_kernel is not None
        if isinstance(method, str) and not kernel and linear_scale_parameter(method) is not None:
            raise SearchError(
                f"{path}: merge_method {method!r} declares no factor kernel, so it has no factor-space α sweep; "
                "search-alpha runs it on the dense route: list the models as `BASE_MODEL+ADAPTER_DIR` "
                "(mergekit applies each adapter)"
            )
        return parse_config(raw, where=path)
    except LoraMergeError as exc:
        raise _search_error(exc) from None


class FactorSweep:
    """The base model loaded once, plus per targeted weight its W₀ and the merged factors at α = 1.

    `set_alpha(α)` writes W₀ + α·B·A into the model (in place); `set_adapter(adapter)` writes W₀ + s·B·A of
    one adapter (its single-task model).
    """

    def __init__(self, cfg: SearchAlphaConfig, lora_cfg: Any, *, merge: bool = True) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from mergekit_plugins.lora.adapters import check_adapters, read_adapter, read_base
        from mergekit_plugins.lora.merge import _merge_modules

        try:
            base = read_base(lora_cfg.base_model)
            self.adapters = [read_adapter(e.model, e.weight) for e in lora_cfg.models]
            check_adapters(self.adapters, lora_cfg.base_model, base, allow_base_mismatch=False)
        except LoraMergeError as exc:
            raise _search_error(exc) from None
        self.transposed = self.adapters[0].fan_in_fan_out
        self.merged = {}
        if merge:  # single-scores needs no merge
            unit = dataclasses.replace(lora_cfg, alpha=1.0)
            self.merged, _ = _merge_modules(unit, self.adapters, base, torch.float32, progress=False)
        self.model = AutoModelForCausalLM.from_pretrained(
            base.path, dtype=torch.float32, trust_remote_code=cfg.trust_remote_code
        ).to(cfg.device)
        self.tokenizer = AutoTokenizer.from_pretrained(base.path, trust_remote_code=cfg.trust_remote_code)
        params = dict(self.model.named_parameters())
        modules = set(self.merged) | {m for a in self.adapters for m in a.modules}
        missing = sorted(m for m in modules if f"{m}.weight" not in params)
        if missing:
            raise _search_error(
                ValueError(f"base_model has no parameter {missing[0]}.weight the adapters update")
            )
        self.params = {m: params[f"{m}.weight"] for m in modules}
        self.theta0 = {m: p.detach().clone() for m, p in self.params.items()}

    def _write(self, factors: dict[str, tuple[Any, Any]], scale: float) -> None:
        import torch

        with torch.no_grad():
            for module, w in self.params.items():
                w.copy_(self.theta0[module])
                if module in factors and scale != 0:
                    b, a = (f.to(device=w.device, dtype=w.dtype) for f in factors[module])
                    if self.transposed:
                        w.addmm_(a.T, b.T, alpha=scale)
                    else:
                        w.addmm_(b, a, alpha=scale)

    def set_alpha(self, alpha: float) -> None:
        self._write(self.merged, alpha)

    def set_adapter(self, adapter: Any) -> None:
        self._write({m: (s * b.float(), a.float()) for m, (b, a, s) in adapter.modules.items()}, 1.0)


def search_alpha_lora(cfg: SearchAlphaConfig) -> dict[str, Any]:
    """`search_alpha` for a `lora-merge` config (see the module docstring); same report, `route` says which."""
    from distill_ortho_merge.outputs import staged_dir
    from mergekit_plugins.lora.merge import lora_merge
    from mergekit_plugins.plugins import declarations
    from mergekit_plugins.search import _grid, build_report, make_evaluator, read_single, sweep, write_outputs

    lora_cfg = read_lora_config(cfg.config)
    param = declarations()[lora_cfg.merge_method].scale_parameter
    grid = _grid(cfg, param, lora_cfg.merge_method)
    evaluate = make_evaluator(cfg)
    single = read_single(cfg.single_task_scores, cfg.criterion)
    if cfg.save_best_merged:
        from mergekit_plugins.lora.adapters import read_base
        from mergekit_plugins.search import SearchError

        if not cfg.save_best:
            raise SearchError("--save-best-merged: give --save-best DIR (where the full model goes)")
        try:
            has_weights = bool(read_base(lora_cfg.base_model).files)
        except LoraMergeError as exc:
            raise SearchError(str(exc)) from None
        if not has_weights:
            raise SearchError(
                f"--save-best-merged: base_model {lora_cfg.base_model!r} has no safetensors weights"
            )
    t0 = time.perf_counter()
    state = FactorSweep(cfg, lora_cfg)
    unit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    results = sweep(grid, state.set_alpha, evaluate, state.model, state.tokenizer, cfg, single, param)
    eval_s = time.perf_counter() - t1
    del state
    report = build_report(cfg, lora_cfg.merge_method, param, grid, single, results, ROUTE)
    report["seconds"] = {"factor_merge_and_load": round(unit_s, 3), "sweep": round(eval_s, 3)}
    if cfg.save_best:
        best = dataclasses.replace(lora_cfg, alpha=report["best"]["alpha"])
        with staged_dir(cfg.save_best) as staging:
            lora_merge(best, staging, merge_into_base=cfg.save_best_merged, progress=False)
        report["saved"] = str(Path(cfg.save_best))
        what = "full model (base + α·merged)" if cfg.save_best_merged else "PEFT LoRA adapter"
        report["saved_as"] = f"{what}, lora-merge at the best α"
    write_outputs(cfg, report)
    return report


def single_scores_lora(cfg: SearchAlphaConfig, evaluate: Any) -> dict[str, Any]:
    """{adapter directory name: its score on its own task} with base + that adapter, the base loaded once."""
    from mergekit_plugins.evals import single_task_scores

    lora_cfg = read_lora_config(cfg.config)
    state = FactorSweep(cfg, lora_cfg, merge=False)

    def loader(adapter: Any):
        return lambda: (state.set_adapter(adapter), (state.model, state.tokenizer))[1]

    models = {Path(str(a.path)).name: loader(a) for a in state.adapters}
    return single_task_scores(models, evaluate, device=cfg.device)
