"""The calibration reward in a stock TRL `GRPOTrainer`: add it to `reward_funcs` and bind it to the policy.

Run `python examples/data/calibrate_tiny.py` first; then `python examples/guides/calibrate_stock_trl.py`.
"""

from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

from distill_ortho_merge.verifiers import math_answer
from trl_distillguard import CalibrationReward

ds = load_dataset("json", data_files="examples/data/calibrate_tiny.jsonl", split="train")
calibration = CalibrationReward("examples/data/calibrate_tiny/proxy")
args = GRPOConfig(
    output_dir="out/calibrate_stock_trl",
    reward_weights=[1.0, -1.0],  # task reward + η · calibration, η = -1
    max_steps=2, per_device_train_batch_size=4, num_generations=4, max_completion_length=12,
    logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, bf16=False,
)  # fmt: skip
trainer = GRPOTrainer(
    "examples/data/calibrate_tiny/teacher",
    reward_funcs=[math_answer, calibration],
    args=args,
    train_dataset=ds,
)
calibration.bind_policy(trainer)  # the reward needs the policy's log-likelihoods
trainer.train()
print({k: round(v, 4) for k, v in trainer.state.log_history[-2].items() if k.startswith("rewards/")})
