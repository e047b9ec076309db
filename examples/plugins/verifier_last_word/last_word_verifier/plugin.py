"""A verifier is a TRL reward function: (prompts, completions, **dataset columns) -> one score (or None) each."""

from distill_ortho_merge.hookspecs import hookimpl
from distill_ortho_merge.verifiers import completion_text


def last_word(prompts, completions, answer, **columns):
    """1.0 when the completion's last word is the row's `answer` (case and final punctuation ignored)."""
    scores = []
    for completion, gold in zip(completions, answer, strict=True):
        if gold is None:
            scores.append(None)  # not scorable: TRL ignores it
            continue
        words = completion_text(completion).split()
        last = words[-1].strip(".!?,").lower() if words else ""
        scores.append(float(last == str(gold).lower()))
    return scores


@hookimpl
def distill_ortho_merge_verifiers():
    return {"last_word": last_word}
