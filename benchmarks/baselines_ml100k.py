"""Baselines of EVALUATION.md on MovieLens 100K: one table, one protocol.

    .venv/bin/python -m benchmarks.baselines_ml100k [--data-dir data] [--folder PATH]

Ranking split (per user, last 20% by (ts, movie id), at least one) for Recall@20 / NDCG@20,
the hash rating split for RMSE, genre precision@10 of item vectors against random vectors.
The data come from ``moviegraph.sources.fetch`` (``ml-100k-recbole``) or ``--folder``, a
folder holding ``ml-100k.inter`` and ``ml-100k.item``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.data import add_arguments, ml100k
from moviegraph.evaluate import baselines as bl
from moviegraph.protocol import metrics as mt
from moviegraph.protocol.data import EvalData

K = 20


def run(d: EvalData) -> list[dict[str, object]]:
    """All baselines' numbers, one dict per row of the table."""
    u, m, r = d.u, d.m, d.r
    n_users, n_items = d.n_users, d.n_items
    train_m, test_m = d.train, d.test
    genres = d.genres
    in_train = d.in_train  # movies with a vector to compare
    item_columns = mt.binarize(train_m).T.toarray()  # ItemKNN's item vectors

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

    tuning = bl.tune_ease(d.matrix(~d.is_test & ~d.is_val), d.matrix(d.is_val))
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

    rated_test = d.rated_test
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
    """Markdown table of result rows (``run``'s here, and ``quality_ml100k``'s) plus the
    notes: a row without a Recall or RMSE is a note, a row's own ``note`` goes below too."""

    def fmt(v: object, spec: str) -> str:
        return "—" if v is None else format(v, spec)

    lines = [
        "| model | Recall@20 | NDCG@20 | users | RMSE | genre P@10 | s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for row in rows:
        if "recall" not in row and "rmse" not in row:
            notes.append(f"{row['model']}: {row.get('note', '')}")
            continue
        if row.get("note"):
            notes.append(f"{row['model']}: {row['note']}")
        lines.append(
            f"| {row['model']} | {fmt(row.get('recall'), '.4f')} | {fmt(row.get('ndcg'), '.4f')}"
            f" | {fmt(row.get('users'), 'd')} | {fmt(row.get('rmse'), '.4f')}"
            f" | {fmt(row.get('genre_p10'), '.4f')} | {fmt(row.get('seconds'), '.1f')} |"
        )
    return "\n".join([*lines, "", *notes])


def main() -> None:
    """Parse arguments, fetch or locate the data, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(table(run(ml100k(args).data)))
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
