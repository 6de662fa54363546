"""Evaluation protocol kernels against hand-computed cases and plain-Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from moviegraph.evaluate import baselines as bl
from moviegraph.protocol import metrics as mt
from moviegraph.protocol import splits

# ---------------------------------------------------------------- splits


def test_ranking_split_hand_checked() -> None:
    # (user, movie, ts, expected is_test), rows deliberately out of order.
    rows = [
        # user 1, 5 ratings -> max(1, 5 // 5) = 1 test. Sorted by (ts, movie):
        # (1, m7) (2, m8) (3, m9) (5, m3) (5, m10): the ts tie at 5 goes to movie 10.
        (1, 10, 5, True),
        (1, 7, 1, False),
        (1, 3, 5, False),
        (1, 9, 3, False),
        (1, 8, 2, False),
        # user 2, a single rating: "at least one" -> it is test, no train left.
        (2, 4, 100, True),
        # user 3, 9 ratings -> 9 // 5 = 1 test (round() would give 2): the latest, ts 90.
        *[(3, m, 10 * m, m == 9) for m in (5, 1, 9, 3, 7, 2, 8, 4, 6)],
        # user 4, 4 ratings -> 4 // 5 = 0 -> at least 1: movie 2 (ts 7, later than the rest).
        (4, 1, 3, False),
        (4, 2, 7, True),
        (4, 3, 6, False),
        (4, 4, 6, False),
        # user 5, 10 ratings all at the same ts -> 2 test: the two largest movie ids.
        *[(5, m, 42, m >= 9) for m in range(1, 11)],
    ]
    user, movie, ts, expected = (np.array(c) for c in zip(*rows, strict=True))
    got = splits.ranking_split(user, movie, ts)
    np.testing.assert_array_equal(got, expected)
    # The split belongs to the rows, not to their order in the input.
    perm = np.random.default_rng(3).permutation(len(rows))
    np.testing.assert_array_equal(splits.ranking_split(user[perm], movie[perm], ts[perm]),
                                  expected[perm])


def test_n_test_per_user_is_floor_with_minimum_one() -> None:
    n = np.array([1, 2, 4, 5, 9, 10, 14, 15, 737])
    np.testing.assert_array_equal(splits.n_test_per_user(n), [1, 1, 1, 1, 1, 2, 2, 3, 147])


def test_ranking_split_empty() -> None:
    assert splits.ranking_split(np.array([]), np.array([]), np.array([])).shape == (0,)


def test_rating_split_formula() -> None:
    # 1 * 1000003 + 7 = 1000010 -> test; 1000003 + 8 = 1000011 -> train;
    # 2 * 1000003 + 4 = 2000010 -> test; 300001 * 1000003 + 7 = 300001900010 -> test, which
    # int32 arithmetic would overflow (the inputs are int32 on purpose).
    user = np.array([1, 1, 2, 300001, 300001], dtype=np.int32)
    movie = np.array([7, 8, 4, 7, 8], dtype=np.int32)
    np.testing.assert_array_equal(splits.rating_split(user, movie),
                                  [True, False, True, True, False])


def test_validation_cut_is_ranking_rule_on_train_only() -> None:
    # One user, 12 ratings at ts = movie id: test = 12 // 5 = 2 latest (movies 11, 12);
    # train = 10 ratings -> validation = 10 // 5 = 2 latest of those (movies 9, 10).
    movie = np.arange(1, 13)
    user = np.ones(12, dtype=np.int64)
    is_test = splits.ranking_split(user, movie, movie)
    is_val = splits.validation_cut(user, movie, movie, is_test)
    np.testing.assert_array_equal(np.flatnonzero(is_test) + 1, [11, 12])
    np.testing.assert_array_equal(np.flatnonzero(is_val) + 1, [9, 10])


# ---------------------------------------------------------------- helpers


def test_index_ids_round_trip() -> None:
    ids = np.array([30, 10, 20, 10, 30])
    unique_ids, pos = mt.index_ids(ids)
    np.testing.assert_array_equal(unique_ids, [10, 20, 30])
    np.testing.assert_array_equal(pos, [2, 0, 1, 0, 2])


def test_top_k_breaks_ties_by_lower_position() -> None:
    s = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [-np.inf, 0.0, 0.0, 5.0, -np.inf]])
    np.testing.assert_array_equal(mt.top_k(s, 2), [[1, 2], [3, 1]])
    np.testing.assert_array_equal(mt.top_k(s, 4), [[1, 2, 4, 3], [3, 1, 2, 0]])


@pytest.mark.parametrize("levels", [3, 1000, None])  # heavy ties, rare ties, continuous
def test_top_k_against_sorting(levels: int | None) -> None:
    rng = np.random.default_rng(11)
    s = rng.random((50, 300)) if levels is None else rng.integers(0, levels, (50, 300)) * 1.0
    s[:, ::7] = -np.inf
    for k in (1, 20, 299, 300, 400):
        want = [sorted(range(300), key=lambda i, row=row: (-row[i], i))[:k] for row in s]
        np.testing.assert_array_equal(mt.top_k(s, k), want)
        np.testing.assert_array_equal(mt.top_k(s.astype(np.float32), k), want)


# ---------------------------------------------------------------- ranking metrics


def _csr(entries: list[tuple[int, int, float]], shape: tuple[int, int]) -> sp.csr_matrix:
    u, i, v = zip(*entries, strict=True)
    return mt.user_item_matrix(np.array(u), np.array(i), np.array(v), *shape)


A, B, C, D, E = range(5)


def _tiny() -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    scores = np.array(
        [
            [5.0, 4.0, 3.0, 0.0, 10.0],  # user 0: E is train, so masked despite 10
            [1.0, 2.0, 3.0, 4.0, 5.0],  # user 1: no relevant test item -> skipped
            [0.0, 0.0, 0.0, 0.0, 0.0],  # user 2: all tied -> order A, B, C, ...
        ]
    )
    train = _csr([(0, E, 5.0), (1, A, 4.0), (2, E, 1.0)], (3, 5))
    test = _csr(
        [(0, A, 5.0), (0, C, 4.0), (0, D, 3.0), (1, B, 3.0), (2, B, 4.0)], (3, 5)
    )
    return scores, train, test


def test_ranking_metrics_hand_computed() -> None:
    scores, train, test = _tiny()
    before = scores.copy()
    # k = 2. user 0: relevant {A, C} (D is rated 3), ranking without E: A, B -> 1 hit.
    #   recall 1/2; DCG = 1/log2(2) = 1; IDCG = 1 + 1/log2(3) -> NDCG = 1 / 1.6309 = 0.6131.
    # user 2: relevant {B}, ranking A, B (ties -> lower position; E is train) -> hit at 2.
    #   recall 1; DCG = 1/log2(3) = 0.6309; IDCG = 1 -> NDCG 0.6309.
    res = mt.ranking_metrics(scores, train, test, k=2)
    np.testing.assert_array_equal(res.users, [0, 2])
    ndcg0 = 1 / (1 + 1 / math.log2(3))
    np.testing.assert_allclose(res.user_recall, [0.5, 1.0])
    np.testing.assert_allclose(res.user_ndcg, [ndcg0, 1 / math.log2(3)])
    assert res.recall == pytest.approx(0.75)
    assert res.ndcg == pytest.approx((ndcg0 + 1 / math.log2(3)) / 2)
    assert res.n_users == 2
    np.testing.assert_array_equal(scores, before)  # masking worked on a copy
    # k = 3. user 0: A, B, C -> hits at 1 and 3: recall 1, DCG = 1 + 1/log2(4) = 1.5,
    # IDCG = 1 + 1/log2(3) -> NDCG = 1.5 / 1.6309 = 0.9197.
    res3 = mt.ranking_metrics(scores, train, test, k=3)
    assert res3.user_recall[0] == pytest.approx(1.0)
    assert res3.user_ndcg[0] == pytest.approx(1.5 / (1 + 1 / math.log2(3)))


def test_ranking_metrics_score_function_and_blocks_agree() -> None:
    scores, train, test = _tiny()
    dense = mt.ranking_metrics(scores, train, test, k=2)
    fn = mt.ranking_metrics(lambda users: scores[users], train, test, k=2, block_size=1)
    np.testing.assert_allclose(fn.user_ndcg, dense.user_ndcg)
    np.testing.assert_allclose(fn.user_recall, dense.user_recall)


def _reference_ranking(scores, train_sets, test_ratings, k):
    """Plain Python: sort non-train items by (-score, item), count relevant hits."""
    recalls, ndcgs = [], []
    for u, rated in enumerate(test_ratings):
        relevant = {i for i, r in rated.items() if r >= 4}
        if not relevant:
            continue
        ranked = sorted((i for i in range(len(scores[u])) if i not in train_sets[u]),
                        key=lambda i, u=u: (-scores[u][i], i))[:k]
        dcg = sum(1 / math.log2(rank + 2) for rank, i in enumerate(ranked) if i in relevant)
        idcg = sum(1 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
        recalls.append(sum(i in relevant for i in ranked) / len(relevant))
        ndcgs.append(dcg / idcg)
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs)


def test_ranking_metrics_against_plain_python() -> None:
    rng = np.random.default_rng(7)
    n_users, n_items, k = 40, 30, 5
    scores = rng.integers(0, 6, size=(n_users, n_items)).astype(float)  # many ties
    cells = rng.permutation(n_users * n_items)[:500]
    u, i = np.divmod(cells, n_items)
    r = rng.integers(1, 6, size=cells.shape[0]).astype(float)
    is_test = rng.random(cells.shape[0]) < 0.3
    train = mt.user_item_matrix(u[~is_test], i[~is_test], r[~is_test], n_users, n_items)
    test = mt.user_item_matrix(u[is_test], i[is_test], r[is_test], n_users, n_items)
    train_sets = [set() for _ in range(n_users)]
    test_ratings = [{} for _ in range(n_users)]
    for uu, ii, rr, t in zip(u, i, r, is_test, strict=True):
        if t:
            test_ratings[uu][ii] = rr
        else:
            train_sets[uu].add(ii)
    want_recall, want_ndcg = _reference_ranking(scores.tolist(), train_sets, test_ratings, k)
    got = mt.ranking_metrics(scores, train, test, k=k, block_size=7)
    assert got.recall == pytest.approx(want_recall)
    assert got.ndcg == pytest.approx(want_ndcg)


# ---------------------------------------------------------------- item-embedding scorer


def test_item_embedding_scores_sum_of_cosines() -> None:
    vectors = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 2.0], [-1.0, 1.0]])
    # user 0 liked item 0 (5) and not item 1 (2): profile {0}.
    # user 1 rated only 2 and 3: profile = all train items {2, 3}.
    train = _csr([(0, 0, 5.0), (0, 1, 2.0), (1, 2, 2.0), (1, 3, 3.0)], (2, 4))
    scorer = mt.item_embedding_scores(vectors, train)
    got = scorer(np.array([0, 1]))

    def cos(a, b):
        return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))

    profiles = [[0], [2, 3]]
    want = [[sum(cos(vectors[i], vectors[j]) for j in prof) for i in range(4)]
            for prof in profiles]
    np.testing.assert_allclose(got, want)
    # e.g. user 0, item 1: cos((1,0), (3,4)) = 3/5.
    assert got[0, 1] == pytest.approx(0.6)


# ---------------------------------------------------------------- rmse


def test_rmse_clips_predictions() -> None:
    # clipped predictions [1, 5, 3] vs [1, 5, 4]: errors 0, 0, 1 -> sqrt(1/3).
    assert mt.rmse(np.array([0.0, 6.0, 3.0]), np.array([1.0, 5.0, 4.0])) == pytest.approx(
        math.sqrt(1 / 3)
    )


# ---------------------------------------------------------------- genre precision


_VECTORS = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 1.0]])
_GENRES = [["A"], ["A", "B"], ["B"], ["C"], ["unknown"]]


def test_genre_matrix_drops_placeholder_labels() -> None:
    g, names = mt.genre_matrix(_GENRES)
    assert names == ["A", "B", "C"]
    np.testing.assert_array_equal(g.sum(axis=1), [1, 2, 1, 1, 0])


def test_genre_precision_hand_computed() -> None:
    g, _ = mt.genre_matrix(_GENRES)
    # Cosines: c(0,1) = .9939, c(2,3) = .9939, c(0,4) = c(2,4) = .7071,
    # c(1,4) = c(3,4) = .7809, c(1,3) = .2195, c(0,3) = c(1,2) = .1104, c(0,2) = 0.
    # Movie 4 has no genre: never a query, still a neighbour (counts as not sharing).
    # k = 1: 0 -> 1 (A shared), 1 -> 0 (A), 2 -> 3 (B vs C: no), 3 -> 2 (no): 2 / 4.
    assert mt.genre_precision_at_k(_VECTORS, g, k=1) == pytest.approx(0.5)
    # k = 2: 0 -> {1, 4}: 1/2; 1 -> {0, 4}: 1/2; 2 -> {3, 4}: 0; 3 -> {2, 4}: 0 -> 1/4.
    assert mt.genre_precision_at_k(_VECTORS, g, k=2) == pytest.approx(0.25)
    # Without movie 4: 0 -> {1, 3}: 1/2; 1 -> {0, 3}: 1/2; 2 -> {3, 1}: 1/2 (B with 1);
    # 3 -> {2, 1}: 0 -> 1.5 / 4.
    include = np.array([True, True, True, True, False])
    assert mt.genre_precision_at_k(_VECTORS, g, k=2, include=include) == pytest.approx(0.375)
    assert mt.genre_precision_at_k(_VECTORS, g, k=2, block_size=1) == pytest.approx(0.25)


def test_random_genre_precision_is_seeded_and_sane() -> None:
    all_same = np.ones((30, 1), dtype=bool)
    assert mt.random_genre_precision_at_k(all_same, dim=8, k=5) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    g = rng.random((200, 6)) < 0.2
    a = mt.random_genre_precision_at_k(g, dim=16, seed=1)
    assert a == mt.random_genre_precision_at_k(g, dim=16, seed=1)
    # Chance level: P(a random other movie shares a genre with the query), within noise.
    share = (g.astype(int) @ g.T.astype(int)) > 0
    has = g.any(axis=1)
    np.fill_diagonal(share, False)
    chance = share[has].sum() / (has.sum() * (g.shape[0] - 1))
    assert a == pytest.approx(chance, abs=0.05)


# ---------------------------------------------------------------- baselines


def _random_binary(seed: int, shape=(25, 9), p=0.35) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random(shape) < p).astype(float)
    dense[0, :] = 0  # a user without items
    dense[:, 1] = 0  # an item without users
    return sp.csr_matrix(dense * rng.integers(1, 6, size=shape))  # ratings, not 0/1


def test_most_pop_counts_users() -> None:
    x = _random_binary(1)
    scores = bl.MostPop(x)(np.array([3, 5]))
    want = [(x.toarray()[:, i] > 0).sum() for i in range(x.shape[1])]
    np.testing.assert_array_equal(scores, [want, want])


def test_item_knn_against_double_loop() -> None:
    x = _random_binary(2)
    d = (x.toarray() > 0).astype(int).tolist()
    n_users, n_items = len(d), len(d[0])
    sim = [[0.0] * n_items for _ in range(n_items)]
    for i in range(n_items):
        for j in range(n_items):
            if i == j:
                continue
            both = sum(d[u][i] * d[u][j] for u in range(n_users))
            ni, nj = sum(d[u][i] for u in range(n_users)), sum(d[u][j] for u in range(n_users))
            sim[i][j] = both / math.sqrt(ni * nj) if ni and nj else 0.0
    want = [[sum(sim[j][i] for j in range(n_items) if d[u][j]) for i in range(n_items)]
            for u in range(n_users)]
    model = bl.ItemKNN(x)
    np.testing.assert_allclose(model.similarity, sim, atol=1e-12)
    np.testing.assert_allclose(model(np.arange(n_users)), want, atol=1e-12)


def test_ease_against_columnwise_ridge_solve() -> None:
    # EASE with diag(B) = 0 is, column by column, ridge regression of item j's column on the
    # other items' columns: b_{-j, j} = (X_-j^T X_-j + lam I)^-1 X_-j^T x_j.
    x = _random_binary(3)
    xb = (x.toarray() > 0).astype(float)
    lam = 2.5
    n = xb.shape[1]
    want = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        xo = xb[:, others]
        want[others, j] = np.linalg.solve(xo.T @ xo + lam * np.eye(n - 1), xo.T @ xb[:, j])
    np.testing.assert_allclose(bl.ease_weights(x, lam), want, atol=1e-10)
    np.testing.assert_allclose(bl.EASE(x, lam)(np.array([2, 4])), xb[[2, 4]] @ want, atol=1e-10)


def test_tune_ease_picks_best_validation_recall() -> None:
    fit = _random_binary(4, shape=(60, 12))
    rng = np.random.default_rng(5)
    val = sp.csr_matrix(((rng.random((60, 12)) < 0.1) & (fit.toarray() == 0)) * 5.0)
    grid = (1.0, 10.0, 100.0)
    tuning = bl.tune_ease(fit, val, grid, k=3)
    want = {lam: mt.ranking_metrics(bl.EASE(fit, lam), fit, val, k=3).recall for lam in grid}
    assert tuning.recall_by_lambda == pytest.approx(want)
    assert tuning.recall_by_lambda[tuning.best_lambda] == max(want.values())


def test_biases_converge_to_ridge_solution() -> None:
    rng = np.random.default_rng(6)
    n_users, n_items, n = 7, 5, 25
    cells = rng.permutation(n_users * n_items)[:n]
    u, i = np.divmod(cells, n_items)
    r = rng.integers(1, 6, size=n).astype(float)
    reg_u, reg_i = 2.0, 3.0
    # Direct solve of min |r - mu - A [b_u; b_i]|^2 + reg_u |b_u|^2 + reg_i |b_i|^2, mu = mean.
    a = np.zeros((n, n_users + n_items))
    a[np.arange(n), u] = 1.0
    a[np.arange(n), n_users + i] = 1.0
    reg = np.diag([reg_u] * n_users + [reg_i] * n_items)
    sol = np.linalg.solve(a.T @ a + reg, a.T @ (r - r.mean()))
    model = bl.fit_biases(u, i, r, n_users, n_items, reg_u, reg_i, n_iter=500)
    assert model.mu == pytest.approx(r.mean())
    np.testing.assert_allclose(np.r_[model.b_user, model.b_item], sol, atol=1e-8)
    gm = bl.global_mean(r, n_users, n_items)
    np.testing.assert_allclose(gm.predict(u, i), r.mean())
