"""OrthoReg on LoRA: one adapter per toy task on ./models/base, saved to ./adapters/<task>, exported as a full model.

Run `python examples/data/merge_tiny.py` first (it writes ./models/base); then `python examples/guides/orthoreg_lora.py`.
"""

from datasets import Dataset
from peft import get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from peft_orthoreg import OrthoLoraConfig, TaskVector, with_orthoreg

BASE = "models/base"
TASKS = {  # toy tasks: a few lines of text each
    "task_math": [f"What is {a} + {b}? {a + b}" for a in range(10) for b in range(10)],
    "task_code": [f"def f{a}(): return {a}" for a in range(100)],
    "task_chat": [f"Hello {name}, nice to meet you!" for name in ("Ann", "Bob", "Eve", "Max") * 25],
}

tokenizer = AutoTokenizer.from_pretrained(BASE)
for task, lines in TASKS.items():
    config = OrthoLoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], orthoreg_weight=0.1, orthoreg_form="paper"
    )
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(BASE), config)
    args = SFTConfig(
        output_dir=f"out/{task}", max_steps=4, per_device_train_batch_size=8, learning_rate=1e-3,
        logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False,
    )  # fmt: skip
    trainer = with_orthoreg(SFTTrainer)(
        model=model, args=args, train_dataset=Dataset.from_dict({"text": lines}), processing_class=tokenizer
    )
    trainer.train()  # logs `orthoreg` (the unweighted term) beside the loss
    logged = [log["orthoreg"] for log in trainer.state.log_history if "orthoreg" in log]
    print(task, "orthoreg per step:", logged)
    model.save_pretrained(f"adapters/{task}")  # a plain LoRA adapter: stock PEFT loads it
    TaskVector.from_peft(model).export_model(BASE, f"models/{task}_orthoreg")  # θ₀ + τ, for mergekit-yaml
