# examples/snippets/trl_distillguard_calibrate.py
# Make a teacher undistillable (eta = -1) with DistillGuardTrainer, a GRPOTrainer with the calibration reward.
# Needs the tiny teacher and proxy first: python examples/data/calibrate_tiny.py
from datasets import load_dataset

from distill_ortho_merge.verifiers import math_answer  # gold answers: the dataset's `answer` column
from trl_distillguard import DistillGuardConfig, DistillGuardTrainer

teacher = "examples/data/calibrate_tiny/teacher"
proxy = "examples/data/calibrate_tiny/proxy"  # a small student standing in for whoever distils the teacher
ds = load_dataset("json", data_files="examples/data/calibrate_tiny.jsonl", split="train")  # prompt, answer

args = DistillGuardConfig(  # GRPOConfig's fields too; bf16 stays off on a machine without an accelerator
    output_dir="outputs/snippets/calibrated",
    proxy_model_name_or_path=proxy,
    distillability=-1.0,  # eta: > 0 distillable, < 0 undistillable
    max_steps=2,
    logging_steps=1,
    per_device_train_batch_size=4,
    num_generations=4,
    max_completion_length=12,
    report_to=[],
)
trainer = DistillGuardTrainer(teacher, reward_funcs=[math_answer], args=args, train_dataset=ds)
trainer.train()
last = [log for log in trainer.state.log_history if "reward" in log][-1]
print({k: v for k, v in last.items() if k.startswith(("reward", "calibration/"))})
