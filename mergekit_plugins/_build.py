"""Build hook (pyproject `[tool.setuptools.cmdclass]`): ship the autoload `.pth` at the root of the wheel.

setuptools has no declarative way to put a file next to the packages in site-packages (`data-files` go to the
environment prefix), so `build_py` copies it there. Loaded by setuptools from this file alone: standard
library and setuptools only.

Example:
    $ python -m build --wheel   # the wheel then contains distill_ortho_merge_mergekit_plugins.pth at its root
"""

from __future__ import annotations

import os

from setuptools.command.build_py import build_py

PTH = "distill_ortho_merge_mergekit_plugins.pth"


class BuildPyWithPth(build_py):
    """`build_py` plus the autoload `.pth` (see `mergekit_plugins._autoload`) at the root of build_lib."""

    def _pth_source(self) -> str:
        return os.path.join(os.path.dirname(os.path.abspath(__file__)), PTH)

    def run(self) -> None:
        super().run()
        self.copy_file(self._pth_source(), os.path.join(self.build_lib, PTH), preserve_mode=False)
        if getattr(self, "editable_mode", False):
            # An editable wheel ships only its "unpacked" root (install_lib), not build_lib's files.
            install_lib = self.get_finalized_command("install").install_lib
            self.copy_file(self._pth_source(), os.path.join(install_lib, PTH), preserve_mode=False)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH)]

    def get_output_mapping(self) -> dict[str, str]:
        mapping = dict(super().get_output_mapping())
        mapping[os.path.join(self.build_lib, PTH)] = self._pth_source()
        return mapping
