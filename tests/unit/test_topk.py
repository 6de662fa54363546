"""The exact blocked top-k kernel against plain brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from moviegraph.similarity.topk import (
    Searcher,
    block_topk,
    exclusion_csr,
    profile_queries,
    unit_rows,
)


def brute_force(queries, items, k, metric, exclude_sets=None):
    """Plain reference: float64 scores, excluded items dropped, sorted by (-score, position)."""
    q = np.asarray(queries, dtype=np.float64)
    m = np.asarray(items, dtype=np.float64)
    if metric == "cosine":
        qn = np.linalg.norm(q, axis=1, keepdims=True)
        mn = np.linalg.norm(m, axis=1, keepdims=True)
        q = q / np.where(qn > 0, qn, 1)
        m = m / np.where(mn > 0, mn, 1)
    out_pos, out_score = [], []
    for r in range(q.shape[0]):
        scores = m @ q[r]
        banned = exclude_sets[r] if exclude_sets is not None else set()
        ranked = sorted((-scores[i], i) for i in range(m.shape[0]) if i not in banned)
        out_pos.append([i for _, i in ranked[:k]])
        out_score.append([-s for s, _ in ranked[:k]])
    return out_pos, out_score


def check(result, ref_pos, ref_score, tol=1e-9):
    for r, (pos, sc) in enumerate(zip(ref_pos, ref_score, strict=True)):
        got = result.positions[r]
        n_valid = int((got >= 0).sum())
        assert n_valid == len(pos), f"row {r}: {n_valid} results, expected {len(pos)}"
        assert got[:n_valid].tolist() == pos, f"row {r}"
        np.testing.assert_allclose(result.scores[r, :n_valid], sc, atol=tol, rtol=0)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_random_vectors_match_brute_force(metric):
    rng = np.random.default_rng(1)
    items = rng.standard_normal((300, 16)).astype(np.float32)
    queries = rng.standard_normal((70, 16)).astype(np.float32)
    res = Searcher(items, metric, device="cpu").search(queries, k=10, block_size=32)
    check(res, *brute_force(queries, items, 10, metric))


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_ties_go_to_lower_position(metric):
    # Entries in {-1, 0, 1} with exactly four non-zeros: norm 2, unit entries +-0.5, so
    # every score is exact in float32 and float64 and ties abound.
    rng = np.random.default_rng(2)
    items = np.zeros((200, 8), dtype=np.float32)
    for i in range(200):
        cols = rng.choice(8, size=4, replace=False)
        items[i, cols] = rng.choice([-1.0, 1.0], size=4)
    queries = items[:50]
    res = Searcher(items, metric, device="cpu").search(queries, k=15, block_size=7, margin=0)
    ref_pos, ref_score = brute_force(queries, items, 15, metric)
    check(res, ref_pos, ref_score)
    # Many of the reference lists really do contain ties.
    assert sum(len(set(s)) < len(s) for s in ref_score) > 40


def test_exclusions_and_short_rows():
    rng = np.random.default_rng(3)
    items = rng.standard_normal((40, 5))
    queries = rng.standard_normal((6, 5))
    banned = [set(rng.choice(40, size=s, replace=False).tolist()) for s in (0, 1, 10, 35, 39, 40)]
    indptr = np.cumsum([0] + [len(b) for b in banned])
    flat = np.array([i for b in banned for i in sorted(b)], dtype=np.int64)
    exclude = exclusion_csr(indptr, flat, 6, 40)
    res = Searcher(items, "dot", device="cpu").search(queries, k=8, exclude=exclude, block_size=4)
    ref_pos, ref_score = brute_force(queries, items, 8, "dot", banned)
    check(res, ref_pos, ref_score)
    assert (res.positions[5] == -1).all() and np.isneginf(res.scores[5]).all()
    for r in range(6):
        assert not set(res.positions[r].tolist()) & banned[r]


def test_exclusion_csr_drops_unknown_positions():
    m = exclusion_csr(np.array([0, 3, 4]), np.array([2, -1, 2, 0]), 2, 5)
    assert m.toarray().tolist() == [[False, False, True, False, False],
                                    [True, False, False, False, False]]


def test_block_size_does_not_change_results():
    rng = np.random.default_rng(4)
    items = rng.standard_normal((500, 12)).astype(np.float32)
    s = Searcher(items, "cosine", device="cpu")
    exclude = exclusion_csr(np.arange(501), np.arange(500), 500, 500)
    a = s.search(items, 20, exclude=exclude, block_size=500)
    b = s.search(items, 20, exclude=exclude, block_size=3)
    assert np.array_equal(a.positions, b.positions)
    assert np.array_equal(a.scores, b.scores)


def test_zero_vectors_score_zero_under_cosine():
    items = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -2.0]])
    res = Searcher(items, "cosine", device="cpu").search(np.array([[0.0, 1.0]]), k=5)
    assert res.positions[0].tolist() == [2, 0, 1, 3, 4]
    np.testing.assert_allclose(res.scores[0], [1.0, 0.0, 0.0, 0.0, -1.0], atol=1e-12)


def test_block_topk_matches_stable_sort():
    rng = np.random.default_rng(5)
    scores = torch.from_numpy(rng.integers(0, 6, size=(30, 50)).astype(np.float32))
    scores[3, :45] = -np.inf
    vals, cols = block_topk(scores.clone(), 8)
    for r in range(30):
        row = scores[r].numpy()
        ref = sorted(range(50), key=lambda c: (-row[c], c))[:8]
        ref = [c if np.isfinite(row[c]) else -1 for c in ref]
        assert cols[r].tolist() == ref
        expected = [row[c] if c >= 0 else -np.inf for c in ref]
        assert vals[r].tolist() == expected


def test_profile_queries_follow_the_evaluation_rule():
    rng = np.random.default_rng(6)
    items = rng.standard_normal((30, 4))
    ratings = np.zeros((3, 30))
    ratings[0, [1, 2, 3]] = [5, 3, 4]  # liked: 1 and 3
    ratings[1, [4, 5]] = [2, 3]  # none liked: all
    ratings[2, [7]] = [4.5]
    q = profile_queries(unit_rows(items), sp.csr_matrix(ratings))
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    for u, profile in enumerate([[1, 3], [4, 5], [7]]):
        for i in range(30):
            expected = sum(float(unit[i] @ unit[j]) for j in profile)
            assert abs(float(q[u] @ unit[i]) - expected) < 1e-12


def test_rejects_bad_metric():
    with pytest.raises(ValueError, match="metric"):
        Searcher(np.ones((2, 2)), "euclid")
