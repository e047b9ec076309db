"""Loading the frozen proxy student of the calibration reward (a directory, ``*.gguf`` file or built-in name), with
one-line errors. The proxy is replicated: every process holds the whole frozen proxy, also when the policy is
sharded by FSDP2 (a replicated proxy needs no communication per forward).

Example:
    >>> check_proxy_loading()  # a plain or DDP run: nothing to refuse
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from distill_ortho_merge.tokenizer_check import warn_if_tokenizer_differs

logger = logging.getLogger(__name__)


def check_proxy_loading() -> None:
    """Refuse the launch modes in which ``from_pretrained`` would not give this process a whole proxy.

    ZeRO-3 partitions every model loaded while it is active (``zero.Init``), and the proxy runs outside the
    DeepSpeed engine. FSDP (FSDP2 included) is fine: the proxy is loaded whole on every rank (see `_whole_load`).

    Example:
        >>> check_proxy_loading()  # a plain, DDP or FSDP run: nothing to refuse
    """
    from transformers.integrations import is_deepspeed_zero3_enabled

    if is_deepspeed_zero3_enabled():
        raise ValueError(
            "proxy_model_name_or_path: DeepSpeed ZeRO-3 would partition the proxy, which runs outside the DeepSpeed "
            "engine: use FSDP2 (examples/accelerate/fsdp.yaml), ZeRO-2 or DDP for calibration with a proxy"
        )


@contextmanager
def _whole_load() -> Iterator[None]:
    """Turn FSDP's ``cpu_ram_efficient_loading`` off while the proxy loads: it loads weights on rank 0 only and
    relies on FSDP to broadcast them to the modules it wraps, which the proxy is not. The policy keeps it."""
    key = "FSDP_CPU_RAM_EFFICIENT_LOADING"
    saved = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def load_proxy_model(
    proxy: torch.nn.Module | str | Path, *, trust_remote_code: bool = False
) -> torch.nn.Module:
    """The proxy as a frozen causal LM in eval mode; a path is loaded with ``AutoModelForCausalLM``.

    Example:
        >>> load_proxy_model("/no/such/dir")
        Traceback (most recent call last):
        distill_ortho_merge.models.ModelError: proxy_model_name_or_path: /no/such/dir does not exist
    """
    if isinstance(proxy, (str, Path)):
        from transformers import AutoModelForCausalLM

        from distill_ortho_merge.models import resolve_model

        path = str(proxy)
        if not path:
            raise ValueError("proxy_model_name_or_path is empty: give the path of a causal LM")
        check_proxy_loading()
        path = str(resolve_model(path, "proxy_model_name_or_path"))  # a directory, *.gguf or built-in name
        try:
            with _whole_load():
                model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code)
        except Exception as exc:  # noqa: BLE001 - one actionable line instead of a long traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"proxy_model_name_or_path: cannot load a causal LM from {path}: {first}"
            ) from exc
    elif isinstance(proxy, torch.nn.Module):
        model = proxy
    else:
        raise TypeError(f"proxy_model must be a torch module or a path, got {type(proxy).__name__}")
    model.eval()
    model.requires_grad_(False)
    return model


def load_proxy_tokenizer(tokenizer: Any, *, trust_remote_code: bool = False) -> Any:
    """The proxy tokenizer, loaded from a path if needed; a missing pad token becomes EOS (safe: attention masks
    and right padding mean pad ids are never scored) with a warning; a missing EOS is an error."""
    if isinstance(tokenizer, (str, Path)):
        from transformers import AutoTokenizer

        if not str(tokenizer):
            raise ValueError(
                "proxy_tokenizer_name_or_path is empty and the proxy model has no path to load one from"
            )
        from distill_ortho_merge.models import resolve_model

        tokenizer = resolve_model(tokenizer, "proxy_tokenizer_name_or_path")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer), trust_remote_code=trust_remote_code)
        except Exception as exc:  # noqa: BLE001
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"proxy_tokenizer_name_or_path: cannot load a tokenizer from {tokenizer}: {first}"
            ) from exc
        warn_if_tokenizer_differs(tokenizer, tokenizer.name_or_path)
    if getattr(tokenizer, "eos_token_id", None) is None:
        raise ValueError(
            f"proxy tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no eos_token: set one "
            "(it is appended when the policy's completion ended with EOS)"
        )
    if tokenizer.pad_token_id is None:
        logger.warning(
            "proxy tokenizer has no pad token: using its EOS token %r for padding", tokenizer.eos_token
        )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
