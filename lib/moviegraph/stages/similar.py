"""The ``similar`` stage: embeddings (+ ratings) -> similar_movies, recommendations (exact
top-k, :mod:`moviegraph.similarity`)."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import Accumulator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.runs import StageRun
from moviegraph.similarity.joins import (
    rated_lists,
    recommendations,
    row_tally,
    select_runs,
    similar_movies,
    vectors_of,
)
from moviegraph.similarity.topk import Searcher, exclusion_csr
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse


def run_similar(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Top-k similar movies (cosine and/or dot) and top-k recommendations, every model.

    Each model's latest embeddings run (or ``similar.run_id``) is used. Models with user
    vectors in ``user_embeddings`` (same run id) recommend by dot product; item-only models
    by EVALUATION.md's summed cosine over the user's liked movies. Both tables are
    rewritten in one Delta transaction each, holding the processed models.
    """
    sc = cfg.similar
    emb = wh.read("embeddings")
    runs = select_runs(emb, sc.models, sc.run_id)
    if not runs:
        raise InputError("the embeddings table holds no model; run the train stage first")
    metrics = ["cosine", "dot"] if sc.metric == "both" else [sc.metric]
    rated = rated_lists(wh.read("ratings"))
    user_emb = wh.read("user_embeddings") if wh.exists("user_embeddings") else None
    if user_emb is not None:
        run.notes["user_embeddings_version"] = wh.version("user_embeddings")

    # Which (model, run) pairs have user vectors: one query for every model.
    with_users = set() if user_emb is None else {
        (r["model"], r["run_id"]) for r in user_emb.select("model", "run_id").distinct()
        .where(F.col("model").isin(list(runs))).collect()}
    ctx = spark.sparkContext
    sims: list[DataFrame] = []
    recs: list[DataFrame] = []
    broadcasts = []
    tallies: dict[tuple[str, str], Accumulator] = {}
    per_model: dict[str, dict] = {}
    example = None
    for model, run_id in runs.items():
        of_run = (F.col("model") == model) & (F.col("run_id") == run_id)
        ids, vectors = vectors_of(emb.where(of_run), "movie_id")
        for metric in metrics:
            tallies[(model, metric)] = row_tally(ctx)
            df, bc = similar_movies(spark, ids, vectors, metric, sc.k, sc.block_size,
                                    sc.partitions, tally=tallies[(model, metric)])
            broadcasts.append(bc)
            sims.append(df.select(F.lit(model).alias("model"), F.lit(metric).alias("metric"),
                                  "*"))
        if example is None and ids.size:
            example = (model, _example(ids, vectors, metrics[0], min(sc.k, 5)))
        by_user_vectors = (model, run_id) in with_users
        if by_user_vectors and user_emb is not None:
            queries = (user_emb.where(of_run).select("user_id", "vector")
                       .join(rated, "user_id", "left"))
        else:
            queries = rated
        tallies[(model, "")] = row_tally(ctx)
        df, bc = recommendations(spark, ids, vectors, queries, sc.k, by_user_vectors,
                                 sc.like_threshold, sc.block_size, sc.partitions,
                                 tally=tallies[(model, "")])
        broadcasts.append(bc)
        recs.append(df.select(F.lit(model).alias("model"), "*"))
        per_model[model] = {"run_id": run_id, "movies": int(ids.size),
                            "dim": int(vectors.shape[1]),
                            "recommend_by": "user vectors (dot)" if by_user_vectors
                            else "summed cosine of liked movies"}
    try:
        run.outputs["similar_movies"] = wh.write("similar_movies", reduce(DataFrame.union, sims))
        run.outputs["recommendations"] = wh.write("recommendations",
                                                  reduce(DataFrame.union, recs))
    finally:
        for bc in broadcasts:
            bc.unpersist()

    # Row counts from the writing tasks themselves (no read-back of the tables).
    counts = {key: acc.value for key, acc in tallies.items()}
    for model, info in per_model.items():
        info["similar_rows"] = {m: counts[(model, m)].get("rows", 0) for m in metrics}
        info["recommendation_rows"] = counts[(model, "")].get("rows", 0)
        info["users"] = counts[(model, "")].get("queries", 0)
    run.rows["similar_movies"] = sum(sum(i["similar_rows"].values()) for i in per_model.values())
    run.rows["recommendations"] = sum(i["recommendation_rows"] for i in per_model.values())
    run.notes.update({"models": per_model, "k": sc.k, "metrics": metrics,
                      "block_size": sc.block_size})
    return _summary(wh, per_model, metrics, sc.k, example)


def _example(ids: np.ndarray, vectors: np.ndarray, metric: str,
             k: int) -> list[tuple[int, int, int, float]]:
    """The first movie's top-k as the join computes it (same kernel, same inputs, so the
    same rows as the table): ``(movie_id, rank, neighbor_id, score)``."""
    n = int(ids.size)
    res = Searcher(vectors, metric).search(vectors[:1], k,
                                           exclusion_csr(np.array([0, 1]), np.array([0]), 1, n))
    return [(int(ids[0]), r + 1, int(ids[p]), float(np.float32(s)))
            for r, (p, s) in enumerate(zip(res.positions[0], res.scores[0], strict=True))
            if p >= 0]


def _summary(wh: Warehouse, per_model: dict[str, dict], metrics: list[str], k: int,
             example: tuple[str, list[tuple[int, int, int, float]]] | None) -> str:
    lines = [f"similar: top-{k} by {' and '.join(metrics)}, exact (blocked matrix products)"]
    for model, info in per_model.items():
        sims = ", ".join(f"{m} {n:,}" for m, n in info["similar_rows"].items())
        lines.append(f"  {model} (run {info['run_id']}): {info['movies']:,} movies x "
                     f"{info['dim']} dims; similar_movies rows: {sims}; recommendations: "
                     f"{info['recommendation_rows']:,} for {info['users']:,} users, by "
                     f"{info['recommend_by']}")
    # One example, so a reader can eyeball whether the neighbours make sense.
    if example and example[1]:
        model, rows = example
        titles = _titles(wh, [r[0] for r in rows] + [r[2] for r in rows])
        first = rows[0][0]
        lines.append(f"  e.g. {model}, {metrics[0]}, movie {first} {titles.get(first, '')}:")
        for _, rank, nbr, score in rows:
            lines.append(f"    {rank}. {nbr} {titles.get(nbr, '')} ({score:.3f})")
    return "\n".join(lines)


def _titles(wh: Warehouse, movie_ids: list[int]) -> dict[int, str]:
    """Titles of a few movies (delta-rs read of ``movies``; empty when there is none)."""
    if not wh.exists("movies"):
        return {}
    table = wh.read_arrow("movies", ["movie_id", "title"])
    wanted = pa.array(movie_ids, type=table.schema.field("movie_id").type)
    table = table.filter(pc.is_in(table.column("movie_id"), value_set=wanted))
    return {int(m): t or "" for m, t in zip(table.column("movie_id").to_pylist(),
                                            table.column("title").to_pylist(), strict=True)}


STAGE = Stage(
    name="similar", summary="exact top-k similar movies and recommendations per model",
    reads=("embeddings", "ratings"), optional_reads=("user_embeddings",),
    writes=("similar_movies", "recommendations"),
    writes_doc="`similar_movies(model, metric, movie_id, rank, neighbor_id, score)` (top-"
               "`similar.k` by cosine and/or dot), `recommendations(model, user_id, rank, "
               "movie_id, score)` (top-k unrated movies)",
    sections=("similar",), run=run_similar)
