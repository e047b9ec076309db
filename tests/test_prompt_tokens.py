"""Prompt tokenisation shared by evaluation, diagnostics and the calibration reward: one BOS, never two."""

from __future__ import annotations

import copy

import pytest
import torch
from tokenizers import processors

from distill_ortho_merge import testing as tiny
from distill_ortho_merge.cli import InputError
from distill_ortho_merge.generation import generate, tokenize_prompt
from distill_ortho_merge.tokenization import prompt_token_ids


@pytest.fixture(scope="module")
def bos_tokenizer():
    """Tokenizer A with a Llama-style BOS: added to plain text, and also written by the chat template."""
    tok = copy.deepcopy(tiny.tokenizer_a())
    bos = "<|system|>"
    bos_id = tok.convert_tokens_to_ids(bos)
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
    )
    tok.bos_token = bos
    tok.chat_template = bos + tiny.CHAT_TEMPLATE
    return tok


def test_one_bos_for_plain_and_chat_prompts(bos_tokenizer):
    bos = bos_tokenizer.bos_token_id
    plain = tokenize_prompt(bos_tokenizer, "What is 2 + 2?")
    chat = tokenize_prompt(bos_tokenizer, [{"role": "user", "content": "What is 2 + 2?"}])
    assert plain[0] == bos and plain.count(bos) == 1
    assert chat[0] == bos and chat.count(bos) == 1
    text = bos_tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 2?"}], add_generation_prompt=True, tokenize=False
    )
    assert chat == bos_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert plain == prompt_token_ids(bos_tokenizer, "What is 2 + 2?")


def test_generation_sees_the_same_prompt_ids(bos_tokenizer):
    """`generate` feeds exactly `tokenize_prompt`'s ids (left-padded) to the model."""
    model = tiny.make_teacher(bos_tokenizer)
    seen = []
    original = model.generate

    def spy(**kw):
        seen.append(kw["input_ids"])
        return original(**kw)

    model.generate = spy
    prompts = [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "What is 12 + 30?"}]]
    generate(model, bos_tokenizer, prompts, max_new_tokens=2, batch_size=2)
    (batch,) = seen
    pad = bos_tokenizer.pad_token_id
    for row, prompt in zip(batch.tolist(), prompts, strict=True):
        assert [t for t in row if t != pad] == tokenize_prompt(bos_tokenizer, prompt)
    assert (batch == bos_tokenizer.bos_token_id).sum().item() == 2  # one per prompt
    assert isinstance(batch, torch.Tensor)


def test_chat_prompt_without_template_is_a_one_line_input_error(tokenizer_b):
    tok = copy.deepcopy(tokenizer_b)
    tok.chat_template = None
    with pytest.raises(InputError, match="need a chat template"):
        tokenize_prompt(tok, [{"role": "user", "content": "hi"}])
