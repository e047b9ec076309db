"""Score a model, or a base model with a PEFT adapter, on a dataset spec with a verifier: the shared body of
`distillguard evaluate` (and of any command that scores a checkpoint).

Every input is checked before the model is loaded or anything is generated, each failure one `InputError` line
naming the option: the verifier, the dataset and its gold column, the model (directory, ``*.gguf`` or built-in
name), the adapter directory; once the model is loaded, the adapter's LoRA factors must fit its weights (an
adapter of another base is refused before generation).

Example:
    >>> adapter_shapes("no/such/adapter")
    Traceback (most recent call last):
    ...
    distill_ortho_merge.adapters.AdapterNotFoundError: --adapter no/such/adapter: not a PEFT adapter directory (no adapter_config.json)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from distill_ortho_merge.cli import InputError


def adapter_shapes(adapter: str | Path, role: str = "--adapter") -> dict[str, dict[str, tuple[int, ...]]]:
    """{module: {"A": shape, "B": shape}} of a PEFT LoRA adapter directory, read from the safetensors header
    (no tensor is loaded); one-line `InputError` for anything that is not such a directory.

    Example:
        >>> import tempfile, torch
        >>> from safetensors.torch import save_file
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "adapter_config.json").write_text('{"peft_type": "LORA"}')
        >>> save_file({"base_model.model.l.lora_A.weight": torch.zeros(2, 5),
        ...            "base_model.model.l.lora_B.weight": torch.zeros(3, 2)}, str(d / "adapter_model.safetensors"))
        >>> adapter_shapes(d)
        {'l': {'A': (2, 5), 'B': (3, 2)}}
    """
    from safetensors import safe_open

    from distill_ortho_merge.adapters import factor_key, read_adapter_config

    path = Path(adapter)
    read_adapter_config(path, label=f"{role} {adapter}", strict=False)  # PEFT itself loads the variants
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        raise InputError(f"{role} {adapter}: no adapter_model.safetensors")
    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    with safe_open(str(weights), framework="pt") as fh:
        for key in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
            parsed = factor_key(key)
            if parsed:
                shapes.setdefault(parsed[0], {})[parsed[1]] = tuple(fh.get_slice(key).get_shape())
    if not shapes:
        raise InputError(f"{role} {adapter}: adapter_model.safetensors holds no LoRA factors")
    return shapes


def check_adapter_fits(adapter: str | Path, model: Any, role: str = "--adapter") -> None:
    """Refuse (one line) an adapter whose modules the model lacks or whose factors do not fit its weights.

    Example:
        >>> import tempfile, torch
        >>> from safetensors.torch import save_file
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "adapter_config.json").write_text('{"peft_type": "LORA"}')
        >>> save_file({"base_model.model.0.lora_A.weight": torch.zeros(2, 5),
        ...            "base_model.model.0.lora_B.weight": torch.zeros(3, 2)}, str(d / "adapter_model.safetensors"))
        >>> check_adapter_fits(d, torch.nn.Sequential(torch.nn.Linear(4, 3)))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: --adapter ...: module 0 updates a 3×5 weight, the model's is 3×4 (an adapter of another base model?)
    """
    params = dict(model.named_parameters())
    for module, pair in sorted(adapter_shapes(adapter, role).items()):
        weight = params.get(f"{module}.weight")
        if weight is None:
            raise InputError(
                f"{role} {adapter}: module {module} is not in the model (an adapter of another base model?)"
            )
        if "A" not in pair or "B" not in pair:
            continue
        expected = {(pair["B"][0], pair["A"][1]), (pair["A"][1], pair["B"][0])}  # Linear, or fan_in_fan_out
        if tuple(weight.shape) not in expected:
            out_f, in_f = pair["B"][0], pair["A"][1]
            raise InputError(
                f"{role} {adapter}: module {module} updates a {out_f}×{in_f} weight, the model's is "
                f"{'×'.join(map(str, weight.shape))} (an adapter of another base model?)"
            )


def load_scored_model(
    model: str, adapter: str | None = None, *, device: str = "cpu", dtype: str = "float32"
) -> tuple[Any, Any]:
    """(model, tokenizer) of a model spec (directory, ``*.gguf`` or built-in name), with `adapter` merged in
    after `check_adapter_fits`; the tokenizer pads (EOS when it has no pad token).

    Example:
        >>> load_scored_model("no-such-model")
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: --model: 'no-such-model' is not a local directory, a .gguf file or a built-in model (gemma-3-270m, smollm2-135m-instruct)
    """
    from distill_ortho_merge.models import ModelError, resolve_model

    try:
        path = resolve_model(model, "--model")
    except ModelError as exc:
        raise InputError(str(exc)) from None
    if adapter is not None:
        adapter_shapes(adapter)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in {"float32", "bfloat16", "float16"}:
        raise InputError(f"--dtype {dtype!r}: choose float32, bfloat16 or float16")
    loaded = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if adapter is not None:
        from peft import PeftModel

        check_adapter_fits(adapter, loaded)
        with (
            warnings.catch_warnings()
        ):  # OrthoReg adapters keep orthoreg_* keys that plain LoraConfig ignores
            warnings.filterwarnings("ignore", message=r"Unexpected keyword arguments \['orthoreg_")
            loaded = PeftModel.from_pretrained(loaded, adapter).merge_and_unload()
    if tokenizer.pad_token is None:  # batched generation pads; EOS is the standard safe pad
        tokenizer.pad_token = tokenizer.eos_token
    return loaded.to(device).eval(), tokenizer


def score_on_data(
    model: str,
    data: str,
    verifier: str,
    adapter: str | None = None,
    *,
    size: int | None = None,
    seed: int = 0,
    prompt_column: str = "prompt",
    max_new_tokens: int = 64,
    batch_size: int = 16,
    device: str = "cpu",
    dtype: str = "float32",
    progress: bool = True,
) -> dict[str, Any]:
    """Greedy answers of `model` (+ `adapter`) to every row of dataset spec `data`, scored by `verifier`: exact
    accuracy (fraction with full credit), mean score, counts, and one item per row (prompt, completion, gold
    answer when the row has one, score, exact).

    Example:
        >>> score_on_data("no-such-model", "arithmetic", "no_such_verifier")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        distill_ortho_merge.errors.InputError: --verifier: 'no_such_verifier' is not a registered verifier (...) nor a `module:attr` path
    """
    from distill_ortho_merge.data import load_dataset_rows
    from distill_ortho_merge.evaluate import FULL_CREDIT, check_gold, evaluate
    from distill_ortho_merge.plugins import load_plugins, resolve_verifier

    load_plugins()
    try:
        fn = resolve_verifier(verifier, "--verifier")
    except (ValueError, KeyError) as exc:
        raise InputError(str(exc)) from None
    try:
        rows = list(load_dataset_rows(data, size=size, seed=seed))
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(f"--data {data}: {exc}") from None
    if not rows:
        raise InputError(f"--data {data}: no rows")
    check_gold(rows, fn, verifier, prompt_column, role=f"--data {data}")
    loaded, tokenizer = load_scored_model(model, adapter, device=device, dtype=dtype)
    result = evaluate(
        loaded, tokenizer, rows, fn, prompt_column=prompt_column, max_new_tokens=max_new_tokens,
        batch_size=batch_size, desc="evaluate" if progress else None,
    )  # fmt: skip
    items = []
    for row, completion, score in zip(rows, result.completions, result.scores, strict=True):
        item = {"prompt": row[prompt_column], "completion": completion}
        if "answer" in row:
            item["answer"] = row["answer"]
        exact = None if score is None else float(score) >= FULL_CREDIT
        items.append({**item, "score": score, "exact": exact})
    return {
        "model": str(model),
        "adapter": adapter,
        "data": str(data),
        "verifier": verifier,
        **result.summary(),
        "max_new_tokens": max_new_tokens,
        "items": items,
    }
