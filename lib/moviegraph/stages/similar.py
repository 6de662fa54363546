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
from moviegraph.graph.pairs import ranking_train_part
from moviegraph.runs import StageRun
from moviegraph.similarity.joins import (
    CoRatingInput,
    co_rating_arrays,
    rated_lists,
    recommendations,
    row_tally,
    select_runs,
    similar_movies,
    vectors_of,
)
from moviegraph.similarity.topk import CoRating, Searcher, exclusion_csr
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse
from moviegraph.train.shipped import FittedScorer, from_row


def run_similar(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Top-k similar movies and top-k recommendations of every model, by its shipped scorer.

    Each model's latest embeddings run (or ``similar.run_id``) is used, with the scorer the
    train stage fitted for that run (the ``scorers`` table; :mod:`moviegraph.train.shipped`):
    lists rank ``metric + list term + list_corate x co-rating cosine`` (the co-rating of
    the two movies in the profile ratings, :class:`~moviegraph.similarity.topk.CoRating`),
    recommendations the recency-weighted profile's
    cosine (or the user vectors' dot) ``+ recommend term``, both exactly inside the Spark
    joins. A run without a scorer row ranks by the plain metric, and recommends by user
    vectors when it has them, else by EVALUATION.md's summed cosine. Profiles and the
    movies never recommended are the users' ratings of ``similar.ratings`` (the ranking
    split's train part by default: the tables ``evaluate`` scores). Both tables are
    rewritten in one Delta transaction each, holding the processed models.
    """
    sc = cfg.similar
    emb = wh.read("embeddings")
    runs = select_runs(emb, sc.models, sc.run_id)
    if not runs:
        raise InputError("the embeddings table holds no model; run the train stage first")
    ratings = wh.read("ratings")
    if sc.ratings == "ranking_train":
        ratings = ranking_train_part(ratings)
    rated = rated_lists(ratings)
    user_emb = wh.read("user_embeddings") if wh.exists("user_embeddings") else None
    if user_emb is not None:
        run.notes["user_embeddings_version"] = wh.version("user_embeddings")
    scorers = _scorers(wh, runs)
    if wh.exists("scorers"):
        run.notes["scorers_version"] = wh.version("scorers")

    # Which (model, run) pairs have user vectors: one query for every model.
    with_users = set() if user_emb is None else {
        (r["model"], r["run_id"]) for r in user_emb.select("model", "run_id").distinct()
        .where(F.col("model").isin(list(runs))).collect()}
    ctx = spark.sparkContext
    co_pairs = _co_rating_pairs(ratings, scorers)
    sims: list[DataFrame] = []
    recs: list[DataFrame] = []
    broadcasts = []
    tallies: dict[tuple[str, str], Accumulator] = {}
    per_model: dict[str, dict] = {}
    all_metrics: set[str] = set()
    example = None
    for model, run_id in runs.items():
        of_run = (F.col("model") == model) & (F.col("run_id") == run_id)
        ids, vectors = vectors_of(emb.where(of_run), "movie_id")
        scorer = scorers.get(model)
        settings = scorer.settings if scorer else {}
        list_term = _aligned(scorer.list_term, scorer.movie_ids, ids) if scorer else None
        rec_term = _aligned(scorer.recommend_term, scorer.movie_ids, ids) if scorer else None
        metrics = _metrics(sc.metric, settings)
        all_metrics.update(metrics)
        # Cosines compare tastes: mf's trailing bias columns are left out (list_dims).
        cos_view = np.ascontiguousarray(vectors[:, :int(settings.get("list_dims")
                                                        or vectors.shape[1])])
        corate = float(settings.get("list_corate", 0.0))
        co_rating = (co_pairs[0], co_pairs[1], corate) if corate > 0 and co_pairs else None
        for metric in metrics:
            tallies[(model, metric)] = row_tally(ctx)
            view = cos_view if metric == "cosine" else vectors
            df, bc = similar_movies(spark, ids, view, metric, sc.k, sc.block_size,
                                    sc.partitions, item_term=list_term,
                                    tally=tallies[(model, metric)], co_rating=co_rating)
            broadcasts.append(bc)
            sims.append(df.select(F.lit(model).alias("model"), F.lit(metric).alias("metric"),
                                  "*"))
            if example is None and ids.size:
                example = (model, metric, _example(ids, view, metric, min(sc.k, 5),
                                                   list_term, co_rating))
        has_users = (model, run_id) in with_users
        by_user_vectors = has_users and settings.get("recommend_by", "user_vectors") \
            == "user_vectors"
        if by_user_vectors and user_emb is not None:
            queries = (user_emb.where(of_run).select("user_id", "vector")
                       .join(rated, "user_id", "left"))
        else:
            queries = rated
        half_life = None if scorer is None or by_user_vectors else float(
            settings.get("half_life", 0.0))
        tallies[(model, "")] = row_tally(ctx)
        df, bc = recommendations(spark, ids, vectors if by_user_vectors else cos_view,
                                 queries, sc.k, by_user_vectors,
                                 sc.like_threshold, sc.block_size, sc.partitions,
                                 item_term=rec_term, tally=tallies[(model, "")],
                                 half_life=half_life)
        broadcasts.append(bc)
        recs.append(df.select(F.lit(model).alias("model"), "*"))
        per_model[model] = {"run_id": run_id, "movies": int(ids.size),
                            "dim": int(vectors.shape[1]), "metrics": metrics,
                            "scorer": settings or None, "list_corate": corate,
                            "recommend_by": _recommend_by(by_user_vectors, half_life,
                                                          rec_term)}
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
        info["similar_rows"] = {m: counts[(model, m)].get("rows", 0) for m in info["metrics"]}
        info["recommendation_rows"] = counts[(model, "")].get("rows", 0)
        info["users"] = counts[(model, "")].get("queries", 0)
    run.rows["similar_movies"] = sum(sum(i["similar_rows"].values()) for i in per_model.values())
    run.rows["recommendations"] = sum(i["recommendation_rows"] for i in per_model.values())
    run.notes.update({"models": per_model, "k": sc.k, "metrics": sorted(all_metrics),
                      "block_size": sc.block_size, "ratings": sc.ratings})
    return _summary(wh, per_model, sc.k, example)


def _co_rating_pairs(ratings: DataFrame, scorers: dict[str, FittedScorer]
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(movie_id, user_id)`` of the profile ratings, collected once for the co-rating
    term of the lists (sparse pairs, as many as ratings: never a movies x movies or users x
    movies matrix); None when no scorer has a co-rating weight."""
    if not any(float(s.settings.get("list_corate", 0.0)) > 0 for s in scorers.values()):
        return None
    table = ratings.select("movie_id", "user_id").toArrow()
    return (table.column("movie_id").to_numpy().astype(np.int64),
            table.column("user_id").to_numpy().astype(np.int64))


def _scorers(wh: Warehouse, runs: dict[str, str]) -> dict[str, FittedScorer]:
    """The ``scorers`` rows of the chosen (model, run) pairs (none without the table)."""
    if not wh.exists("scorers"):
        return {}
    table = wh.read_arrow("scorers")
    out = {}
    for row in table.to_pylist():  # one row per model and run: a handful
        if runs.get(row["model"]) == row["run_id"]:
            out[row["model"]] = from_row(row)
    return out


def _aligned(term: np.ndarray, term_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``term`` (keyed by ``term_ids``, ascending) at the catalogue ``ids``; 0 where absent."""
    out = np.zeros(ids.size)
    if term_ids.size == 0:
        return out
    pos = np.minimum(np.searchsorted(term_ids, ids), term_ids.size - 1)
    ok = term_ids[pos] == ids
    out[ok] = term[pos[ok]]
    return out


def _metrics(setting: str, scorer: dict) -> list[str]:
    """Metrics of a model's lists: ``similar.metric``, ``model`` = the scorer's own."""
    if setting == "both":
        return ["cosine", "dot"]
    if setting == "model":
        return [str(scorer.get("list_metric", "cosine"))]
    return [setting]


def _recommend_by(by_user_vectors: bool, half_life: float | None,
                  term: np.ndarray | None) -> str:
    base = ("user vectors (dot)" if by_user_vectors else
            "summed cosine of liked movies" if half_life is None else
            f"recency-weighted profile (half-life {half_life:g})")
    return base + (" + item prior" if term is not None and np.any(term) else "")


def _example(ids: np.ndarray, vectors: np.ndarray, metric: str, k: int,
             term: np.ndarray | None = None, co_rating: CoRatingInput | None = None
             ) -> list[tuple[int, int, int, float]]:
    """The first movie's top-k as the join computes it (same kernel, same inputs, so the
    same rows as the table): ``(movie_id, rank, neighbor_id, score)``."""
    n = int(ids.size)
    args = co_rating_arrays(co_rating, ids)
    co = None if args is None else CoRating(*args)
    pair = None if co is None else (lambda lo, hi: co.rows(np.arange(lo, hi)))
    res = Searcher(vectors, metric, term).search(
        vectors[:1], k, exclusion_csr(np.array([0, 1]), np.array([0]), 1, n), pair_term=pair)
    return [(int(ids[0]), r + 1, int(ids[p]), float(np.float32(s)))
            for r, (p, s) in enumerate(zip(res.positions[0], res.scores[0], strict=True))
            if p >= 0]


def _summary(wh: Warehouse, per_model: dict[str, dict], k: int,
             example: tuple[str, str, list[tuple[int, int, int, float]]] | None) -> str:
    lines = [f"similar: top-{k} per movie and user by each model's shipped scorer, exact "
             "(blocked matrix products)"]
    for model, info in per_model.items():
        sims = ", ".join(f"{m} {n:,}" for m, n in info["similar_rows"].items())
        lines.append(f"  {model} (run {info['run_id']}): {info['movies']:,} movies x "
                     f"{info['dim']} dims; similar_movies rows: {sims}"
                     + (f" (+ {info['list_corate']:g} x co-rating)" if info.get("list_corate")
                        else "") + "; recommendations: "
                     f"{info['recommendation_rows']:,} for {info['users']:,} users, by "
                     f"{info['recommend_by']}")
    # One example, so a reader can eyeball whether the neighbours make sense.
    if example and example[2]:
        model, metric, rows = example
        titles = _titles(wh, [r[0] for r in rows] + [r[2] for r in rows])
        first = rows[0][0]
        lines.append(f"  e.g. {model}, {metric}, movie {first} {titles.get(first, '')}:")
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
    reads=("embeddings", "ratings"), optional_reads=("user_embeddings", "scorers"),
    writes=("similar_movies", "recommendations"),
    writes_doc="`similar_movies(model, metric, movie_id, rank, neighbor_id, score)` (top-"
               "`similar.k` by each model's shipped scorer: metric + item prior + co-rating "
               "term), "
               "`recommendations(model, user_id, rank, movie_id, score)` (top-k movies the "
               "user has not rated in `similar.ratings`, by the shipped scorer)",
    sections=("similar",), run=run_similar)
