"""Griffe extension: the project's docstrings title their doctests `Example:`, which Google style reads as an
admonition; render them as an examples section (code, not prose) instead."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

EXAMPLE_TITLE = re.compile(r"^(\s*)Example:[ \t]*$", re.M)


class ExampleSections(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = EXAMPLE_TITLE.sub(r"\1Examples:", obj.docstring.value)
