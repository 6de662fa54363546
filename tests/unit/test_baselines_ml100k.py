"""Baselines on MovieLens 100K against the project's reference figures (EVALUATION.md protocol).

Reference figures (measured by the project on this machine): Recall@20 MostPop 0.121,
ItemKNN 0.212, EASE 0.241 at lambda 200; genre precision@10 ItemKNN 0.568, random 0.35;
RMSE of user + item biases 0.91-0.94. Skipped when the data cannot be had.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from moviegraph.evaluate import baselines as bl
from moviegraph.protocol import metrics as mt
from moviegraph.protocol import splits
from moviegraph.protocol.data import EvalData, load_ml100k
from tests.conftest import ml100k_folder


@pytest.fixture(scope="module")
def data() -> EvalData:
    """ml-100k in dense positions with the protocol's splits (moviegraph.protocol.data)."""
    return load_ml100k(ml100k_folder()).data


def test_shape(data: EvalData) -> None:
    assert (len(data.r), data.n_users, data.n_items) == (100_000, 943, 1682)


def test_ranking_split_matches_pandas_reference(data: EvalData) -> None:
    # Independent formulation, from the raw file: stable sort by (user, ts, movie), count
    # from each user's end.
    raw = pd.read_csv(ml100k_folder() / "ml-100k.inter", sep="\t")
    raw.columns = ["user_id", "movie_id", "rating", "ts"]
    df = raw.reset_index().sort_values(["user_id", "ts", "movie_id"])
    from_end = df.groupby("user_id").cumcount(ascending=False)
    n = df.groupby("user_id")["movie_id"].transform("size")
    want = (from_end < np.maximum(1, n // 5)).to_numpy()
    got = np.empty(len(df), dtype=bool)
    got[df["index"].to_numpy()] = want
    np.testing.assert_array_equal(data.is_test, got)


def _recall(data: EvalData, model) -> float:
    return mt.ranking_metrics(model, data.train, data.test, k=20).recall


def test_most_pop(data: EvalData) -> None:
    assert _recall(data, bl.MostPop(data.train)) == pytest.approx(0.121, abs=0.005)


def test_item_knn(data: EvalData) -> None:
    assert _recall(data, bl.ItemKNN(data.train)) == pytest.approx(0.212, abs=0.005)


def test_ease_reference_lambda(data: EvalData) -> None:
    assert _recall(data, bl.EASE(data.train, 200.0)) == pytest.approx(0.241, abs=0.005)


def test_ease_tuned_on_validation_cut(data: EvalData) -> None:
    uid, mid = data.user_ids[data.u], data.movie_ids[data.m]
    is_val = splits.validation_cut(uid, mid, data.ts, data.is_test)
    assert not (is_val & data.is_test).any()
    tuning = bl.tune_ease(data.matrix(~data.is_test & ~is_val), data.matrix(is_val),
                          lambdas=(10.0, 100.0, 200.0, 1000.0))
    # The validation optimum sits in the flat middle of the grid, far from its ends.
    assert tuning.best_lambda in (100.0, 200.0)
    assert _recall(data, bl.EASE(data.train, tuning.best_lambda)) == pytest.approx(
        0.241, abs=0.01
    )


def test_genre_precision_item_knn_and_random(data: EvalData) -> None:
    columns = mt.binarize(data.train).T.toarray()  # ItemKNN's cosine = cosine of these rows
    knn = mt.genre_precision_at_k(columns, data.genres, k=10, include=data.in_train)
    rand = mt.random_genre_precision_at_k(data.genres, k=10, seed=0, include=data.in_train)
    assert knn == pytest.approx(0.568, abs=0.01)
    assert rand == pytest.approx(0.35, abs=0.02)


def test_rmse_global_mean_and_biases(data: EvalData) -> None:
    test = splits.rating_split(data.user_ids[data.u], data.movie_ids[data.m])
    fit = ~test
    assert 0.09 < test.mean() < 0.11
    mean = bl.global_mean(data.r[fit], data.n_users, data.n_items)
    biases = bl.fit_biases(data.u[fit], data.m[fit], data.r[fit], data.n_users, data.n_items)
    rmse_mean = mt.rmse(mean.predict(data.u[test], data.m[test]), data.r[test])
    rmse_bias = mt.rmse(biases.predict(data.u[test], data.m[test]), data.r[test])
    assert 1.08 < rmse_mean < 1.17
    assert 0.91 <= rmse_bias <= 0.95
