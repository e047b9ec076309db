# examples/snippets/mergekit_plugins_merge.py
# TSV-M / Iso-C / Iso-CTS from Python: register them in mergekit, merge in memory, save a model directory.
# Needs the tiny models first: python examples/data/merge_tiny.py   (writes ./models/{base,task_*})
from mergekit.merge_methods import merge_state_dicts
from transformers import AutoModelForCausalLM, AutoTokenizer

import mergekit_plugins

mergekit_plugins.load_plugins()  # registers tsv, iso_c, iso_cts in mergekit's registry
names = ["base", "task_math", "task_code", "task_chat"]
states = {name: AutoModelForCausalLM.from_pretrained(f"models/{name}").state_dict() for name in names}
merged = merge_state_dicts(states, "tsv", base="base", parameters={"alpha": 1.0})  # theta0 + alpha * merged

model = AutoModelForCausalLM.from_pretrained("models/base")
model.load_state_dict(merged)
model.save_pretrained("outputs/snippets/merged-tsv")
AutoTokenizer.from_pretrained("models/base").save_pretrained("outputs/snippets/merged-tsv")
print("merged", len(merged), "tensors into outputs/snippets/merged-tsv")
