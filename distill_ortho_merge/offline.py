"""Offline defaults for our command lines: no Hugging Face hub at run time unless the user set otherwise.

Only command-line entry points call `set_offline_env` (importing a library module never changes the host's
environment). Users opt out by exporting a variable themselves, e.g. `HF_HUB_OFFLINE=0`.

Example:
    >>> import os; env = dict(os.environ)
    >>> set_offline_env(); os.environ["HF_HUB_OFFLINE"] in {"0", "1"}
    True
    >>> os.environ.clear(); os.environ.update(env)  # leave the doctest's process as it was
"""

from __future__ import annotations

import os
from collections.abc import Iterable

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def set_offline_env(extra: Iterable[str] = ()) -> None:
    """Set the HF offline variables (and any `extra` ones) to 1 where the user has not set them."""
    for var in (*OFFLINE_VARS, *extra):
        os.environ.setdefault(var, "1")
