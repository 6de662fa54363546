"""The ``export`` stage: embeddings + movies + ratings -> Projector TSVs and Parquet."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph import fs
from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.export.projector import write_model_export
from moviegraph.runs import StageRun
from moviegraph.similarity.joins import select_runs, vectors_of
from moviegraph.stages.base import Flag, Stage
from moviegraph.tables import Warehouse


def run_export(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Write ``<export.out>/<model>/`` for each model's latest embeddings run.

    Vectors are collected to the driver (59k x 64 floats is 15 MB); each model's folder is
    written in a local staging folder, then published to ``export.out`` (a URI, or a path
    beside the warehouse) through the session's Hadoop FileSystem, replacing the old one
    whole.
    """
    emb = wh.read("embeddings")
    runs = select_runs(emb, cfg.export.models)
    if not runs:
        raise InputError("the embeddings table holds no model; run the train stage first")
    counts = wh.read("ratings").groupBy("movie_id").agg(F.count("*").alias("rating_count"))
    movies = (wh.read("movies").select("movie_id", "title", "year", "genres")
              .join(counts, "movie_id", "full").toPandas())
    user_emb = wh.read("user_embeddings") if wh.exists("user_embeddings") else None
    out = wh.output_uri(cfg.export.out)
    storage = fs.Storage(spark)
    lines = [f"export: Embedding Projector TSVs and Parquet under {out}"]
    written = {}
    for model, run_id in runs.items():
        of_run = (F.col("model") == model) & (F.col("run_id") == run_id)
        ids, vectors = vectors_of(emb.where(of_run), "movie_id")
        user_ids = user_vectors = None
        if user_emb is not None:
            users = user_emb.where(of_run)
            if users.limit(1).collect():
                user_ids, user_vectors = vectors_of(users, "user_id")
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
