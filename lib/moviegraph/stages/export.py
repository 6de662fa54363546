"""The ``export`` stage: embeddings + movies + ratings -> Projector TSVs and Parquet."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from moviegraph import fs
from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.export.projector import write_model_export
from moviegraph.runs import StageRun
from moviegraph.stages.base import Flag, Stage
from moviegraph.tables import Warehouse
from moviegraph.train.output import latest_runs, vectors_from_table


def run_export(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Write ``<export.out>/<model>/`` for each model's latest embeddings run.

    Vectors are collected to the driver (59k x 64 floats is 15 MB); each model's folder is
    written in a local staging folder, then published to ``export.out`` (a URI, or a path
    beside the warehouse) through the session's Hadoop FileSystem, replacing the old one
    whole.
    """
    # Small tables read once as Arrow (delta-rs; Spark where it cannot) and joined on the
    # driver: a Spark job per model and per join cost more than the work on ML-100K.
    emb = wh.read_arrow("embeddings", ["model", "run_id", "movie_id", "vector"])
    runs = latest_runs(emb, cfg.export.models)
    if not runs:
        raise InputError("the embeddings table holds no model; run the train stage first")
    rated, n_ratings = np.unique(wh.read_arrow("ratings", ["movie_id"]).column(0).to_numpy(),
                                 return_counts=True)
    counts = pd.DataFrame({"movie_id": rated, "rating_count": n_ratings})
    movies = (wh.read_arrow("movies", ["movie_id", "title", "year", "genres"]).to_pandas()
              .merge(counts, on="movie_id", how="outer"))  # the full join of before
    user_emb = (wh.read_arrow("user_embeddings", ["model", "run_id", "user_id", "vector"])
                if wh.exists("user_embeddings") else None)
    out = wh.output_uri(cfg.export.out)
    storage = fs.Storage(spark)
    lines = [f"export: Embedding Projector TSVs and Parquet under {out}"]
    written = {}
    for model, run_id in runs.items():
        ids, vectors = vectors_from_table(emb, model, run_id, "movie_id")
        user_ids = user_vectors = None
        if user_emb is not None:
            uids, uvec = vectors_from_table(user_emb, model, run_id, "user_id")
            if uids.size:
                user_ids, user_vectors = uids, uvec
        with tempfile.TemporaryDirectory(prefix="moviegraph-export-") as staging:
            local = write_model_export(Path(staging), model, run_id, ids, vectors, movies,
                                       user_ids, user_vectors)
            folder = fs.join(out, model)
            storage.publish(local, folder)
        n_users = 0 if user_ids is None else int(user_ids.size)
        run.rows[f"{model}/embeddings.tsv"] = int(ids.size)
        written[model] = {"run_id": run_id, "folder": str(folder), "movies": int(ids.size),
                          "dim": int(vectors.shape[1]), "users": n_users}
        users_note = f", {n_users:,} user vectors" if n_users else ""
        lines.append(f"  {model} (run {run_id}): {ids.size:,} movies x {vectors.shape[1]} "
                     f"dims{users_note} -> {folder}")
    run.notes["exports"] = written
    lines.append("  open https://projector.tensorflow.org, Load: embeddings.tsv + metadata.tsv")
    return "\n".join(lines)


STAGE = Stage(
    name="export", summary="Embedding Projector TSVs and Parquet copies of each model's vectors",
    reads=("embeddings", "movies", "ratings"), optional_reads=("user_embeddings",),
    writes_doc="`<export.out>/<model>/`: `embeddings.tsv` + `metadata.tsv` (Embedding "
               "Projector), `embeddings.parquet`, `user_embeddings.parquet`, `run.json`",
    sections=("export",), run=run_export,
    flags=(Flag("--out", "export.out", "folder of the exports", metavar="FOLDER"),))
