"""Ingest: raw MovieLens files -> Delta tables ``ratings``, ``movies`` and ``rejected``.

Bad input never crashes the job halfway and is never dropped silently. Each bad row
gets one reason:

* ``malformed``: the line does not split into the format's fields, or a field is not
  a number (ids and timestamps must be non-negative integers);
* ``rating_out_of_range``: the rating is off the format's scale (1..5 whole stars, or
  0.5..5.0 half stars for the CSV formats);
* ``unknown_movie``: the rating's movie id is not in the catalogue;
* ``duplicate_rating``: a later line for a (user, movie) already rated (the first line
  wins; with ``--append``, a pair already in ``ratings`` counts as the first);
* ``duplicate_movie``: a catalogue line repeating a movie id.

By default bad rows go to ``rejected(source, line_no, raw, reason)``; in strict mode
the job fails before writing anything, naming the first bad row's file, line and
reason. All checks run before the first write, and each table is one Delta
transaction, so a failed run leaves every table at its last good version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from moviegraph import fs
from moviegraph.errors import InputError
from moviegraph.sources.formats import Format, MovieRow, detect, detect_file
from moviegraph.sources.lines import numbered_lines
from moviegraph.tables import SCHEMAS, Warehouse, one_row

REASONS = ("malformed", "rating_out_of_range", "unknown_movie", "duplicate_rating",
           "duplicate_movie")


class IngestError(InputError):
    """Input missing, empty, or (strict mode) a bad row: the message names file and line."""


@dataclass
class IngestResult:
    """What one ingest run read and wrote."""

    format: str
    ratings: int
    movies: int
    users: int
    rejected: dict[str, int]
    versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        """One screen of text for the job's log."""
        lines = [f"ingest ({self.format}): {self.ratings:,} ratings by {self.users:,} users, "
                 f"{self.movies:,} movies in {self.seconds:.1f}s"]
        total = sum(self.rejected.values())
        lines.append(f"  rejected: {total:,}" + ("" if not total else " (" + ", ".join(
            f"{r}: {n:,}" for r, n in sorted(self.rejected.items()) if n) + ")"))
        for table, version in self.versions.items():
            lines.append(f"  wrote {table} v{version}")
        return "\n".join(lines)


def _require_file(spark: SparkSession, path: str) -> None:
    if not fs.exists(spark, path):
        raise IngestError(f"{path}: input file not found")
    if fs.size(spark, path) == 0:
        raise IngestError(f"{path}: input file is empty")


def _parse_movies(spark: SparkSession, fmt: Format, path: str) -> tuple[DataFrame, DataFrame]:
    """(movies, rejected rows) from the catalogue file, parsed on the driver."""
    text = fs.read_bytes(spark, path).decode(fmt.movies_encoding)
    rows = fmt.parse_movies(text)
    good: dict[int, MovieRow] = {}
    bad: list[tuple[str, int, str, str]] = []
    source = fs.qualify(path)
    for row in rows:
        if row.reason is not None or row.movie_id is None:
            bad.append((source, row.line_no, row.raw, row.reason or "malformed"))
        elif row.movie_id in good:
            bad.append((source, row.line_no, row.raw, "duplicate_movie"))
        else:
            good[row.movie_id] = row
    if not good:
        raise IngestError(f"{path}: no valid movie lines")
    movies = spark.createDataFrame(
        [(r.movie_id, r.title, r.year, list(r.genres)) for r in good.values()],
        SCHEMAS["movies"])
    rejected = spark.createDataFrame(bad, SCHEMAS["rejected"])
    return movies, rejected


def _parse_ratings(spark: SparkSession, fmt: Format, path: str) -> DataFrame:
    """Every ratings line with its parsed fields and a first-found ``reason`` (or null)."""
    lines = numbered_lines(spark, [path]).where(F.col("line_no") > fmt.header_lines)
    parts = fmt.split_ratings(F.col("raw"))

    def as_long(i: int):
        # Only plain non-negative integers: try_cast alone would accept "1.0" or " 1".
        token = F.trim(F.get(parts, i))
        return F.when(token.rlike(r"^[0-9]{1,18}$"), token.cast("long"))

    def as_double(i: int):
        return F.trim(F.get(parts, i)).try_cast("double")

    parsed = lines.select(
        "source", "line_no", "raw",
        F.size(parts).alias("n_fields"),
        as_long(0).alias("user_id"), as_long(1).alias("movie_id"),
        as_double(2).alias("rating"),
        # RecBole writes timestamps as floats ("881250949.0" would still be whole seconds).
        F.when(F.trim(F.get(parts, 3)).rlike(r"^[0-9]{1,18}(\.0*)?$"),
               F.trim(F.get(parts, 3)).cast("double").cast("long")).alias("ts"),
    )
    int_max = 2**31 - 1
    malformed = ((F.col("n_fields") != 4) | F.col("user_id").isNull()
                 | F.col("movie_id").isNull() | F.col("rating").isNull()
                 | F.col("ts").isNull() | (F.col("user_id") > int_max)
                 | (F.col("movie_id") > int_max))
    return parsed.withColumn(
        "reason",
        F.when(malformed, F.lit("malformed"))
         .when(~fmt.valid_rating(F.col("rating")), F.lit("rating_out_of_range")))


def ingest(spark: SparkSession, warehouse: Warehouse, folder: str, fmt_name: str = "auto",
           strict: bool = False, append: bool = False) -> IngestResult:
    """Read the MovieLens files in ``folder`` into ``ratings``, ``movies``, ``rejected``.

    With ``append``, ``folder`` may also be one ratings file (``ingest --append FILE``): its
    format comes from ``fmt_name`` or its name; the format's catalogue file beside it, when
    there is one, extends ``movies``, otherwise the ratings are checked against the movies
    already ingested.
    """
    started = time.time()
    if not fs.exists(spark, folder):
        raise IngestError(f"{folder}: input folder not found")
    ratings_file = None
    if append and fs.is_file(spark, folder):
        folder, _, ratings_file = folder.rpartition("/")
    if ratings_file is not None:
        fmt = detect_file(ratings_file, fmt_name)
    else:
        fmt = detect(folder, lambda p: fs.exists(spark, p), fmt_name)
    ratings_path = f"{folder}/{ratings_file or fmt.ratings_file}"
    movies_path = f"{folder}/{fmt.movies_file}"
    _require_file(spark, ratings_path)
    if ratings_file is not None and warehouse.exists("movies") and not fs.exists(spark,
                                                                                 movies_path):
        # A ratings file on its own: the catalogue is the one already ingested.
        movies = warehouse.read("movies")
        movie_rejects = spark.createDataFrame([], SCHEMAS["rejected"])
    else:
        _require_file(spark, movies_path)
        movies, movie_rejects = _parse_movies(spark, fmt, movies_path)
        if append and warehouse.exists("movies"):
            # New catalogue lines extend the old catalogue; known ids keep their old row.
            old = warehouse.read("movies")
            movies = old.unionByName(movies.join(old.select("movie_id"), "movie_id",
                                                 "left_anti"))
    movies = movies.persist(StorageLevel.MEMORY_AND_DISK)

    parsed = _parse_ratings(spark, fmt, ratings_path)
    known = F.broadcast(movies.select("movie_id", F.lit(True).alias("known")))
    checked = (parsed.join(known, "movie_id", "left")
               .withColumn("reason", F.coalesce(
                   F.col("reason"),
                   F.when(F.col("known").isNull(), F.lit("unknown_movie")))))
    # First line wins among duplicates; with --append, existing ratings come first.
    candidates = checked.where(F.col("reason").isNull()).select(
        "user_id", "movie_id", "source", "line_no", F.lit(1).alias("priority"))
    if append and warehouse.exists("ratings"):
        existing = warehouse.read("ratings").select(
            "user_id", "movie_id", F.lit(None).cast("string").alias("source"),
            F.lit(0).cast("long").alias("line_no"), F.lit(0).alias("priority"))
        candidates = existing.unionByName(candidates)
    order = Window.partitionBy("user_id", "movie_id").orderBy("priority", "source", "line_no")
    dupes = (candidates.withColumn("k", F.row_number().over(order))
             .where((F.col("k") > 1) & (F.col("priority") == 1))
             .select("source", "line_no", F.lit(True).alias("dup")))
    final = (checked.join(dupes, ["source", "line_no"], "left")
             .withColumn("reason", F.coalesce(
                 F.col("reason"), F.when(F.col("dup"), F.lit("duplicate_rating"))))
             .select("source", "line_no", "raw", "user_id", "movie_id", "rating", "ts",
                     "reason")
             # Materialised, cut from its sources: the writes below change `movies` and
             # (with --append) `ratings`, which must not make a later write recompute it
             # against the new tables (a rating appended, then also "duplicate_rating").
             .localCheckpoint(eager=True))
    try:
        rejected = final.where(F.col("reason").isNotNull()).select(
            "source", "line_no", "raw", "reason").unionByName(movie_rejects)
        counts = {r["reason"]: r["n"] for r in
                  rejected.groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()}
        if strict and counts:
            first = one_row(rejected.orderBy("source", "line_no"))
            raise IngestError(f"{first['source']}:{first['line_no']}: {first['reason']}: "
                              f"{first['raw']!r} (strict mode; {sum(counts.values())} bad "
                              "rows in all)")
        good = final.where(F.col("reason").isNull()).select(
            "user_id", "movie_id", "rating", "ts")
        totals = one_row(good.agg(F.count(F.lit(1)).alias("n"),
                                  F.countDistinct("user_id").alias("users")))
        n_good = totals["n"]
        if n_good == 0:
            raise IngestError(f"{ratings_path}: no valid ratings "
                              f"(rejected: {counts or 'none, the file has no data lines'})")
        result = IngestResult(format=fmt.name, ratings=n_good, movies=movies.count(),
                              users=totals["users"],
                              rejected={r: counts.get(r, 0) for r in REASONS})
        mode = "append" if append else "overwrite"
        result.versions["movies"] = warehouse.write("movies", movies.orderBy("movie_id"))
        result.versions["ratings"] = warehouse.write("ratings", good, mode=mode)
        result.versions["rejected"] = warehouse.write("rejected", rejected, mode=mode)
        if append:
            result.ratings = warehouse.read("ratings").count()
    finally:
        final.unpersist()
        movies.unpersist()
    result.seconds = time.time() - started
    return result
