"""Calibrate a teacher from Python: `DistillGuardTrainer` is `GRPOTrainer` plus η · the calibration reward.

Run `python examples/data/calibrate_tiny.py` first (it writes the tiny teacher and proxy); then
`python examples/guides/calibrate.py`.
"""

from datasets import load_dataset

from distill_ortho_merge.verifiers import math_answer  # reads the dataset's `answer` column
from trl_distillguard import DistillGuardConfig, DistillGuardTrainer

ds = load_dataset("json", data_files="examples/data/calibrate_tiny.jsonl", split="train")
args = DistillGuardConfig(
    output_dir="out/calibrate_py",
    proxy_model_name_or_path="examples/data/calibrate_tiny/proxy",
    distillability=-1.0,  # η < 0: undistillable
    beta=0.1,  # KL anchor to the original teacher
    max_steps=2, per_device_train_batch_size=4, num_generations=4, max_completion_length=12,
    logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False,
)  # fmt: skip
trainer = DistillGuardTrainer(
    "examples/data/calibrate_tiny/teacher", reward_funcs=[math_answer], args=args, train_dataset=ds
)
trainer.train()
for log in trainer.state.log_history[:-1]:
    print({key: round(value, 4) for key, value in log.items() if key.startswith(("reward", "calibration"))})
trainer.save_model("out/calibrate_py/teacher")
