"""Tiny offline models and tokenizers for tests: built from configs in seconds, no hub, no downloads.

- two ByteLevel-BPE tokenizers with clearly different vocabularies (A: 400 tokens, B: 640 tokens, trained on
  different text), each with a chat template and pad/eos tokens;
- a Qwen2 "teacher" on tokenizer A and a Llama "student" on tokenizer B;
- `make_finetuned_copies`: N perturbed copies of a base model, for merge tests.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>"]

# A minimal chat template in the style of ChatML, shared by both tokenizers.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|endoftext|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def corpus(seed: int, mix: tuple[float, float, float], n_lines: int = 400) -> list[str]:
    """A few kB of generated text mixing arithmetic, prose and letter puzzles in proportions `mix`."""
    rng = random.Random(seed)
    words = (
        "the a teacher student model learns from answer question sum of and is what number letter word "
        "reverse sort count first last small large distil merge task vector orthogonal"
    ).split()
    lines = []
    for _ in range(n_lines):
        kind = rng.choices(range(3), weights=mix)[0]
        if kind == 0:
            a, b = rng.randrange(100), rng.randrange(100)
            lines.append(f"What is {a} + {b}? The answer is {a + b}. #### {a + b}")
        elif kind == 1:
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randrange(4, 12))) + ".")
        else:
            s = "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randrange(3, 9)))
            lines.append(f"Reverse {s}: {s[::-1]}. Sort {s}: {''.join(sorted(s))}.")
    return lines


def make_tokenizer(vocab_size: int, lines: list[str]) -> PreTrainedTokenizerFast:
    """Train a ByteLevel-BPE tokenizer of `vocab_size` on `lines` and wrap it for transformers."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        bos_token=None,
        padding_side="left",
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def tokenizer_a() -> PreTrainedTokenizerFast:
    """Trained mostly on arithmetic."""
    return make_tokenizer(400, corpus(1, mix=(0.8, 0.1, 0.1)))


def tokenizer_b() -> PreTrainedTokenizerFast:
    """Trained mostly on prose and letter puzzles: merges differ from A's."""
    return make_tokenizer(640, corpus(2, mix=(0.1, 0.6, 0.3)))


def make_teacher(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen2ForCausalLM:
    """A Qwen2 model, hidden 64, 2 layers (~60 k params + embeddings)."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        attn_implementation="eager",
    )
    return Qwen2ForCausalLM(config).eval()


def make_student(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> LlamaForCausalLM:
    """A Llama model, hidden 32, 2 layers."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        attn_implementation="eager",
    )
    return LlamaForCausalLM(config).eval()


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """`save_pretrained` model + tokenizer into `path` (TRL reloads reference models from a path)."""
    path = Path(path)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_finetuned_copies(
    base: PreTrainedModel, n: int, scale: float = 0.02, seed: int = 0
) -> list[PreTrainedModel]:
    """`n` "fine-tuned" copies of `base`: every float parameter plus independent Gaussian noise of std `scale`."""
    copies = []
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        model = type(base)(base.config)
        model.load_state_dict(base.state_dict())
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)
        copies.append(model.eval())
    return copies
