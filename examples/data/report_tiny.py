"""Build the tiny offline models that `examples/configs/{distill,report,diagnose}_tiny.yaml` point to (seconds).

    python examples/data/report_tiny.py            # writes examples/data/report_tiny/{teacher,...}

Models come from `distill_ortho_merge.testing` and learn the single-digit additions of `distill_ortho_merge.toy_tasks` (the committed
`report_train.jsonl` / `report_eval.jsonl` next to this file are rows of that table): a Qwen2 teacher on tokenizer A
trained until it answers nearly all of them, a slightly perturbed copy of it standing in for a calibrated teacher,
a Llama student on tokenizer B (held out: other architecture and tokenizer) and a Llama student on tokenizer A
(shared vocabulary, for `kd`), both trained half as long (they answer fewer, so distillation can move them);
`distillguard report` then prints teacher and student scores and a distillability index well away from 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def build(root: Path = HERE / "report_tiny", steps: int = 400) -> Path:
    """Write the four tiny models under `root` (`steps` of training for the teacher, half as long for the students)
    and return it."""
    from distill_ortho_merge import testing as tiny
    from distill_ortho_merge import toy_tasks

    tok_a, tok_b = tiny.tokenizer_a(), tiny.tokenizer_b()
    lines = tiny.corpus(3, mix=(0.0, 0.5, 0.5)) + toy_tasks.texts(toy_tasks.sums()) * 16
    teacher = toy_tasks.train_lm(tiny.make_teacher(tok_a), tok_a, lines, steps)
    tiny.save_model(teacher, tok_a, root / "teacher")
    tiny.save_model(tiny.make_finetuned_copies(teacher, 1, scale=0.005)[0], tok_a, root / "teacher_perturbed")
    student_b = toy_tasks.train_lm(tiny.make_student(tok_b), tok_b, lines, max(1, steps // 2), seed=1)
    tiny.save_model(student_b, tok_b, root / "student_llama_b")
    student_a = toy_tasks.train_lm(tiny.make_student(tok_a, seed=1), tok_a, lines, max(1, steps // 2), seed=2)
    tiny.save_model(student_a, tok_a, root / "student_llama_a")
    return root


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "report_tiny"))
