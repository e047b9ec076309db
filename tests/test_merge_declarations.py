"""A third-party merge method, defined here, declares what it can do, and the commands read that declaration:
`lora-merge` runs its factor kernel, `search-alpha` sweeps its scale in memory, `list` / `plugins` show both."""

from __future__ import annotations

import json
from typing import Annotated

import pytest
import torch
from lora_fixtures import ADAPTERS, config, make_adapter, peft_deltas, save_base, state_dict
from merge_helpers import save_task_models, write_config
from merge_helpers import state_dict as weights_of
from mergekit.merge_methods.base import BasePolicy, InputContract, PerNonBase, TensorGroup
from mergekit.merge_methods.easy_define import merge_method

from distill_ortho_merge.registry import PluginRegistry, PluginWarning
from mergekit_plugins import cli, hookspecs
from mergekit_plugins import plugins as P
from mergekit_plugins.hookspecs import MergeMethodDeclaration, hookimpl
from mergekit_plugins.lora import lora_merge, merge_factors
from mergekit_plugins.search import search_alpha
from mergekit_plugins.search_config import SearchAlphaConfig

UP = "model.layers.0.mlp.up_proj.weight"
DIST = "scaled-sum-plugin"


def scaled_sum(
    group: TensorGroup,
    weight: PerNonBase[Annotated[float, None]] = 1.0,
    alpha: float = 1.0,
    factor: float = 0.5,
) -> torch.Tensor:
    """θ₀ + alpha · factor · Σ w_t Δ_t (the kernel of a mergekit method a third-party package would ship)."""
    base = group.base.tensor
    delta = sum(weight[e.id] * (e.tensor.float() - base.float()) for e in group.non_base)
    return (base.float() + alpha * factor * delta).to(base.dtype)


def scaled_sum_method(name: str = "scaled_sum"):
    return merge_method(
        scaled_sum, name=name, contract=InputContract(base=BasePolicy.REQUIRED, min_non_base=1)
    )


def scaled_sum_kernel(factors, weights, *, factor=0.5):
    """The same merge in factor space: [factor·w_t·B_t] side by side, [A_t] stacked."""
    left = torch.cat([factor * w * b for (b, _), w in zip(factors, weights, strict=True)], 1)
    return left, torch.cat([a for _, a in factors], 0)


class ScaledSumPlugin:
    @hookimpl
    def mergekit_plugins_merge_methods(self):
        return {
            "scaled_sum": MergeMethodDeclaration(
                "scaled_sum",
                method=scaled_sum_method(),
                scales_linearly=True,
                factor_kernel=scaled_sum_kernel,
                factor_parameters={"factor": 0.5},
            )
        }


class OldShapePlugin:
    """The older shape: a bare mergekit method, which declares nothing."""

    @hookimpl
    def mergekit_plugins_merge_methods(self):
        return {"bare_sum": scaled_sum_method("bare_sum"), "not_a_method": "hello"}


@pytest.fixture
def third_party(monkeypatch):
    """A fresh registry holding the built-ins and the plugins above; mergekit's registry restored afterwards."""
    from mergekit.merge_methods import registry as mk_registry

    monkeypatch.setattr(mk_registry, "_METHODS", dict(mk_registry._METHODS))
    fresh = PluginRegistry(
        P.GROUP,
        hookspecs,
        P.plugin_registry.hook,
        env_var=P.THIRD_PARTY_ENV,
        coerce=P.as_declaration,
    )
    fresh.register(ScaledSumPlugin(), name="scaled", distribution=DIST)
    fresh.register(OldShapePlugin(), name="old", distribution="old-plugin")
    monkeypatch.setattr(P, "plugin_registry", fresh)
    with pytest.warns(PluginWarning, match="'not_a_method' skipped: it is a str, not a mergekit MergeMethod"):
        P.load_plugins()
    return fresh


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="needs scales_linearly=True"):
        MergeMethodDeclaration("x", factor_kernel=scaled_sum_kernel)
    with pytest.raises(TypeError, match="factor_kernel must be callable"):
        MergeMethodDeclaration("x", scales_linearly=True, factor_kernel="nope")
    with pytest.raises(ValueError, match="declaration is named 'y'"):
        P.as_declaration("x", MergeMethodDeclaration("y"))


def test_old_shape_registers_without_capabilities(third_party):
    from mergekit.merge_methods import registry as mk_registry

    declared = P.declarations()
    assert (
        declared["bare_sum"].capabilities() == []
        and mk_registry.get("bare_sum") is declared["bare_sum"].method
    )
    assert {"tsv", "iso_c", "iso_cts", "task_arithmetic", "scaled_sum"} <= set(P.factor_methods())
    assert "bare_sum" not in P.factor_methods() and P.linear_scale_parameter("bare_sum") is None


def test_lora_merge_runs_a_third_party_factor_kernel(third_party, student_dir, tmp_path):
    base = save_base(student_dir, tmp_path / "base", torch.float32)
    adapters = [make_adapter(base, tmp_path / n, seed=i, **ADAPTERS[n]) for i, n in enumerate(("a", "b"))]
    weights, alpha, factor = [1.0, -0.5], 0.7, 0.25
    summary = lora_merge(
        config(base, adapters, "scaled_sum", weights, alpha=alpha, factor=factor),
        tmp_path / "out",
        progress=False,
    )
    assert summary["method"] == "scaled_sum"
    theta0, deltas = state_dict(base), [peft_deltas(base, a) for a in adapters]
    got = state_dict(base, tmp_path / "out")  # stock PEFT: merge_and_unload of the written adapter
    for name, value in got.items():
        merged = sum(w * d[name] for w, d in zip(weights, deltas, strict=True) if name in d)
        expected = theta0[name].double() + alpha * factor * merged
        torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=2e-5, msg=name)
    assert any(name in d for d in deltas for name in got)  # the adapters did change something
    # merge_factors reads the same declaration; a parameter the kernel does not declare is refused
    b, a = merge_factors("scaled_sum", [(torch.ones(3, 1), torch.ones(1, 2))], [2.0], factor=0.5)
    assert torch.equal(b @ a, torch.ones(3, 2))
    with pytest.raises(ValueError, match="takes no parameter rank_rtol"):
        merge_factors("scaled_sum", [(torch.ones(3, 1), torch.ones(1, 2))], rank_rtol=0.1)


def test_lora_merge_refuses_a_method_without_kernel_and_bad_kernel_parameters(third_party, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    for params, method, needle in [
        ({}, "bare_sum", "merge_method 'bare_sum' is not factorable"),
        ({"factor": "big"}, "scaled_sum", "parameters.factor must be a finite number, got 'big'"),
        (
            {"rank_rtol": 0.1},
            "scaled_sum",
            "parameters.rank_rtol is not supported by lora-merge for merge_method",
        ),
    ]:
        cfg.write_text(json.dumps(config(tmp_path, [tmp_path], method, **params)))
        assert cli.main(["lora-merge", str(cfg), str(tmp_path / "out"), "--no-progress"]) == 2
        assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


TARGET = {}


def peaked_eval(model, tokenizer):
    """Peaks where the up-projection equals TARGET[UP]."""
    w = dict(model.named_parameters())[UP].detach().double()
    return {"peak": float(-((w - TARGET[UP]) ** 2).sum())}


def test_search_alpha_sweeps_a_third_party_method_in_memory(
    third_party, teacher_dir, make_finetuned_copies, tmp_path, capsys
):
    tasks = save_task_models(tmp_path, teacher_dir, make_finetuned_copies, n=2)
    cfg = write_config(tmp_path / "c.yaml", "scaled_sum", teacher_dir, tasks, weights=[1.0, 2.0], factor=0.5)
    theta0, ft = weights_of(teacher_dir), [weights_of(t) for t in tasks]

    def reference(alpha):  # θ₀ + α·½·Σ w_t Δ_t, computed here
        delta = ft[0][UP].double() - theta0[UP].double() + 2.0 * (ft[1][UP].double() - theta0[UP].double())
        return theta0[UP].double() + alpha * 0.5 * delta

    TARGET[UP] = reference(1.4)
    report = search_alpha(
        SearchAlphaConfig(
            config=str(cfg),
            eval="test_merge_declarations:peaked_eval",
            grid="0.2:2.0:0.2",
            output_json=str(tmp_path / "alpha.json"),
            progress=False,
        )
    )
    assert report["merge_method"] == "scaled_sum" and report["parameter"] == "alpha"
    assert report["best"]["alpha"] == pytest.approx(1.4)
    for r in report["results"]:
        expected = float(-((reference(r["alpha"]) - TARGET[UP]) ** 2).sum())
        assert r["scores"]["peak"] == pytest.approx(expected, rel=1e-4, abs=1e-9)
    # the bare method declares no linear scale: refused before any merge
    write_config(tmp_path / "bare.yaml", "bare_sum", teacher_dir, tasks)
    assert cli.main(["search-alpha", str(tmp_path / "bare.yaml"), "--eval", "x:y"]) == 2
    assert "'bare_sum' is not of the form θ₀ + α·merged; search-alpha supports" in capsys.readouterr().err


def test_listings_show_the_declared_capabilities(third_party, capsys):
    assert cli.main(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert DIST in rows["scaled_sum"] and "θ₀ + alpha·merged, factor kernel" in rows["scaled_sum"]
    assert "θ₀ + lambda·merged, factor kernel" in rows["task_arithmetic"]
    assert "θ₀ + lambda·merged" in rows["ties"] and "factor kernel" not in rows["ties"]
    assert "old-plugin" in rows["bare_sum"] and "merged" not in rows["bare_sum"]
    assert cli.main(["plugins"]) == 0
    lines = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["scaled_sum"] == f"{DIST}\tscaled\tθ₀ + alpha·merged, factor kernel"
    assert lines["bare_sum"] == "old-plugin\told\t-"
