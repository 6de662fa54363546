"""The `similar` and `export` stages on MovieLens-100K-sized data vs brute-force references.

Embeddings are written by hand (seeded random vectors, 1,682 movies x 64 dims, and a
model full of exact ties); ratings are synthetic (943 users), so nothing here depends on
the trainer or on downloads.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.export.projector import atomic_dir
from moviegraph.runs import StageRun
from moviegraph.similarity.joins import rated_lists, recommendations, similar_movies
from moviegraph.stages.export import run_export
from moviegraph.stages.similar import run_similar
from moviegraph.tables import SCHEMAS, Warehouse

N_MOVIES, DIM, N_USERS, K = 1682, 64, 943, 20


def _movie_ids():
    # Non-contiguous ids, shuffled on write: positions must never be mistaken for ids.
    return np.arange(1, N_MOVIES + 1) * 3 + 7


def _tie_vectors(rng, n, dim):
    """Entries in {-1, 0, 1}, four non-zeros: every cosine and dot is exact, ties abound."""
    v = np.zeros((n, dim), dtype=np.float32)
    for i in range(n):
        cols = rng.choice(dim // 8, size=4, replace=False)  # few columns: many equal scores
        v[i, cols] = rng.choice([-1.0, 1.0], size=4)
    return v


@pytest.fixture(scope="module")
def data():
    return make_data()


def make_data():
    """Seeded embeddings (three models, one with an older run) and synthetic ratings."""
    rng = np.random.default_rng(2024)
    ids = _movie_ids()
    vec = {
        "rand": rng.standard_normal((N_MOVIES, DIM)).astype(np.float32),
        "rand_old": rng.standard_normal((N_MOVIES, DIM)).astype(np.float32),
        "ties": _tie_vectors(rng, N_MOVIES, DIM),
        "mfx": (rng.standard_normal((N_MOVIES, DIM)) * 0.3).astype(np.float32),
    }
    users = np.arange(1, N_USERS + 1)
    user_vec = (rng.standard_normal((N_USERS + 1, DIM)) * 0.3).astype(np.float32)
    rows = []
    for u in users:
        n = int(rng.integers(5, 250))
        movies = rng.choice(ids, size=n, replace=False)
        stars = rng.integers(1, 6, size=n).astype(np.float32)
        if u % 7 == 0:
            stars = np.minimum(stars, 3)  # users with no liked movie: profile = all rated
        rows.append(pd.DataFrame({"user_id": u, "movie_id": movies, "rating": stars, "ts": 0}))
    ratings = pd.concat(rows, ignore_index=True)
    return {"ids": ids, "vec": vec, "user_vec": user_vec, "ratings": ratings}


def _vector_table(key_col: str, keys, model: str, run_id: str, vectors) -> pa.Table:
    n, dim = vectors.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * dim)
    vec = pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32()))
    return pa.table({"model": pa.array([model] * n), "run_id": pa.array([run_id] * n),
                     key_col: pa.array(np.asarray(keys, dtype=np.int32)), "vector": vec})


def _write(wh: Warehouse, data) -> None:
    spark = wh.spark
    order = np.random.default_rng(0).permutation(N_MOVIES)
    emb = []
    for model, run_id, key in [("rand", "20240101T000000-aaaaaa", "rand_old"),
                               ("rand", "20250101T000000-bbbbbb", "rand"),
                               ("ties", "20250101T000000-cccccc", "ties"),
                               ("mfx", "20250101T000000-dddddd", "mfx")]:
        emb.append(_vector_table("movie_id", data["ids"][order], model, run_id,
                                 data["vec"][key][order]))
    wh.write("embeddings", spark.createDataFrame(pa.concat_tables(emb)))
    # User 944 has a vector but no ratings; it must still get recommendations.
    uemb = _vector_table("user_id", np.arange(1, N_USERS + 2), "mfx",
                         "20250101T000000-dddddd", data["user_vec"])
    wh.write("user_embeddings", spark.createDataFrame(uemb))
    r = data["ratings"].astype({"user_id": "int32", "movie_id": "int32", "ts": "int64"})
    wh.write("ratings", spark.createDataFrame(r, SCHEMAS["ratings"]))


def _stage(wh: Warehouse, partitions: int, block_size: int, models: str = ""):
    cfg = Config()
    cfg.similar.partitions = partitions
    cfg.similar.block_size = block_size
    cfg.similar.metric = "both"
    cfg.similar.ratings = "all"  # the brute-force references use every rating
    cfg.similar.models = [m for m in models.split(",") if m]
    run = StageRun(stage="similar", run_id="test", config_hash="x")
    summary = run_similar(wh.spark, cfg, wh, run)
    sim = wh.read("similar_movies").toPandas()
    rec = wh.read("recommendations").toPandas()
    return sim, rec, run, summary


@pytest.fixture(scope="module")
def inputs(spark, data, tmp_path_factory):
    """A warehouse holding the hand-written embeddings, user embeddings and ratings."""
    wh = Warehouse(spark, str(tmp_path_factory.mktemp("similar") / "warehouse"))
    _write(wh, data)
    return wh


@pytest.fixture(scope="module")
def results(inputs):
    return _stage(inputs, partitions=3, block_size=100)


def reference_neighbours(vectors, ids, metric, k):
    """Brute force: float64 scores of every pair, self excluded, sorted by (-score, id)."""
    v = vectors.astype(np.float64)
    if metric == "cosine":
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    s = v @ v.T
    np.fill_diagonal(s, -np.inf)
    out = {}
    for i in range(len(ids)):
        order = np.lexsort((ids, -s[i]))[:k]
        out[int(ids[i])] = (ids[order].tolist(), s[i, order])
    return out


def _as_lists(df, key, item):
    df = df.sort_values([key, "rank"])
    assert (df.groupby(key)["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1)))).all()
    return {int(q): (g[item].tolist(), g["score"].to_numpy()) for q, g in df.groupby(key)}


@pytest.mark.parametrize("model", ["rand", "ties"])
@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_similar_movies_equal_brute_force(results, data, model, metric):
    sim = results[0]
    got = _as_lists(sim[(sim.model == model) & (sim.metric == metric)], "movie_id",
                    "neighbor_id")
    ref = reference_neighbours(data["vec"][model], data["ids"], metric, K)
    assert got.keys() == ref.keys()
    for movie, (nbrs, scores) in ref.items():
        assert got[movie][0] == nbrs, f"movie {movie}"
        np.testing.assert_allclose(got[movie][1], scores, atol=1e-5, rtol=0)
    if model == "ties":  # the tie case really is one
        tied = sum(len(np.unique(s)) < K for _, s in ref.values())
        assert tied > N_MOVIES // 2


def test_latest_run_is_used(results, data):
    sim = results[0]
    one = sim[(sim.model == "rand") & (sim.metric == "cosine") & (sim.movie_id == 10)]
    ref = reference_neighbours(data["vec"]["rand"], data["ids"], "cosine", K)[10]
    assert one.sort_values("rank").neighbor_id.tolist() == ref[0]
    assert set(sim.model) == {"rand", "ties", "mfx"}


def test_recommendations_never_contain_rated_movies(results, data):
    rec = results[1]
    rated = data["ratings"][["user_id", "movie_id"]]
    clash = rec.merge(rated, on=["user_id", "movie_id"])
    assert len(clash) == 0
    per_user = rec.groupby(["model", "user_id"]).size()
    assert (per_user == K).all()
    assert rec[rec.model == "rand"].user_id.nunique() == N_USERS
    assert rec[rec.model == "mfx"].user_id.nunique() == N_USERS + 1  # 944: vector, no ratings


def _reference_recs(scores, ids, rated_ids, k):
    s = scores.copy()
    s[np.isin(ids, list(rated_ids))] = -np.inf
    order = np.lexsort((ids, -s))[:k]
    return ids[order].tolist(), s[order]


@pytest.mark.parametrize("user", [1, 7, 14, 500, 943])
def test_item_model_recommendations_equal_brute_force(results, data, user):
    rec = results[1]
    ids, v = data["ids"], data["vec"]["rand"].astype(np.float64)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    mine = data["ratings"][data["ratings"].user_id == user]
    liked = mine[mine.rating >= 4].movie_id.tolist() or mine.movie_id.tolist()
    pos = {int(m): i for i, m in enumerate(ids)}
    scores = np.zeros(len(ids))
    for j in liked:  # EVALUATION.md: sum over the profile of cos(e_i, e_j)
        scores += unit @ unit[pos[j]]
    ref_ids, ref_scores = _reference_recs(scores, ids, set(mine.movie_id), K)
    got = rec[(rec.model == "rand") & (rec.user_id == user)].sort_values("rank")
    assert got.movie_id.tolist() == ref_ids
    np.testing.assert_allclose(got.score, ref_scores, atol=1e-5, rtol=0)


@pytest.mark.parametrize("user", [3, 21, 944])
def test_user_vector_recommendations_equal_brute_force(results, data, user):
    rec = results[1]
    ids = data["ids"]
    scores = data["vec"]["mfx"].astype(np.float64) @ data["user_vec"][user - 1].astype(
        np.float64)
    rated = set(data["ratings"][data["ratings"].user_id == user].movie_id)
    ref_ids, ref_scores = _reference_recs(scores, ids, rated, K)
    got = rec[(rec.model == "mfx") & (rec.user_id == user)].sort_values("rank")
    assert got.movie_id.tolist() == ref_ids
    np.testing.assert_allclose(got.score, ref_scores, atol=1e-5, rtol=0)


def test_one_partition_gives_identical_tables(inputs, results):
    sim1, rec1, _, _ = _stage(inputs, partitions=1, block_size=1000, models="ties,rand,mfx")
    keys_s = ["model", "metric", "movie_id", "rank"]
    keys_r = ["model", "user_id", "rank"]
    pd.testing.assert_frame_equal(
        sim1.sort_values(keys_s).reset_index(drop=True),
        results[0].sort_values(keys_s).reset_index(drop=True))
    pd.testing.assert_frame_equal(
        rec1.sort_values(keys_r).reset_index(drop=True),
        results[1].sort_values(keys_r).reset_index(drop=True))


def test_run_record_and_summary(results):
    sim, rec, run, summary = results
    assert run.rows["similar_movies"] == 3 * 2 * N_MOVIES * K == len(sim)
    # Counted by the writing tasks: equal to what the tables hold.
    assert run.rows["recommendations"] == len(rec)
    for model, info in run.notes["models"].items():
        mine = rec[rec.model == model]
        assert info["recommendation_rows"] == len(mine)
        assert info["users"] == mine.user_id.nunique()
        for metric, rows in info["similar_rows"].items():
            assert rows == len(sim[(sim.model == model) & (sim.metric == metric)])
    first = sim[(sim.model == "mfx") & (sim.metric == "cosine")]
    first = first[first.movie_id == first.movie_id.min()].sort_values("rank").head(5)
    lines = summary.splitlines()
    assert len(first) == 5
    for r in first.itertuples():  # the summary's example is what the table holds
        assert any(line.startswith(f"    {r.rank}. {r.neighbor_id} ")
                   and line.endswith(f"({r.score:.3f})") for line in lines)
    assert set(run.outputs) == {"similar_movies", "recommendations"}
    assert run.notes["models"]["mfx"]["recommend_by"].startswith("user vectors")
    assert run.notes["models"]["rand"]["run_id"] == "20250101T000000-bbbbbb"
    assert "rand" in summary and "ties" in summary


def test_unknown_model_is_an_input_error(inputs):
    cfg = Config()
    cfg.similar.models = ["rand", "nope"]
    with pytest.raises(InputError, match="nope"):
        run_similar(inputs.spark, cfg, inputs,
                      StageRun(stage="similar", run_id="t", config_hash="x"))


# ------------------------------------------------ additive item term (issue 14, item 5)


@pytest.fixture(scope="module")
def term_data(data):
    """The tie model with every tenth movie a duplicate of the one before, and an item term
    (multiples of 1/8: exact in float32 and float64) equal on the duplicates, so exact ties
    straddle ranks and must go to the lower id."""
    rng = np.random.default_rng(99)
    vec = data["vec"]["ties"].copy()
    vec[10::10] = vec[9:-1:10]
    term = rng.integers(-4, 5, size=N_MOVIES) / 8.0
    term[10::10] = term[9:-1:10]
    return vec, term


def _join_lists(df, key, item):
    return _as_lists(df.toPandas(), key, item)


def _dense_reference(scores, ids, k, banned_rows=None):
    """Rows of a dense float64 score matrix -> ({query row: (ids, scores)}), banned -inf."""
    out = {}
    for r in range(scores.shape[0]):
        s = scores[r].copy()
        if banned_rows is not None:
            s[banned_rows[r]] = -np.inf
        order = np.lexsort((ids, -s))[:k]
        order = order[np.isfinite(s[order])]
        out[r] = (ids[order].tolist(), s[order])
    return out


def _assert_lists_equal(got: dict, ref: dict, ids: np.ndarray) -> None:
    """Every movie has a list, and each equals the brute-force reference (ids, scores)."""
    assert got.keys() == set(ids.tolist())
    for r, (nbrs, sc) in ref.items():
        assert got[int(ids[r])][0] == nbrs, f"movie {ids[r]}"
        np.testing.assert_allclose(got[int(ids[r])][1], sc, atol=1e-5, rtol=0)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_similar_movies_with_item_term_equal_brute_force(spark, data, term_data, metric):
    vec, term = term_data
    ids = data["ids"]
    v = vec.astype(np.float64)
    if metric == "cosine":
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    scores = v @ v.T + term[None, :]
    np.fill_diagonal(scores, -np.inf)
    ref = _dense_reference(scores, ids, K)
    df, bc = similar_movies(spark, ids, vec, metric, K, block_size=100, partitions=3,
                            item_term=term)
    got = _join_lists(df, "movie_id", "neighbor_id")
    bc.unpersist()
    _assert_lists_equal(got, ref, ids)
    tied = sum(len(np.unique(sc)) < K for _, sc in ref.values())
    assert tied > N_MOVIES // 2  # the tie case really is one
    # Another partitioning and block size: the same rows.
    df1, bc1 = similar_movies(spark, ids, vec, metric, K, block_size=7, partitions=1,
                              item_term=term)
    cols = ["movie_id", "rank", "neighbor_id", "score"]
    a = df.toPandas().sort_values(cols[:2]).reset_index(drop=True)
    b = df1.toPandas().sort_values(cols[:2]).reset_index(drop=True)
    bc1.unpersist()
    pd.testing.assert_frame_equal(a[cols], b[cols])


def _users_frame(spark, data, with_vectors):
    r = data["ratings"].astype({"user_id": "int32", "movie_id": "int32", "ts": "int64"})
    users = rated_lists(spark.createDataFrame(r, SCHEMAS["ratings"]))
    if with_vectors:
        uemb = _vector_table("user_id", np.arange(1, N_USERS + 2), "mfx", "x",
                             data["user_vec"])
        users = (spark.createDataFrame(uemb).select("user_id", "vector")
                 .join(users, "user_id", "left"))
    return users


@pytest.mark.parametrize("by_vectors", [False, True])
def test_recommendations_with_item_term_equal_brute_force(spark, data, term_data, by_vectors):
    vec, term = term_data
    ids = data["ids"]
    ratings = data["ratings"]
    pos = {int(m): i for i, m in enumerate(ids)}
    user_ids = np.arange(1, N_USERS + (2 if by_vectors else 1))
    rated = [[pos[m] for m in ratings.movie_id[ratings.user_id == u]] for u in user_ids]
    if by_vectors:
        base = data["user_vec"].astype(np.float64) @ vec.astype(np.float64).T
    else:  # EVALUATION.md: sum of cosines with the liked movies (all rated if none liked)
        unit = vec.astype(np.float64) / np.linalg.norm(vec, axis=1, keepdims=True)
        prof = np.zeros((len(user_ids), N_MOVIES))
        for u, uid in enumerate(user_ids):
            mine = ratings[ratings.user_id == uid]
            liked = mine[mine.rating >= 4].movie_id.tolist() or mine.movie_id.tolist()
            prof[u, [pos[m] for m in liked]] = 1.0
        base = prof @ (unit @ unit.T)
    ref = _dense_reference(base + term[None, :], ids, K, rated)
    users = _users_frame(spark, data, by_vectors)
    df, bc = recommendations(spark, ids, vec, users, K, by_vectors, block_size=64,
                             partitions=3, item_term=term)
    got = _join_lists(df, "user_id", "movie_id")
    bc.unpersist()
    assert got.keys() == set(user_ids.tolist())
    for u, uid in enumerate(user_ids):
        assert got[int(uid)][0] == ref[u][0], f"user {uid}"
        np.testing.assert_allclose(got[int(uid)][1], ref[u][1], atol=1e-4, rtol=0)
    tied = sum(len(np.unique(sc)) < len(sc) for _, sc in ref.values())
    assert tied > 50
    df1, bc1 = recommendations(spark, ids, vec, users, K, by_vectors, block_size=1000,
                               partitions=1, item_term=term)
    cols = ["user_id", "rank", "movie_id", "score"]
    a = df.toPandas().sort_values(cols[:2]).reset_index(drop=True)
    b = df1.toPandas().sort_values(cols[:2]).reset_index(drop=True)
    bc1.unpersist()
    pd.testing.assert_frame_equal(a[cols], b[cols])


def _co_rating_data(ids):
    """Ratings for the co-rating term: raters drawn from 40 users (many equal counts and
    cosines), every tenth movie rated by exactly the raters of the one before (as the
    duplicated vectors of ``term_data``), so exact ties survive the term."""
    rng = np.random.default_rng(7)
    raters = [rng.choice(40, size=int(rng.integers(0, 6)), replace=False)
              for _ in range(N_MOVIES)]
    for i in range(10, N_MOVIES, 10):
        raters[i] = raters[i - 1]
    movie = np.concatenate([np.full(r.size, ids[i]) for i, r in enumerate(raters)])
    user = np.concatenate(raters) * 3 + 1000  # sparse, non-contiguous user ids
    # One movie id outside the catalogue: ignored.
    return np.r_[movie, [-5]].astype(np.int64), np.r_[user, [1000]].astype(np.int64)


def _co_rating_reference(movie, user, ids, weight):
    """Brute force: dense item x item co-rater counts over the geometric mean of raters."""
    pos = {int(m): i for i, m in enumerate(ids)}
    users = {int(u): j for j, u in enumerate(sorted(set(user.tolist())))}
    x = np.zeros((len(ids), len(users)), np.int64)
    for m, u in zip(movie.tolist(), user.tolist(), strict=True):
        if m in pos:
            x[pos[m], users[u]] = 1
    co = (x @ x.T).astype(np.float64)
    n = x.sum(axis=1).astype(np.float64)
    denom = np.sqrt(n[:, None] * n[None, :])
    cos = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
    return weight * cos


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_similar_movies_with_co_rating_term_equal_brute_force(spark, data, term_data, metric):
    """metric + item term + weight x co-rating cosine, ranked by the join = a dense numpy
    reference, exact ties (duplicated vectors, terms and raters) to the lower id; the same
    rows whatever the partitioning and block size."""
    vec, term = term_data
    ids = data["ids"]
    movie, user = _co_rating_data(ids)
    v = vec.astype(np.float64)
    if metric == "cosine":
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    scores = (v @ v.T + term[None, :]) + _co_rating_reference(movie, user, ids, 0.5)
    np.fill_diagonal(scores, -np.inf)
    ref = _dense_reference(scores, ids, K)
    df, bc = similar_movies(spark, ids, vec, metric, K, block_size=100, partitions=3,
                            item_term=term, co_rating=(movie, user, 0.5))
    got = _join_lists(df, "movie_id", "neighbor_id")
    bc.unpersist()
    _assert_lists_equal(got, ref, ids)
    tied = sum(len(np.unique(sc)) < K for _, sc in ref.values())
    assert tied > N_MOVIES // 4  # ties survive the term
    # The term changes the lists (else the test would not test it).
    plain = _dense_reference(np.where(np.isinf(scores), -np.inf, v @ v.T + term[None, :]),
                             ids, K)
    assert sum(plain[r][0] != ref[r][0] for r in ref) > N_MOVIES // 4
    df1, bc1 = similar_movies(spark, ids, vec, metric, K, block_size=7, partitions=1,
                              item_term=term, co_rating=(movie, user, 0.5))
    cols = ["movie_id", "rank", "neighbor_id", "score"]
    a = df.toPandas().sort_values(cols[:2]).reset_index(drop=True)
    b = df1.toPandas().sort_values(cols[:2]).reset_index(drop=True)
    bc1.unpersist()
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_negative_co_rating_weight_is_an_input_error(spark, data):
    with pytest.raises(InputError, match="co-rating weight"):
        similar_movies(spark, data["ids"], data["vec"]["rand"], "cosine", K,
                       co_rating=(np.array([data["ids"][0]]), np.array([1]), -1.0))


def test_item_term_of_the_wrong_length_is_an_input_error(spark, data):
    with pytest.raises(InputError, match="item term has shape"):
        similar_movies(spark, data["ids"], data["vec"]["rand"], "cosine", K,
                       item_term=np.zeros(N_MOVIES - 1))


# ------------------------------- the stage with shipped scorers (issue 14: what ships)


@pytest.fixture(scope="module")
def shipped(spark, data, term_data, tmp_path_factory):
    """The similar stage on a warehouse with a `scorers` row: node2vec = the tie vectors
    (lists) with the tie item term; cbow = random vectors (recommendations, recency
    profile); ratings with times, the stage on the ranking split's train part."""
    from moviegraph.train.shipped import FittedScorer, scorer_table

    wh = Warehouse(spark, str(tmp_path_factory.mktemp("shipped") / "warehouse"))
    vec, term = term_data
    ids = data["ids"]
    rng = np.random.default_rng(5)
    emb = pa.concat_tables([_vector_table("movie_id", ids, "node2vec", "r1", vec),
                            _vector_table("movie_id", ids, "cbow", "r1", data["vec"]["rand"])])
    wh.write("embeddings", spark.createDataFrame(emb))
    r = data["ratings"].copy()
    r["ts"] = rng.integers(0, 50, size=len(r))  # repeated times: movie id breaks ties
    r = r.astype({"user_id": "int32", "movie_id": "int32", "ts": "int64"})
    wh.write("ratings", spark.createDataFrame(r, SCHEMAS["ratings"]))
    rec_term = rng.standard_normal(N_MOVIES) * 0.05
    base = {"list_metric": "cosine", "list_dims": DIM, "recommend_by": "profile"}
    scorers = [FittedScorer("node2vec", {**base, "half_life": 0.0, "list_corate": 0.25},
                            ids, term, np.zeros(N_MOVIES)),
               FittedScorer("cbow", {**base, "half_life": 3.0}, ids, np.zeros(N_MOVIES),
                            rec_term)]
    wh.write("scorers", spark.createDataFrame(scorer_table(scorers, "r1")))
    cfg = Config()
    cfg.similar.partitions, cfg.similar.block_size = 3, 100
    run = StageRun(stage="similar", run_id="test", config_hash="x")
    run_similar(spark, cfg, wh, run)
    return (wh.read("similar_movies").toPandas(), wh.read("recommendations").toPandas(),
            r, rec_term, run)


def _train_part(ratings):
    """The ranking split's train part, independently: each user's ratings by (ts, movie
    id) minus the last max(1, n // 5)."""
    r = ratings.sort_values(["user_id", "ts", "movie_id"])
    from_end = r.groupby("user_id").cumcount(ascending=False)
    n = r.groupby("user_id")["movie_id"].transform("size")
    return r[from_end >= np.maximum(1, n // 5)].copy()


def test_stage_lists_are_metric_plus_the_persisted_item_term(shipped, data, term_data):
    """similar_movies of the stage = brute-force cosine + the scorers table's list term +
    its co-rating weight x the co-rating cosine of the train part, exact ties to the lower
    id."""
    sim, ratings = shipped[0], shipped[2]
    vec, term = term_data
    ids = data["ids"]
    v = vec.astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    train = _train_part(ratings)
    scores = (v @ v.T + term[None, :]) + _co_rating_reference(
        train.movie_id.to_numpy(), train.user_id.to_numpy(), ids, 0.25)
    np.fill_diagonal(scores, -np.inf)
    ref = _dense_reference(scores, ids, K)
    got = _as_lists(sim[(sim.model == "node2vec")], "movie_id", "neighbor_id")
    assert set(sim[sim.model == "node2vec"].metric) == {"cosine"}  # the scorer's metric
    for r, (nbrs, sc) in ref.items():
        assert got[int(ids[r])][0] == nbrs, f"movie {ids[r]}"
        np.testing.assert_allclose(got[int(ids[r])][1], sc, atol=1e-5, rtol=0)


def test_stage_recommendations_are_the_recency_profile_plus_the_item_term(shipped, data):
    """recommendations of the stage = an independent pandas/numpy recomputation: train part
    of the ranking split, liked movies weighted 0.5 ** (age / 3), mean unit vector, cosine
    + the recommend term, train movies excluded."""
    _, rec, ratings, rec_term, _ = shipped
    ids = data["ids"]
    unit = data["vec"]["rand"].astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    pos = {int(m): i for i, m in enumerate(ids)}
    train = _train_part(ratings)
    train["age"] = train.groupby("user_id").cumcount(ascending=False)
    got = _as_lists(rec[rec.model == "cbow"], "user_id", "movie_id")
    assert got.keys() == set(train.user_id)
    for uid, mine in train.groupby("user_id"):
        liked = mine[mine.rating >= 4]
        prof_rows = liked if len(liked) else mine
        w = 0.5 ** (prof_rows.age.to_numpy() / 3.0)
        prof = (w[:, None] * unit[[pos[m] for m in prof_rows.movie_id]]).sum(0) / w.sum()
        s = unit @ prof + rec_term
        s[[pos[m] for m in mine.movie_id]] = -np.inf
        order = np.lexsort((ids, -s))[:K]
        assert got[int(uid)][0] == ids[order].tolist(), f"user {uid}"
        np.testing.assert_allclose(got[int(uid)][1], s[order], atol=1e-5, rtol=0)


def test_stage_notes_say_how_each_model_ranks(shipped):
    info = shipped[4].notes["models"]
    assert info["cbow"]["recommend_by"] == "recency-weighted profile (half-life 3) + item prior"
    assert info["node2vec"]["metrics"] == ["cosine"]
    assert info["node2vec"]["list_corate"] == 0.25
    assert shipped[4].notes["ratings"] == "ranking_train"


# ---------------------------------------------------------------- export


@pytest.fixture(scope="module")
def exported(inputs, data, tmp_path_factory):
    spark = inputs.spark
    ids = data["ids"]
    # Metadata for all but the last 10 movies; one title with a tab, one unknown year.
    known = ids[:-10]
    movies = pa.table({
        "movie_id": pa.array(known.astype(np.int32)),
        "title": pa.array([f"Movie\t{m}" if m == known[0] else f"Movie {m}" for m in known]),
        "year": pa.array([None if m == known[1] else 1990 + int(m) % 20 for m in known],
                         pa.int32()),
        "genres": pa.array([["Drama", "Comedy"] if m % 2 else [] for m in known],
                           pa.list_(pa.string())),
    })
    inputs.write("movies", spark.createDataFrame(movies))
    cfg = Config()
    # A file:// URI, as a cluster config would give hdfs:// or s3a:// ones.
    out = tmp_path_factory.mktemp("exports")
    cfg.export.out = out.as_uri()
    run = StageRun(stage="export", run_id="t", config_hash="x")
    summary = run_export(spark, cfg, inputs, run)
    return out, run, summary, cfg


def test_export_writes_projector_files(exported, data):
    out, run, summary, _ = exported
    assert sorted(p.name for p in out.iterdir()) == ["mfx", "rand", "ties"]
    ids = data["ids"]
    vec = np.loadtxt(out / "rand" / "embeddings.tsv", delimiter="\t")
    assert vec.shape == (N_MOVIES, DIM)
    np.testing.assert_allclose(vec, data["vec"]["rand"], rtol=1e-6, atol=1e-7)  # id order
    meta = pd.read_csv(out / "rand" / "metadata.tsv", sep="\t", keep_default_na=False)
    assert list(meta.columns) == ["title", "year", "genres", "rating_count", "movie_id"]
    assert meta.movie_id.tolist() == ids.tolist()
    assert meta.title[0] == f"Movie {ids[0]}"  # the tab became a space
    assert meta.year[1] == "" and meta.year[2] == str(1990 + int(ids[2]) % 20)
    assert meta.title.iloc[-1] == "" and meta.rating_count.iloc[-1] >= 0
    counts = data["ratings"].groupby("movie_id").size()
    assert meta.rating_count.tolist() == [int(counts.get(m, 0)) for m in ids]
    assert meta.genres[ids.tolist().index(next(m for m in ids if m % 2))] == "Drama|Comedy"
    assert run.rows["rand/embeddings.tsv"] == N_MOVIES
    assert "mfx" in summary


def test_export_parquet_copies(exported, data):
    out = exported[0]
    table = pq.read_table(out / "mfx" / "embeddings.parquet").to_pandas()
    assert table.movie_id.tolist() == data["ids"].tolist()
    np.testing.assert_array_equal(np.stack(table.vector), data["vec"]["mfx"])
    users = pq.read_table(out / "mfx" / "user_embeddings.parquet").to_pandas()
    np.testing.assert_array_equal(np.stack(users.vector), data["user_vec"])
    assert not (out / "rand" / "user_embeddings.parquet").exists()
    info = json.loads((out / "rand" / "run.json").read_text())
    assert info["run_id"] == "20250101T000000-bbbbbb" and info["movies"] == N_MOVIES


def test_export_replaces_atomically(exported):
    out = exported[0]
    before = (out / "ties" / "embeddings.tsv").read_bytes()
    with pytest.raises(RuntimeError), atomic_dir(out / "ties") as tmp:
        (tmp / "embeddings.tsv").write_text("half")
        raise RuntimeError("killed mid-write")
    assert (out / "ties" / "embeddings.tsv").read_bytes() == before
    with atomic_dir(out / "ties") as tmp:
        (tmp / "embeddings.tsv").write_text("new")
    assert (out / "ties" / "embeddings.tsv").read_text() == "new"
    assert sorted(p.name for p in out.iterdir()) == ["mfx", "rand", "ties"]  # no leftovers
