"""A dataset is a factory (size, seed) -> rows; each row has a `prompt` and the gold columns its verifier reads."""

import random

from distill_ortho_merge.hookspecs import hookimpl


def countdown(size, seed):
    """`size` rows "Count down from n to 1." with the gold `answer` (the last word of a right completion: "1")."""
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        n = rng.randint(3, 9)
        rows.append({"prompt": f"Count down from {n} to 1.", "answer": "1", "n": n})
    return rows


@hookimpl
def distill_ortho_merge_datasets():
    return {"countdown": countdown}
