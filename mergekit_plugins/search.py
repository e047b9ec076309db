"""`mergekit-plugins search-alpha`: choose α on validation without re-merging.

Every supported method is θ(α) = θ₀ + α·merged: each method whose plugin declares it so
(`MergeMethodDeclaration.scales_linearly`, e.g. our `alpha`) and mergekit's task-arithmetic family (`lambda`),
so mergekit runs **once** at α = 1 (in float32), merged = θ(1) − θ₀ is kept in memory, and each α of the grid
only rewrites the weights of one loaded model before calling the evaluation function. Optionally the merge at
the best α is then written by mergekit itself, exactly as `mergekit-yaml` would.

Example:
    >>> from mergekit_plugins.search_config import SearchAlphaConfig
    >>> result = search_alpha(SearchAlphaConfig("merge.yaml", "my_pkg.evals:score"))  # doctest: +SKIP
    >>> result["best"]["alpha"]  # doctest: +SKIP
    1.3
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from distill_ortho_merge.errors import InputError
from distill_ortho_merge.outputs import (
    MERGEKIT_OVERWRITE,
    check_not_input,
    check_output_dir,
    staged_dir,
    staged_file,
)
from distill_ortho_merge.yaml_files import read_yaml, yaml_error
from mergekit_plugins.search_config import (
    DEFAULT_GRID_ALPHA,
    DEFAULT_GRID_LAMBDA,
    SearchAlphaConfig,
    parse_grid,
)
from mergekit_plugins.yaml_command import (
    ConfigError,
    check_config,
    config_inputs,
    one_line,
    quiet_torch_dtype_warning,
    resolve_config_models,
)


class SearchError(InputError):
    """Bad input to search-alpha; the message is one line naming the offending option, file or tensor."""


def scale_parameter(method_name: str) -> str:
    """The parameter s of a method that is θ₀ + s·merged (declared by its plugin, or `lambda` for mergekit's
    task-arithmetic family); other methods are refused."""
    from mergekit.merge_methods import registry as mk_registry

    from mergekit_plugins.plugins import declarations, linear_scale_parameter

    param = linear_scale_parameter(method_name)
    if param is not None:
        return param
    if method_name not in {m.spec.name for m in mk_registry.registered_methods()}:
        raise SearchError(f"merge_method {method_name!r} is not a registered merge method")
    linear = sorted(name for name, d in declarations().items() if d.scales_linearly)
    raise SearchError(
        f"merge_method {method_name!r} is not of the form θ₀ + α·merged; search-alpha supports "
        f"{', '.join(linear)} and mergekit's task-arithmetic family (task_arithmetic, ties, …)"
    )


def load_callable(spec: str) -> Callable[..., Any]:
    """Import `package.module:function`; a one-line error naming `--eval` otherwise."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SearchError(f"--eval {spec!r}: expected `package.module:function`")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's input
        raise SearchError(f"--eval {spec!r} cannot be imported: {one_line(exc)}") from None
    if not callable(obj):
        raise SearchError(f"--eval {spec!r} is a {type(obj).__name__}, not a callable")
    return obj


def make_evaluator(cfg: SearchAlphaConfig) -> Callable[..., Any]:
    """`--eval` as a callable: a verifier name gives `evals.verifier_metrics` on `--eval-data` (exact accuracy and
    mean score per task), anything with a colon is imported."""
    from mergekit_plugins.evals import EvalSpecError, parse_eval_data, verifier_metrics

    try:
        data = parse_eval_data(cfg.eval_data)
        if ":" in cfg.eval:
            if data:
                raise EvalSpecError(f"--eval-data is for a verifier --eval, not the callable {cfg.eval!r}")
            return load_callable(cfg.eval)
        return verifier_metrics(cfg.eval, data, max_new_tokens=cfg.max_new_tokens)
    except EvalSpecError as exc:
        raise SearchError(str(exc)) from None


METRICS = ("exact_accuracy", "mean_score")


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))


def check_scores(scores: Any, spec: str, alpha: float) -> dict[str, dict[str, float]]:
    """The evaluation must return {task: finite number} or {task: {"exact_accuracy": x, "mean_score": y, ...}};
    returns {task: metrics} (a plain number becomes {"score": number}).

    Example:
        >>> check_scores({"gcd": 0.5, "lcm": {"exact_accuracy": 0.25, "mean_score": 0.3}}, "f", 1.0)
        {'gcd': {'score': 0.5}, 'lcm': {'exact_accuracy': 0.25, 'mean_score': 0.3}}
    """
    if not isinstance(scores, Mapping) or not scores:
        raise SearchError(
            f"--eval {spec!r} returned {type(scores).__name__} at α={alpha}; expected {{task: score}}"
        )
    out = {}
    for task, value in scores.items():
        if isinstance(value, Mapping) and all(k in value for k in METRICS):
            bad = [k for k in METRICS if not _finite(value[k])]
            metrics = {k: float(v) for k, v in value.items() if _finite(v)}
        else:
            bad, metrics = (
                ([] if _finite(value) else ["score"]),
                {"score": float(value) if _finite(value) else 0},
            )
        if bad:
            raise SearchError(
                f"--eval {spec!r}: {bad[0]} of task {task!r} at α={alpha} is {value!r}, not a finite number"
            )
        out[str(task)] = metrics
    return out


def criterion_of(metrics: Mapping[str, Any], criterion: str) -> float:
    """The number α is chosen by: `criterion` of a verifier's metrics, or a custom evaluation's plain score.

    Example:
        >>> criterion_of({"exact_accuracy": 0.25, "mean_score": 0.3}, "exact_accuracy"), criterion_of(0.7, "mean_score")
        (0.25, 0.7)
    """
    if not isinstance(metrics, Mapping):
        return float(metrics)
    return float(metrics[criterion] if criterion in metrics else metrics["score"])


def _with_scale(config: dict[str, Any], param: str, value: float, unit: bool = False) -> dict[str, Any]:
    cfg = copy.deepcopy(config)
    cfg["parameters"] = dict(cfg.get("parameters") or {})
    cfg["parameters"][param] = value
    if unit:  # the in-memory sweep needs merged = θ(1) − θ₀ without rounding to a low-precision dtype
        cfg["dtype"] = "float32"
        cfg["out_dtype"] = "float32"
    return cfg


def use_num_threads(cfg: SearchAlphaConfig) -> None:
    """`--num-threads` (mergekit-yaml's, without its logging set-up) for the whole command: merges and evaluations,
    on the dense and the factor-space route alike.

    Example:
        >>> use_num_threads(SearchAlphaConfig(config="m.yaml", eval="math_answer"))  # None: torch's default kept
    """
    if cfg.num_threads is not None:
        import torch

        torch.set_num_threads(cfg.num_threads)


def _run_mergekit(config: dict[str, Any], out: str, cfg: SearchAlphaConfig) -> None:
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    options = MergeOptions(
        device=cfg.device, trust_remote_code=cfg.trust_remote_code, quiet=True, num_threads=cfg.num_threads
    )
    run_merge(
        MergeConfiguration.model_validate(config), out, options=options, config_source=yaml.safe_dump(config)
    )


def read_merge_config(path: str) -> dict[str, Any]:
    """The merge YAML at `path`, checked like `mergekit-plugins yaml` checks it; `SearchError` on bad input."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
        check_config(config, where=path)
        config = resolve_config_models(config, where=path)  # built-in names / GGUF files -> directories
    except ConfigError as exc:
        raise SearchError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise SearchError(yaml_error(path, exc)) from None
    except OSError as exc:
        raise SearchError(f"{path}: {one_line(exc)}") from None
    return config


def check_outputs(cfg: SearchAlphaConfig, config: dict[str, Any]) -> None:
    """The output rule, before any merge: `--save-best` is refused when occupied (unless `--overwrite`) and, like
    the JSON and PNG files, whenever it is, lies inside or contains a path the run reads (config, models, data)."""
    eval_files = [item.partition("=")[2] for item in cfg.eval_data or []]
    inputs = [cfg.config, *config_inputs(config), cfg.single_task_scores, *eval_files]
    if cfg.save_best:
        check_output_dir(
            cfg.save_best, cfg.overwrite, inputs=inputs, flag=MERGEKIT_OVERWRITE, what="--save-best"
        )
    png = cfg.output_png or Path(str(cfg.output_json)).with_suffix(".png")
    for what, path in (("--output-json", cfg.output_json), ("--output-png", png)):
        check_not_input(str(path), inputs, what=what)


def _unit_delta(unit_dir: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """θ₀ and merged = θ(1) − θ₀ (float32) for every tensor of mergekit's output."""
    import torch
    from mergekit.config import MergeConfiguration
    from mergekit.io.lazy_tensor_loader import LazyTensorLoader
    from mergekit.io.tasks import LoaderCache

    base_ref = MergeConfiguration.model_validate(config).base_model
    base_loader = LoaderCache().get(base_ref)
    unit = LazyTensorLoader.from_disk(unit_dir, lazy_unpickle=False)
    theta0, delta = {}, {}
    for name in unit.index.tensor_paths:
        merged = unit.get_tensor(name)
        if not merged.is_floating_point():
            continue
        base = base_loader.get_tensor(name, raise_on_missing=False)
        if base is None:
            raise SearchError(
                f"tensor {name} of the merge is not in base model {base_ref}; search-alpha needs it"
            )
        theta0[name] = base.to(torch.float32)
        delta[name] = merged.to(torch.float32) - theta0[name]
    return theta0, delta


def _grid(cfg: SearchAlphaConfig, param: str, method: str) -> list[float]:
    try:
        default = DEFAULT_GRID_ALPHA if param == "alpha" else DEFAULT_GRID_LAMBDA
        grid = parse_grid(default if cfg.grid is None else cfg.grid)
    except ValueError as exc:
        raise SearchError(f"--grid: {exc}") from None
    if param == "alpha" and min(grid) <= 0:
        raise SearchError(f"--grid: {method} needs alpha > 0, got {min(grid)}")
    return grid


def sweep(
    grid: list[float],
    set_alpha: Callable[[float], None],
    evaluate: Callable[[Any, Any], Any],
    model: Any,
    tokenizer: Any,
    cfg: SearchAlphaConfig,
    single: dict[str, Any] | None,
    label: str,
) -> list[dict[str, Any]]:
    """For each α: `set_alpha(α)` rewrites the model's weights in memory, then the evaluation scores it."""
    import torch

    from distill_ortho_merge.progress import progress

    results = []
    for alpha in progress(grid, f"search {label}", show=cfg.progress):
        with torch.no_grad():
            set_alpha(alpha)
            model.eval()
            metrics = check_scores(evaluate(model, tokenizer), cfg.eval, alpha)
        results.append(_summarise(alpha, metrics, single, cfg.criterion))
    return results


def search_alpha(cfg: SearchAlphaConfig) -> dict[str, Any]:
    """Sweep α in memory; writes cfg.output_json and the PNG curve; returns the JSON content. A `lora-merge`
    config (adapter directories as models) takes the factor-space route (`mergekit_plugins.lora.sweep`)."""
    quiet_torch_dtype_warning()
    use_num_threads(cfg)
    from mergekit_plugins.lora.sweep import is_lora_config, search_alpha_lora

    if is_lora_config(cfg.config):
        check_outputs(cfg, read_yaml(cfg.config, SearchError))
        return search_alpha_lora(cfg)
    from mergekit_plugins.plugins import load_plugins

    load_plugins()
    config = read_merge_config(cfg.config)
    check_outputs(cfg, config)
    method = config.get("merge_method")
    param = scale_parameter(method)
    grid = _grid(cfg, param, method)
    evaluate = make_evaluator(cfg)
    single = read_single(cfg.single_task_scores, cfg.criterion)
    if cfg.save_best_merged:
        raise SearchError(
            "--save-best-merged is for lora-merge configs; a dense config's --save-best is a full model"
        )

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="search-alpha-") as tmp:
        unit_dir = os.path.join(tmp, "unit")
        _run_mergekit(_with_scale(config, param, 1.0, unit=True), unit_dir, cfg)
        theta0, delta = _unit_delta(unit_dir, config)
        eval_dtype = getattr(torch, config.get("out_dtype") or config.get("dtype") or "float32")
        model = AutoModelForCausalLM.from_pretrained(
            unit_dir, dtype=eval_dtype, trust_remote_code=cfg.trust_remote_code
        ).to(cfg.device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(unit_dir, trust_remote_code=cfg.trust_remote_code)
        except Exception:  # noqa: BLE001 - a merge without tokenizer files still gets evaluated
            tokenizer = None
    unit_s = time.perf_counter() - t0
    params = model.state_dict()
    names = [n for n in delta if n in params]
    if not names:
        raise SearchError("no tensor of mergekit's output matches the model's parameters")

    def set_alpha(alpha: float) -> None:
        for n in names:
            if params[n].dtype == torch.float32:  # in place: no temporary of the model's size
                params[n].copy_(theta0[n]).add_(delta[n], alpha=alpha)
            else:
                params[n].copy_(theta0[n] + alpha * delta[n])

    t1 = time.perf_counter()
    results = sweep(grid, set_alpha, evaluate, model, tokenizer, cfg, single, param)
    eval_s = time.perf_counter() - t1
    theta0.clear(), delta.clear()  # free them before --save-best runs mergekit again

    report = build_report(cfg, method, param, grid, single, results, "dense (mergekit once at α = 1)")
    report["seconds"] = {"unit_merge_and_load": round(unit_s, 3), "sweep": round(eval_s, 3)}
    if cfg.save_best:  # before the JSON is written, so that the report records it
        with staged_dir(cfg.save_best) as staging:
            _run_mergekit(_with_scale(config, param, report["best"]["alpha"]), str(staging), cfg)
        report["saved"] = str(Path(cfg.save_best))
    write_outputs(cfg, report)
    return report


def build_report(
    cfg: SearchAlphaConfig,
    method: str,
    param: str,
    grid: list[float],
    single: dict[str, float] | None,
    results: list[dict[str, Any]],
    route: str,
) -> dict[str, Any]:
    """The JSON content of a sweep: the curve, the best α (by the mean of the criterion) and its numbers."""
    best = max(results, key=lambda r: r["mean"])
    exact = cfg.criterion == "exact_accuracy" and any("exact_accuracy" in r for r in results)
    what = "exact accuracy" if exact else "score"
    return {
        "config": str(cfg.config),
        "merge_method": method,
        "route": route,
        "parameter": param,
        "grid": grid,
        "eval": cfg.eval,
        "single_task_scores": single,
        "criterion": f"mean normalised {what}" if single else f"mean {what}",
        "results": results,
        "best": {param: best["alpha"], **{k: v for k, v in best.items() if k not in ("normalized",)}},
    }


def write_outputs(cfg: SearchAlphaConfig, report: dict[str, Any]) -> None:
    """The JSON report and the PNG curve, each staged."""
    write_json(Path(cfg.output_json), report)
    _plot(report, Path(cfg.output_png or Path(cfg.output_json).with_suffix(".png")))


def read_single(path: str | None, criterion: str = "mean_score") -> dict[str, float] | None:
    """{task: positive normaliser} from a `single-scores` JSON: {task: number} or {task: {criterion: number}}."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SearchError(f"--single-task-scores {path}: {one_line(exc)}") from None
    try:
        values = {str(k): criterion_of(v, criterion) for k, v in data.items()}
    except (AttributeError, KeyError, TypeError, ValueError):
        values = None
    if not values or not all(math.isfinite(v) and v > 0 for v in values.values()):
        raise SearchError(
            f"--single-task-scores {path}: expected {{task: positive number}} or {{task: {{{criterion}: positive "
            f"number}}}}, got {data if values is None else values}"
        )
    return values


def _summarise(
    alpha: float, metrics: dict[str, dict[str, float]], single: dict[str, float] | None, criterion: str
) -> dict[str, Any]:
    scores = {t: criterion_of(m, criterion) for t, m in metrics.items()}
    row: dict[str, Any] = {"alpha": alpha, "scores": scores}
    for name in METRICS:  # both named numbers, whichever picks α
        if all(name in m for m in metrics.values()):
            row[name] = {t: m[name] for t, m in metrics.items()}
            row.setdefault("task_mean", {})[name] = sum(row[name].values()) / len(metrics)
    if single is None:
        return {**row, "normalized": None, "mean": sum(scores.values()) / len(scores)}
    missing = sorted(set(scores) - set(single))
    if missing:
        raise SearchError(f"--single-task-scores has no score for task(s) {', '.join(missing)}")
    normalized = {t: s / single[t] for t, s in scores.items()}
    return {**row, "normalized": normalized, "mean": sum(normalized.values()) / len(normalized)}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """`data` as indented JSON at `path`, staged (a temporary sibling renamed into place)."""
    with staged_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["alpha"] for r in report["results"]]
    key = "normalized" if report["single_task_scores"] else "scores"
    fig, ax = plt.subplots(figsize=(6, 4))
    for task in report["results"][0][key]:
        ax.plot(xs, [r[key][task] for r in report["results"]], alpha=0.6, label=task)
    ax.plot(xs, [r["mean"] for r in report["results"]], "k-", lw=2, label=report["criterion"])
    ax.axvline(
        report["best"]["alpha"],
        color="r",
        ls="--",
        label=f"best {report['parameter']} = {report['best']['alpha']:g}",
    )
    ax.set_xlabel(report["parameter"])
    ax.set_ylabel("normalised score" if report["single_task_scores"] else "score")
    ax.set_title(f"{report['merge_method']}: {Path(report['config']).name}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with staged_file(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
