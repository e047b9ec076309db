"""Ready evaluations for `mergekit-plugins search-alpha` and `single-scores`: a verifier's greedy accuracy.

`--eval math_answer --eval-data math=math.jsonl --eval-data code=code.jsonl` scores a model, on every task, by
two numbers over its greedy answers to that task's rows (a `prompt` column plus the gold columns the verifier
needs, e.g. `answer`; a JSONL file or a dataset spec such as ``reasoning_gym:gcd?split=test``): the exact accuracy
(fraction with full credit) and the mean verifier score (which counts partial credit). Verifiers are `trl_distillguard`'s registered reward functions (`math_answer`,
`qa_exact_match`, `qa_f1`, `multiple_choice`, ...). A custom evaluation is any importable `package.module:function`
called as ``f(model, tokenizer) -> {task: score}`` (the module must be on the Python path).

Example:
    >>> parse_eval_data(["math=data/math.jsonl"])
    {'math': 'data/math.jsonl'}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from distill_ortho_merge.errors import InputError


class EvalSpecError(InputError):
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


def verifier_metrics(
    verifier: str, data: dict[str, str], *, max_new_tokens: int = 64, batch_size: int = 16
) -> Callable[[Any, Any], dict[str, dict[str, float]]]:
    """An evaluation ``f(model, tokenizer) -> {task: EvalResult.summary()}`` (exact accuracy, mean score, counts)
    of greedy answers on data[task]; the data and verifier are checked now (one-line errors), not at the first α.

    Example:
        >>> verifier_metrics("math_answer", {})
        Traceback (most recent call last):
        ...
        mergekit_plugins.evals.EvalSpecError: --eval math_answer: give the tasks' data with --eval-data TASK=FILE.jsonl
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
        for task, task_rows in rows.items():
            check_gold(task_rows, fn, verifier, "prompt", role=f"--eval-data {task}={data[task]}")
    except InputError as err:
        raise EvalSpecError(str(err)) from None

    def score(model: Any, tokenizer: Any) -> dict[str, dict[str, float]]:
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
            ).summary()
            for task, task_rows in rows.items()
        }

    return score


def verifier_accuracy(
    verifier: str, data: dict[str, str], *, max_new_tokens: int = 64, batch_size: int = 16
) -> Callable[[Any, Any], dict[str, float]]:
    """`verifier_metrics` reduced to {task: mean verifier score} (the number earlier versions returned).

    Example:
        >>> callable(verifier_accuracy("math_answer", {"math": "examples/data/calibrate_tiny.jsonl"}))
        True
    """
    metrics = verifier_metrics(verifier, data, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return lambda model, tokenizer: {t: m["mean_score"] for t, m in metrics(model, tokenizer).items()}


def single_task_scores(
    models: dict[str, str | Callable[[], tuple[Any, Any]]],
    evaluate: Callable[[Any, Any], dict[str, Any]],
    *,
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """{task: score of the single-task model named after it}: every model of a merge (name = its directory name)
    is evaluated, and task T keeps the score of model T (a number, or the metrics of `verifier_metrics`), the
    normaliser `search-alpha --single-task-scores` expects. A model is a directory or a loader
    ``() -> (model, tokenizer)`` (e.g. a base model with one adapter applied).

    Example:
        >>> single_task_scores({"a": lambda: ("model", "tok")}, lambda m, t: {"a": 0.5, "b": 0.0})
        {'a': 0.5}
    """
    out: dict[str, Any] = {}
    for name, source in models.items():
        if callable(source):
            model, tokenizer = source()
        else:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch.float32, trust_remote_code=trust_remote_code
            ).to(device)
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        scores = evaluate(model.eval() if hasattr(model, "eval") else model, tokenizer)
        if name in scores:
            value = scores[name]
            out[name] = dict(value) if isinstance(value, dict) else float(value)
    if not out:
        raise EvalSpecError(
            f"no task is named after a model of the merge ({', '.join(models)}): name the --eval-data tasks "
            "(or your evaluation's keys) after the model directories"
        )
    return out
