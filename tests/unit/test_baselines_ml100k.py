"""Baselines on MovieLens 100K against the project's reference figures (EVALUATION.md protocol).

Reference figures (measured by the project on this machine): Recall@20 MostPop 0.121,
ItemKNN 0.212, EASE 0.241 at lambda 200; genre precision@10 ItemKNN 0.568, random 0.35;
RMSE of user + item biases 0.91-0.94. Skipped when the data cannot be had.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moviegraph.evaluate import baselines as bl
from moviegraph.evaluate import metrics as mt
from moviegraph.evaluate import splits
from tests.conftest import ml100k_folder


class Data:
    """ml-100k in dense positions, with both splits and the train/test matrices."""

    def __init__(self, folder: Path) -> None:
        r = pd.read_csv(folder / "ml-100k.inter", sep="\t")
        r.columns = ["user_id", "movie_id", "rating", "ts"]
        movies = pd.read_csv(folder / "ml-100k.item", sep="\t", keep_default_na=False)
        movies.columns = ["movie_id", "title", "year", "genres"]
        movies = movies.sort_values("movie_id", ignore_index=True)
        self.ratings = r
        self.uid, self.mid, self.ts = (r[c].to_numpy() for c in ("user_id", "movie_id", "ts"))
        self.r = r["rating"].to_numpy(np.float64)
        user_ids, self.u = mt.index_ids(self.uid)
        movie_ids = movies["movie_id"].to_numpy()
        self.m = np.searchsorted(movie_ids, self.mid)
        self.n_users, self.n_items = user_ids.shape[0], movie_ids.shape[0]
        self.is_test = splits.ranking_split(self.uid, self.mid, self.ts)
        self.train = self.matrix(~self.is_test)
        self.test = self.matrix(self.is_test)
        self.genres, _ = mt.genre_matrix(movies["genres"].str.split().tolist())
        self.in_train = np.diff(self.train.tocsc().indptr) > 0

    def matrix(self, mask: np.ndarray):
        return mt.user_item_matrix(self.u[mask], self.m[mask], self.r[mask],
                                   self.n_users, self.n_items)


@pytest.fixture(scope="module")
def data() -> Data:
    return Data(ml100k_folder())


def test_shape(data: Data) -> None:
    assert (len(data.ratings), data.n_users, data.n_items) == (100_000, 943, 1682)


def test_ranking_split_matches_pandas_reference(data: Data) -> None:
    # Independent formulation: stable sort by (user, ts, movie), count from each user's end.
    df = data.ratings.reset_index().sort_values(["user_id", "ts", "movie_id"])
    from_end = df.groupby("user_id").cumcount(ascending=False)
    n = df.groupby("user_id")["movie_id"].transform("size")
    want = (from_end < np.maximum(1, n // 5)).to_numpy()
    got = np.empty(len(df), dtype=bool)
    got[df["index"].to_numpy()] = want
    np.testing.assert_array_equal(data.is_test, got)


def _recall(data: Data, model) -> float:
    return mt.ranking_metrics(model, data.train, data.test, k=20).recall


def test_most_pop(data: Data) -> None:
    assert _recall(data, bl.MostPop(data.train)) == pytest.approx(0.121, abs=0.005)


def test_item_knn(data: Data) -> None:
    assert _recall(data, bl.ItemKNN(data.train)) == pytest.approx(0.212, abs=0.005)


def test_ease_reference_lambda(data: Data) -> None:
    assert _recall(data, bl.EASE(data.train, 200.0)) == pytest.approx(0.241, abs=0.005)


def test_ease_tuned_on_validation_cut(data: Data) -> None:
    is_val = splits.validation_cut(data.uid, data.mid, data.ts, data.is_test)
    assert not (is_val & data.is_test).any()
    tuning = bl.tune_ease(data.matrix(~data.is_test & ~is_val), data.matrix(is_val),
                          lambdas=(10.0, 100.0, 200.0, 1000.0))
    # The validation optimum sits in the flat middle of the grid, far from its ends.
    assert tuning.best_lambda in (100.0, 200.0)
    assert _recall(data, bl.EASE(data.train, tuning.best_lambda)) == pytest.approx(
        0.241, abs=0.01
    )


def test_genre_precision_item_knn_and_random(data: Data) -> None:
    columns = bl.binarize(data.train).T.toarray()  # ItemKNN's cosine = cosine of these rows
    knn = mt.genre_precision_at_k(columns, data.genres, k=10, include=data.in_train)
    rand = mt.random_genre_precision_at_k(data.genres, k=10, seed=0, include=data.in_train)
    assert knn == pytest.approx(0.568, abs=0.01)
    assert rand == pytest.approx(0.35, abs=0.02)


def test_rmse_global_mean_and_biases(data: Data) -> None:
    test = splits.rating_split(data.uid, data.mid)
    fit = ~test
    assert 0.09 < test.mean() < 0.11
    mean = bl.global_mean(data.r[fit], data.n_users, data.n_items)
    biases = bl.fit_biases(data.u[fit], data.m[fit], data.r[fit], data.n_users, data.n_items)
    rmse_mean = mt.rmse(mean.predict(data.u[test], data.m[test]), data.r[test])
    rmse_bias = mt.rmse(biases.predict(data.u[test], data.m[test]), data.r[test])
    assert 1.08 < rmse_mean < 1.17
    assert 0.91 <= rmse_bias <= 0.95
