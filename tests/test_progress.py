"""`distill_ortho_merge.progress`: bars the user turned off with TQDM_DISABLE=1 stay off (tqdm reads the environment
once, at import, and only for arguments a call leaves out: hence a fresh interpreter per case)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = (
    "from distill_ortho_merge.progress import progress; from tqdm.auto import tqdm; "
    "print(progress([1], 'x').disable, progress([1], 'x', show=False).disable, tqdm([1], disable=False).disable)"
)


@pytest.mark.parametrize(
    ("env", "expected"), [({"TQDM_DISABLE": "1"}, "True True False"), ({}, "False True False")]
)
def test_progress_honours_tqdm_disable(env, expected):
    out = subprocess.run([sys.executable, "-c", PROBE], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                         text=True, check=True)  # fmt: skip
    # the last column is why: an explicit disable=False switches the bar back on
    assert out.stdout.split() == expected.split()
