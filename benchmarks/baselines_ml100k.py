"""Baselines of EVALUATION.md on MovieLens 100K: one table, one protocol.

    .venv/bin/python benchmarks/baselines_ml100k.py [--data-dir data] [--folder PATH]

Ranking split (per user, last 20% by (ts, movie id), at least one) for Recall@20 / NDCG@20,
the hash rating split for RMSE, genre precision@10 of item vectors against random vectors.
The data come from ``moviegraph.sources.fetch`` (``ml-100k-recbole``) or ``--folder``, a
folder holding ``ml-100k.inter`` and ``ml-100k.item``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from moviegraph.evaluate import baselines as bl
from moviegraph.evaluate import metrics as mt
from moviegraph.evaluate import splits

K = 20


def load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ratings (user_id, movie_id, rating, ts) and movies (movie_id, genres: list[str])."""
    ratings = pd.read_csv(folder / "ml-100k.inter", sep="\t")
    ratings.columns = ["user_id", "movie_id", "rating", "ts"]
    movies = pd.read_csv(folder / "ml-100k.item", sep="\t", keep_default_na=False)
    movies.columns = ["movie_id", "title", "year", "genres"]
    movies["genres"] = movies["genres"].str.split()
    return ratings, movies.sort_values("movie_id", ignore_index=True)


def run(ratings: pd.DataFrame, movies: pd.DataFrame) -> list[dict[str, object]]:
    """All baselines' numbers, one dict per row of the table."""
    user_ids, u = mt.index_ids(ratings["user_id"].to_numpy())
    movie_ids = movies["movie_id"].to_numpy()  # every movie of the catalogue is rankable
    m = np.searchsorted(movie_ids, ratings["movie_id"].to_numpy())
    if not np.array_equal(movie_ids[m], ratings["movie_id"].to_numpy()):
        raise ValueError("ratings name movies missing from the movie table")
    r = ratings["rating"].to_numpy(np.float64)
    uid, mid, ts = (ratings[c].to_numpy() for c in ("user_id", "movie_id", "ts"))
    n_users, n_items = user_ids.shape[0], movie_ids.shape[0]

    def matrix(mask: np.ndarray):
        return mt.user_item_matrix(u[mask], m[mask], r[mask], n_users, n_items)

    test = splits.ranking_split(uid, mid, ts)
    val = splits.validation_cut(uid, mid, ts, test)
    train_m, test_m = matrix(~test), matrix(test)
    genres, _ = mt.genre_matrix(movies["genres"].tolist())
    in_train = np.diff(train_m.tocsc().indptr) > 0  # movies with a vector to compare
    item_columns = bl.binarize(train_m).T.toarray()  # ItemKNN's item vectors

    rows: list[dict[str, object]] = []

    def ranking(name: str, make, vectors: np.ndarray | None = None) -> None:
        t0 = time.perf_counter()
        res = mt.ranking_metrics(make(), train_m, test_m, k=K)
        gp = (
            mt.genre_precision_at_k(vectors, genres, k=10, include=in_train)
            if vectors is not None
            else None
        )
        rows.append(
            {
                "model": name,
                "recall": res.recall,
                "ndcg": res.ndcg,
                "users": res.n_users,
                "genre_p10": gp,
                "seconds": time.perf_counter() - t0,
            }
        )

    tuning = bl.tune_ease(matrix(~test & ~val), matrix(val))
    ranking("MostPop", lambda: bl.MostPop(train_m))
    ranking("ItemKNN (cosine, binary)", lambda: bl.ItemKNN(train_m), item_columns)
    ranking(
        f"EASE (lambda {tuning.best_lambda:g}, tuned)", lambda: bl.EASE(train_m, tuning.best_lambda)
    )
    ranking("EASE (lambda 200, reference)", lambda: bl.EASE(train_m, 200.0))
    ranking(
        "item columns, summed-cosine scorer",
        lambda: mt.item_embedding_scores(item_columns, train_m),
        item_columns,
    )
    rand = np.random.default_rng(0).standard_normal((n_items, 64))
    ranking(
        "random 64-d, summed-cosine scorer", lambda: mt.item_embedding_scores(rand, train_m), rand
    )

    rated_test = splits.rating_split(uid, mid)
    fit = ~rated_test
    for name, model in (
        ("global mean", lambda: bl.global_mean(r[fit], n_users, n_items)),
        (
            "user + item biases (reg 5)",
            lambda: bl.fit_biases(u[fit], m[fit], r[fit], n_users, n_items),
        ),
    ):
        t0 = time.perf_counter()
        pred = model().predict(u[rated_test], m[rated_test])
        rows.append(
            {
                "model": name,
                "rmse": mt.rmse(pred, r[rated_test]),
                "seconds": time.perf_counter() - t0,
            }
        )
    rows.append(
        {
            "model": "(EASE validation Recall@20 by lambda)",
            "note": ", ".join(f"{lam:g}: {v:.4f}" for lam, v in tuning.recall_by_lambda.items()),
        }
    )
    return rows


def table(rows: list[dict[str, object]]) -> str:
    """Markdown table of :func:`run`'s rows."""

    def fmt(v: object, spec: str) -> str:
        return "—" if v is None else format(v, spec)

    lines = [
        "| model | Recall@20 | NDCG@20 | users | RMSE | genre P@10 | s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for row in rows:
        if "note" in row:
            notes.append(f"{row['model']}: {row['note']}")
            continue
        lines.append(
            f"| {row['model']} | {fmt(row.get('recall'), '.4f')} | {fmt(row.get('ndcg'), '.4f')}"
            f" | {fmt(row.get('users'), 'd')} | {fmt(row.get('rmse'), '.4f')}"
            f" | {fmt(row.get('genre_p10'), '.4f')} | {fmt(row.get('seconds'), '.1f')} |"
        )
    return "\n".join([*lines, "", *notes])


def main() -> None:
    """Parse arguments, fetch or locate the data, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data", help="fetch target (default: data)")
    ap.add_argument("--folder", type=Path, help="folder with ml-100k.inter/.item (no fetch)")
    args = ap.parse_args()
    if args.folder is not None:
        folder = args.folder
    else:
        from moviegraph.sources.fetch import fetch

        folder = fetch("ml-100k-recbole", args.data_dir)
    t0 = time.perf_counter()
    print(table(run(*load(folder))))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
