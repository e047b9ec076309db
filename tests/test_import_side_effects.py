"""Importing any module of the three packages leaves the host process's environment as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
names = []
for pkg in ("trl_distillguard", "peft_orthoreg", "mergekit_plugins"):
    mod = importlib.import_module(pkg)
    names += [pkg] + [m.name for m in pkgutil.walk_packages(mod.__path__, pkg + ".")]
for name in names:
    if name != "mergekit_plugins._build":  # setuptools build hook, imported only by pip
        importlib.import_module(name)
after = dict(os.environ)
print(json.dumps({"modules": len(names), "changed": sorted(k for k in set(before) | set(after)
                  if before.get(k) != after.get(k))}))
"""


def test_importing_every_module_changes_no_environment_variable():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "TRL_"))}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["modules"] > 30
    assert result["changed"] == [], result["changed"]
