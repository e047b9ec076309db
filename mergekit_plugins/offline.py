"""Offline defaults for our command lines: no Hugging Face hub at run time unless the user set otherwise.

Example:
    >>> set_offline_env(); import os; os.environ["HF_HUB_OFFLINE"] in {"0", "1"}
    True
"""

from __future__ import annotations

import os

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def set_offline_env() -> None:
    """Set the HF offline variables to 1 where the user has not set them."""
    for var in OFFLINE_VARS:
        os.environ.setdefault(var, "1")
