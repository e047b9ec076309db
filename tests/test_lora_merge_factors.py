"""`mergekit_plugins.lora.merge_factors` against the dense methods of `core` on the densified deltas."""

from __future__ import annotations

import pytest
import torch

from mergekit_plugins import core
from mergekit_plugins.lora import merge_factors, truncate

torch.set_num_threads(1)
F64 = torch.float64


def dense(method, deltas, **kw):
    if method == "task_arithmetic":
        return sum(deltas)
    fn = {"tsv": core.tsv_merge, "iso_c": core.iso_c_merge, "iso_cts": core.iso_cts_merge}[method]
    return fn(deltas, **kw)


def rand_factors(m, n, ranks, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(m, r, generator=g, dtype=F64).to(dtype),
            torch.randn(r, n, generator=g, dtype=F64).to(dtype),
        )
        for r in ranks
    ]


def densify(factors, weights):
    return [w * (b.double() @ a.double()) for (b, a), w in zip(factors, weights)]


METHODS = ["task_arithmetic", "tsv", "iso_c", "iso_cts"]
# square / tall / wide; different ranks per adapter, r = 0 = an adapter that does not target this weight
CASES = [
    ((24, 24), [3, 5, 2]),
    ((40, 16), [4, 0, 6]),
    (
        (12, 30),
        [5, 4, 6],
    ),  # r = 12, T = 3: k = 4 < 5, 6 (TSV keeps 4 of them); Σ r > k_c = 9 (Iso-CTS residuals)
    ((12, 30), [2, 3]),
    ((9, 7), [4, 4, 4, 4, 4, 4, 4, 4]),  # T = 8 > r = 7: TSV's k = 0
    ((20, 10), [1]),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,ranks", CASES)
def test_equals_dense_method_on_densified_deltas_fp64(method, shape, ranks):
    factors = rand_factors(*shape, ranks, seed=sum(ranks) + shape[0])
    weights = [1.0, -0.5, 2.0, 0.7, 1.0, 1.0, 1.0, 1.0][: len(ranks)]
    b, a = merge_factors(method, factors, weights)
    expected = dense(method, densify(factors, weights))
    assert b.dtype == F64 and b.shape[0] == shape[0] and a.shape[1] == shape[1]
    assert b.shape[1] <= sum(ranks)
    torch.testing.assert_close(b @ a, expected, rtol=1e-9, atol=1e-9 * (1 + float(expected.abs().max())))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape,ranks", CASES[:4])
def test_fp32_factors_are_computed_in_fp32_close_to_the_fp64_dense_result(method, shape, ranks):
    factors = rand_factors(*shape, ranks, seed=7)
    b, a = merge_factors(method, [(x.float(), y.float()) for x, y in factors])
    assert b.dtype == torch.float32
    expected = dense(method, densify(factors, [1.0] * len(ranks)))
    err = float(
        torch.linalg.matrix_norm(b.double() @ a.double() - expected) / torch.linalg.matrix_norm(expected)
    )
    assert err < 1e-5


def test_iso_cts_parameters_reach_the_formula():
    factors = rand_factors(12, 30, [5, 4, 6], seed=3)
    deltas = densify(factors, [1.0] * 3)
    for f in (0.3, 0.5, 0.9):
        b, a = merge_factors("iso_cts", factors, common_space_fraction=f)
        torch.testing.assert_close(b @ a, core.iso_cts_merge(deltas, f), rtol=1e-9, atol=1e-9)
    # residuals really take part here (else iso_cts would equal iso_c)
    b_c, a_c = merge_factors("iso_c", factors)
    assert (b @ a - b_c @ a_c).norm() > 1e-3 * (b_c @ a_c).norm()


def test_rank_rtol_reaches_the_formula():
    g = torch.Generator().manual_seed(0)
    b = torch.randn(10, 3, generator=g, dtype=F64) * torch.tensor([1.0, 1.0, 1e-4], dtype=F64)
    a = torch.randn(3, 8, generator=g, dtype=F64)
    factors = [(b, a), *rand_factors(10, 8, [2], seed=1)]
    for rtol in (1e-6, 1e-2):
        bm, am = merge_factors("iso_c", factors, rank_rtol=rtol)
        torch.testing.assert_close(
            bm @ am, core.iso_c_merge(densify(factors, [1, 1]), rtol), rtol=1e-9, atol=1e-9
        )
    assert merge_factors("iso_c", factors, rank_rtol=1e-6)[0].shape[1] == 5
    assert merge_factors("iso_c", factors, rank_rtol=1e-2)[0].shape[1] == 4


def test_task_arithmetic_is_the_side_by_side_factors():
    factors = rand_factors(6, 5, [2, 3], seed=2)
    b, a = merge_factors("task_arithmetic", factors, [2.0, -1.0])
    assert torch.equal(b, torch.cat([2.0 * factors[0][0], -1.0 * factors[1][0]], 1))
    assert torch.equal(a, torch.cat([factors[0][1], factors[1][1]], 0))


def test_rank_truncation_is_the_best_rank_n_approximation_and_reports_discarded_energy():
    factors = rand_factors(30, 20, [4, 4], seed=5)
    full = sum(densify(factors, [1, 1]))
    u, s, vh = torch.linalg.svd(full, full_matrices=False)
    b, a = merge_factors("task_arithmetic", factors, rank=3)
    assert b.shape[1] == 3
    torch.testing.assert_close(b @ a, u[:, :3] @ torch.diag(s[:3]) @ vh[:3], rtol=1e-9, atol=1e-9)
    _, _, lost = truncate(*merge_factors("task_arithmetic", factors), 3)
    assert abs(lost - float(s[3:].square().sum() / s.square().sum())) < 1e-12
    b2, a2, lost2 = truncate(b, a, 8)  # already small enough: unchanged
    assert b2 is b and a2 is a and lost2 == 0.0


def test_all_adapters_missing_gives_empty_factors():
    empty = [(torch.zeros(5, 0, dtype=F64), torch.zeros(0, 4, dtype=F64))] * 2
    for method in METHODS:
        b, a = merge_factors(method, empty)
        assert b.shape == (5, 0) and a.shape == (0, 4)


@pytest.mark.parametrize(
    "args,match",
    [
        (("ties", [(torch.ones(2, 1), torch.ones(1, 2))]), "not one of"),
        (("tsv", []), "at least one"),
        (
            ("tsv", [(torch.ones(2, 1), torch.ones(1, 2)), (torch.ones(3, 1), torch.ones(1, 2))]),
            r"factors\[1\]",
        ),
        (("tsv", [(torch.ones(2, 1), torch.ones(2, 2))]), r"factors\[0\]"),
    ],
)
def test_bad_input_is_refused(args, match):
    with pytest.raises(ValueError, match=match):
        merge_factors(*args)
    with pytest.raises(ValueError, match="weights"):
        merge_factors("tsv", [(torch.ones(2, 1), torch.ones(1, 2))], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        truncate(torch.ones(2, 1), torch.ones(1, 2), 0)
