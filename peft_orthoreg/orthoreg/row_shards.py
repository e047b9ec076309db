"""OrthoReg on parameters sharded by rows across processes: FSDP2 (`torch.distributed.fsdp.fully_shard`) makes
each parameter a `DTensor` sharded on dim 0 of a 1-D device mesh.

Every rank computes the same (replicated) value from its local rows plus all-reduces of small matrices; a full
ΔW is never gathered. Each all-reduce passes the gradient through unchanged (every rank holds the same upstream
gradient, as every rank adds the same term to its loss), so each rank's shard receives its own rows of the
1-process gradient, and adding λ·term to every rank's loss gives the 1-process update, as under DDP.

- ``row_product(x, y)`` = xᵀy for two matrices sharded the same way: Σ over ranks of x_localᵀ y_local.
- ``whole(t)``: the full matrix, for the small LoRA factor A (r × n), which FSDP2 shards along r.
- Dense ΔW (full fine-tuning): H = ΔWᵀΔW = ``row_product(ΔW, ΔW)`` (n × n) has G's eigenvalues plus n − k
  zeros, so ‖G − I_k‖²_F = ‖H − I_n‖²_F − (n − k).

Plain tensors pass through every helper unchanged (one process, DDP, or FSDP2's unsharded parameters during a
step: FSDP2 does not reshard the root module after the forward, so those are whole on every rank).

Example:
    >>> import torch
    >>> x = torch.arange(6.0).reshape(3, 2)
    >>> torch.equal(row_product(x, x), x.T @ x), whole(x) is x
    (True, True)
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

try:
    from torch.distributed.tensor import DTensor, Shard
except ImportError:  # pragma: no cover - torch built without distributed
    DTensor, Shard = (), None

SHARDING_HELP = "use FSDP2 (fully_shard) on a 1-D mesh, or DDP / DeepSpeed ZeRO-1/2"


def is_row_sharded(t: torch.Tensor) -> bool:
    """True for a `DTensor` sharded on dim 0 of a 1-D mesh (FSDP2); a one-line error for other layouts.

    Example:
        >>> is_row_sharded(torch.zeros(2, 2))
        False
    """
    if not isinstance(t, DTensor):
        return False
    if t.device_mesh.ndim != 1 or tuple(t.placements) != (Shard(0),):
        raise ValueError(
            f"OrthoReg: a parameter is a DTensor with placements {tuple(t.placements)} on a "
            f"{t.device_mesh.ndim}-D mesh (tensor parallel / HSDP are not supported); {SHARDING_HELP}"
        )
    return True


def refuse_row_sharded(t: torch.Tensor, what: str) -> None:
    """A one-line error when ``t`` is row-sharded and ``what`` has no sharded implementation.

    Example:
        >>> refuse_row_sharded(torch.zeros(2, 2), "the dense flat-spectrum form")
    """
    if is_row_sharded(t):
        raise ValueError(
            f"OrthoReg: {what} has no implementation for parameters sharded across processes (FSDP2); use its "
            "LoRA factor form, the 'paper' or 'scale_free' form, or DDP / DeepSpeed ZeRO-1/2"
        )


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum). Backward: the identity where the upstream gradient is the same on every rank (everything
    after the sum is replicated), else the sum over the ranks of their partial upstream gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group, partial_downstream: bool) -> torch.Tensor:
        ctx.group, ctx.partial = group, partial_downstream
        y = x.clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM, group=group)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.partial:
            grad = grad.clone()
            dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None, None


def _local(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    local = t.to_local()
    return local if dtype is None else local.to(dtype)


def row_product(x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """xᵀy for x (m × a) and y (m × b), both whole or both sharded the same way by rows; in ``dtype``.

    Example:
        >>> x, y = torch.randn(4, 2), torch.randn(4, 3)
        >>> torch.allclose(row_product(x, y), x.T @ y)
        True
    """
    sx, sy = is_row_sharded(x), is_row_sharded(y)
    if not (sx or sy):
        x, y = (x, y) if dtype is None else (x.to(dtype), y.to(dtype))
        return x.T @ y
    if not (sx and sy) or x.device_mesh != y.device_mesh or x.shape[0] != y.shape[0]:
        x, y = whole(x, dtype), whole(y, dtype)  # different layouts: small LoRA factors only
        return x.T @ y
    return _SumOverRanks.apply(_local(x, dtype).T @ _local(y, dtype), x.device_mesh.get_group(), False)


def whole(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The full tensor (gathered from its row shards, differentiable), in ``dtype``.

    Example:
        >>> whole(torch.ones(2, 2), torch.float64).dtype
        torch.float64
    """
    if is_row_sharded(t):
        t = t.full_tensor()
    return t if dtype is None else t.to(dtype)


def local_rows(t: torch.Tensor, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, int, object]:
    """(this rank's rows of a row-sharded ``t``, the index of its first row, the process group).

    Example:
        >>> rows, first, group = local_rows(torch.ones(3, 2))
        >>> rows.shape, first, group
        (torch.Size([3, 2]), 0, None)
    """
    if not is_row_sharded(t):
        return (t if dtype is None else t.to(dtype)), 0, None
    local = _local(t, dtype)
    mesh = t.device_mesh
    rows, ranks, rank = t.shape[0], mesh.size(), mesh.get_local_rank()
    chunk = math.ceil(rows / ranks)  # DTensor's Shard(0) splits like torch.chunk
    first = min(rank * chunk, rows)
    if local.shape[0] != max(0, min(chunk, rows - first)):
        raise ValueError(
            f"OrthoReg: a {tuple(t.shape)} DTensor holds {local.shape[0]} rows on rank {rank}, not torch.chunk's "
            f"split; {SHARDING_HELP}"
        )
    return local, first, mesh.get_group()


def sum_over_ranks(x: torch.Tensor, group: object, *, partial_downstream: bool = False) -> torch.Tensor:
    """Σ over the ranks of ``group`` of x; x itself when ``group`` is None. ``partial_downstream``: what follows
    the sum is rank-local (summed over the ranks later), so the backward sums the gradient over the ranks.

    Example:
        >>> sum_over_ranks(torch.ones(2), None)
        tensor([1., 1.])
    """
    return x if group is None else _SumOverRanks.apply(x, group, partial_downstream)
