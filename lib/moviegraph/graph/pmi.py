"""PMI-weighted edges from item and pair counts (the recipe of DESIGN.md, exactly).

``D = log(Σ item_count)``; ``pmi = log(n_xy) - log(n_x) - log(n_y) + D``;
``weight = pmi * n_xy``; an edge is kept when ``weight >= min_weight`` and
``n_xy >= min_count``. Optionally (:func:`top_k_edges`) the graph is then cut to a
k-nearest-neighbour graph: an edge stays when it is among the ``top_k`` highest-PMI edges
of either endpoint (ties broken by the smaller neighbour id, so the cut is exact and
independent of partitioning). Each undirected edge is stored once, ``src < dst``
(``src`` = ``movie_a``): consumers that want both directions (the walks' CSR) symmetrise it.
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from moviegraph.tables import one_row


def log_total(item_counts: DataFrame) -> float:
    """``D = log(Σ item_count)``; ValueError when there is no kept rating at all."""
    total = one_row(item_counts.agg(F.sum("n").alias("t")))["t"]
    if not total:
        raise ValueError("no kept ratings: item_counts is empty (is pairs.min_rating too "
                         "high for this data?)")
    return math.log(int(total))


def pmi_edges(item_counts: DataFrame, pair_counts: DataFrame, min_weight: float,
              d: float | None = None, min_count: int = 1,
              weighting: str = "pmi") -> DataFrame:
    """``(src, dst, weight, pmi, n)`` for the pairs with ``weight >= min_weight`` and
    ``n >= min_count``.

    ``weighting``: ``pmi`` (the recipe: ``weight = pmi * n``) or ``cosine``
    (``weight = n / sqrt(n_a n_b)``, the cosine of the two movies' binary rater columns:
    it does not favour rare pairs as PMI does, so walks stay among movies people watch
    together; see README "pairs / edges"). ``pmi`` is stored either way.

    ``item_counts`` is small (one row per movie) and broadcast to the pair counts.
    The expression keeps the recipe's evaluation order (left to right) so that the
    results match a plain-Python evaluation to the last bits.
    """
    d = log_total(item_counts) if d is None else d
    left = F.broadcast(item_counts.select(F.col("movie_id").alias("movie_a"),
                                          F.col("n").alias("n_a")))
    right = F.broadcast(item_counts.select(F.col("movie_id").alias("movie_b"),
                                           F.col("n").alias("n_b")))
    joined = pair_counts.join(left, "movie_a").join(right, "movie_b")
    pmi = (F.log(F.col("n").cast("double")) - F.log(F.col("n_a").cast("double"))
           - F.log(F.col("n_b").cast("double")) + F.lit(float(d)))
    cosine = F.col("n").cast("double") / F.sqrt(F.col("n_a").cast("double")
                                                * F.col("n_b").cast("double"))
    scored = joined.select(F.col("movie_a").alias("src"), F.col("movie_b").alias("dst"),
                           F.col("n"), pmi.alias("pmi"), cosine.alias("cosine"))
    if weighting == "cosine":
        scored = scored.withColumn("weight", F.col("cosine"))
    elif weighting == "pmi":
        scored = scored.withColumn("weight", F.col("pmi") * F.col("n").cast("double"))
    else:
        raise ValueError(f"edge weighting {weighting!r}: must be pmi or cosine")
    kept = scored.filter(F.col("weight") >= F.lit(float(min_weight)))
    if min_count > 1:
        kept = kept.filter(F.col("n") >= F.lit(int(min_count)))
    return kept.select("src", "dst", "weight", "pmi", "n")


def top_k_edges(edges: DataFrame, top_k: int, by: str = "pmi") -> DataFrame:
    """The edges among the ``top_k`` highest-``by`` (``pmi`` or ``weight``) edges of at
    least one endpoint.

    Why: on a co-rating graph popular movies touch almost everything, so walks drift to
    them; keeping each movie's strongest neighbours (a k-NN graph, union over both ends)
    keeps walks local. Each edge is ranked at both ends by ``(pmi desc, other end asc)``
    with ``row_number`` over a window per node: exact, and the same for any partitioning.
    ``top_k = 0`` returns ``edges`` unchanged.
    """
    if top_k <= 0:
        return edges
    ends = edges.select(F.col("src").alias("node"), F.col("dst").alias("other"), "src",
                        "dst", F.col(by).alias("_by")).unionByName(
        edges.select(F.col("dst").alias("node"), F.col("src").alias("other"), "src", "dst",
                     F.col(by).alias("_by")))
    by_node = Window.partitionBy("node").orderBy(F.col("_by").desc(), F.col("other").asc())
    chosen = (ends.withColumn("rank", F.row_number().over(by_node))
              .filter(F.col("rank") <= F.lit(int(top_k))).select("src", "dst").distinct())
    return edges.join(chosen, ["src", "dst"], "left_semi")
