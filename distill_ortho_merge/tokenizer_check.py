"""Does a loaded tokenizer tokenize like the `tokenizer.json` saved beside it?

`AutoTokenizer` may not load a saved tokenizer as it was trained: for some model types (e.g. `qwen2`, listed in
transformers' `MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS`) it builds the model type's own tokenizer class from the
vocabulary and merges, with that class's normalizer and pre-tokenizer, whatever `tokenizer.json` says. A model
trained with one tokenization and run with another is silently wrong, so the loaders here compare the two on a
small probe set and warn.

Example:
    >>> from distill_ortho_merge.tokenizer_check import tokenizer_json_mismatch
    >>> tokenizer_json_mismatch(object(), "/no/such/dir") is None  # nothing to compare against
    True
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Digits, punctuation, contractions, runs of spaces, newlines, non-ASCII and special-looking text: where
# pre-tokenizers (digit splitting, regexes, normalizers) disagree.
PROBE_TEXTS: tuple[str, ...] = (
    "What is 47 + 38? The answer is 85. #### 85",
    "What is 123 + 4567?  The answer is 4690.\n#### 4690",
    "Reverse abcde: edcba. Sort dcbae: abcde.",
    "the teacher's student (model) learns; it'll merge 3.14 vectors -- 'orthogonal'!",
    "  leading spaces,\ttabs\n\nand\r\nnewlines  ",
    "Café naïve ﬁ ½ 東京 😀",
    "<|user|>What is 2 + 2?<|endoftext|><|assistant|>4",
)


def tokenizer_json_mismatch(
    tokenizer: Any, path: str | os.PathLike, probes: tuple[str, ...] = PROBE_TEXTS
) -> str | None:
    """The first probe text that `tokenizer` tokenizes differently from ``path/tokenizer.json`` (a one-line
    description), or None when they agree or there is no `tokenizer.json` to compare with.

    Example:
        >>> import tempfile
        >>> from transformers import AutoTokenizer
        >>> from distill_ortho_merge.testing import tokenizer_b
        >>> with tempfile.TemporaryDirectory() as d:
        ...     _ = tokenizer_b().save_pretrained(d)
        ...     tokenizer_json_mismatch(AutoTokenizer.from_pretrained(d), d) is None  # the round trip is exact
        True
    """
    file = Path(path) / "tokenizer.json"
    if not file.is_file() or not callable(tokenizer):
        return None
    from tokenizers import Tokenizer

    saved = Tokenizer.from_file(str(file))
    saved.no_padding()  # a tokenizer saved after a padded call keeps that padding in tokenizer.json
    saved.no_truncation()
    loaded = tokenizer(list(probes), add_special_tokens=False)["input_ids"]
    for text, ids, ref in zip(
        probes, loaded, saved.encode_batch(list(probes), add_special_tokens=False), strict=True
    ):
        if list(ids) != ref.ids:
            return (
                f"{type(tokenizer).__name__} from {path} tokenizes {text!r} into {len(ids)} tokens, "
                f"its tokenizer.json into {len(ref.ids)}"
            )
    return None


def warn_if_tokenizer_differs(tokenizer: Any, path: str | os.PathLike) -> bool:
    """Log a warning when `tokenizer` (loaded from `path`) disagrees with ``path/tokenizer.json``; True if it does.

    Example:
        >>> warn_if_tokenizer_differs(object(), "/no/such/dir")
        False
    """
    try:
        problem = tokenizer_json_mismatch(tokenizer, path)
    except Exception:  # noqa: BLE001 - a diagnostic must never break loading
        return False
    if problem:
        logger.warning(
            "%s: the model was likely trained with a different tokenization than the one loaded; save the "
            "tokenizer with the normalizer and pre-tokenizer its model type imposes",
            problem,
        )
    return problem is not None
