"""Tiny offline models and tokenizers for tests, examples and benchmarks: built from configs in seconds, no hub,
no downloads.

- two ByteLevel-BPE tokenizers with clearly different vocabularies (A: 400 tokens, B: 640 tokens, trained on
  different text), each with a chat template and pad/eos tokens; each is trained with the normalizer and
  pre-tokenizer that `AutoTokenizer` imposes on its model type (A: Qwen2's, which splits digits; B: Llama's, i.e.
  the saved tokenizer.json's own), so that it loads back exactly as trained, and `save_model` checks that it does;
- a Qwen2 "teacher" on tokenizer A and a Llama "student" on tokenizer B;
- `make_finetuned_copies`: N perturbed copies of a base model, for merge tests.

Example:
    >>> from distill_ortho_merge import testing
    >>> tok = testing.tokenizer_a()
    >>> testing.make_teacher(tok).config.model_type, len(tok)
    ('qwen2', 400)
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoConfig,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from distill_ortho_merge.tokenizer_check import tokenizer_json_mismatch

SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|system|>"]

# A minimal chat template in the style of ChatML, shared by both tokenizers.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|endoftext|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def corpus(seed: int, mix: tuple[float, float, float], n_lines: int = 400) -> list[str]:
    """A few kB of generated text mixing arithmetic, prose and letter puzzles in proportions `mix`.

    Example:
        >>> corpus(0, mix=(1, 0, 0), n_lines=1)[0].startswith("What is ")
        True
    """
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


def _byte_level_bpe(vocab: dict[str, int] | None = None) -> Tokenizer:
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[] if vocab is not None else None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


@functools.cache
def imposed_pipeline(model_type: str) -> str:
    """The normalizer and pre-tokenizer (tokenizer.json fields, as a JSON object) that `AutoTokenizer` gives a
    ByteLevel-BPE tokenizer saved beside a `model_type` config: found by saving a two-token tokenizer and loading it
    back, so it follows whatever transformers does for that model type (Qwen2: its own digit-splitting regex + NFC;
    Llama: the saved tokenizer.json's own).

    Example:
        >>> import json
        >>> json.loads(imposed_pipeline("qwen2"))["pre_tokenizer"]["type"]
        'Sequence'
    """
    with tempfile.TemporaryDirectory() as tmp:
        wrap(_byte_level_bpe({"<|endoftext|>": 0, "a": 1})).save_pretrained(tmp)
        AutoConfig.for_model(model_type).save_pretrained(tmp)
        loaded = json.loads(AutoTokenizer.from_pretrained(tmp).backend_tokenizer.to_str())
    return json.dumps({k: loaded[k] for k in ("normalizer", "pre_tokenizer")})


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """A trained `tokenizers.Tokenizer` as a transformers tokenizer with pad/eos and the chat template.

    Example:
        >>> tok = wrap(_byte_level_bpe({"<|pad|>": 0, "<|endoftext|>": 1, "a": 2}))
        >>> tok.pad_token_id, tok.eos_token_id
        (0, 1)
    """
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        bos_token=None,
        padding_side="left",
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def digit_tokenizer(vocab_size: int, lines: list[str]) -> PreTrainedTokenizerFast:
    """A ByteLevel BPE that splits digits one by one (numbers become compositional), for model types whose
    tokenizer.json AutoTokenizer keeps (Llama, Mistral; not Qwen2, see `imposed_pipeline`).

    Example:
        >>> tok = digit_tokenizer(300, corpus(0, mix=(1, 0, 0), n_lines=50))
        >>> tok.tokenize("123")
        ['1', '2', '3']
    """
    tok = _byte_level_bpe()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(lines, trainer=trainer)
    return wrap(tok)


def make_tokenizer(vocab_size: int, lines: list[str], model_type: str = "llama") -> PreTrainedTokenizerFast:
    """Train a ByteLevel-BPE tokenizer of `vocab_size` on `lines` for a `model_type` model and wrap it for
    transformers; trained with the pipeline `AutoTokenizer` will impose on that model type (`imposed_pipeline`).

    Example:
        >>> len(make_tokenizer(300, corpus(0, mix=(0, 1, 0), n_lines=50)))
        300
    """
    spec = {**json.loads(_byte_level_bpe().to_str()), **json.loads(imposed_pipeline(model_type))}
    tok = Tokenizer.from_str(json.dumps(spec))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return wrap(tok)


def tokenizer_a() -> PreTrainedTokenizerFast:
    """The teacher's (a Qwen2 model): trained mostly on arithmetic, with Qwen2's pipeline (digits split).

    Example:
        >>> tokenizer_a().tokenize("47")
        ['4', '7']
    """
    return make_tokenizer(400, corpus(1, mix=(0.8, 0.1, 0.1)), model_type="qwen2")


def tokenizer_b() -> PreTrainedTokenizerFast:
    """The student's (a Llama model): trained mostly on prose and letter puzzles: merges differ from A's.

    Example:
        >>> len(tokenizer_b()), tokenizer_b().pad_token
        (640, '<|pad|>')
    """
    return make_tokenizer(640, corpus(2, mix=(0.1, 0.6, 0.3)), model_type="llama")


def _tiny_config(config_cls, tokenizer: PreTrainedTokenizerFast, hidden: int):
    # the fixtures' shared shape: 2 layers, 4 heads (2 KV), MLP 2× hidden, untied embeddings, eager attention
    return config_cls(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
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


def make_teacher(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen2ForCausalLM:
    """A Qwen2 model, hidden 64, 2 layers (~60 k params + embeddings).

    Example:
        >>> make_teacher(tokenizer_a()).config.hidden_size
        64
    """
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(_tiny_config(Qwen2Config, tokenizer, hidden=64)).eval()


def make_student(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> LlamaForCausalLM:
    """A Llama model, hidden 32, 2 layers.

    Example:
        >>> make_student(tokenizer_b()).config.model_type
        'llama'
    """
    torch.manual_seed(seed)
    return LlamaForCausalLM(_tiny_config(LlamaConfig, tokenizer, hidden=32)).eval()


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> Path:
    """`save_pretrained` model + tokenizer into `path` (TRL reloads reference models from a path); raises if
    `AutoTokenizer.from_pretrained(path)` does not tokenize like the saved tokenizer.json (a model trained with one
    tokenization must not be run with another).

    Example:
        >>> import tempfile
        >>> tok = tokenizer_b()
        >>> with tempfile.TemporaryDirectory() as d:
        ...     sorted(p.name for p in save_model(make_student(tok), tok, d).glob("*.json"))[:2]
        ['config.json', 'generation_config.json']
    """
    path = Path(path)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    problem = tokenizer_json_mismatch(AutoTokenizer.from_pretrained(path), path)
    if problem:
        raise RuntimeError(
            f"{problem}: train the tokenizer with make_tokenizer(..., model_type={model.config.model_type!r})"
        )
    return path


def make_finetuned_copies(
    base: PreTrainedModel, n: int, scale: float = 0.02, seed: int = 0
) -> list[PreTrainedModel]:
    """`n` "fine-tuned" copies of `base`: every float parameter plus independent Gaussian noise of std `scale`.

    Example:
        >>> base = make_student(tokenizer_b())
        >>> copy = make_finetuned_copies(base, 1, scale=0.01)[0]
        >>> name = "lm_head.weight"
        >>> 0 < (copy.state_dict()[name] - base.state_dict()[name]).abs().max().item() < 0.1
        True
    """
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
