"""mergekit end to end: the methods merge tiny models to θ₀ + α·reference(Δs), tensor by tensor, through
in-process mergekit, `mergekit-plugins yaml`, and plain `mergekit-yaml` with the .pth autoload hook."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from merge_helpers import (
    assert_merge_equals,
    reference_merge,
    save_task_models,
    state_dict,
    write_config,
)

import mergekit_plugins
from distill_ortho_merge.registry import PluginItem, PluginWarning
from mergekit_plugins import cli

PTH = Path(mergekit_plugins.__file__).parent / "distill_ortho_merge_mergekit_plugins.pth"


@pytest.fixture(scope="module")
def tasks(tmp_path_factory, teacher_dir, make_finetuned_copies):
    return save_task_models(tmp_path_factory.mktemp("tasks"), teacher_dir, make_finetuned_copies, n=3)


CASES = {
    "tsv": {"alpha": 0.7},
    "iso_c": {"alpha": 1.3},
    "iso_cts": {"alpha": 0.9, "common_space_fraction": 0.6},
}


@pytest.mark.parametrize("method", sorted(CASES))
def test_in_process_mergekit(method, tasks, teacher_dir, tmp_path):
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    mergekit_plugins.load_plugins()
    cfg = write_config(tmp_path / "c.yaml", method, teacher_dir, tasks, **CASES[method])
    config = MergeConfiguration.model_validate(yaml.safe_load(cfg.read_text()))
    run_merge(config, str(tmp_path / "out"), options=MergeOptions(quiet=True))
    assert_merge_equals(tmp_path / "out", reference_merge(method, teacher_dir, tasks, **CASES[method]))


@pytest.mark.parametrize("method", sorted(CASES))
def test_cli_yaml_with_weights(method, tasks, teacher_dir, tmp_path):
    weights = [1.0, -0.5, 2.0]  # a negative weight negates that task before the method
    cfg = write_config(tmp_path / "c.yaml", method, teacher_dir, tasks, weights=weights, **CASES[method])
    assert cli.main(["yaml", str(cfg), str(tmp_path / "out"), "--quiet"]) == 0
    assert_merge_equals(
        tmp_path / "out", reference_merge(method, teacher_dir, tasks, weights=weights, **CASES[method])
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "out"]  # no staging dir left


def test_console_script_subprocess(tasks, teacher_dir, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "iso_c", teacher_dir, tasks, alpha=0.5)
    proc = subprocess.run(
        [sys.executable, "-m", "mergekit_plugins.cli", "yaml", str(cfg), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert_merge_equals(tmp_path / "out", reference_merge("iso_c", teacher_dir, tasks, alpha=0.5))


def _plain_mergekit_yaml(site_dir: Path, args: list[str], env_extra=None) -> subprocess.CompletedProcess:
    """What the `mergekit-yaml` console script runs, in an interpreter whose site-packages hold our .pth."""
    code = (
        "import site, sys; site.addsitedir(sys.argv[1]); "
        "from mergekit.scripts.run_yaml import main; sys.argv = ['mergekit-yaml'] + sys.argv[2:]; main()"
    )
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", code, str(site_dir), *args], capture_output=True, text=True, env=env
    )


def test_plain_mergekit_yaml_sees_methods_through_pth(tasks, teacher_dir, tmp_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / PTH.name).write_text(PTH.read_text())
    cfg = write_config(tmp_path / "c.yaml", "iso_cts", teacher_dir, tasks, alpha=1.1)
    proc = _plain_mergekit_yaml(site_dir, [str(cfg), str(tmp_path / "out")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_merge_equals(tmp_path / "out", reference_merge("iso_cts", teacher_dir, tasks, alpha=1.1))
    off = _plain_mergekit_yaml(
        site_dir, [str(cfg), str(tmp_path / "off")], env_extra={"MERGEKIT_PLUGINS_AUTOLOAD": "0"}
    )
    assert off.returncode != 0 and "Unimplemented merge method iso_cts" in off.stderr


def test_pth_imports_neither_torch_nor_mergekit(tmp_path):
    (tmp_path / PTH.name).write_text(PTH.read_text())
    code = (
        "import site, sys, time; t = time.perf_counter(); site.addsitedir(sys.argv[1]); "
        "dt = time.perf_counter() - t; "
        "print(sorted(m for m in ('torch', 'mergekit', 'pluggy', 'transformers') if m in sys.modules)); "
        "print(any(type(f).__name__ == 'MergekitRegistryHook' for f in sys.meta_path))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True"


def test_embeddings_merge_as_mean_unless_svd_embeddings():
    from mergekit.merge_methods import merge_state_dicts

    mergekit_plugins.load_plugins()
    g = torch.Generator().manual_seed(0)
    names = [
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.norm.weight",
    ]
    shapes = [(40, 8), (40, 8), (12, 8), (8,)]
    base = {n: torch.randn(s, generator=g, dtype=torch.float64) for n, s in zip(names, shapes)}
    tasks = [{n: t + 0.1 * torch.randn(t.shape, generator=g, dtype=torch.float64) for n, t in base.items()}]
    tasks.append(
        {n: t + 0.1 * torch.randn(t.shape, generator=g, dtype=torch.float64) for n, t in base.items()}
    )
    from references import ref_iso_c

    for svd_embeddings in (False, True):
        out = merge_state_dicts(
            {"base": base, "a": tasks[0], "b": tasks[1]},
            "iso_c",
            base="base",
            parameters={"alpha": 2.0, "svd_embeddings": svd_embeddings},
        )
        for n in names:
            deltas = [t[n] - base[n] for t in tasks]
            svd = base[n].ndim == 2 and (svd_embeddings or "layers" in n)
            merged = ref_iso_c(deltas) if svd else sum(deltas) / 2
            torch.testing.assert_close(out[n], base[n] + 2.0 * merged, msg=n)


def test_load_plugins_registers_idempotently():
    from mergekit.merge_methods import get, registered_methods

    from mergekit_plugins.methods import build_methods

    first = mergekit_plugins.load_plugins()
    assert mergekit_plugins.load_plugins() == first
    assert {"tsv", "iso_c", "iso_cts"} <= set(first)
    for name, method in build_methods().items():
        assert get(name) is method
    assert [m.spec.name for m in registered_methods()].count("tsv") == 1


def test_collision_with_mergekit_builtin_is_refused_with_a_warning():
    from mergekit.merge_methods import get
    from mergekit.merge_methods.base import FunctionalGroupMergeMethod, MergeMethodSpec

    from mergekit_plugins import plugins

    original = get("ties")
    fake_ties = FunctionalGroupMergeMethod(
        MergeMethodSpec(name="ties"), lambda group: group.entries[0].tensor
    )

    items = {
        "ties": PluginItem("ties", fake_ties, "evil", "evil-dist"),
        "not_a_method": PluginItem("not_a_method", "hello", "evil", "evil-dist"),
    }
    plugins._refused.difference_update(items)
    with pytest.warns(PluginWarning) as caught:
        names = plugins.register_into_mergekit(items)
    messages = [str(w.message) for w in caught]
    assert names == []
    assert any("'ties'" in m and "evil-dist" in m and "mergekit already has" in m for m in messages)
    assert any("'not_a_method'" in m and "not a mergekit MergeMethod" in m for m in messages)
    assert get("ties") is original
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused names warn once, not at every load
        plugins.register_into_mergekit(items)


def test_list_shows_every_method_with_distribution(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert "distill-ortho-merge" in by_name["tsv"] and "common_space_fraction = 0.8" in by_name["iso_cts"]
    assert "mergekit" in by_name["ties"] and "distill-ortho-merge" not in by_name["ties"]
    assert "alpha = 1.0" in by_name["iso_c"] and "weight [non_base] = 1.0" in by_name["tsv"]


def test_output_dtype_follows_config(tasks, teacher_dir, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "tsv", teacher_dir, tasks, alpha=1.0)
    cfg.write_text(cfg.read_text().replace("dtype: float32", "dtype: bfloat16"))
    assert cli.main(["yaml", str(cfg), str(tmp_path / "out"), "--quiet"]) == 0
    got = state_dict(tmp_path / "out")
    expected = reference_merge("tsv", teacher_dir, tasks)
    name = "model.layers.0.mlp.up_proj.weight"
    assert got[name].dtype == torch.bfloat16
    torch.testing.assert_close(got[name].double(), expected[name], rtol=2e-2, atol=2e-3)
