"""Plugin discovery: built-ins through entry points, fake third-party plugins, broken ones skipped loudly."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

from distill_ortho_merge.registry import PROJECT_DISTRIBUTION, PluginRegistry, PluginWarning

PACKAGES = {
    "distill_ortho_merge": ("distill_ortho_merge_verifiers", "DISTILL_ORTHO_MERGE_THIRD_PARTY"),
    "trl_distillguard": ("trl_distillguard_rewards", "TRL_DISTILLGUARD_THIRD_PARTY"),
    "peft_orthoreg": ("peft_orthoreg_regularizers", "PEFT_ORTHOREG_THIRD_PARTY"),
    "mergekit_plugins": ("mergekit_plugins_merge_methods", "MERGEKIT_PLUGINS_THIRD_PARTY"),
}


def fresh_registry(group: str) -> PluginRegistry:
    hook, env = PACKAGES[group]
    return PluginRegistry(group, importlib.import_module(f"{group}.hookspecs"), hook, env_var=env)


def install_fake_dist(root, group: str, dist: str, module_source: str, ep_name: str = "fake") -> None:
    """A minimal installed distribution (a .dist-info with an entry point) plus its module, under `root`."""
    module = f"{dist.replace('-', '_')}_{root.name}"  # unique per test: sys.modules caches by name
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{ep_name} = {module}\n")


GOOD = """
from {group}.hookspecs import hookimpl

@hookimpl
def {hook}():
    return {{"third_party_item": "hello", {extra}}}
"""


@pytest.mark.parametrize("group", sorted(set(PACKAGES) - {"trl_distillguard"}))
def test_builtins_are_entry_points_of_the_group(group):
    eps = importlib.metadata.entry_points(group=group)
    ours = [ep for ep in eps if ep.dist is not None and ep.dist.name == PROJECT_DISTRIBUTION]
    assert [ep.name for ep in ours] == ["builtin"]
    assert ours[0].value == f"{group}.builtin_plugin"
    reg = fresh_registry(group)
    names = reg.load_plugins()
    assert reg.plugins()["builtin"] == PROJECT_DISTRIBUTION
    assert all(reg.registry()[n].builtin for n in names)
    # The package-level API discovers the same items, and a second call registers nothing new.
    package = importlib.import_module(group)
    first = package.load_plugins()
    assert set(names) <= set(first)
    before = dict(package.registry())
    package.load_plugins()
    assert package.registry() == before


@pytest.mark.parametrize("group", sorted(PACKAGES))
def test_third_party_entry_point_is_discovered(group, tmp_path, monkeypatch):
    hook, _ = PACKAGES[group]
    install_fake_dist(tmp_path, group, "fakeplug", GOOD.format(group=group, hook=hook, extra=""))
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = fresh_registry(group)
    names = reg.load_plugins()
    assert "third_party_item" in names
    item = reg.registry()["third_party_item"]
    assert (item.obj, item.plugin, item.distribution, item.builtin) == ("hello", "fake", "fakeplug", False)
    assert reg.load_plugins() == names  # idempotent


def test_third_party_can_be_switched_off(tmp_path, monkeypatch):
    group = "peft_orthoreg"
    hook, env = PACKAGES[group]
    install_fake_dist(tmp_path, group, "fakeplug", GOOD.format(group=group, hook=hook, extra=""))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(env, "0")
    reg = fresh_registry(group)
    assert "third_party_item" not in reg.load_plugins()
    assert "fake" not in reg.plugins() and "builtin" in reg.plugins()


def test_broken_plugins_are_reported_and_skipped(tmp_path, monkeypatch):
    group = "mergekit_plugins"
    hook, _ = PACKAGES[group]
    install_fake_dist(
        tmp_path, group, "broken-import", "raise ImportError('no such dependency: xyz')\n", "bad"
    )
    install_fake_dist(
        tmp_path,
        group,
        "raising-hook",
        f"from {group}.hookspecs import hookimpl\n\n@hookimpl\ndef {hook}():\n    raise RuntimeError('boom')\n",
        "raiser",
    )
    install_fake_dist(tmp_path, group, "good-one", GOOD.format(group=group, hook=hook, extra=""), "good")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = fresh_registry(group)
    with pytest.warns(PluginWarning) as caught:
        names = reg.load_plugins()
    messages = [str(w.message) for w in caught]
    assert any(
        "'bad' from broken-import failed to load" in m and "no such dependency: xyz" in m for m in messages
    )
    assert any("'raiser' from raising-hook" in m and "RuntimeError: boom" in m for m in messages)
    assert "third_party_item" in names and reg.plugins()["builtin"] == PROJECT_DISTRIBUTION


def test_duplicate_names_keep_the_first_and_warn(tmp_path, monkeypatch):
    group = "distill_ortho_merge"
    hook, _ = PACKAGES[group]

    from distill_ortho_merge.hookspecs import hookimpl

    class First:
        @hookimpl
        def distill_ortho_merge_verifiers(self):
            return {"shared": 1}

    reg = fresh_registry(group)
    reg.register(First(), name="first", distribution="first-dist")
    install_fake_dist(
        tmp_path, group, "second-dist", GOOD.format(group=group, hook=hook, extra='"shared": 2')
    )
    # Same entry-point name as our built-in, from another distribution: must not replace it.
    install_fake_dist(tmp_path, group, "impostor", GOOD.format(group=group, hook=hook, extra=""), "builtin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(PluginWarning) as caught:
        reg.load_plugins()
    messages = [str(w.message) for w in caught]
    assert any("'shared' is already provided by first-dist" in m for m in messages)
    assert any("'builtin' from impostor skipped" in m for m in messages)
    assert reg.registry()["shared"].obj == 1
    assert reg.plugins()["builtin"] == PROJECT_DISTRIBUTION


def test_direct_registration_and_get():
    reg = fresh_registry("peft_orthoreg")
    from peft_orthoreg.hookspecs import hookimpl

    class Mine:
        @hookimpl
        def peft_orthoreg_regularizers(self):
            return {"mine": 42}

    reg.register(Mine(), name="mine")
    assert reg.get("mine") == 42
    with pytest.raises(KeyError, match="no item named 'nope'"):
        reg.get("nope")


@pytest.mark.parametrize("script", ["distillguard", "peft-orthoreg", "mergekit-plugins"])
def test_console_scripts_answer_help_and_version(script):
    module = {"distillguard": "trl_distillguard", "peft-orthoreg": "peft_orthoreg"}.get(
        script, "mergekit_plugins"
    )
    for flag in ("--help", "--version"):
        out = subprocess.run(
            [sys.executable, "-m", f"{module}.cli", flag], capture_output=True, text=True, check=True
        ).stdout
        assert script in out


def test_datasets_and_instruction_checks_come_through_the_hooks(tmp_path, monkeypatch):
    """A third-party plugin adds a prompt set and an IFEval-style check; the loader and the verifier use them."""
    from distill_ortho_merge import plugins as P
    from distill_ortho_merge.data import load_dataset_rows
    from distill_ortho_merge.verifiers import instruction_following

    source = """
    from distill_ortho_merge.hookspecs import hookimpl

    @hookimpl
    def distill_ortho_merge_datasets():
        return {"shout": lambda size, seed: [{"prompt": "say hi", "instruction_id_list": ["x:upper"]}] * size}

    @hookimpl
    def distill_ortho_merge_instruction_checks():
        return {"x:upper": lambda text, **_: text.isupper()}
    """
    install_fake_dist(tmp_path, "distill_ortho_merge", "shoutplug", source)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("dataset_registry", "instruction_check_registry"):
        reg = getattr(P, name)
        monkeypatch.setattr(
            P, name, PluginRegistry("distill_ortho_merge", P.hookspecs, reg.hook, env_var=reg.env_var)
        )
    assert load_dataset_rows("shout", size=2)[1]["prompt"] == "say hi"
    assert "arithmetic" in P.datasets()  # the built-ins still load
    scores = instruction_following(["say hi"] * 2, ["HELLO", "hello"], instruction_id_list=[["x:upper"]] * 2)
    assert scores == [1.0, 0.0]


def test_trl_rewards_and_shared_verifiers_resolve_together(tmp_path, monkeypatch):
    """A third-party TRL reward is found by `resolve_reward` next to the shared verifiers, and never shadows one."""
    from trl_distillguard import plugins as P

    hook, env = PACKAGES["trl_distillguard"]
    install_fake_dist(
        tmp_path,
        "trl_distillguard",
        "rewardplug",
        GOOD.format(group="trl_distillguard", hook=hook, extra='"math_answer": "impostor"'),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(
        P, "plugin_registry", PluginRegistry("trl_distillguard", P.hookspecs, hook, env_var=env)
    )
    P.load_plugins()
    assert P.resolve_reward("third_party_item") == "hello"
    assert P.registry()["math_answer"].builtin and callable(P.resolve_reward("math_answer"))
