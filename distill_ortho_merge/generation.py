"""Prompt rendering and batched, deterministic generation shared by `distill`, `report`, `diagnose` and the
evaluation: greedy when the temperature is 0, else pure sampling; prompts left-padded, `batch_size` at a time.

Example:
    >>> render_prompt(None, "What is 1 + 1?")
    'What is 1 + 1?'
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from distill_ortho_merge.errors import InputError
from distill_ortho_merge.progress import progress
from distill_ortho_merge.tokenization import eos_token_ids, prompt_token_ids


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
    (`distill_ortho_merge.tokenization.prompt_token_ids`): chat-template text does not get a second BOS.

    Example:
        >>> from distill_ortho_merge.testing import tokenizer_a
        >>> tok, chat = tokenizer_a(), [{"role": "user", "content": "hi"}]
        >>> text = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        >>> tokenize_prompt(tok, chat) == tok(text, add_special_tokens=False)["input_ids"]
        True
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
        >>> from distill_ortho_merge.testing import make_teacher, tokenizer_a
        >>> tok = tokenizer_a()
        >>> gens = generate(make_teacher(tok), tok, ["What is 2 + 2?"], max_new_tokens=4)
        >>> len(gens), len(gens[0]), len(gens[0][0].token_ids) <= 4
        (1, 1, True)
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
    for start in progress(range(0, len(prompt_ids), batch_size), desc, show=desc is not None, leave=False):
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
