# examples/snippets/peft_orthoreg_full_ft.py
# OrthoReg on full fine-tuning: any HF/TRL trainer class, the penalty on every Linear weight's update W - W0.
# Needs the tiny base model first: python examples/data/merge_tiny.py   (writes ./models/base)
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTTrainer

from peft_orthoreg import OrthoSFTConfig, with_orthoreg

BASE = "models/base"
rows = load_dataset("json", data_files="examples/data/report_train.jsonl", split="train")  # prompt, answer
dataset = rows.map(lambda row: {"completion": f" The answer is {row['answer']}."})

trainer = with_orthoreg(
    SFTTrainer
)(
    model=AutoModelForCausalLM.from_pretrained(BASE),
    args=OrthoSFTConfig(output_dir="outputs/snippets/full_ft", max_steps=4, logging_steps=2, report_to=[]),
    train_dataset=dataset,
    processing_class=AutoTokenizer.from_pretrained(BASE),
    orthoreg_weight=10.0,  # snapshots W0 of every Linear weight at init (orthoreg_snapshot_device="cpu" saves memory)
)
trainer.train()
print("orthoreg:", [log["orthoreg"] for log in trainer.state.log_history if "orthoreg" in log])
