"""The pure-torch cores of TSV-M, Iso-C and Iso-CTS against obvious references written like the official code."""

from __future__ import annotations

import pytest
import torch
from references import ref_iso_c, ref_iso_cts, ref_polar, ref_tsv  # noqa: F401

from mergekit_plugins import core

torch.set_num_threads(1)
F64 = torch.float64


SHAPES = [(24, 24), (40, 16), (12, 30)]  # square, tall, wide
TASKS = list(range(1, 9))


def rand_deltas(shape, T, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=F64) for _ in range(T)]


# ---- arithmetic ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "r,T,expected",
    [
        (768, 8, (616, 19)),
        (50, 8, (42, 1)),
        (64, 4, (52, 3)),
        (3, 8, (3, 0)),
        (10, 3, (7, 1)),
        (1, 1, (0, 1)),
    ],
)
def test_iso_cts_split(r, T, expected):
    assert core.iso_cts_split(r, T, 0.8) == expected


def test_iso_cts_split_exhaustive_matches_formula():
    for r in range(1, 80):
        for T in range(1, 9):
            for f in (0.1, 0.5, 0.8, 0.95):
                k_c, s = core.iso_cts_split(r, T, f)
                assert k_c + T * s == r and k_c >= 0 and s >= 0
                k0 = int(r * f)
                ref = r - round((r - k0) / T) * T
                if ref >= 0:
                    assert k_c == ref


def test_tsv_k():
    assert [core.tsv_k(r, 8) for r in (768, 50, 7, 8)] == [96, 6, 0, 1]


# ---- full-rank inputs: exactly the published algorithms ------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("T", TASKS)
def test_tsv_matches_reference(shape, T):
    deltas = rand_deltas(shape, T, seed=T)
    torch.testing.assert_close(core.tsv_merge(deltas), ref_tsv(deltas), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("T", TASKS)
def test_iso_c_matches_reference(shape, T):
    deltas = rand_deltas(shape, T, seed=10 + T)
    torch.testing.assert_close(core.iso_c_merge(deltas), ref_iso_c(deltas), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("T", TASKS)
def test_iso_cts_matches_reference(shape, T):
    deltas = rand_deltas(shape, T, seed=20 + T)
    torch.testing.assert_close(core.iso_cts_merge(deltas), ref_iso_cts(deltas), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("T", [3, 5, 8])
def test_r_smaller_than_T(T):
    deltas = rand_deltas((2, 9), T, seed=T)  # r = 2 < T: k = 0
    assert torch.equal(core.tsv_merge(deltas), torch.zeros(2, 9, dtype=F64))
    torch.testing.assert_close(core.tsv_merge(deltas), ref_tsv(deltas))
    torch.testing.assert_close(core.iso_cts_merge(deltas), ref_iso_cts(deltas), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(core.iso_c_merge(deltas), ref_iso_c(deltas), rtol=1e-9, atol=1e-9)


def test_single_task_tsv_is_identity_and_iso_flattens_spectrum():
    (d,) = rand_deltas((20, 12), 1, seed=3)
    torch.testing.assert_close(core.tsv_merge([d]), d, rtol=1e-9, atol=1e-9)
    s_iso = torch.linalg.svdvals(core.iso_c_merge([d]))
    torch.testing.assert_close(s_iso, torch.full_like(s_iso, float(torch.linalg.svdvals(d).mean())))


def test_fp32_inputs_are_computed_in_fp32_close_to_fp64():
    deltas = rand_deltas((32, 48), 4, seed=5)
    for fn in (core.tsv_merge, core.iso_c_merge, core.iso_cts_merge):
        out32 = fn([d.float() for d in deltas])
        assert out32.dtype == torch.float32
        torch.testing.assert_close(out32.double(), fn(deltas), rtol=1e-4, atol=1e-4)


def test_mean_delta():
    deltas = rand_deltas((7,), 3, seed=1)
    torch.testing.assert_close(core.mean_delta(deltas), (deltas[0] + deltas[1] + deltas[2]) / 3)


# ---- low-rank rule: orthogonal equivariance on rank-deficient inputs ------------------------------------
def low_rank_deltas(m, n, T, rank, seed):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(m, rank, generator=g, dtype=F64) @ torch.randn(rank, n, generator=g, dtype=F64)
        for _ in range(T)
    ]


def random_orthogonal(n, seed):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64))
    return q


@pytest.mark.parametrize("fn", [core.tsv_merge, core.iso_c_merge, core.iso_cts_merge])
@pytest.mark.parametrize("m,n,T,rank", [(48, 32, 2, 3), (30, 30, 4, 2), (20, 40, 3, 4)])
def test_orthogonal_equivariance_on_rank_deficient_inputs(fn, m, n, T, rank):
    deltas = low_rank_deltas(m, n, T, rank, seed=m + T)
    Q, R = random_orthogonal(m, 1), random_orthogonal(n, 2)
    rotated = fn([Q @ d @ R for d in deltas])
    torch.testing.assert_close(rotated, Q @ fn(deltas) @ R, rtol=1e-7, atol=1e-7)
    # and the merge lives in the span of the tasks, not in arbitrary null-space directions
    span = torch.cat(deltas, 1)
    p = torch.linalg.pinv(span) @ fn(deltas)
    torch.testing.assert_close(span @ p, fn(deltas), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("ref,fn", [(ref_iso_c, core.iso_c_merge), (ref_tsv, core.tsv_merge)])
def test_published_form_is_not_equivariant_on_rank_deficient_inputs(ref, fn):
    """The reason for the low-rank rule: without it, null-space directions leak into the merge."""
    deltas = low_rank_deltas(30, 30, 2, 2, seed=7)
    Q, R = random_orthogonal(30, 3), random_orthogonal(30, 4)
    leak = (ref([Q @ d @ R for d in deltas]) - Q @ ref(deltas) @ R).norm() / ref(deltas).norm()
    ours = (fn([Q @ d @ R for d in deltas]) - Q @ fn(deltas) @ R).norm() / fn(deltas).norm()
    assert leak > 1e-3 and ours < 1e-9


def test_low_rank_iso_c_gives_mean_of_nonzero_singular_values():
    deltas = low_rank_deltas(25, 25, 2, 3, seed=11)  # rank(M) = 6
    s = torch.linalg.svdvals(sum(deltas))[:6]
    out = torch.linalg.svdvals(core.iso_c_merge(deltas))
    torch.testing.assert_close(out[:6], torch.full((6,), float(s.mean()), dtype=F64))
    assert out[6:].max() < 1e-9


def test_low_rank_iso_cts_reduces_to_iso_c_when_the_common_space_holds_every_task():
    """With the low-rank rule, Σ rank(Δ_t) ≤ k_c puts every task direction in the common space: no residual
    remains, and Iso-CTS equals Iso-C (typical of small-rank LoRA task vectors); above k_c they differ."""
    deltas = low_rank_deltas(32, 24, 3, 2, seed=5)  # r = 24 → (k_c, s) = (18, 2); Σ ranks = 6 ≤ 18
    assert core.iso_cts_split(24, 3) == (18, 2)
    torch.testing.assert_close(core.iso_cts_merge(deltas), core.iso_c_merge(deltas), rtol=1e-9, atol=1e-9)
    fuller = low_rank_deltas(32, 24, 3, 7, seed=5)  # Σ ranks = 21 > 18: task-specific residuals remain
    assert (core.iso_cts_merge(fuller) - core.iso_c_merge(fuller)).norm() > 1e-3 * core.iso_c_merge(
        fuller
    ).norm()


def test_zero_deltas_give_zero():
    z = [torch.zeros(6, 4, dtype=F64)] * 3
    for fn in (core.tsv_merge, core.iso_c_merge, core.iso_cts_merge):
        assert torch.equal(fn(z), torch.zeros(6, 4, dtype=F64))


def test_svd_falls_back_to_fp64_when_fp32_lapack_fails(monkeypatch):
    deltas = [d.float() for d in rand_deltas((20, 12), 3, seed=9)]
    expected = core.iso_cts_merge(deltas)
    real_svd = torch.linalg.svd

    def flaky(x, *args, **kwargs):
        if x.dtype == torch.float32:
            raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")
        return real_svd(x, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "svd", flaky)
    out = core.iso_cts_merge(deltas)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("qr", [True, False])
def test_qr_preconditioned_svd_matches_plain(qr, monkeypatch):
    monkeypatch.setattr(core, "QR_PRECONDITION", qr)
    for shape in SHAPES:
        x = rand_deltas(shape, 1, seed=4)[0]
        u, s, vh = core.svd(x)
        torch.testing.assert_close(s, torch.linalg.svdvals(x))
        torch.testing.assert_close(u @ torch.diag(s) @ vh, x)
        torch.testing.assert_close(u.T @ u, torch.eye(s.numel(), dtype=F64))
        torch.testing.assert_close(vh @ vh.T, torch.eye(s.numel(), dtype=F64))
