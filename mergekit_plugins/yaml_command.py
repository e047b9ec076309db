"""`mergekit-plugins yaml CONFIG OUT [mergekit-yaml options] [--overwrite]`: load the plugins, then run mergekit's
own `mergekit-yaml` command (same options, same behaviour, same exit codes), writing to a temporary sibling of OUT
that is renamed into place only when the merge succeeded. A non-empty OUT is refused (exit 2) unless `--overwrite`
is given; a CONFIG that is not YAML is one line with its file, line and column (exit 2).

Example:
    >>> run_yaml(["--help"])  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from distill_ortho_merge.offline import set_offline_env
from distill_ortho_merge.outputs import staged_dir
from distill_ortho_merge.yaml_files import yaml_error


class ConfigError(ValueError):
    """A merge configuration our methods cannot run; the message is one line naming the field."""


def check_config(config: Any, where: str = "config") -> None:
    """One-line errors for what our methods refuse, before mergekit plans anything.

    Example:
        >>> check_config({"merge_method": "tsv", "models": [{"model": "a"}]})
        Traceback (most recent call last):
        ...
        mergekit_plugins.yaml_command.ConfigError: config: merge_method 'tsv' needs `base_model` (θ₀ of the task vectors)
    """
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a YAML mapping at the top level")
    method = config.get("merge_method")
    from mergekit_plugins.methods import PARAMETER_RULES, build_methods  # our methods' own rules (torch)

    if not isinstance(method, str) or method not in build_methods():
        return
    if not config.get("base_model"):
        raise ConfigError(f"{where}: merge_method {method!r} needs `base_model` (θ₀ of the task vectors)")

    def check(field: str, rule: str, value: Any) -> None:
        ok, what = PARAMETER_RULES[rule]
        if _is_number(value) and not ok(float(value)):
            raise ConfigError(f"{where}: {field} must be {what}, got {value}")

    for model in config.get("models") or []:
        model = model or {}
        weight = (model.get("parameters") or {}).get("weight")
        check(f"models[{model.get('model')!r}].parameters.weight", "weight", weight)
    params = dict(config.get("parameters") or {})
    for key in ("alpha", "common_space_fraction", "rank_rtol"):
        check(f"parameters.{key}", key, params.get(key))


def resolve_config_models(config: Any, where: str = "config") -> Any:
    """A copy of a merge config whose built-in model names and ``*.gguf`` paths (``base_model``, ``models[].model``,
    ``slices[].sources[].model``, a ``+lora`` suffix kept) are replaced by their converted local directories
    (`distill_ortho_merge.models.resolve_model`); anything else is left for mergekit. Raises `ConfigError`.

    Example:
        >>> resolve_config_models({"base_model": "some/dir", "models": [{"model": "other/dir"}]})["base_model"]
        'some/dir'
    """
    import copy

    from distill_ortho_merge.models import BUILTIN_MODELS, ModelError, resolve_model

    if not isinstance(config, dict):
        return config
    config = copy.deepcopy(config)

    def fix(ref: Any, field: str) -> Any:
        if not isinstance(ref, str):
            return ref
        head, plus, lora = ref.partition("+")
        if head not in BUILTIN_MODELS and not head.endswith(".gguf"):
            return ref
        try:
            return f"{resolve_model(head, f'{where}: {field}')}{plus}{lora}"
        except ModelError as exc:
            raise ConfigError(str(exc)) from None

    config["base_model"] = fix(config.get("base_model"), "base_model") if "base_model" in config else None
    if config["base_model"] is None:
        del config["base_model"]
    for i, model in enumerate(config.get("models") or []):
        if isinstance(model, dict):
            model["model"] = fix(model.get("model"), f"models[{i}].model")
    for i, sl in enumerate(config.get("slices") or []):
        for j, src in enumerate((sl or {}).get("sources") or []):
            if isinstance(src, dict):
                src["model"] = fix(src.get("model"), f"slices[{i}].sources[{j}].model")
    return config


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def one_line(exc: BaseException) -> str:
    """A short, single-line description of an exception (pydantic errors condensed to their first message)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            return f"{loc + ': ' if loc else ''}{first.get('msg')}"
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def quiet_torch_dtype_warning() -> None:
    """Drop transformers' "`torch_dtype` is deprecated" warning, which mergekit triggers on every merge by setting
    `config.torch_dtype` (nothing a user can change); every other warning stays.

    Example:
        >>> quiet_torch_dtype_warning()
    """
    import logging

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "`torch_dtype` is deprecated" not in record.getMessage()

    for name in ("transformers.configuration_utils", "transformers.modeling_utils"):
        log = logging.getLogger(name)
        if not any(type(f).__name__ == "_Filter" for f in log.filters):
            log.addFilter(_Filter())


def run_yaml(argv: list[str]) -> int:
    """Run `mergekit-yaml` with `argv` after `load_plugins()`; returns mergekit's exit code."""
    import click
    import yaml

    overwrite = "--overwrite" in argv
    argv = [a for a in argv if a != "--overwrite"]
    set_offline_env()
    quiet_torch_dtype_warning()
    from mergekit.scripts.run_yaml import main as mergekit_yaml

    from mergekit_plugins.plugins import load_plugins

    load_plugins()
    try:
        ctx = mergekit_yaml.make_context("mergekit-plugins yaml", list(argv))
    except click.exceptions.Exit as exc:  # --help
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    config_file, out = ctx.params["config_file"], Path(ctx.params["out_path"])
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        print(
            f"mergekit-plugins yaml: error: {out} exists and is not empty (pass --overwrite)", file=sys.stderr
        )
        return 2
    try:
        with open(config_file, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
        check_config(config, where=config_file)
        resolved = resolve_config_models(config, where=config_file)
    except yaml.YAMLError as exc:
        print(f"mergekit-plugins yaml: error: {yaml_error(config_file, exc)}", file=sys.stderr)
        return 2
    except (OSError, ConfigError) as exc:
        print(
            f"mergekit-plugins yaml: error: {one_line(exc) if not isinstance(exc, ConfigError) else exc}",
            file=sys.stderr,
        )
        return 2  # an unreadable or invalid config is bad input, as in every other command
    try:
        with staged_dir(out) as staging:
            # built-in names / GGUF files: mergekit reads a copy naming the directories (removed with the stage)
            if resolved != config:
                ctx.params["config_file"] = str(staging.parent / "resolved_config.yml")
                Path(ctx.params["config_file"]).write_text(yaml.safe_dump(resolved, sort_keys=False))
            ctx.params["out_path"] = str(staging)
            with ctx:
                mergekit_yaml.invoke(ctx)
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - one actionable line instead of a traceback
        print(f"mergekit-plugins yaml: error: {one_line(exc)}", file=sys.stderr)
        return 1
