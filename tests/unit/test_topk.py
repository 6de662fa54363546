"""The exact blocked top-k kernel against plain brute-force references (no code under test
in the references: float64 scores of every pair, sorted by (-score, position))."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from moviegraph.similarity.topk import (
    Searcher,
    block_topk,
    candidate_groups,
    exclusion_csr,
    profile_queries,
    unit_rows,
)


def brute_force(queries, items, k, metric, exclude_sets=None, item_term=None):
    """Plain reference: float64 scores (+ item term), excluded items dropped, sorted by
    (-score, position)."""
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
        if item_term is not None:
            scores = scores + np.asarray(item_term, dtype=np.float64)
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
    res = Searcher(items, metric).search(queries, k=10, block_size=32)
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
    res = Searcher(items, metric).search(queries, k=15, block_size=7)
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
    res = Searcher(items, "dot").search(queries, k=8, exclude=exclude, block_size=4)
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
    s = Searcher(items, "cosine")
    exclude = exclusion_csr(np.arange(501), np.arange(500), 500, 500)
    a = s.search(items, 20, exclude=exclude, block_size=500)
    b = s.search(items, 20, exclude=exclude, block_size=3)
    assert np.array_equal(a.positions, b.positions)
    assert np.array_equal(a.scores, b.scores)


def test_zero_vectors_score_zero_under_cosine():
    items = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -2.0]])
    res = Searcher(items, "cosine").search(np.array([[0.0, 1.0]]), k=5)
    assert res.positions[0].tolist() == [2, 0, 1, 3, 4]
    np.testing.assert_allclose(res.scores[0], [1.0, 0.0, 0.0, 0.0, -1.0], atol=1e-12)


def test_block_topk_matches_stable_sort():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 6, size=(30, 50)).astype(np.float32)
    scores[3, :45] = -np.inf
    scores[4, :] = -np.inf
    scores[5, :] = 2.0  # one value everywhere: the k lowest columns
    vals, cols = block_topk(scores.copy(), 8)
    for r in range(30):
        row = scores[r]
        ref = sorted(range(50), key=lambda c: (-row[c], c))[:8]
        ref = [c if np.isfinite(row[c]) else -1 for c in ref]
        assert cols[r].tolist() == ref
        expected = [row[c] if c >= 0 else -np.inf for c in ref]
        assert vals[r].tolist() == expected


@pytest.mark.parametrize("max_pairs", [1, 7, 1 << 18])
def test_candidate_groups_hold_the_top_k_in_whole_rows(max_pairs):
    rng = np.random.default_rng(8)
    scores = rng.standard_normal((40, 96))
    scores[:10] = np.round(scores[:10])  # ties straddling the k-th
    scores[10, :90] = -np.inf  # fewer than k admissible
    slack = np.full(40, 0.05)
    seen = []
    for lo, hi, rows, cols in candidate_groups(scores, 12, slack, chunks=8, max_pairs=max_pairs):
        assert ((rows >= lo) & (rows < hi)).all()
        seen.append((lo, hi))
        for r in range(lo, hi):
            got = set(cols[rows == r].tolist())
            row = scores[r]
            kth = np.sort(row)[::-1][11]
            expected = {c for c in range(96) if np.isfinite(row[c]) and row[c] >= kth - 0.05}
            assert expected <= got  # everything within the slack of the k-th
            assert all(np.isfinite(row[c]) for c in got)
    assert [lo for lo, _ in seen] == [0] + [hi for _, hi in seen[:-1]] and seen[-1][1] == 40
    if max_pairs == 1:
        assert len(seen) == 40


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


def _tied_catalogue(rng, n=1682, dim=64):
    """ML-100K-sized catalogue with exact ties: entries in {-1, 0, 1} on few columns, every
    tenth vector a duplicate of the one before, item terms multiples of 1/8 (exact in
    float32 and float64, as are all their sums with the scores)."""
    items = np.zeros((n, dim), dtype=np.float32)
    for i in range(n):
        cols = rng.choice(8, size=4, replace=False)
        items[i, cols] = rng.choice([-1.0, 1.0], size=4)
    items[10::10] = items[9:-1:10]
    term = rng.integers(-4, 5, size=n) / 8.0
    term[10::10] = term[9:-1:10]  # duplicates keep equal terms: exact ties to break
    return items, term


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_item_term_with_ties_matches_brute_force(metric):
    rng = np.random.default_rng(11)
    items, term = _tied_catalogue(rng)
    queries = items[:60]
    banned = [{r} for r in range(60)]  # a movie is not its own neighbour
    exclude = exclusion_csr(np.arange(61), np.arange(60), 60, len(items))
    res = Searcher(items, metric, item_term=term).search(queries, k=20, exclude=exclude,
                                                         block_size=16)
    ref_pos, ref_score = brute_force(queries, items, 20, metric, banned, term)
    check(res, ref_pos, ref_score)
    assert sum(len(set(s)) < len(s) for s in ref_score) > 50  # ties really straddle ranks
    # The term changes the answer (it is not ignored).
    plain = Searcher(items, metric).search(queries, k=20, exclude=exclude)
    assert not np.array_equal(plain.positions, res.positions)


def test_item_term_recommendation_shape_matches_brute_force():
    # Users x catalogue by dot product, rated movies masked, plus a popularity term.
    rng = np.random.default_rng(12)
    items = rng.standard_normal((1682, 64)).astype(np.float32)
    term = np.log1p(rng.poisson(30, size=1682)).astype(np.float64)
    users = rng.standard_normal((50, 64)).astype(np.float32) * 0.3
    banned = [set(rng.choice(1682, size=int(rng.integers(0, 300)), replace=False).tolist())
              for _ in range(50)]
    banned[0] = set(range(1675))  # fewer than k left
    indptr = np.cumsum([0] + [len(b) for b in banned])
    flat = np.array([i for b in banned for i in sorted(b)], dtype=np.int64)
    exclude = exclusion_csr(indptr, flat, 50, 1682)
    res = Searcher(items, "dot", item_term=term).search(users, k=20, exclude=exclude,
                                                        block_size=8)
    check(res, *brute_force(users, items, 20, "dot", banned, term))
    assert (res.positions[0, 7:] == -1).all()


def test_float32_near_ties_are_ranked_in_float64():
    # 300 items equal in float32 but not in float64: float32 products cannot order them,
    # however many there are; the float64 rescoring must.
    rng = np.random.default_rng(13)
    base = rng.standard_normal(16)
    items = base + 1e-9 * rng.standard_normal((300, 16))
    queries = rng.standard_normal((5, 16))
    for metric in ("dot", "cosine"):
        res = Searcher(items, metric).search(queries, k=25)
        check(res, *brute_force(queries, items, 25, metric), tol=1e-12)


@pytest.mark.parametrize("use_term", [False, True])
def test_results_do_not_depend_on_block_size_or_query_order(use_term):
    rng = np.random.default_rng(14)
    items, term = _tied_catalogue(rng, n=500, dim=32)
    s = Searcher(items, "cosine", item_term=term if use_term else None)
    n = len(items)
    exclude = exclusion_csr(np.arange(n + 1), np.arange(n), n, n)
    a = s.search(items, 20, exclude=exclude, block_size=n)
    for block in (1, 37):
        b = s.search(items, 20, exclude=exclude, block_size=block)
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.scores, b.scores)
    perm = rng.permutation(n)
    c = s.search(items[perm], 20, exclude=exclude[perm], block_size=50)
    assert np.array_equal(a.positions[perm], c.positions)
    assert np.array_equal(a.scores[perm], c.scores)


def test_all_equal_scores_return_the_lowest_positions():
    # Zero vectors: every cosine is 0, so every item ties with every other.
    items = np.zeros((3000, 8))
    exclude = exclusion_csr(np.arange(4), np.array([0, 5, 2999]), 3, 3000)
    res = Searcher(items, "cosine").search(items[:3], 20, exclude=exclude)
    assert res.positions[0].tolist() == list(range(1, 21))
    assert res.positions[1].tolist() == [0, 1, 2, 3, 4, *range(6, 21)]
    assert res.positions[2].tolist() == list(range(20))
    assert (res.scores == 0).all()


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="item term has shape"):
        Searcher(np.ones((3, 2)), item_term=np.ones(4))
    with pytest.raises(ValueError, match="item term: 1 value"):
        Searcher(np.ones((3, 2)), item_term=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="item vectors: 1 value"):
        Searcher(np.array([[1.0, np.inf], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="query vectors"):
        Searcher(np.ones((3, 2))).search(np.array([[np.nan, 1.0]]), 2)
