"""Run by test_fsdp2_orthoreg.py: `with_orthoreg(SFTTrainer)` for 3 steps on a tiny model, in one process
(`python tests/fsdp2_trainer_worker.py CASE MODEL_DIR OUT.json 0`) or sharded with `fully_shard` over torchrun
ranks (`torchrun --nproc_per_node 2 tests/fsdp2_trainer_worker.py CASE MODEL_DIR OUT.json 1`). Rank 0 writes the
logged loss, orthoreg and grad_norm per step and the trained weights (gathered as a full state dict).

accelerate offers FSDP only on GPUs and refuses to wrap a DTensor model in DDP, so the sharded run hides torchrun's
variables from accelerate after joining the process group: the trainer sees one process and both ranks train on
the same batches (FSDP2 averages their identical gradients, which is the 1-process gradient)."""

from __future__ import annotations

import json
import os
import sys

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "GROUP_WORLD_SIZE",
                 "ROLE_WORLD_SIZE", "TORCHELASTIC_RUN_ID")  # fmt: skip


def main(case: str, model_dir: str, out: str, shard: bool) -> None:
    import torch
    import torch.distributed as dist
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from peft_orthoreg import OrthoLoraConfig, with_orthoreg

    torch.set_num_threads(1)
    if shard:
        dist.init_process_group("gloo")
        for var in TORCHRUN_VARS:
            os.environ.pop(var, None)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    kwargs = {"orthoreg_weight": 0.05} if case == "full_ft" else {}
    if case == "lora":
        torch.manual_seed(0)
        cfg = OrthoLoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], orthoreg_weight=0.5)
        model = get_peft_model(model, cfg)
        with torch.no_grad():  # B ≠ 0: the term has a gradient from step 1
            gen = torch.Generator().manual_seed(1)
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    if shard:
        from torch.distributed.fsdp import fully_shard

        for layer in model.get_decoder().layers:
            fully_shard(layer)
        fully_shard(model)
    args = SFTConfig(output_dir=os.path.join(os.path.dirname(out), f"trainer{int(shard)}"), max_steps=3,
                     per_device_train_batch_size=4, learning_rate=1e-2, max_grad_norm=1e6, logging_steps=1,
                     train_sampling_strategy="sequential", use_cpu=True, report_to=[], save_strategy="no", seed=0,
                     max_length=32, disable_tqdm=True)  # fmt: skip
    texts = [f"What is {x} + {y}? The answer is {x + y}." for x in range(4) for y in range(3)]
    trainer = with_orthoreg(SFTTrainer)(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"text": texts}),
        processing_class=tok,
        **kwargs,
    )
    trainer.train()
    if shard:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = model.state_dict()
    if not shard or dist.get_rank() == 0:
        logs = [
            {k: h[k] for k in ("loss", "orthoreg", "grad_norm")}
            for h in trainer.state.log_history
            if "loss" in h
        ]
        weights = {
            n: t.detach().flatten().tolist() for n, t in state.items() if "lora_" in n or case == "full_ft"
        }
        types = sorted({type(p).__name__ for p in model.parameters()})
        with open(out, "w") as f:
            json.dump({"logs": logs, "weights": weights, "parameter_types": types}, f)
    if shard:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1")
