"""Shipped scorers (train/shipped.py), the table metrics (evaluate/lists.py) and the
neighbours job's title matching, against plain pandas / numpy recomputations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from moviegraph.config.models import ScorerConfig
from moviegraph.errors import InputError
from moviegraph.evaluate import lists as ev
from moviegraph.protocol.data import prepare
from moviegraph.train.shipped import (
    TrainRatings,
    fit_scorer,
    fold_in,
    from_row,
    item_priors,
    recency_weights,
)


def _ratings(seed: int = 0, users: int = 60, movies: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, users + 1):
        for m in rng.choice(np.arange(movies) * 3 + 5, size=int(rng.integers(2, 25)),
                            replace=False):
            rows.append((u * 7, int(m), float(rng.integers(1, 6)), int(rng.integers(0, 30))))
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating", "ts"])


def _pandas_train(r: pd.DataFrame) -> pd.DataFrame:
    r = r.sort_values(["user_id", "ts", "movie_id"])
    from_end = r.groupby("user_id").cumcount(ascending=False)
    n = r.groupby("user_id")["movie_id"].transform("size")
    return r[from_end >= np.maximum(1, n // 5)]


def test_item_priors_equal_pandas_counts():
    r = _ratings()
    t = TrainRatings.of(*(r[c].to_numpy() for c in ("user_id", "movie_id", "rating", "ts")))
    train = _pandas_train(r)
    assert len(t.user_id) == len(train)
    ids = np.unique(r.movie_id)
    pri = item_priors(t, ids)
    pop = train.groupby("movie_id").size().reindex(ids, fill_value=0)
    np.testing.assert_allclose(pri["popularity"], np.log1p(pop.to_numpy()))
    # recent: the last max(1, n // 5) of each user's train ratings by (ts, movie id)
    from_end = train.groupby("user_id").cumcount(ascending=False)
    n = train.groupby("user_id")["movie_id"].transform("size")
    recent = train[from_end < np.maximum(1, n // 5)]
    rec = recent.groupby("movie_id").size().reindex(ids, fill_value=0)
    np.testing.assert_allclose(pri["recent"], np.log1p(rec.to_numpy()))
    sc = fit_scorer("m", ScorerConfig(list_prior="recent", list_beta=0.5,
                                      recommend_prior="popularity", recommend_beta=0.25),
                    ids, t, 7)
    np.testing.assert_allclose(sc.list_term, 0.5 * pri["recent"])
    np.testing.assert_allclose(sc.recommend_term, 0.25 * pri["popularity"])
    back = from_row(sc.row("run"))
    assert back.settings["list_dims"] == 7 and back.settings["half_life"] == 0.0
    np.testing.assert_array_equal(back.list_term, sc.list_term)


def test_recency_weights_follow_the_profile_rule():
    row = np.array([0, 0, 0, 1, 1, 2])
    movie = np.array([10, 11, 12, 10, 13, 14])
    ts = np.array([5, 1, 5, 0, 0, 3])
    rating = np.array([5, 4, 2, 3, 2, 4.0])
    w = recency_weights(row, movie, ts, rating, half_life=1.0)
    # row 0 by (ts, movie): 11 (age 2), 10 (age 1), 12 (age 0, not liked -> 0)
    # row 1 likes nothing: all its ratings, 13 (age 0) and 10 (age 1)
    np.testing.assert_allclose(w, [0.5, 0.25, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(recency_weights(row, movie, ts, rating, 0.0),
                               [1, 1, 0, 1, 1, 1])


def test_fold_in_gives_every_train_movie_a_vector():
    r = _ratings(3)
    t = TrainRatings.of(*(r[c].to_numpy() for c in ("user_id", "movie_id", "rating", "ts")))
    all_ids = np.unique(t.movie_id)
    known = all_ids[::2]
    vec = np.random.default_rng(1).standard_normal((known.size, 6)).astype(np.float32)
    ids, out, added = fold_in(known, vec, t)
    assert added == all_ids.size - known.size and np.array_equal(ids, all_ids)
    np.testing.assert_array_equal(out[np.searchsorted(ids, known)], vec)
    # A folded-in vector points along the sum of its raters' profiles (independent loop).
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    m = int(all_ids[1])
    total = np.zeros(6)
    for u in np.unique(t.user_id[t.movie_id == m]):
        mine = (t.user_id == u)
        liked = mine & (t.rating >= 4)
        prof = liked if liked.any() else mine
        rows = [np.searchsorted(known, x) for x in t.movie_id[prof] if x in set(known)]
        if rows:
            p = unit[rows].mean(axis=0)
            total += p / np.linalg.norm(p)
    got = out[np.searchsorted(ids, m)]
    np.testing.assert_allclose(got / np.linalg.norm(got), total / np.linalg.norm(total),
                               atol=1e-5)


def _eval_data(r: pd.DataFrame):
    catalogue = np.unique(r.movie_id)
    genres = [["A"] if m % 2 else ["B"] for m in catalogue]
    return prepare(r.user_id.to_numpy(), r.movie_id.to_numpy(), r.rating.to_numpy(),
                   r.ts.to_numpy(), catalogue, genres)


def test_neighbour_hit_rate_and_list_recall_equal_pandas():
    r = _ratings(5, users=80)
    d = _eval_data(r)
    rng = np.random.default_rng(2)
    ids = d.movie_ids
    # A similar_movies-like table: random lists of 20 per movie (some movies without).
    rows = [(int(m), k + 1, int(n)) for m in ids[:-3]
            for k, n in enumerate(rng.choice(ids[ids != m], 20, replace=False))]
    table = pd.DataFrame(rows, columns=["movie_id", "rank", "neighbor_id"])
    lists = ev.table_lists(table.movie_id, table["rank"], table.neighbor_id, ids, ids, 20)
    res = ev.neighbour_hit_rate(lists, d, 20)
    # pandas
    train = _pandas_train(r)
    test = r.drop(train.index)
    query = train[train.rating >= 4].groupby("user_id")["movie_id"].last()
    rel = test[test.rating >= 4].groupby("user_id")["movie_id"].apply(set)
    seen = train.groupby("user_id")["movie_id"].apply(set)
    by_movie = table.sort_values("rank").groupby("movie_id")["neighbor_id"].apply(list)
    hits, recalls = [], []
    for u, relevant in rel.items():
        answer = [x for x in by_movie.get(query.get(u), []) if x not in seen.get(u, set())]
        h = len(relevant & set(answer))
        hits.append(h > 0)
        recalls.append(h / min(20, len(relevant)))
    assert res.users == len(rel)
    assert res.hr == pytest.approx(np.mean(hits), abs=1e-12)
    assert res.recall == pytest.approx(np.mean(recalls), abs=1e-12)
    # genre precision@10 of the lists over train movies with a genre that have a list
    prec = []
    for m in sorted(set(train.movie_id)):
        lst = by_movie.get(m, [])[:10]
        if lst:
            prec.append(np.mean([(x % 2) == (m % 2) for x in lst]))
    got, coverage = ev.list_genre_precision(lists, d, 10)
    assert got == pytest.approx(np.mean(prec), abs=1e-12)
    assert coverage == pytest.approx(len(prec) / len(set(train.movie_id)))


def test_baseline_lists_equal_a_dense_reference():
    r = _ratings(7)
    d = _eval_data(r)
    x = (d.train != 0).astype(float).toarray()
    co = x.T @ x
    n = np.diag(co)
    for kind in ("itemknn", "cocount"):
        got = ev.baseline_lists(d.train, kind, 10, block=7)
        # Same arithmetic as the lists (1/sqrt per side): equal cosines stay exactly equal.
        inv = 1.0 / np.sqrt(np.where(n > 0, n, 1.0))
        s = co * (inv[:, None] * inv[None, :]) if kind == "itemknn" else co.copy()
        s = np.nan_to_num(s, nan=0.0)
        for q in range(d.n_items):
            if n[q] == 0:
                assert (got[q] == -1).all()
                continue
            sc = s[q].copy()
            sc[q] = -np.inf
            sc[n == 0] = -np.inf
            order = np.lexsort((np.arange(d.n_items), -sc))[:10]
            order = order[np.isfinite(sc[order])]
            assert got[q, :order.size].tolist() == order.tolist(), (kind, q)


def test_neighbours_title_matching():
    from moviegraph.stages.neighbours import match_movie

    ids = np.array([1, 2, 50, 172, 181])
    titles = ["Toy Story (1995)", "GoldenEye (1995)", "Star Wars (1977)",
              "Empire Strikes Back, The (1980)", "Return of the Jedi (1983)"]
    pop = np.array([5, 1, 9, 4, 4])
    assert match_movie("Star Wars", ids, titles, pop) == 2
    assert match_movie("star wars (1977)", ids, titles, pop) == 2
    assert match_movie("The Empire Strikes Back", ids, titles, pop) == 3
    assert match_movie("Retrun of the Jedi", ids, titles, pop) == 4  # typo: difflib
    assert match_movie("172", ids, titles, pop) == 3
    with pytest.raises(InputError, match="no movie matches 'Zzzyzx'"):
        match_movie("Zzzyzx", ids, titles, pop)


def test_neighbours_command_line_sets_its_section():
    from moviegraph.cli import parse

    _, cfg = parse(["neighbours", "Godfather, The", "--k", "5", "--model", "cbow"])
    assert (cfg.neighbours.movie, cfg.neighbours.k, cfg.neighbours.model) == \
        ("Godfather, The", 5, "cbow")
    with pytest.raises(ValueError, match=r"neighbours\.model"):
        parse(["neighbours", "x", "--model", "nope"])


def test_tune_lists_hit_rates_equal_the_protocol_on_the_validation_cut():
    """Each grid point's validation HR = evaluate's neighbour_hit_rate of dense numpy lists
    (metric + beta prior + corate co-rating cosine, all counted on train minus the cut)
    with EVALUATION.md's protocol applied to the train rows (its test part = the cut)."""
    from moviegraph.similarity.list_tuning import tune_lists

    r = _ratings(seed=3, users=80, movies=40)
    t = TrainRatings.of(*(r[c].to_numpy() for c in ("user_id", "movie_id", "rating", "ts")))
    ids = np.arange(40) * 3 + 5
    rng = np.random.default_rng(1)
    vec = rng.standard_normal((ids.size, 6))
    got = tune_lists(ids, vec, "cosine", "recent", t, k=5, betas=(0.0, 0.3),
                     corates=(0.0, 1.0, 4.0))
    d = prepare(t.user_id, t.movie_id, t.rating, t.ts, ids, [[] for _ in ids])
    fit = ~d.is_test  # the protocol on the train rows: its test part is the cut
    fit_t = TrainRatings(d.user_ids[d.u][fit], ids[d.m][fit], d.r[fit], d.ts[fit])
    prior = item_priors(fit_t, ids)["recent"]
    x = np.zeros((d.n_users, ids.size))
    x[d.u[fit], d.m[fit]] = 1.0
    co = x.T @ x
    n = np.diag(co).copy()
    denom = np.sqrt(np.outer(n, n))
    cos_co = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    expected = {}
    for b in (0.0, 0.3):
        for c in (0.0, 1.0, 4.0):
            s = unit @ unit.T + b * prior[None, :] + c * cos_co
            np.fill_diagonal(s, -np.inf)
            lists = np.stack([np.lexsort((np.arange(ids.size), -row))[:5] for row in s])
            expected[(b, c)] = ev.neighbour_hit_rate(lists, d, 5).hr
    assert got.hit_rate.keys() == expected.keys()
    for key, hr in expected.items():
        assert got.hit_rate[key] == pytest.approx(hr), key
    assert len(set(expected.values())) > 1  # the weights matter here
    best = max(expected.values())
    assert got.hit_rate[(got.beta, got.corate)] == best
    assert got.corate == min(c for (_, c), h in expected.items() if h == best)
