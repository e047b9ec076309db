# examples/snippets/mergekit_plugins_lora_merge.py
# LoRA adapters in, one LoRA adapter out, merged in factor space (no densified weights, no m x n SVD).
# Needs the tiny base and adapters first: python examples/data/merge_tiny.py   (./models/base, ./adapters/task_*)
from mergekit_plugins.lora import lora_merge

config = {  # mergekit's own YAML schema, as a mapping (or the path of a YAML file)
    "merge_method": "iso_c",
    "base_model": "models/base",
    "models": [
        {"model": "adapters/task_math"},
        {"model": "adapters/task_code", "parameters": {"weight": 0.5}},
    ],
    "parameters": {"alpha": 1.0},
}
summary = lora_merge(config, "outputs/snippets/merged-adapter", progress=False)
print(summary["line"])
