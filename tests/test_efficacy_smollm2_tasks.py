"""The SmolLM2 OrthoReg setting's task registry (benchmarks/efficacy_smollm2.py): data seeds and split hygiene."""

from __future__ import annotations

import pytest
import torch
from test_benchmark_results import load_script

setting = load_script("efficacy_smollm2")


def test_first_task_set_keeps_its_data_seeds():
    # The committed `smollm2` results were produced when a task's seed was its position in this set: adding
    # tasks to the registry must not move them.
    for i, task in enumerate(setting.TASK_SETS["v1"]):
        assert setting._index(task) == i


@pytest.mark.parametrize("name", sorted(setting.TASK_SETS))
def test_task_sets_name_four_distinct_known_tasks(name):
    tasks = setting.TASK_SETS[name]
    assert len(set(tasks)) == len(tasks) == 4
    assert set(tasks) <= set(setting.CONFIGS)


def test_use_task_set_switches_the_tasks():
    try:
        setting.use_task_set("open")
        assert setting.TASKS == setting.TASK_SETS["open"]
    finally:
        setting.use_task_set("v1")
    assert setting.TASKS == setting.TASK_SETS["v1"]


@pytest.mark.parametrize("task", setting.TASK_SETS["open"])
def test_training_questions_never_occur_in_an_evaluation_split(task, monkeypatch):
    pytest.importorskip("reasoning_gym")
    monkeypatch.setattr(setting, "TRAIN_POOL", 400)  # a small pool: seconds, and the property is per question
    setting.train_items.cache_clear()
    try:
        train = {q for q, _ in setting.train_items(task)}
        assert len(train) > 100
        for kind in setting.SPLIT_SEED:
            assert not train & {q for q, _ in setting.eval_items(task, kind, 256)}, kind
    finally:
        setting.train_items.cache_clear()


def test_pilot_answers_drop_the_padding():
    pilot = load_script("smollm2_task_pilot")
    tokens = torch.tensor([[-100, 5, 6, -100], [7, -100, -100, -100]])
    assert pilot.answers(tokens) == [(5, 6), (7,)]


def test_pilot_table_is_the_render_of_its_json():
    import json

    pilot = load_script("smollm2_task_pilot")
    results = json.loads((pilot.OUT / "results.json").read_text())
    assert pilot.render_md(results) == (pilot.OUT / "results.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [(["--tasks", "chain_sum,nope"], "unknown --tasks nope"), (["--shard", "2/2"], "invalid --shard 2/2")],
)
def test_pilot_rejects_bad_arguments_in_one_line(argv, message, capsys):
    pilot = load_script("smollm2_task_pilot")
    assert pilot.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
