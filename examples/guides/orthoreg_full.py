"""OrthoReg in full fine-tuning: every Linear weight's update ΔW = W − W⁰ is regularised; W⁰ is snapshotted.

Run `python examples/data/merge_tiny.py` first (it writes ./models/base); then `python examples/guides/orthoreg_full.py`.
"""

from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from peft_orthoreg import TaskVector, with_orthoreg

BASE = "models/base"
lines = [f"What is {a} + {b}? {a + b}" for a in range(10) for b in range(10)]

tokenizer = AutoTokenizer.from_pretrained(BASE)
model = AutoModelForCausalLM.from_pretrained(BASE)
args = SFTConfig(
    output_dir="out/task_math_full", max_steps=4, per_device_train_batch_size=8, learning_rate=1e-4,
    logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False,
)  # fmt: skip
trainer = with_orthoreg(SFTTrainer)(
    model=model,
    args=args,
    train_dataset=Dataset.from_dict({"text": lines}),
    processing_class=tokenizer,
    orthoreg_weight=1.0,  # λ: required for full fine-tuning
    orthoreg_estimator="hutchinson",  # an unbiased estimate of ‖G − I‖²_F instead of the dense Gram
    orthoreg_probes=2,
    orthoreg_snapshot_device="cpu",  # where the copy of W⁰ lives
)
trainer.train()
print("orthoreg per step:", [log["orthoreg"] for log in trainer.state.log_history if "orthoreg" in log])
trainer.save_model("models/task_math_full")
tau = TaskVector.from_models(BASE, "models/task_math_full")
print(f"‖τ‖ = {tau.norm():.4f}")
