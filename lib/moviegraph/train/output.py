"""The train stage's Delta output: vectors and per-epoch history of the trained models.

``embeddings`` and ``user_embeddings`` replace the rows of the models trained now, in one
Delta transaction each (:meth:`~moviegraph.tables.Warehouse.replace_where` on ``model IN
(...)``), tagged with the run id: other models' rows stay, and older runs stay reachable
by Delta time travel at the versions the run records name. ``history`` gets one appended
row per epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from moviegraph.runs import StageRun
from moviegraph.tables import SCHEMAS, Warehouse
from moviegraph.vectors import pick_runs, vectors_from_arrow

if TYPE_CHECKING:
    from moviegraph.train.models import Trained
    from moviegraph.train.shipped import FittedScorer


def vector_table(model: str, run_id: str, id_column: str, ids: np.ndarray,
                 vectors: np.ndarray) -> pa.Table:
    """``(model, run_id, <id_column>, vector)`` as Arrow, vectors as list<float32>."""
    n, d = vectors.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    vec = pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(vectors,
                                                                          np.float32).ravel()))
    return pa.table({"model": pa.array([model] * n, pa.string()),
                     "run_id": pa.array([run_id] * n, pa.string()),
                     id_column: pa.array(np.asarray(ids, np.int32)), "vector": vec})


def history_rows(run_id: str, t: Trained) -> list[tuple]:
    """One ``history`` row per epoch of ``t``'s fit (resumed epochs included)."""
    rows = []
    for h in t.fit.history:
        metrics = {k: float(v) for k, v in h.items()
                   if k not in ("epoch", "train_loss", "seconds") and v is not None}
        rows.append((run_id, t.model, int(h["epoch"]), float(h["train_loss"]), metrics,
                     float(h["seconds"])))
    return rows


def _models_condition(models: list[str]) -> str:
    # Model names come from the registry (validated config), never from data.
    return "model IN (" + ", ".join(f"'{m}'" for m in models) + ")"


def write_outputs(wh: Warehouse, run: StageRun, trained: list[Trained],
                  scorers: list[FittedScorer] | None = None) -> None:
    """embeddings, user_embeddings, scorers (replace these models' rows), history
    (append)."""
    spark = wh.spark
    cond = _models_condition([t.model for t in trained])
    emb = pa.concat_tables([vector_table(t.model, run.run_id, "movie_id", t.movie_ids,
                                         t.vectors) for t in trained])
    run.outputs["embeddings"] = wh.replace_where("embeddings", spark.createDataFrame(emb), cond)
    run.rows["embeddings"] = emb.num_rows
    users = [vector_table(t.model, run.run_id, "user_id", t.user_ids, t.user_vectors)
             for t in trained if t.user_ids is not None and t.user_vectors is not None]
    if users or wh.exists("user_embeddings"):
        # Written even when empty: stale user rows of these models must go too.
        df = (spark.createDataFrame(pa.concat_tables(users)) if users
              else spark.createDataFrame([], SCHEMAS["user_embeddings"]))
        run.outputs["user_embeddings"] = wh.replace_where("user_embeddings", df, cond)
        run.rows["user_embeddings"] = sum(u.num_rows for u in users)
    if scorers is not None:
        from moviegraph.train.shipped import scorer_table

        table = scorer_table(scorers, run.run_id)
        df = (spark.createDataFrame(table) if table.num_rows
              else spark.createDataFrame([], SCHEMAS["scorers"]))
        run.outputs["scorers"] = wh.replace_where("scorers", df, cond)
        run.rows["scorers"] = table.num_rows
    hist = [row for t in trained for row in history_rows(run.run_id, t)]
    if hist:
        run.outputs["history"] = wh.write(
            "history", spark.createDataFrame(hist, SCHEMAS["history"]), mode="append")
    run.rows["history"] = len(hist)


def latest_runs(table: pa.Table, models: list[str]) -> dict[str, str]:
    """``{model: latest run_id}`` of a vector table read as Arrow (``model``, ``run_id``
    columns): :func:`moviegraph.similarity.joins.select_runs` without a Spark job (run ids
    sort by time, so the latest is the largest); only ``models`` when given.

    Raises:
        InputError: a requested model is not in the table.
    """
    found: dict[str, str] = {}
    for model, run_id in zip(table.column("model").to_pylist(),
                             table.column("run_id").to_pylist(), strict=True):
        if model not in found or run_id > found[model]:
            found[model] = run_id
    return pick_runs(found, models)


def vectors_from_table(table: pa.Table, model: str, run_id: str, id_column: str
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The ``(ids ascending int64, float32 matrix)`` of one model's run in a vector table
    read as Arrow: :func:`moviegraph.similarity.joins.vectors_of` of the filtered
    DataFrame, without a Spark job per model (same checks, same errors).

    Raises:
        InputError: duplicate ids, null vectors or vectors of different lengths.
    """
    import pyarrow.compute as pc

    mask = pc.and_(pc.equal(table.column("model"), model),
                   pc.equal(table.column("run_id"), run_id))
    return vectors_from_arrow(table.filter(mask), id_column)
