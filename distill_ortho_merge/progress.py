"""Progress bars that honour ``TQDM_DISABLE=1``: tqdm reads the environment only for arguments the call leaves out,
so an explicit ``disable=False`` would switch a bar back on that the user turned off.

Example:
    >>> list(progress(range(3), "count", show=False))
    [0, 1, 2]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str | None, show: bool = True, **kwargs: Any) -> Iterable[T]:
    """`items` wrapped in a tqdm bar labelled `desc`; `show=False` hides it, and otherwise the environment decides
    (``TQDM_DISABLE``), never an explicit ``disable=False``."""
    return tqdm(items, desc=desc, **kwargs, **({} if show else {"disable": True}))
