"""Hook specifications of `peft_orthoreg`: what a plugin may provide.

A plugin is any module or object with `@hookimpl` functions, registered under the entry-point group
`peft_orthoreg` in its distribution's metadata, for example in pyproject.toml::

    [project.entry-points.peft_orthoreg]
    my_plugin = "my_package.my_module"

and in `my_package/my_module.py`::

    from peft_orthoreg.hookspecs import hookimpl

    @hookimpl
    def peft_orthoreg_regularizers():
        return {"my_item": my_item}
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("peft_orthoreg")
hookimpl = pluggy.HookimplMarker("peft_orthoreg")


@hookspec
def peft_orthoreg_regularizers() -> dict[str, Any] | list[Any]:
    """Return the regularisers this plugin provides, as a mapping name -> item (or a list of named items).

    Each item is a callable ``(model, adapter_name=None, *, norm=None) -> scalar tensor`` (unweighted); its name
    is a valid `OrthoLoraConfig.orthoreg_form`, which `with_orthoreg` looks up here.
    """
