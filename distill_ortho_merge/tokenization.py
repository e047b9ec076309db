"""Tokenisation helpers every package shares: right padding, the EOS ids of a model, and a prompt's token ids
by the one convention the calibration proxy, generation and evaluation all use.

Example:
    >>> ids, mask = right_pad([[5, 6], [7]], pad_token_id=0)
    >>> ids.tolist()
    [[5, 6], [7, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from distill_ortho_merge.data import is_conversational_prompt


def right_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`(input_ids, attention_mask)` of the sequences, right-padded: positions stay 0..len-1 in every row, so a
    causal LM scores each row as if unpadded.

    Example:
        >>> ids, mask = right_pad([[5, 6, 7], [8]], pad_token_id=0)
        >>> ids.tolist(), mask.tolist()
        ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends a completion of `model`: its generation config's EOS id(s) plus the tokenizer's.

    Example:
        >>> class Tok: eos_token_id = 2
        >>> eos_token_ids(None, Tok())
        [2]
    """
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    return sorted({*ids, tokenizer.eos_token_id} - {None})


def prompt_token_ids(tokenizer: Any, prompt: Any, what: str = "tokenizer") -> list[int]:
    """A prompt's token ids by the proxy-input convention: plain text with the tokenizer's special tokens (e.g.
    BOS); a conversational prompt through the chat template *without* adding them again (the template writes them).

    Example:
        >>> from distill_ortho_merge.testing import tokenizer_a
        >>> tok = tokenizer_a()
        >>> prompt_token_ids(tok, "What is 2 + 2?") == tok("What is 2 + 2?")["input_ids"]
        True
    """
    if is_conversational_prompt(prompt):
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(
                f"conversational prompts need a chat template, but the {what} "
                f"({getattr(tokenizer, 'name_or_path', '?')}) has none: give a tokenizer with one or use text prompts"
            )
        text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string or a list of chat messages, got {type(prompt).__name__}")
    return list(tokenizer(prompt)["input_ids"])
