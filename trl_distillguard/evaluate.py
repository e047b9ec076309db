"""Deterministic, batched evaluation of a causal LM on an eval set with a task verifier, plus the small helpers
that `distill`, `report` and `diagnose` share (loading, prompt rendering, generation, atomic output dirs).

Greedy decoding by default; prompts are left-padded and generated `batch_size` at a time; the verifier is any
registered reward function (`math_answer`, `qa_exact_match`, ...) or an importable `module:attr` / `module.attr`.

Example:
    >>> from trl_distillguard.evaluate import resolve_verifier
    >>> resolve_verifier("math_answer")(prompts=["q"], completions=["#### 4"], answer=["4"])
    [1.0]
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from mergekit_plugins.outputs import staged_dir
from trl_distillguard.calibration_reward import eos_token_ids, prompt_token_ids

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TRL_EXPERIMENTAL_SILENCE"):
    os.environ.setdefault(_var, "1")


class InputError(ValueError):
    """Bad user input: the CLI prints its one-line message and exits with status 2.

    Example:
        >>> str(InputError("eval dataset: the prompt set is empty"))
        'eval dataset: the prompt set is empty'
    """


# ------------------------------------------------------------------------------------------------ data
def load_rows(spec: str | os.PathLike, role: str = "dataset") -> list[dict[str, Any]]:
    """Rows of a local dataset (jsonl/json/parquet file or directory) or a built-in, through the project's loader
    (`trl_distillguard.data.load_dataset_rows`); errors become one-line `InputError`s naming `role`.

    Example:
        >>> len(load_rows("arithmetic"))  # a built-in; or a .jsonl/.json/.parquet path or a directory
        64
    """
    from trl_distillguard.data import load_dataset_rows

    try:
        return list(load_dataset_rows(spec))
    except (ValueError, FileNotFoundError) as err:
        raise InputError(f"{role}: {err}") from None


def prompts_of(rows: Sequence[dict[str, Any]], column: str, role: str) -> list[Any]:
    """The prompt column of `rows`, with one-line errors for an empty set or a missing/empty column.

    Example:
        >>> prompts_of([{"prompt": "What is 1 + 1?"}], "prompt", "dataset")
        ['What is 1 + 1?']
    """
    if not rows:
        raise InputError(f"{role}: the prompt set is empty")
    missing = [i for i, r in enumerate(rows) if not r.get(column)]
    if missing:
        raise InputError(
            f"{role}: row {missing[0]} has no {column!r} (prompt column); columns: {sorted(rows[0])}"
        )
    return [r[column] for r in rows]


# ------------------------------------------------------------------------------------------------ models
def load_causal_lm(
    path: str, role: str, *, trust_remote_code: bool = False, tokenizer_path: str | None = None
):
    """(model, tokenizer) from a local path, with a one-line error naming `role` when it is not a causal LM.

    Example:
        >>> # model, tok = load_causal_lm("path/to/teacher", "teacher_model_name_or_path")
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
    if tokenizer.pad_token is None:  # generation needs padding; EOS as pad is the standard safe fallback
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model.to(device()).eval(), tokenizer


def check_causal_lm(path: str, role: str, *, trust_remote_code: bool = False) -> None:
    """Fail early (one line naming `role`) when `path` is not a causal-LM directory; loads the config only.

    Example:
        >>> # check_causal_lm("prompts.jsonl", "teacher")  # InputError: teacher: ... is not a model directory
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
    """A local model directory for a directory, ``*.gguf`` file or built-in name (`mergekit_plugins.models`),
    converting a GGUF once into the cache; bad specs become one-line `InputError`s naming `role`.

    Example:
        >>> resolve_model_path("./no/such/dir", "teacher")
        Traceback (most recent call last):
        ...
        trl_distillguard.evaluate.InputError: teacher: ./no/such/dir does not exist
    """
    from mergekit_plugins.models import ModelError, resolve_model

    try:
        return str(resolve_model(spec, role))
    except ModelError as err:
        raise InputError(str(err)) from None


def device() -> torch.device:
    """The device models run on: CUDA when available, else CPU.

    Example:
        >>> device().type in {"cpu", "cuda"}
        True
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def render_prompt(tokenizer, prompt: Any) -> str:
    """A plain-text prompt as is; a conversational one through the tokenizer's chat template.

    Example:
        >>> render_prompt(None, "What is 1 + 1?")
        'What is 1 + 1?'
    """
    if isinstance(prompt, str):
        return prompt
    if getattr(tokenizer, "chat_template", None) is None:
        raise InputError(
            f"tokenizer {tokenizer.name_or_path!r} has no chat template for conversational prompts"
        )
    return tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)


def tokenize_prompt(tokenizer, prompt: Any) -> list[int]:
    """Token ids of a prompt by the same convention as `CalibrationReward`'s proxy input
    (`calibration_reward.prompt_token_ids`): chat-template text does not get a second BOS.

    Example:
        >>> # tokenize_prompt(tok, [{"role": "user", "content": "hi"}]) == tok(chat_text, add_special_tokens=False)
    """
    try:
        return prompt_token_ids(tokenizer, prompt)
    except (ValueError, TypeError) as err:
        raise InputError(str(err)) from None


@dataclass
class Generation:
    """One completion: its text (special tokens removed), its token ids (up to and including EOS) and whether it
    ended with EOS.

    Example:
        >>> Generation(" 2", [17, 1], True).ended_with_eos
        True
    """

    text: str
    token_ids: list[int]
    ended_with_eos: bool


def cut_at_eos(ids: list[int], eos_ids: Collection[int]) -> tuple[list[int], bool]:
    """`ids` up to and including the first EOS token, and whether there was one.

    Example:
        >>> cut_at_eos([5, 1, 0, 0], {1})
        ([5, 1], True)
    """
    cut = next((i for i, t in enumerate(ids) if t in eos_ids), None)
    return (ids, False) if cut is None else (ids[: cut + 1], True)


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[Any],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    num_return_sequences: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    desc: str | None = None,
) -> list[list[Generation]]:
    """Completions of every prompt: greedy when `temperature == 0` (deterministic), else pure sampling at that
    temperature (top-k/top-p off). Returns one list of `num_return_sequences` generations per prompt.

    Example:
        >>> # gens = generate(model, tok, ["What is 2 + 2?"], max_new_tokens=8)
        >>> # gens[0][0].text
    """
    from transformers import GenerationConfig

    greedy = temperature <= 0
    if greedy and num_return_sequences != 1:
        raise InputError("greedy decoding gives one completion per prompt: set temperature > 0 for several")
    eos = eos_token_ids(model, tokenizer)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=not greedy,
        temperature=None if greedy else temperature,
        top_k=None if greedy else 0,
        top_p=None if greedy else 1.0,
        num_return_sequences=num_return_sequences,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
    )
    tokenizer.padding_side = "left"
    prompt_ids = [tokenize_prompt(tokenizer, p) for p in prompts]
    out: list[list[Generation]] = []
    torch.manual_seed(seed)
    for start in tqdm(range(0, len(prompt_ids), batch_size), desc=desc, disable=desc is None, leave=False):
        chunk = [{"input_ids": ids} for ids in prompt_ids[start : start + batch_size]]
        batch = tokenizer.pad(chunk, padding=True, return_tensors="pt").to(model.device)
        sequences = model.generate(**batch, generation_config=config).cpu()
        new = sequences[:, batch["input_ids"].shape[1] :]
        for row_start in range(0, new.shape[0], num_return_sequences):
            group = []
            for ids in new[row_start : row_start + num_return_sequences].tolist():
                ids, ended = cut_at_eos(ids, eos)
                group.append(Generation(tokenizer.decode(ids, skip_special_tokens=True), ids, ended))
            out.append(group)
    return out


# ------------------------------------------------------------------------------------------------ verifiers
def resolve_verifier(name: str) -> Callable[..., list[float | None]]:
    """A registered reward function by name, else an importable `module:attr` or `module.attr`.

    Example:
        >>> resolve_verifier("qa_exact_match")(prompts=["q"], completions=["Paris"], answer=["paris"])
        [1.0]
    """
    from trl_distillguard.plugins import load_plugins, registry

    load_plugins()
    items = registry()
    if name in items:
        return items[name].obj
    module, sep, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if sep:
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            pass
    raise InputError(f"verifier: {name!r} is not registered ({', '.join(sorted(items))}) and not importable")


def _columns(rows: Sequence[dict[str, Any]], prompt_column: str) -> dict[str, list[Any]]:
    keys = sorted({k for r in rows for k in r} - {prompt_column})
    return {k: [r.get(k) for r in rows] for k in keys}


def check_gold(
    rows: Sequence[dict[str, Any]], verifier: Callable, verifier_name: str, prompt_column: str
) -> None:
    """Fail early (one line) when the eval set lacks the gold answers `verifier` needs.

    Example:
        >>> check_gold([{"prompt": "q", "answer": "4"}], resolve_verifier("math_answer"), "math_answer", "prompt")
        >>> # without `answer`: InputError: eval dataset: no gold answers for verifier 'math_answer' (...)
    """
    prompts = prompts_of(rows, prompt_column, "eval dataset")
    try:
        scores = verifier(prompts=prompts, completions=[""] * len(rows), **_columns(rows, prompt_column))
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f"eval dataset: no gold answers for verifier {verifier_name!r} ({err})") from None
    if all(s is None for s in scores):
        raise InputError(f"eval dataset: every row lacks the gold answer verifier {verifier_name!r} needs")


@dataclass
class EvalResult:
    """Mean verifier score over the scorable rows, plus every row's score and completion.

    Example:
        >>> EvalResult(0.5, [1.0, 0.0, None], ["a", "b", "c"]).n_scored
        2
    """

    score: float
    scores: list[float | None] = field(repr=False)
    completions: list[str] = field(repr=False)

    @property
    def n_scored(self) -> int:
        return sum(s is not None for s in self.scores)


def evaluate(
    model,
    tokenizer,
    rows: Sequence[dict[str, Any]],
    verifier: Callable,
    *,
    prompt_column: str = "prompt",
    max_new_tokens: int = 64,
    batch_size: int = 16,
    temperature: float = 0.0,
    seed: int = 0,
    desc: str | None = "evaluate",
) -> EvalResult:
    """Generate (greedy by default) for every row and score the completions with `verifier`.

    Example:
        >>> # result = evaluate(model, tok, rows, resolve_verifier("math_answer"), max_new_tokens=16)
        >>> # result.score  # mean over rows whose gold answer exists
    """
    prompts = prompts_of(rows, prompt_column, "eval dataset")
    gens = generate(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
        seed=seed, desc=desc,
    )  # fmt: skip
    completions = [g[0].text for g in gens]
    scores = verifier(prompts=prompts, completions=completions, **_columns(rows, prompt_column))
    valid = [float(s) for s in scores if s is not None and not math.isnan(float(s))]
    return EvalResult(sum(valid) / len(valid) if valid else float("nan"), list(scores), completions)


# ------------------------------------------------------------------------------------------------ outputs
@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write into; rename it to `path` only when the block succeeds.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_output_dir(root / "out") as tmp:
        ...     _ = (tmp / "a.txt").write_text("x")
        >>> (root / "out" / "a.txt").read_text()
        'x'
    """
    path = Path(path)
    occupied = (path.is_dir() and any(path.iterdir())) or (path.exists() and not path.is_dir())
    if occupied and not overwrite:
        raise InputError(f"output_dir: {path} exists and is not empty (pass --overwrite_output_dir true)")
    with staged_dir(path) as tmp:  # the project's one temp-sibling-then-rename mechanism
        yield tmp


def json_safe(obj: Any) -> Any:
    """`obj` with tensors as lists and non-finite floats as None, so the file is strict JSON.

    Example:
        >>> json_safe({"a": float("nan"), "b": [1.0, float("inf")]})
        {'a': None, 'b': [1.0, None]}
    """
    if isinstance(obj, torch.Tensor):
        obj = obj.tolist()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def run_cli(fn: Callable[[], int], prog: str) -> int:
    """Run a subcommand body; an `InputError` becomes one line on stderr and exit status 2.

    Example:
        >>> def body():
        ...     raise InputError("recipe: bad")
        >>> run_cli(body, "distill")  # prints "distillguard distill: error: recipe: bad" to stderr
        2
    """
    import sys

    try:
        return fn()
    except InputError as err:
        print(f"distillguard {prog}: error: {err}", file=sys.stderr)
        return 2
