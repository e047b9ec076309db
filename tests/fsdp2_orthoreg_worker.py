"""Run by `torchrun --nproc_per_node 2 tests/fsdp2_orthoreg_worker.py OUT.json` (see test_fsdp2_orthoreg.py):
every OrthoReg form on parameters sharded with FSDP2's `fully_shard`, against the same computation on whole
tensors in this process, in fp64. Rank 0 writes {case: {"value": rel. error, "grad": rel. error, ...}}."""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from torch import nn

from peft_orthoreg.orthoreg import (
    dense_orthoreg_loss,
    dense_scale_free_loss,
    factor_flat_spectrum_loss,
    factor_inter_task_loss,
    factor_orthoreg_loss,
    factor_scale_free_loss,
)

# (m, n, r): tall, wide and square; 5, 7 and 3 rows do not split evenly over 2 ranks
SHAPES = [(7, 5, 3), (4, 9, 2), (6, 6, 4)]


class Layer(nn.Module):
    """One LoRA layer (A, B, and a frozen reference A_t, B_t) and one full-FT weight W with its snapshot W⁰."""

    def __init__(self, m: int, n: int, r: int) -> None:
        super().__init__()
        self.A, self.B = nn.Parameter(torch.randn(r, n)), nn.Parameter(torch.randn(m, r) / r)
        self.At = nn.Parameter(torch.randn(r + 1, n), requires_grad=False)
        self.Bt = nn.Parameter(torch.randn(m, r + 1), requires_grad=False)
        self.W = nn.Parameter(torch.randn(m, n) / n**0.5)
        self.W0 = nn.Parameter(self.W.detach() - 0.3 * torch.randn(m, n), requires_grad=False)  # W⁰, ΔW ≠ 0


def build(shard: bool) -> nn.ModuleList:
    torch.manual_seed(0)
    model = nn.ModuleList(Layer(*shape) for shape in SHAPES).double()
    if shard:
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            fully_shard(layer)
    return model


def factors(model):
    return [(layer.A, layer.B, 0.7) for layer in model]


CASES = {
    "lora paper": lambda model: factor_orthoreg_loss(factors(model)),
    "lora paper squared": lambda model: factor_orthoreg_loss(factors(model), squared=True),
    "lora scale_free": lambda model: factor_scale_free_loss(factors(model)),
    "lora flat_spectrum": lambda model: factor_flat_spectrum_loss(factors(model)),
    "lora inter_task": lambda model: factor_inter_task_loss(
        factors(model), [[(layer.At, layer.Bt, 2.0)] for layer in model]
    ),
    "full-FT paper exact": lambda model: dense_orthoreg_loss([layer.W - layer.W0 for layer in model]),
    "full-FT paper hutchinson": lambda model: dense_orthoreg_loss(
        [layer.W - layer.W0 for layer in model], estimator="hutchinson", probes=3, seed=11
    ),
    "full-FT scale_free": lambda model: dense_scale_free_loss(
        [layer.W - layer.W0 for layer in model], squared=True
    ),
}


def full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def run_case(fn) -> dict:
    out = {}
    for shard in (False, True):
        model = build(shard)
        assert shard == hasattr(model[0].W, "full_tensor")
        value = fn(model)
        value.backward()
        grads = torch.cat([full(p.grad).flatten() for p in model.parameters() if p.grad is not None])
        out[shard] = (value.detach().clone(), grads)
    (v1, g1), (v2, g2) = out[False], out[True]
    return {
        "value": relative(v2, v1),
        "grad": relative(g2, g1),
        "one_process": float(v1),
        "sharded": float(v2),
    }


def main() -> None:
    dist.init_process_group("gloo")
    results = {name: run_case(fn) for name, fn in CASES.items()}
    from torch.distributed.tensor import Replicate, distribute_tensor, init_device_mesh

    from peft_orthoreg.orthoreg.flat_spectrum import dense_flat_spectrum_deviation_sq

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    refusals = {}
    for name, call in {
        "replicated DTensor": lambda: factor_orthoreg_loss(
            [(distribute_tensor(torch.ones(2, 4), mesh, [Replicate()]), torch.ones(3, 2), 1.0)]
        ),
        "dense flat_spectrum": lambda: dense_flat_spectrum_deviation_sq(build(True)[0].W),
    }.items():
        try:
            call()
            refusals[name] = None
        except ValueError as err:
            refusals[name] = str(err)
    if dist.get_rank() == 0:
        with open(sys.argv[1], "w") as f:
            json.dump({"cases": results, "refusals": refusals, "ranks": dist.get_world_size()}, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
