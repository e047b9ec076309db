"""Which engine, if any, shards a model's parameters across processes (FSDP, DeepSpeed ZeRO-3, DTensor): the
check every package runs before code that handles sharded parameters differently (OrthoReg's terms, saving).

Example:
    >>> from types import SimpleNamespace
    >>> from torch import nn
    >>> sharded_parameters(SimpleNamespace(), nn.Linear(2, 2)) is None
    True
"""

from __future__ import annotations

from typing import Any

from torch import nn


def sharded_parameters(trainer: Any, model: nn.Module) -> str | None:
    """What shards the model's parameters across processes (FSDP, DeepSpeed ZeRO-3, DTensor), or None.

    DDP and ZeRO-1/2 keep whole parameters on every rank (None); FSDP2 makes them DTensors sharded by rows.

    Example:
        >>> from types import SimpleNamespace
        >>> sharded_parameters(SimpleNamespace(is_fsdp_enabled=True), nn.Linear(2, 2))
        'FSDP'
        >>> sharded_parameters(SimpleNamespace(), nn.Linear(2, 2)) is None
        True
    """
    if getattr(trainer, "is_fsdp_enabled", False):
        return "FSDP"
    if getattr(trainer, "is_deepspeed_enabled", False):
        state = getattr(getattr(trainer, "accelerator", None), "state", None)
        if getattr(getattr(state, "deepspeed_plugin", None), "zero_stage", None) == 3:
            return "DeepSpeed ZeRO-3"
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch built without distributed
        DTensor = ()
    for name, param in model.named_parameters():
        if hasattr(param, "ds_numel"):  # DeepSpeed ZeRO-3 partitions parameters in place
            return f"DeepSpeed ZeRO-3 (parameter {name} is partitioned)"
        if isinstance(param, DTensor) or isinstance(param.data, DTensor):
            return f"DTensor (parameter {name} is sharded)"
    return None
