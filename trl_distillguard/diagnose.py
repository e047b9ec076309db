"""`distillguard diagnose`: the distillation traps of one (teacher, student) pair, as `diagnose.json` + `diagnose.png`.

Both models sample completions for the prompts (temperature `temperature`, default 1 so that sample means are
unbiased KL estimates); each model then scores every text with its **own** tokenizer (prompt tokens + completion
tokens + EOS when the sampler stopped with EOS). Completion tokens carry UTF-8 byte offsets from TRL GOLD's
`encode_with_byte_offsets`, and the two tokenizations are aligned with GOLD's `ULDLoss._align_by_byte_offsets`
(spans where both tokenizers end a token on the same byte). The formulas live in `trl_distillguard.traps`:

- tail noise (teacher samples): mean over positions of m_k = Σ_{v∉top-k} p(v) and of the tail entropy;
- teacher–student gap (student samples): per aligned span r_g = log q(span) − log p(span); `kl_per_token`
  = Σ r_g / #student tokens (a sample estimate of the per-token reverse KL(q ‖ p)); `log_ratio_per_byte` = mean of
  (log q(y) − log p(y)) / bytes(y); with one shared vocabulary also the exact per-position KL(q ‖ p);
- off-policy instability: the same per-byte loss ℓ(y) = Σ_g |r_g| / bytes(y) on the teacher's samples (what
  off-policy distillation trains on) and on the student's own samples; gap = on − off (with a shared vocabulary,
  also the exact per-position KL(p ‖ q), the student's KD loss, on both);
- symptoms (both models' samples): repeated word n-gram rate, degenerate-token rate, overconfidence (mean max
  probability on wrong answers, with a verifier), self-correction markers followed by a changed answer.

Example:
    $ distillguard diagnose --config examples/configs/diagnose_tiny.yaml
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from distill_ortho_merge.cli import InputError, run_cli
from distill_ortho_merge.evaluate import _columns, load_rows, prompts_of
from distill_ortho_merge.generation import generate, tokenize_prompt
from distill_ortho_merge.outputs import atomic_output_dir, check_output_dir, json_safe
from distill_ortho_merge.progress import progress
from distill_ortho_merge.tokenization import right_pad
from trl_distillguard import traps
from trl_distillguard.diagnose_config import DiagnoseConfig
from trl_distillguard.diagnose_plot import plot_diagnosis
from trl_distillguard.loading import load_causal_lm
from trl_distillguard.plugins import resolve_reward


# ------------------------------------------------------------------------------------------------ scoring
@dataclass
class Scored:
    """One text scored by one model: completion token ids, byte offsets, per-token log-prob / max-prob, and the
    full log-distributions when asked for (shared-vocabulary KL).

    Example:
        >>> from distill_ortho_merge.testing import make_teacher, tokenizer_a
        >>> tok = tokenizer_a()
        >>> model = make_teacher(tok)
        >>> s = score_texts(model, tok, ["q"], [" 2"], [True], top_k=10, keep_full=False, batch_size=8)[0]
        >>> len(s.ids) == len(s.logps) == len(s.tail_mass), s.ids[-1] == tok.eos_token_id, s.full_logp is None
        (True, True, True)
    """

    ids: list[int]
    offsets: list[tuple[int, int]]
    logps: torch.Tensor
    max_prob: torch.Tensor
    tail_mass: torch.Tensor
    tail_entropy: torch.Tensor
    full_logp: torch.Tensor | None
    n_bytes: int


def _encode_completion(tokenizer, text: str, add_eos: bool) -> tuple[list[int], list[tuple[int, int]]]:
    from trl.experimental.utils import encode_with_byte_offsets

    try:
        [(ids, offsets)] = encode_with_byte_offsets(
            tokenizer.backend_tokenizer, [text], add_special_tokens=False
        )
    except (NotImplementedError, AttributeError):
        ids, offsets = _char_offsets_as_bytes(tokenizer, text)  # SentencePiece-style (Gemma, Llama 2, ...)
    if add_eos:  # EOS covers no bytes: GOLD's convention (len, len)
        n = len(text.encode("utf-8"))
        ids, offsets = [*ids, tokenizer.eos_token_id], [*offsets, (n, n)]
    return list(ids), [tuple(o) for o in offsets]


def _char_offsets_as_bytes(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Byte offsets of a non-ByteLevel fast tokenizer's tokens, from its character offsets (TRL GOLD computes
    them for ByteLevel-BPE only). Byte-fallback tokens that share one character's span get one byte each; the
    token ends must then rise to the text's last byte, else the texts cannot be aligned (one-line error)."""
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(
            f"diagnose needs a fast tokenizer for byte offsets; {tokenizer.name_or_path!r} is not one"
        )
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, char_spans = list(enc["input_ids"]), list(enc["offset_mapping"])
    to_byte = [0]
    for ch in text:
        to_byte.append(to_byte[-1] + len(ch.encode("utf-8")))
    spans = [(to_byte[a], to_byte[b]) for a, b in char_spans]
    i = 0
    while i < len(spans):  # runs of tokens on one multi-byte character: byte-fallback pieces, one byte each
        j = i
        while j + 1 < len(spans) and spans[j + 1] == spans[i]:
            j += 1
        start, end = spans[i]
        if j > i and end - start == j - i + 1:
            spans[i : j + 1] = [(start + k, start + k + 1) for k in range(j - i + 1)]
        i = j + 1
    ends = [e for _, e in spans]
    if ends != sorted(ends) or (ends and ends[-1] != to_byte[-1]):
        raise InputError(
            f"diagnose aligns texts by byte offsets, and {tokenizer.name_or_path!r} gives offsets that do not "
            "cover the text in order"
        )
    return ids, spans


@torch.no_grad()
def score_texts(
    model, tokenizer, prompts, completions, eos_flags, *, top_k: int, keep_full: bool, batch_size: int,
    desc: str | None = None,
):  # fmt: skip
    """Score each (prompt, completion) with `model`'s own tokenizer; returns one `Scored` per text.

    Example:
        >>> from distill_ortho_merge.testing import make_teacher, tokenizer_a
        >>> tok = tokenizer_a()
        >>> scored = score_texts(make_teacher(tok), tok, ["q", "q"], [" 2", " 3 4"], [True, False], top_k=10,
        ...                      keep_full=True, batch_size=16)
        >>> [len(s.tail_mass) == len(s.ids) for s in scored], scored[0].full_logp.shape[-1] == len(tok)
        ([True, True], True)
    """
    items = []
    for prompt, text, eos in zip(prompts, completions, eos_flags, strict=True):
        p_ids = tokenize_prompt(tokenizer, prompt)
        c_ids, offsets = _encode_completion(tokenizer, text, eos)
        items.append((p_ids, c_ids, offsets, len(text.encode("utf-8"))))
    out: list[Scored] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in progress(range(0, len(items), batch_size), desc, show=desc is not None, leave=False):
        batch = items[start : start + batch_size]
        input_ids, mask = right_pad([p + c for p, c, _, _ in batch], pad)
        logits = (
            model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device))
            .logits.float()
            .cpu()
        )
        for i, (p_ids, c_ids, offsets, n_bytes) in enumerate(batch):
            if not c_ids:
                out.append(Scored([], [], *(torch.zeros(0),) * 4, None, n_bytes))
                continue
            # logits at t predict token t+1: completion token j sits at len(p)+j, predicted from len(p)+j-1
            rows = logits[i, len(p_ids) - 1 : len(p_ids) - 1 + len(c_ids)]
            logp = torch.log_softmax(rows, -1)
            tail = traps.tail_stats(rows, top_k)
            out.append(
                Scored(
                    ids=c_ids,
                    offsets=offsets,
                    logps=logp.gather(-1, torch.tensor(c_ids)[:, None])[:, 0],
                    max_prob=logp.max(-1).values.exp(),
                    tail_mass=tail["tail_mass"],
                    tail_entropy=tail["tail_entropy"],
                    full_logp=logp if keep_full else None,
                    n_bytes=n_bytes,
                )
            )
    return out


def _aligned_ratios(student: Scored, teacher: Scored) -> torch.Tensor:
    from trl.experimental.gold.gold_trainer import ULDLoss

    if not student.ids or not teacher.ids:
        return torch.zeros(0, dtype=torch.float64)
    s_groups, t_groups = ULDLoss._align_by_byte_offsets(student.offsets, teacher.offsets)
    return traps.grouped_log_ratio(student.logps, teacher.logps, s_groups, t_groups)


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else float("nan")


def _symptoms(texts, ids, max_probs, correct, cfg: DiagnoseConfig) -> dict[str, Any]:
    out: dict[str, Any] = {
        "repeated_ngram_rate": _mean([traps.repeated_ngram_rate(t.split(), cfg.ngram_n) for t in texts]),
        "degenerate_token_rate": _mean([traps.degenerate_token_rate(i, cfg.degenerate_min_run) for i in ids]),
        "self_correction": traps.self_correction(texts, cfg.markers),
    }
    if correct is not None:
        out["overconfidence"] = traps.overconfidence(
            [float(m.mean()) if m.numel() else 0.0 for m in max_probs], correct
        )
        out["accuracy"] = _mean([float(c) for c in correct])
    return out


def diagnose(cfg: DiagnoseConfig) -> dict[str, Any]:
    """Compute every trap metric for the pair and write `diagnose.json` and `diagnose.png` into `output_dir`.

    Usage: ``diagnose(DiagnoseConfig(teacher_model_name_or_path="t", student_model_name_or_path="s",
    dataset_name_or_path="eval.jsonl", output_dir="diag"))["off_policy"]["gap"]`` (it samples and scores two
    models, too slow for a doctest: `tests/test_diagnose.py` runs it on tiny models).
    """
    for name in (
        "teacher_model_name_or_path",
        "student_model_name_or_path",
        "dataset_name_or_path",
        "output_dir",
    ):
        if not getattr(cfg, name):
            raise InputError(f"{name}: required")
    inputs = [cfg.teacher_model_name_or_path, cfg.student_model_name_or_path, cfg.dataset_name_or_path]
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir, inputs=inputs)  # before any work
    rows = load_rows(cfg.dataset_name_or_path, "dataset_name_or_path")[: cfg.max_prompts]
    prompts = prompts_of(rows, cfg.prompt_column, "dataset")
    verifier = resolve_reward(cfg.verifier, "verifier") if cfg.verifier else None
    teacher, t_tok = load_causal_lm(cfg.teacher_model_name_or_path, "teacher_model_name_or_path")
    student, s_tok = load_causal_lm(cfg.student_model_name_or_path, "student_model_name_or_path")
    shared_vocab = t_tok.get_vocab() == s_tok.get_vocab()
    for tok in (t_tok, s_tok):
        _encode_completion(tok, "ok", False)  # fails early (one line) for a tokenizer without byte offsets

    samples, texts, flags, scored = {}, {}, {}, {}
    gen_kwargs = dict(
        max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, num_return_sequences=cfg.num_samples,
        batch_size=cfg.batch_size, seed=cfg.seed,
    )  # fmt: skip
    rep_prompts = [p for p in prompts for _ in range(cfg.num_samples)]
    rep_rows = [r for r in rows for _ in range(cfg.num_samples)]
    models = {"teacher": (teacher, t_tok), "student": (student, s_tok)}
    for who, (model, tok) in models.items():
        gens = [
            g for group in generate(model, tok, prompts, desc=f"{who} samples", **gen_kwargs) for g in group
        ]
        samples[who] = gens
        texts[who] = [g.text for g in gens]
        flags[who] = [g.ended_with_eos for g in gens]
    for scorer, (model, tok) in models.items():
        for sampler in ("teacher", "student"):
            scored[scorer, sampler] = score_texts(
                model, tok, rep_prompts, texts[sampler], flags[sampler], top_k=cfg.top_k, keep_full=shared_vocab,
                batch_size=cfg.batch_size, desc=f"{scorer} scores {sampler} samples",
            )  # fmt: skip

    # Tail noise: the teacher's own distribution on its own samples.
    t_on_t = scored["teacher", "teacher"]
    tail_mass = torch.cat([s.tail_mass for s in t_on_t])
    tail_entropy = torch.cat([s.tail_entropy for s in t_on_t])
    profile_len = max((len(s.ids) for s in t_on_t), default=0)
    tail_profile = [
        _mean([float(s.tail_mass[i]) for s in t_on_t if len(s.ids) > i]) for i in range(profile_len)
    ]  # fmt: skip

    # Teacher–student gap on the student's samples, byte-aligned.
    per_sampler: dict[str, dict[str, Any]] = {}
    for sampler in ("teacher", "student"):
        ratios = [
            _aligned_ratios(s, t)
            for s, t in zip(scored["student", sampler], scored["teacher", sampler], strict=True)
        ]
        n_bytes = [max(1, s.n_bytes) for s in scored["student", sampler]]
        entry = {
            "ratios": ratios,
            "abs_loss_per_byte": [float(r.abs().sum()) / b for r, b in zip(ratios, n_bytes, strict=True)],
            "log_ratio_per_byte": traps.log_ratio_per_byte(
                torch.tensor([float(r.sum()) for r in ratios]),
                torch.zeros(len(ratios)),
                torch.tensor(n_bytes),
            ).tolist(),
            "n_student_tokens": sum(len(s.ids) for s in scored["student", sampler]),
        }
        if shared_vocab:
            pairs = [
                (s.full_logp, t.full_logp)
                for s, t in zip(scored["student", sampler], scored["teacher", sampler], strict=True)
            ]
            pairs = [(s, t) for s, t in pairs if s is not None and s.numel() and s.shape == t.shape]
            entry["reverse_kl_tokens"] = (
                torch.cat([traps.token_kl(s, t) for s, t in pairs]) if pairs else None
            )
            entry["forward_kl_tokens"] = (
                torch.cat([traps.token_kl(t, s) for s, t in pairs]) if pairs else None
            )
        per_sampler[sampler] = entry
    own = per_sampler["student"]
    all_ratios = torch.cat(own["ratios"]) if own["ratios"] else torch.zeros(0)
    gap = {
        "kl_per_token": float(all_ratios.sum()) / max(1, own["n_student_tokens"]),
        "log_ratio_per_byte": _mean(own["log_ratio_per_byte"]),
        "n_aligned_spans": int(all_ratios.numel()),
    }
    exposure = traps.exposure_gap(
        torch.tensor(per_sampler["teacher"]["abs_loss_per_byte"]), torch.tensor(own["abs_loss_per_byte"])
    )
    exposure["loss"] = "sum over aligned spans of |log q - log p| per byte"
    if shared_vocab and own.get("reverse_kl_tokens") is not None:
        gap["exact_reverse_kl_per_token"] = float(own["reverse_kl_tokens"].mean())
        fkl_t, fkl_s = per_sampler["teacher"]["forward_kl_tokens"], own["forward_kl_tokens"]
        if fkl_t is not None:
            exposure["exact_forward_kl"] = traps.exposure_gap(fkl_t, fkl_s)

    symptoms = {}
    cols = _columns(rep_rows, cfg.prompt_column)  # the gold columns, as evaluate() passes them
    for who in ("teacher", "student"):
        correct = None
        if verifier is not None:
            scores = verifier(prompts=rep_prompts, completions=texts[who], **cols)
            correct = [s is not None and float(s) >= 0.5 for s in scores]
        symptoms[who] = _symptoms(
            texts[who],
            [g.token_ids for g in samples[who]],
            [s.max_prob for s in scored[who, who]],
            correct,
            cfg,
        )

    result = {
        "config": asdict(cfg),
        "shared_vocabulary": shared_vocab,
        "n_prompts": len(prompts),
        "n_samples_per_model": len(rep_prompts),
        "tail_noise": {
            "top_k": cfg.top_k,
            "mean_tail_mass": float(tail_mass.mean()) if tail_mass.numel() else float("nan"),
            "mean_tail_entropy": float(tail_entropy.mean()) if tail_entropy.numel() else float("nan"),
            "tail_mass_by_position": tail_profile,
        },
        "teacher_student_gap": gap,
        "off_policy": exposure,
        "symptoms": symptoms,
        "formulas": _FORMULAS,
        "examples": {who: texts[who][:3] for who in texts},
    }
    with atomic_output_dir(cfg.output_dir, overwrite=cfg.overwrite_output_dir) as out:
        (out / "diagnose.json").write_text(json.dumps(json_safe(result), indent=2, allow_nan=False))
        plot_diagnosis(result, all_ratios, tail_mass, per_sampler, out / "diagnose.png")
    return result


_FORMULAS = {
    "tail_mass": "m_k = sum_{v not in top-k(p)} p(v), per teacher position on teacher samples",
    "tail_entropy": "H(p restricted to the tail, renormalised by m_k)",
    "aligned_log_ratio": "r_g = sum_{i in g} log q(s_i) - sum_{j in g} log p(t_j), g = byte-aligned span (TRL GOLD)",
    "kl_per_token": "sum_g r_g / #student tokens, on student samples (estimates reverse KL(q || p) per token)",
    "log_ratio_per_byte": "mean over student samples of (log q(y) - log p(y)) / bytes(y)",
    "off_policy_gap": "mean_{y~q} l(y) - mean_{y~p} l(y), l(y) = sum_g |r_g| / bytes(y)",
    "repeated_ngram_rate": "(N - U) / N over the word n-grams of a sample",
    "degenerate_token_rate": "fraction of tokens in runs of >= min_run identical tokens",
    "overconfidence": "mean over wrong answers of the mean per-token max_v q(v | prefix)",
    "self_correction": "fraction of samples with a marker and a changed last number after it",
}


def main(argv: list[str]) -> int:
    """`distillguard diagnose --config diagnose.yaml [--field value ...]`.

    Example:
        >>> main(["--config", "no/such/diagnose.yaml"])  # bad input: one line on stderr, exit status 2
        2
    """
    from trl import TrlParser

    from trl_distillguard.config_file import parse_config

    def body() -> int:
        try:
            (cfg,) = parse_config(TrlParser((DiagnoseConfig,), prog="distillguard diagnose"), argv)
        except ValueError as err:
            raise InputError(str(err)) from None
        result = diagnose(cfg)
        brief = {k: result[k] for k in ("tail_noise", "teacher_student_gap", "off_policy")}
        brief["tail_noise"] = {k: v for k, v in brief["tail_noise"].items() if k != "tail_mass_by_position"}
        print(json.dumps(json_safe(brief), indent=2))
        print(f"wrote {Path(cfg.output_dir) / 'diagnose.json'} and diagnose.png")
        return 0

    return run_cli(body, "distillguard diagnose")
