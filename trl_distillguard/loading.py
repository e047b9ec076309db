"""Loading a causal LM and its tokenizer for the commands (teacher, proxy, student), with one-line errors naming
the role, and the device models run on.

Example:
    >>> device().type in {"cpu", "cuda"}
    True
"""

from __future__ import annotations

import os

import torch

from distill_ortho_merge.cli import InputError
from distill_ortho_merge.tokenizer_check import warn_if_tokenizer_differs


def load_causal_lm(
    path: str, role: str, *, trust_remote_code: bool = False, tokenizer_path: str | None = None
):
    """(model, tokenizer) from a local path, with a one-line error naming `role` when it is not a causal LM.

    Example:
        >>> import tempfile
        >>> from distill_ortho_merge.testing import make_student, save_model, tokenizer_b
        >>> tok = tokenizer_b()
        >>> with tempfile.TemporaryDirectory() as d:
        ...     model, tokenizer = load_causal_lm(str(save_model(make_student(tok), tok, d)), "teacher")
        >>> model.config.model_type, tokenizer.padding_side
        ('llama', 'left')
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(path, role)
    tokenizer_path = resolve_model_path(tokenizer_path, role) if tokenizer_path else None
    check_causal_lm(path, role, trust_remote_code=trust_remote_code)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, trust_remote_code=trust_remote_code
        )
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise InputError(
            f"{role}: cannot load {path!r} as a causal LM ({str(err).splitlines()[0]})"
        ) from None
    warn_if_tokenizer_differs(tokenizer, tokenizer_path or path)  # e.g. qwen2 re-imposes Qwen2's regex
    if tokenizer.pad_token is None:  # generation needs padding; EOS as pad is the standard safe fallback
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model.to(device()).eval(), tokenizer


def check_causal_lm(path: str, role: str, *, trust_remote_code: bool = False) -> None:
    """Fail early (one line naming `role`) when `path` is not a causal-LM directory; loads the config only.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     check_causal_lm(d, "teacher")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        distill_ortho_merge.errors.InputError: teacher: '...' is not a model directory (...)
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    path = resolve_model_path(path, role)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise InputError(f"{role}: {path!r} is not a model directory ({str(err).splitlines()[0]})") from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not trust_remote_code:
        raise InputError(f"{role}: {path!r} is a {config.model_type!r} model, not a causal LM")


def resolve_model_path(spec: str | os.PathLike, role: str) -> str:
    """A local model directory for a directory, ``*.gguf`` file or built-in name (`distill_ortho_merge.models`),
    converting a GGUF once into the cache; bad specs become one-line `InputError`s naming `role`.

    Example:
        >>> resolve_model_path("./no/such/dir", "teacher")
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: teacher: ./no/such/dir does not exist
    """
    from distill_ortho_merge.models import ModelError, resolve_model

    try:
        return str(resolve_model(spec, role))
    except ModelError as err:
        raise InputError(str(err)) from None


def device() -> torch.device:
    """The device models run on: CUDA when available (this process's GPU under torchrun), else CPU.

    Example:
        >>> device().type in {"cpu", "cuda"}
        True
    """
    if not torch.cuda.is_available():
        return torch.device("cpu")
    rank = os.environ.get("LOCAL_RANK")  # torchrun / accelerate launch: one GPU per process
    return torch.device("cuda", int(rank)) if rank is not None else torch.device("cuda")
