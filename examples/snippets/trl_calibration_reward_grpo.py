# examples/snippets/trl_calibration_reward_grpo.py
# The calibration reward in a stock TRL GRPOTrainer: bind it to the policy, weight it by eta.
# Needs the tiny teacher and proxy first: python examples/data/calibrate_tiny.py
from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

from distill_ortho_merge.devices import has_accelerator
from distill_ortho_merge.verifiers import math_answer
from trl_distillguard import CalibrationReward

ds = load_dataset("json", data_files="examples/data/calibrate_tiny.jsonl", split="train")
cal = CalibrationReward("examples/data/calibrate_tiny/proxy")
args = GRPOConfig(
    output_dir="outputs/snippets/grpo_calibrated",
    reward_weights=[1.0, -1.0],  # task reward + eta * calibration reward, eta = -1
    multi_objective_aggregation="normalize_then_sum",
    beta=0.1,
    bf16=has_accelerator(),  # stock TRL turns bf16 on, which a CPU-only machine refuses
    max_steps=2,
    logging_steps=1,
    per_device_train_batch_size=4,
    num_generations=4,
    max_completion_length=12,
    report_to=[],
)
trainer = GRPOTrainer(
    "examples/data/calibrate_tiny/teacher", reward_funcs=[math_answer, cal], args=args, train_dataset=ds
)
cal.bind_policy(trainer)  # log pi of the completions comes from the policy being trained
trainer.train()
last = [log for log in trainer.state.log_history if "reward" in log][-1]
print({k: v for k, v in last.items() if k.startswith("rewards/")})
