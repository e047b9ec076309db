"""`distillguard diagnose` on constructed cases where the right value is known."""

from __future__ import annotations

import json
import math

import pytest
import torch

from distill_ortho_merge import testing as tiny
from distill_ortho_merge.cli import InputError
from trl_distillguard.diagnose import DiagnoseConfig, _aligned_ratios, diagnose, main, score_texts
from trl_distillguard.loading import load_causal_lm

PROMPTS = ["What is 3 + 4?", "Reverse abc:", "the teacher"]
TEXTS = [" The answer is 7. #### 7", " cba. Sort abc: abc.", " model learns from the student"]


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("diag") / "prompts.jsonl"
    rows = [{"prompt": f"What is {a} + {a}?", "answer": str(2 * a)} for a in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _cfg(teacher, student, data, out, **kw):
    base = dict(max_new_tokens=8, num_samples=2, top_k=5, batch_size=4)
    return DiagnoseConfig(
        teacher_model_name_or_path=str(teacher), student_model_name_or_path=str(student),
        dataset_name_or_path=str(data), output_dir=str(out), **{**base, **kw},
    )  # fmt: skip


def ref_logp(model, tok, prompt: str, text: str, add_eos: bool) -> float:
    """Slow reference: one unbatched forward, completion tokenised on its own, log-probs summed in a loop."""
    p = tok(prompt)["input_ids"]
    c = tok(text, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if add_eos else [])
    with torch.no_grad():
        logits = model(torch.tensor([p + c])).logits[0].double()
    total = 0.0
    for j, token in enumerate(c):
        total += torch.log_softmax(logits[len(p) + j - 1], -1)[token].item()
    return total


def test_identical_teacher_and_student_have_zero_gap(teacher_dir, prompts_file, tmp_path):
    result = diagnose(_cfg(teacher_dir, teacher_dir, prompts_file, tmp_path / "same", verifier="math_answer"))
    gap, off = result["teacher_student_gap"], result["off_policy"]
    assert result["shared_vocabulary"]
    assert gap["kl_per_token"] == pytest.approx(0.0, abs=1e-6)
    assert gap["log_ratio_per_byte"] == pytest.approx(0.0, abs=1e-6)
    assert gap["exact_reverse_kl_per_token"] == pytest.approx(0.0, abs=1e-6)
    assert off["gap"] == pytest.approx(0.0, abs=1e-6) and off["exact_forward_kl"]["gap"] == pytest.approx(
        0, abs=1e-6
    )
    assert {p.name for p in (tmp_path / "same").iterdir()} == {"diagnose.json", "diagnose.png"}
    on_disk = json.loads((tmp_path / "same" / "diagnose.json").read_text())
    over = on_disk["symptoms"]["student"]["overconfidence"]
    assert over["n_wrong"] + over["n_right"] == result["n_samples_per_model"] == 8
    assert 0 < on_disk["tail_noise"]["mean_tail_mass"] < 1


def test_cross_tokenizer_gap_equals_sequence_log_ratio(teacher_dir, student_dir):
    """Σ over byte-aligned spans of (log q − log p) is exactly log q(y) − log p(y), each model on its own tokens."""
    teacher, t_tok = load_causal_lm(str(teacher_dir), "t")
    student, s_tok = load_causal_lm(str(student_dir), "s")
    eos = [True, False, True]
    s_scored = score_texts(student, s_tok, PROMPTS, TEXTS, eos, top_k=5, keep_full=False, batch_size=2)
    t_scored = score_texts(teacher, t_tok, PROMPTS, TEXTS, eos, top_k=5, keep_full=False, batch_size=3)
    for i, (prompt, text) in enumerate(zip(PROMPTS, TEXTS)):
        ratios = _aligned_ratios(s_scored[i], t_scored[i])
        expected = ref_logp(student, s_tok, prompt, text, eos[i]) - ref_logp(
            teacher, t_tok, prompt, text, eos[i]
        )
        assert float(ratios.sum()) == pytest.approx(expected, abs=1e-4)
        assert len(ratios) <= min(len(s_scored[i].ids), len(t_scored[i].ids))
    # The tokenizers really differ on these texts (otherwise this test would not test the alignment).
    assert any(len(s.ids) != len(t.ids) for s, t in zip(s_scored, t_scored))


def metaspace_tokenizer():
    """A SentencePiece-style (Metaspace) BPE tokenizer, like Gemma's: not ByteLevel, so TRL GOLD has no offsets."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    alphabet = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>", "<eos>", *alphabet], show_progress=False
    )
    tok.train_from_iterator(tiny.corpus(3, mix=(0.3, 0.4, 0.3)), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>", unk_token="<unk>"
    )


def test_gap_with_a_sentencepiece_style_student_equals_sequence_log_ratio(teacher_dir):
    """Byte offsets from character offsets (non-ByteLevel tokenizers, e.g. Gemma's): the same exact identity."""
    teacher, t_tok = load_causal_lm(str(teacher_dir), "t")
    s_tok = metaspace_tokenizer()
    student = tiny.make_student(s_tok, seed=4)
    texts = [*TEXTS[:2], " naïve café — done"]  # multi-byte characters go through byte-fallback pieces
    eos = [True, False, True]
    s_scored = score_texts(student, s_tok, PROMPTS, texts, eos, top_k=5, keep_full=False, batch_size=2)
    t_scored = score_texts(teacher, t_tok, PROMPTS, texts, eos, top_k=5, keep_full=False, batch_size=3)
    for i, (prompt, text) in enumerate(zip(PROMPTS, texts)):
        ratios = _aligned_ratios(s_scored[i], t_scored[i])
        expected = ref_logp(student, s_tok, prompt, text, eos[i]) - ref_logp(
            teacher, t_tok, prompt, text, eos[i]
        )
        assert float(ratios.sum()) == pytest.approx(expected, abs=1e-4)
    assert any(
        "<0x" in t for t in s_tok.convert_ids_to_tokens(s_scored[2].ids)
    )  # byte fallback was exercised


def test_scoring_does_not_depend_on_batching(teacher_dir):
    teacher, tok = load_causal_lm(str(teacher_dir), "t")
    one = score_texts(teacher, tok, PROMPTS, TEXTS, [True] * 3, top_k=5, keep_full=False, batch_size=1)
    many = score_texts(teacher, tok, PROMPTS, TEXTS, [True] * 3, top_k=5, keep_full=False, batch_size=3)
    for a, b in zip(one, many):
        assert torch.allclose(a.logps, b.logps, atol=1e-5) and a.ids == b.ids


def test_tail_mass_orders_peaked_original_flat(teacher_dir, tokenizer_a):
    base, tok = load_causal_lm(str(teacher_dir), "t")
    flat = tiny.make_teacher(tokenizer_a)
    flat.load_state_dict(base.state_dict())
    peaked = tiny.make_teacher(tokenizer_a)
    peaked.load_state_dict(base.state_dict())
    with torch.no_grad():
        flat.lm_head.weight.zero_()  # every logit 0: the uniform distribution
        peaked.lm_head.weight.mul_(40.0)  # temperature 1/40: almost all mass on the argmax
    k = 5
    means = {}
    for name, model in {"peaked": peaked, "original": base, "flat": flat}.items():
        scored = score_texts(
            model.eval(), tok, PROMPTS, TEXTS, [False] * 3, top_k=k, keep_full=False, batch_size=3
        )
        mass = torch.cat([s.tail_mass for s in scored])
        means[name] = float(mass.mean())
        if name == "flat":
            v = len(tok)
            assert torch.allclose(mass, torch.full_like(mass, (v - k) / v), atol=1e-5)
            ent = torch.cat([s.tail_entropy for s in scored])
            assert torch.allclose(ent, torch.full_like(ent, math.log(v - k)), atol=1e-4)
    assert means["peaked"] < means["original"] < means["flat"]


@pytest.mark.parametrize("case", ["not_a_model", "empty", "no_prompt_column"])
def test_bad_input_one_line_nothing_written(case, teacher_dir, student_dir, prompts_file, tmp_path, capsys):
    data = tmp_path / "data.jsonl"
    data.write_text(
        {"empty": "", "no_prompt_column": '{"question": "x"}\n'}.get(case, prompts_file.read_text())
    )
    teacher = prompts_file if case == "not_a_model" else teacher_dir
    argv = ["--teacher_model_name_or_path", str(teacher), "--student_model_name_or_path", str(student_dir),
            "--dataset_name_or_path", str(data), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("distillguard diagnose: error:")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]


def test_config_validation():
    with pytest.raises(ValueError, match="temperature"):
        DiagnoseConfig(temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        DiagnoseConfig(top_k=0)
    with pytest.raises(InputError, match="required"):
        diagnose(DiagnoseConfig())
