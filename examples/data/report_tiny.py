"""Build the tiny offline models that `examples/configs/{distill,report,diagnose}_tiny.yaml` point to.

    python examples/data/report_tiny.py            # writes examples/data/report_tiny/{teacher,...}

Models come from `distill_ortho_merge.testing` (random weights, seconds on CPU): a Qwen2 teacher on tokenizer
A, a perturbed copy of it standing in for a calibrated teacher, a Llama student on tokenizer B (held out:
other architecture and tokenizer) and a Llama student on tokenizer A (shared vocabulary, for `kd`). The prompt
sets `report_train.jsonl` / `report_eval.jsonl` next to this file are committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(root: Path = HERE / "report_tiny") -> Path:
    """Write the four tiny models under `root` and return it."""
    from distill_ortho_merge import testing as tiny

    tok_a, tok_b = tiny.tokenizer_a(), tiny.tokenizer_b()
    teacher = tiny.make_teacher(tok_a)
    tiny.save_model(teacher, tok_a, root / "teacher")
    tiny.save_model(tiny.make_finetuned_copies(teacher, 1, scale=0.05)[0], tok_a, root / "teacher_perturbed")
    tiny.save_model(tiny.make_student(tok_b), tok_b, root / "student_llama_b")
    tiny.save_model(tiny.make_student(tok_a, seed=1), tok_a, root / "student_llama_a")
    return root


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "report_tiny"))
