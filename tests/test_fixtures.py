"""The offline fixtures themselves: different vocabularies, chat templates, loadable from disk."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def test_tokenizers_differ_and_have_specials(tokenizer_a, tokenizer_b):
    assert len(tokenizer_a) != len(tokenizer_b)
    text = "What is 12 + 30? The answer is 42."
    assert tokenizer_a(text)["input_ids"] != tokenizer_b(text)["input_ids"]
    for tok in (tokenizer_a, tokenizer_b):
        assert tok.decode(tok(text)["input_ids"]) == text
        assert tok.pad_token_id is not None and tok.eos_token_id is not None
        assert tok.pad_token_id != tok.eos_token_id
        chat = tok.apply_chat_template(
            [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
        )
        assert chat == "<|user|>hi<|endoftext|><|assistant|>"
    # Vocabularies really differ beyond the special tokens, not just in size.
    merged_a = {t for t in tokenizer_a.get_vocab() if len(t) > 1 and not t.startswith("<|")}
    merged_b = {t for t in tokenizer_b.get_vocab() if len(t) > 1 and not t.startswith("<|")}
    assert len(merged_a & merged_b) < 0.8 * len(merged_a)


def test_models_load_from_disk_offline(teacher_dir, student_dir):
    for path, model_type in ((teacher_dir, "qwen2"), (student_dir, "llama")):
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
        assert model.config.model_type == model_type
        assert model.config.vocab_size == len(tok)
        ids = tok(["The answer is 4", "Sort abc"], return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(**ids).logits
        assert logits.shape[:2] == ids["input_ids"].shape and logits.shape[-1] == len(tok)
        assert torch.isfinite(logits).all()


def test_finetuned_copies_are_perturbed(teacher_dir, make_finetuned_copies):
    base = AutoModelForCausalLM.from_pretrained(teacher_dir)
    copies = make_finetuned_copies(base, 3, scale=0.01, seed=0)
    assert len(copies) == 3
    name, p0 = next(iter(base.state_dict().items()))
    deltas = [c.state_dict()[name] - p0 for c in copies]
    for d in deltas:
        assert 0.005 < d.std().item() < 0.02
    assert not torch.allclose(deltas[0], deltas[1])
    # Deterministic given the seed.
    again = make_finetuned_copies(base, 1, scale=0.01, seed=0)[0]
    assert torch.equal(again.state_dict()[name], copies[0].state_dict()[name])


def test_tokenizers_are_reproducible_across_processes(tokenizer_a, tokenizer_b):
    """BPE training is deterministic: a fresh interpreter trains the very same vocabularies."""
    import json
    import subprocess
    import sys

    code = (
        "import json; from distill_ortho_merge import testing as tiny; "
        "print(json.dumps([tiny.tokenizer_a().get_vocab(), tiny.tokenizer_b().get_vocab()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    vocab_a, vocab_b = json.loads(out)
    assert vocab_a == tokenizer_a.get_vocab()
    assert vocab_b == tokenizer_b.get_vocab()
