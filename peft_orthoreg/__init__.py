"""OrthoReg for PEFT and full fine-tuning."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("distill-ortho-merge")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from peft_orthoreg.plugins import load_plugins, registry  # noqa: E402

__all__ = ["__version__", "load_plugins", "registry"]
