# examples/snippets/peft_orthoreg_lora.py
# OrthoReg on a LoRA fine-tune with TRL's SFTTrainer, then the task vector as a full model for mergekit.
# Needs the tiny base model first: python examples/data/merge_tiny.py   (writes ./models/base)
from datasets import load_dataset
from peft import get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTTrainer

from peft_orthoreg import OrthoLoraConfig, OrthoSFTConfig, TaskVector, with_orthoreg

BASE = "models/base"
rows = load_dataset("json", data_files="examples/data/report_train.jsonl", split="train")  # prompt, answer
dataset = rows.map(lambda row: {"completion": f" The answer is {row['answer']}."})  # SFT: prompt + completion

config = OrthoLoraConfig(r=8, lora_alpha=8, target_modules=["q_proj", "v_proj"], orthoreg_weight=1.0)
model = get_peft_model(AutoModelForCausalLM.from_pretrained(BASE), config)
args = OrthoSFTConfig(  # TRL's SFTConfig; bf16 stays off on a machine without an accelerator
    output_dir="outputs/snippets/task_a", learning_rate=1e-3, max_steps=10, logging_steps=5, report_to=[]
)
trainer = with_orthoreg(SFTTrainer)(
    model=model, args=args, train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(BASE)
)
trainer.train()  # logs `orthoreg` (unweighted) beside the loss
print("orthoreg:", [log["orthoreg"] for log in trainer.state.log_history if "orthoreg" in log])
TaskVector.from_peft(model).export_model(BASE, "outputs/snippets/task_a_full")  # mergekit-yaml can merge it
