"""The evaluate stage's numpy pieces (moviegraph.evaluate.scoring, moviegraph.protocol.data)
against plain references."""

from __future__ import annotations

import numpy as np
import pytest

from moviegraph.config.models import SkipGramConfig
from moviegraph.evaluate import scoring as pr
from moviegraph.protocol.data import EvalData, align, prepare


def tiny_data(seed: int = 0) -> EvalData:
    """30 users x 40 movies (ids not contiguous), random ratings and timestamps."""
    rng = np.random.default_rng(seed)
    catalogue = np.arange(40) * 7 + 3
    rows = []
    for user in range(1, 31):
        movies = rng.choice(catalogue, size=int(rng.integers(3, 20)), replace=False)
        for m in movies:
            rows.append((user * 11, int(m), float(rng.integers(1, 6)), int(rng.integers(0, 50))))
    u, m, r, ts = (np.array(c) for c in zip(*rows, strict=True))
    genres = [["Drama"] if i % 2 else ["Comedy", "Drama"] for i in range(40)]
    return prepare(u, m, r, ts, catalogue[::-1].copy(), genres[::-1])


def test_prepare_positions_follow_sorted_ids():
    d = tiny_data()
    assert np.array_equal(d.movie_ids, np.sort(d.movie_ids))
    assert d.n_items == 40 and d.n_users == 30
    # genres travel with their movie when the catalogue is re-sorted: odd positions Drama.
    assert d.genre_names == ["Comedy", "Drama"]
    assert d.genres[:, 0].tolist() == [i % 2 == 0 for i in range(40)]
    # The three masks: test rows are the rating split's hash, validation never test.
    raw_u, raw_m = d.user_ids[d.u], d.movie_ids[d.m]
    assert np.array_equal(d.rated_test, (raw_u * 1000003 + raw_m) % 10 == 0)
    assert not (d.is_val & d.is_test).any()


def test_align_places_rows_by_id():
    universe = np.array([2, 5, 9, 11])
    ids = np.array([11, 2, 40])  # 40 is not in the universe
    vec = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    out, has = align(ids, vec, universe)
    ref = {2: [2.0, 2.0], 11: [1.0, 1.0]}
    for pos, mid in enumerate(universe):
        assert out[pos].tolist() == ref.get(int(mid), [0.0, 0.0])
        assert has[pos] == (int(mid) in ref)


@pytest.mark.parametrize("layout", ["append", "full"])
def test_biased_dot_rmse_matches_a_loop(layout):
    d = tiny_data(1)
    rng = np.random.default_rng(2)
    dim, mu = 3, 3.4
    q, p = rng.normal(0, 0.3, (d.n_items, dim)), rng.normal(0, 0.3, (d.n_users, dim))
    bi, bu = rng.normal(0, 0.5, d.n_items), rng.normal(0, 0.5, d.n_users)
    has_i = rng.random(d.n_items) > 0.2
    has_u = rng.random(d.n_users) > 0.2
    if layout == "append":
        items = np.column_stack([q, bi, np.ones(d.n_items)])
        users = np.column_stack([p, np.ones(d.n_users), bu])
    else:
        items = np.column_stack([q, bi, np.ones(d.n_items), np.full(d.n_items, mu)])
        users = np.column_stack([p, np.ones(d.n_users), bu, np.ones(d.n_users)])
    items[~has_i] = 0
    users[~has_u] = 0
    assert pr.bias_layout(items, has_i) == layout
    got = pr.biased_dot_rmse(items, has_i, users, has_u, mu, d, layout)
    err = []
    for row in np.flatnonzero(d.rated_test):
        u, i = d.u[row], d.m[row]
        pred = mu
        if has_u[u] and has_i[i]:
            pred += bu[u] + bi[i] + p[u] @ q[i]
        elif has_i[i]:
            pred += bi[i]
        elif has_u[u]:
            pred += bu[u]
        err.append(min(max(pred, 1.0), 5.0) - d.r[row])
    assert got == pytest.approx(float(np.sqrt(np.mean(np.square(err)))), rel=1e-9)


def test_bias_layout_is_none_for_plain_vectors():
    v = np.random.default_rng(0).standard_normal((10, 4))
    assert pr.bias_layout(v, np.ones(10, bool)) is None
    assert pr.bias_layout(v, np.zeros(10, bool)) is None


def test_collector_scores_lists_as_ranking_metrics_scores_the_same_ranking():
    """Recommendation lists scored from a table equal ranking_metrics of the scores that
    produced them (the lists hold the top-k of the unrated movies)."""
    from moviegraph.protocol import metrics as mt
    from moviegraph.protocol.metrics import top_k

    d = tiny_data(3)
    rng = np.random.default_rng(4)
    scores = rng.standard_normal((d.n_users, d.n_items))
    masked = scores.copy()
    masked[d.train.nonzero()] = -np.inf
    lists = top_k(masked, 5)
    out = pr.Collector()
    out.ranking_lists("m", "shipped", lists, d, 5)
    ref = mt.ranking_metrics(lambda us: scores[us], d.train, d.test, k=5)
    by = {n: v for m, n, v in out.rows if m == "m"}
    assert by["recall@5:shipped"] == pytest.approx(ref.recall, abs=1e-12)
    assert by["ndcg@5:shipped"] == pytest.approx(ref.ndcg, abs=1e-12)
    assert by["users@5"] == ref.n_users


def test_walk_fidelity_rows():
    out = pr.Collector()
    pval = pr.walk_fidelity(out, 0.5, 2.0, seed=9, rounds=60, length=20)
    by = {n: v for _, n, v in out.rows}
    assert set(by) == {"chi2[p=0.5,q=2]", "dof[p=0.5,q=2]", "p_value[p=0.5,q=2]"}
    assert by["dof[p=0.5,q=2]"] > 50 and pval == by["p_value[p=0.5,q=2]"] > 1e-4


def test_gensim_vectors_cover_the_walked_movies():
    pytest.importorskip("gensim")
    walks = np.array([[3, 10, 3, 10, -1], [10, 25, 10, 3, 25]] * 20)
    ids, vec = pr.gensim_vectors(walks, SkipGramConfig(dim=4, epochs=1, seed=1))
    assert ids.tolist() == [3, 10, 25] and vec.shape == (3, 4)
    assert np.isfinite(vec).all()
