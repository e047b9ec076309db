"""Ready evaluations for `mergekit-plugins search-alpha` and `single-scores`: a verifier's greedy accuracy.

`--eval math_answer --eval-data math=math.jsonl --eval-data code=code.jsonl` scores a model, on every task, by
the mean verifier score of its greedy answers to that task's JSONL rows (a `prompt` column plus the gold columns
the verifier needs, e.g. `answer`). Verifiers are `trl_distillguard`'s registered reward functions (`math_answer`,
`qa_exact_match`, `qa_f1`, `multiple_choice`, ...). A custom evaluation is any importable `package.module:function`
called as ``f(model, tokenizer) -> {task: score}`` (the module must be on the Python path).

Example:
    >>> parse_eval_data(["math=data/math.jsonl"])
    {'math': 'data/math.jsonl'}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class EvalSpecError(ValueError):
    """A bad `--eval` / `--eval-data`; the message is one line naming the option."""


def parse_eval_data(items: Sequence[str] | None) -> dict[str, str]:
    """`["TASK=FILE", ...]` → {task: file}; one-line errors naming `--eval-data`.

    Example:
        >>> parse_eval_data(["a=x.jsonl", "b=y.jsonl"])
        {'a': 'x.jsonl', 'b': 'y.jsonl'}
    """
    out: dict[str, str] = {}
    for item in items or ():
        task, sep, path = item.partition("=")
        if not sep or not task or not path:
            raise EvalSpecError(f"--eval-data {item!r}: expected TASK=FILE.jsonl")
        if task in out:
            raise EvalSpecError(f"--eval-data: task {task!r} is given twice")
        out[task] = path
    return out


def verifier_accuracy(
    verifier: str, data: dict[str, str], *, max_new_tokens: int = 64, batch_size: int = 16
) -> Callable[[Any, Any], dict[str, float]]:
    """An evaluation ``f(model, tokenizer) -> {task: mean verifier score of greedy answers on data[task]}``; the
    data and verifier are checked now (one-line errors), not at the first α.

    Example:
        >>> # f = verifier_accuracy("math_answer", {"math": "examples/data/calibrate_tiny.jsonl"})
        >>> # f(model, tokenizer)  # {'math': 0.25}
    """
    from distill_ortho_merge.cli import InputError
    from distill_ortho_merge.evaluate import check_gold, evaluate, load_rows
    from distill_ortho_merge.plugins import load_plugins, registry, resolve_verifier

    load_plugins()
    if verifier not in registry():
        raise EvalSpecError(
            f"--eval {verifier!r}: expected a verifier name ({', '.join(sorted(registry()))}) or "
            "`package.module:function`"
        )
    if not data:
        raise EvalSpecError(f"--eval {verifier}: give the tasks' data with --eval-data TASK=FILE.jsonl")
    try:
        fn = resolve_verifier(verifier, "--eval")
        rows = {task: load_rows(path, f"--eval-data {task}={path}") for task, path in data.items()}
        for task_rows in rows.values():
            check_gold(task_rows, fn, verifier, "prompt")
    except InputError as err:
        raise EvalSpecError(str(err)) from None

    def score(model: Any, tokenizer: Any) -> dict[str, float]:
        if tokenizer.pad_token is None:  # batched generation pads; EOS is the standard safe pad
            tokenizer.pad_token = tokenizer.eos_token
        return {
            task: evaluate(
                model,
                tokenizer,
                task_rows,
                fn,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                desc=None,
            ).score
            for task, task_rows in rows.items()
        }

    return score


def single_task_scores(
    models: dict[str, str],
    evaluate: Callable[[Any, Any], dict[str, float]],
    *,
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> dict[str, float]:
    """{task: score of the single-task model named after it}: every model of a merge (name = its directory name)
    is evaluated, and task T keeps the score of model T, the normaliser `search-alpha --single-task-scores` expects.

    Example:
        >>> # single_task_scores({"task_math": "./models/task_math"}, verifier_accuracy("math_answer", data))
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out: dict[str, float] = {}
    for name, path in models.items():
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, trust_remote_code=trust_remote_code
        )
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        scores = evaluate(model.to(device).eval(), tokenizer)
        if name in scores:
            out[name] = float(scores[name])
    if not out:
        raise EvalSpecError(
            f"no task is named after a model of the merge ({', '.join(models)}): name the --eval-data tasks "
            "(or your evaluation's keys) after the model directories"
        )
    return out
