"""The ``similar`` stage: embeddings (+ ratings) -> similar_movies, recommendations (exact
top-k, :mod:`moviegraph.similarity`)."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.runs import StageRun
from moviegraph.similarity.joins import (
    rated_lists,
    recommendations,
    select_runs,
    similar_movies,
    vectors_of,
)
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

    sims: list[DataFrame] = []
    recs: list[DataFrame] = []
    broadcasts = []
    per_model: dict[str, dict] = {}
    for model, run_id in runs.items():
        of_run = (F.col("model") == model) & (F.col("run_id") == run_id)
        ids, vectors = vectors_of(emb.where(of_run), "movie_id")
        for metric in metrics:
            df, bc = similar_movies(spark, ids, vectors, metric, sc.k, sc.block_size,
                                    sc.partitions)
            broadcasts.append(bc)
            sims.append(df.select(F.lit(model).alias("model"), F.lit(metric).alias("metric"),
                                  "*"))
        users = user_emb.where(of_run) if user_emb is not None else None
        by_user_vectors = users is not None and bool(users.limit(1).collect())
        if users is not None and by_user_vectors:
            queries = users.select("user_id", "vector").join(rated, "user_id", "left")
        else:
            queries = rated
        df, bc = recommendations(spark, ids, vectors, queries, sc.k, by_user_vectors,
                                 sc.like_threshold, sc.block_size, sc.partitions)
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

    sim_counts = {(r["model"], r["metric"]): r["count"] for r in
                  wh.read("similar_movies").groupBy("model", "metric").count().collect()}
    rec_counts = {r["model"]: (r["count"], r["users"]) for r in
                  wh.read("recommendations").groupBy("model").agg(
                      F.count("*").alias("count"),
                      F.countDistinct("user_id").alias("users")).collect()}
    run.rows["similar_movies"] = sum(sim_counts.values())
    run.rows["recommendations"] = sum(c for c, _ in rec_counts.values())
    for model, info in per_model.items():
        info["similar_rows"] = {m: sim_counts.get((model, m), 0) for m in metrics}
        info["recommendation_rows"], info["users"] = rec_counts.get(model, (0, 0))
    run.notes.update({"models": per_model, "k": sc.k, "metrics": metrics,
                      "block_size": sc.block_size})
    return _summary(wh, per_model, metrics, sc.k)


def _summary(wh: Warehouse, per_model: dict[str, dict], metrics: list[str], k: int) -> str:
    lines = [f"similar: top-{k} by {' and '.join(metrics)}, exact (blocked matrix products)"]
    for model, info in per_model.items():
        sims = ", ".join(f"{m} {n:,}" for m, n in info["similar_rows"].items())
        lines.append(f"  {model} (run {info['run_id']}): {info['movies']:,} movies x "
                     f"{info['dim']} dims; similar_movies rows: {sims}; recommendations: "
                     f"{info['recommendation_rows']:,} for {info['users']:,} users, by "
                     f"{info['recommend_by']}")
    # One example, so a reader can eyeball whether the neighbours make sense.
    model = next(iter(per_model))
    example = (wh.read("similar_movies")
               .where((F.col("model") == model) & (F.col("metric") == metrics[0]))
               .orderBy("movie_id", "rank").limit(5))
    if wh.exists("movies"):
        titles = wh.read("movies").select("movie_id", "title")
        example = (example.join(titles, "movie_id", "left")
                   .join(titles.withColumnRenamed("movie_id", "neighbor_id")
                         .withColumnRenamed("title", "neighbor"), "neighbor_id", "left"))
    rows = [r.asDict() for r in example.orderBy("rank").collect()]
    if rows:
        first = rows[0]
        name = first.get("title") or ""
        lines.append(f"  e.g. {model}, {metrics[0]}, movie {first['movie_id']} {name}:")
        for r in rows:
            lines.append(f"    {r['rank']}. {r['neighbor_id']} {r.get('neighbor') or ''} "
                         f"({r['score']:.3f})")
    return "\n".join(lines)


STAGE = Stage(
    name="similar", summary="exact top-k similar movies and recommendations per model",
    reads=("embeddings", "ratings"), optional_reads=("user_embeddings",),
    writes=("similar_movies", "recommendations"),
    writes_doc="`similar_movies(model, metric, movie_id, rank, neighbor_id, score)` (top-"
               "`similar.k` by cosine and/or dot), `recommendations(model, user_id, rank, "
               "movie_id, score)` (top-k unrated movies)",
    sections=("similar",), run=run_similar)
