"""The plugin guide's example distributions (examples/plugins/*) install as real third-party distributions and work.

pip installs them (offline, no build isolation) into a temporary target; a fresh interpreter with that target on
its path then discovers each through its entry point and runs it against a slow reference.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "plugins"

CHECK = r"""
import json, torch
from distill_ortho_merge import plugins as shared
import peft_orthoreg, mergekit_plugins

out = {}
shared.load_plugins()
verifier = shared.registry()["last_word"]
out["verifier"] = [verifier.distribution, verifier.obj(["p"] * 3, ["3 2 1.", "3 2", "1"], answer=["1", "1", None])]
from distill_ortho_merge.data import load_dataset_rows
rows = load_dataset_rows("countdown", size=4)
out["dataset"] = [shared.dataset_registry.registry()["countdown"].distribution, rows == shared.datasets()["countdown"](4, 0),
                  all(r["prompt"].startswith("Count down from") and r["answer"] == "1" for r in rows), len(rows)]

peft_orthoreg.load_plugins()
from peft import get_peft_model
from peft_orthoreg import OrthoLoraConfig
from peft_orthoreg.lora import form_loss
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 4))
model = get_peft_model(net, OrthoLoraConfig(r=2, lora_alpha=4, target_modules=["0", "1"], orthoreg_form="l2"))
for p in model.parameters():
    torch.nn.init.normal_(p)
deltas = [  # the dense updates s·B A, built explicitly
    m.scaling["default"] * m.lora_B["default"].weight @ m.lora_A["default"].weight
    for m in model.modules() if hasattr(m, "lora_A") and "default" in m.lora_A
]
form = peft_orthoreg.registry()["l2"]
out["orthoreg_form"] = [form.distribution, form_loss(model, "default").item(), sum(d.norm() for d in deltas).item(),
                        form.obj.dense_loss(deltas).item(), form.obj.dense_loss(deltas, squared=True).item(),
                        sum(d.pow(2).sum() for d in deltas).item()]

mergekit_plugins.load_plugins()
import mergekit.merge_methods as mm
from mergekit_plugins.lora import merge_factors
from merge_mean.plugin import mean_merge
base, a, b = torch.randn(3, 4, 5).unbind()
merged = mean_merge(base, [a, b], [1.0, -0.5], alpha=0.5)
factors = [(torch.randn(4, 2), torch.randn(2, 5)), (torch.randn(4, 3), torch.randn(3, 5))]
fb, fa = merge_factors("mean_delta", factors, [1.0, -0.5])
dense = (factors[0][0] @ factors[0][1] - 0.5 * factors[1][0] @ factors[1][1]) / 2
declared = mergekit_plugins.plugins.declarations()["mean_delta"]
out["merge_method"] = [mergekit_plugins.registry()["mean_delta"].distribution, mm.get("mean_delta").spec.name,
                       (merged - (base + 0.5 * ((a - base) - 0.5 * (b - base)) / 2)).abs().max().item(),
                       (fb @ fa - dense).abs().max().item(), declared.capabilities()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The four example distributions, pip-installed into a fresh target directory (from copies: pip builds in tree)."""
    work = tmp_path_factory.mktemp("plugins")
    sources = [shutil.copytree(path, work / "src" / path.name) for path in sorted(EXAMPLES.iterdir())]
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(target), *map(str, sources)],
        check=True,
    )  # fmt: skip
    return target


def test_every_example_is_a_distribution():
    names = sorted(path.name for path in EXAMPLES.iterdir())
    assert names == ["dataset_countdown", "merge_mean", "orthoreg_l2", "verifier_last_word"]
    for name in names:
        assert "[project.entry-points." in (EXAMPLES / name / "pyproject.toml").read_text()


def test_installed_examples_are_discovered_and_run(installed):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["verifier"] == ["last-word-verifier", [1.0, 0.0, None]]
    assert out["dataset"] == ["countdown-dataset", True, True, 4]
    dist, factor, reference, dense, dense_squared, reference_squared = out["orthoreg_form"]
    assert dist == "orthoreg-l2" and reference > 0
    assert factor == pytest.approx(reference, rel=1e-5) and dense == pytest.approx(reference, rel=1e-6)
    assert dense_squared == pytest.approx(reference_squared, rel=1e-6)
    dist, name, dense_err, factor_err, capabilities = out["merge_method"]
    assert (dist, name) == ("merge-mean", "mean_delta") and dense_err < 1e-6 and factor_err < 1e-5
    assert capabilities == ["θ₀ + alpha·merged", "factor kernel"]
