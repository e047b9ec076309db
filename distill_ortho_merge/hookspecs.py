"""Hook specifications of the shared task layer: the verifiers, prompt datasets and instruction checks that every
package (calibration, evaluation, `search-alpha`) can use.

A plugin is any module or object with `@hookimpl` functions, registered under the entry-point group
`distill_ortho_merge` in its distribution's metadata, for example in pyproject.toml::

    [project.entry-points.distill_ortho_merge]
    my_tasks = "my_package.my_tasks"

and in `my_package/my_tasks.py`::

    from distill_ortho_merge.hookspecs import hookimpl

    @hookimpl
    def distill_ortho_merge_verifiers():
        return {"my_verifier": my_verifier}
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("distill_ortho_merge")
hookimpl = pluggy.HookimplMarker("distill_ortho_merge")


@hookspec
def distill_ortho_merge_verifiers() -> dict[str, Any] | list[Any]:
    """Return task verifiers (TRL reward callables `f(prompts, completions, **columns) -> list[float | None]`), as a
    mapping name -> verifier (or a list of named callables)."""


@hookspec
def distill_ortho_merge_datasets() -> dict[str, Any]:
    """Return named prompt datasets, as a mapping name -> factory(size, seed) -> list of rows (each with a
    ``prompt`` and the gold columns its verifier reads); `load_dataset_rows(name)` finds them."""


@hookspec
def distill_ortho_merge_instruction_checks() -> dict[str, Any]:
    """Return IFEval-style checks, as a mapping instruction id -> check(response, **kwargs) -> bool; the
    `instruction_following` verifiers use them."""
