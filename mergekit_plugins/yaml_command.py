"""`mergekit-plugins yaml CONFIG OUT [mergekit-yaml options] [--overwrite]`: load the plugins, then run mergekit's
own `mergekit-yaml` command (same options, same behaviour, same exit codes), writing to a temporary sibling of OUT
that is renamed into place only when the merge succeeded. A non-empty OUT is refused (exit 2) unless `--overwrite`
is given, and OUT may never be, lie inside or contain the CONFIG or a model the merge reads (`--overwrite` or not);
a CONFIG that is not YAML is one line with its file, line and column (exit 2).

Example:
    >>> run_yaml(["--help"])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distill_ortho_merge.cli import one_line
from distill_ortho_merge.errors import InputError
from distill_ortho_merge.offline import set_offline_env
from distill_ortho_merge.outputs import MERGEKIT_OVERWRITE, check_not_input, check_output_dir, staged_dir
from distill_ortho_merge.yaml_files import yaml_error


class ConfigError(InputError):
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
    if isinstance(method, str):
        check_method_and_parameters(config, where)
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


def check_method_and_parameters(config: dict[str, Any], where: str = "config") -> None:
    """`merge_method` must be registered in mergekit (ours loaded first), and every key of `parameters` (top level,
    per model, per slice source) one of that method's parameters: mergekit would fail later with a traceback on
    the first, and silently ignore the second.

    Example:
        >>> check_method_and_parameters({"merge_method": "tsvm"})
        Traceback (most recent call last):
        ...
        mergekit_plugins.yaml_command.ConfigError: config: merge_method 'tsvm' is unknown (closest: tsv, ties; `mergekit-plugins list` shows all)
    """
    import difflib

    from mergekit.merge_methods import registry as mk_registry

    from mergekit_plugins.plugins import load_plugins

    load_plugins()
    specs = {m.spec.name: m.spec for m in mk_registry.registered_methods()}
    method = config.get("merge_method")
    if method not in specs:
        close = difflib.get_close_matches(str(method), list(specs), n=3, cutoff=0.5)
        hint = f"closest: {', '.join(close)}; " if close else ""
        raise ConfigError(
            f"{where}: merge_method {method!r} is unknown ({hint}`mergekit-plugins list` shows all)"
        )
    known = [p.name for p in specs[method].parameters]
    blocks = [("parameters", config.get("parameters"))]
    for i, model in enumerate(config.get("models") or []):
        if isinstance(model, dict):
            blocks.append((f"models[{i}].parameters", model.get("parameters")))
    for i, sl in enumerate(config.get("slices") or []):
        for j, src in enumerate((sl or {}).get("sources") or []):
            if isinstance(src, dict):
                blocks.append((f"slices[{i}].sources[{j}].parameters", src.get("parameters")))
    for field, params in blocks:
        for key in params or {} if isinstance(params, dict) else {}:
            if key not in known:
                raise ConfigError(
                    f"{where}: {field}.{key} is not a parameter of {method} "
                    f"(its parameters: {', '.join(known) or 'none'})"
                )


def looks_like_path(ref: str) -> bool:
    """Whether a model reference is meant as a local path rather than a hub id `org/name`: it starts with `.`,
    `/` or `~`, has more than two components, or its first component is an existing directory.

    Example:
        >>> looks_like_path("./models/task_cod"), looks_like_path("Qwen/Qwen2-0.5B")
        (True, False)
    """
    if ref.startswith((".", "/", "~")) or ref.count("/") >= 2:
        return True
    return "/" in ref and Path(ref.split("/", 1)[0]).is_dir()


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
        for part in (head, lora):
            if part and looks_like_path(part) and not Path(part).expanduser().exists():
                raise ConfigError(f"{where}: {field}: {part} does not exist (a local model directory)")
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


def config_inputs(config: Any) -> list[str]:
    """Every model reference a merge config reads (``base_model``, ``models[].model``, slice sources,
    ``tokenizer_source``): what its output directory must never replace.

    Example:
        >>> config_inputs({"base_model": "b", "models": [{"model": "m+lora"}], "tokenizer_source": "base"})
        ['b', 'm+lora', 'base']
    """
    if not isinstance(config, dict):
        return []
    refs = [config.get("base_model")]
    refs += [(m or {}).get("model") for m in config.get("models") or [] if isinstance(m, dict)]
    for sl in config.get("slices") or []:
        refs += [(src or {}).get("model") for src in (sl or {}).get("sources") or [] if isinstance(src, dict)]
    refs.append(config.get("tokenizer_source"))
    return [r for r in refs if isinstance(r, str) and r]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        print(
            "\nAdded by mergekit-plugins yaml:\n  --overwrite  Replace a non-empty OUT (never a path the merge reads)."
        )
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    config_file, out = ctx.params["config_file"], Path(ctx.params["out_path"])
    check_output_dir(out, overwrite, flag=MERGEKIT_OVERWRITE, what="OUT")  # before any work
    try:
        with open(config_file, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
        check_config(config, where=config_file)
        resolved = resolve_config_models(config, where=config_file)
        check_not_input(out, [config_file, *config_inputs(config), *config_inputs(resolved)], what="OUT")
    except yaml.YAMLError as exc:
        raise InputError(yaml_error(config_file, exc)) from None
    except OSError as exc:  # an unreadable config is bad input, as in every other command
        raise InputError(one_line(exc)) from None
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
