"""Ingest: raw MovieLens files -> Delta tables ``ratings``, ``movies`` and ``rejected``.

Bad input never crashes the job halfway and is never dropped silently. Each bad row
gets one reason, the first of these that applies:

* ``bad_encoding``: the line is not valid text in its file's encoding (UTF-8 for every
  ratings file and for the CSV and RecBole catalogues; see ``formats``);
* ``malformed``: the line does not split into the format's fields, a field is not a
  number (ids and timestamps are integers, a rating a plain decimal: no NaN or
  infinity), or a catalogue line holds a control character such as NUL;
* ``id_out_of_range``: a user or movie id is negative or above 2^31 - 1;
* ``timestamp_out_of_range``: the timestamp is negative or after the year 9999;
* ``rating_out_of_range``: the rating is off the format's scale (1..5 whole stars, or
  0.5..5.0 half stars for the CSV formats);
* ``unknown_movie``: the rating's movie id is not in the catalogue;
* ``duplicate_rating``: a later line for a (user, movie) already rated (the first line
  wins; with ``--append``, a pair already in ``ratings`` counts as the first);
* ``duplicate_movie``: a catalogue line repeating a movie id.

By default bad rows go to ``rejected(source, line_no, raw, reason)``; in strict mode
the job fails before writing anything, naming the first bad row's file, line and
reason. All checks run before the first write, and each table is one Delta
transaction, so a failed run leaves every table at its last good version. A missing,
empty or unreadable input (a folder where a file belongs, a file where the folder
belongs, a UTF-16 file, a path Spark would read as a wildcard) is an ``IngestError``
naming the path, never a JVM stack trace.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from py4j.protocol import Py4JJavaError
from pyspark import StorageLevel
from pyspark.errors.exceptions.captured import CapturedException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from moviegraph import fs
from moviegraph.errors import InputError
from moviegraph.sources.formats import (
    INT32_MAX,
    UTF16_BOMS,
    Format,
    MovieRow,
    detect,
    detect_file,
)
from moviegraph.sources.lines import numbered_lines
from moviegraph.tables import SCHEMAS, Warehouse, one_row

REASONS = ("bad_encoding", "malformed", "id_out_of_range", "timestamp_out_of_range",
           "rating_out_of_range", "unknown_movie", "duplicate_rating", "duplicate_movie")
TS_MAX = 253_402_300_799  # 9999-12-31 23:59:59 UTC in epoch seconds
# Catalogues are parsed on the driver (ml-32m's is 4 MB); Spark's binaryFile reader stops
# at 2 GiB with a JVM error, so anything near that is refused with a message instead.
MAX_CATALOGUE_BYTES = 256 << 20
# Spark's file sources expand these in paths (Hadoop globs); a literal one would match
# nothing or the wrong files.
_GLOB_CHARS = re.compile(r"[\[\]{}*?\\]")
# Strict-mode messages quote at most this much of the bad line.
_QUOTE_CHARS = 200
T = TypeVar("T")


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


def _checked(path: str, call: Callable[[], T]) -> T:
    """``call()``, with a JVM file system error turned into a one-line IngestError."""
    try:
        return call()
    except (Py4JJavaError, CapturedException) as exc:
        java = getattr(exc, "java_exception", None)
        detail = (java.getMessage() or java.toString()) if java is not None else str(exc)
        raise IngestError(f"{path}: cannot read: {detail.strip().splitlines()[0]}") from None


def check_input_folder(spark: SparkSession, folder: str) -> None:
    """Raise IngestError unless ``folder`` is an existing folder Spark can read as named."""
    glob = _GLOB_CHARS.search(folder)
    if glob:
        raise IngestError(f"{folder}: the path holds {glob.group()!r}, which Spark reads as a "
                          "wildcard; rename or link the folder")
    if not _checked(folder, lambda: fs.exists(spark, folder)):
        raise IngestError(f"{folder}: input folder not found")
    if not _checked(folder, lambda: fs.is_dir(spark, folder)):
        raise IngestError(f"{folder}: not a folder (ingest.path / --path names the folder "
                          "holding the MovieLens files)")


def _require_file(spark: SparkSession, path: str, max_bytes: int | None = None) -> None:
    if not _checked(path, lambda: fs.exists(spark, path)):
        raise IngestError(f"{path}: input file not found")
    if _checked(path, lambda: fs.is_dir(spark, path)):
        raise IngestError(f"{path}: a folder where the input file should be")
    size = _checked(path, lambda: fs.size(spark, path))
    if size == 0:
        raise IngestError(f"{path}: input file is empty")
    if max_bytes is not None and size > max_bytes:
        raise IngestError(f"{path}: {size:,} bytes, too large for a movie catalogue "
                          f"(limit {max_bytes:,})")
    if _checked(path, lambda: fs.read_head(spark, path, 2)) in UTF16_BOMS:
        raise IngestError(f"{path}:1: UTF-16 text (byte order mark); MovieLens files are "
                          "UTF-8 or latin-1")


def _parse_movies(spark: SparkSession, fmt: Format, path: str
                  ) -> tuple[DataFrame, DataFrame, int, Counter[str]]:
    """(movies, rejected rows, number of movies, rejected rows per reason) from the
    catalogue file, parsed on the driver (the counts come from the parse: no Spark job)."""
    rows = fmt.parse_movies(_checked(path, lambda: fs.read_bytes(spark, path)))
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
        reasons = dict(Counter(reason for *_, reason in bad))
        raise IngestError(f"{path}: no valid movie lines "
                          f"(rejected: {reasons or 'none, the file has no data lines'})")
    movies = spark.createDataFrame(
        [(r.movie_id, r.title, r.year, list(r.genres)) for r in good.values()],
        SCHEMAS["movies"])
    rejected = spark.createDataFrame(bad, SCHEMAS["rejected"])
    return movies, rejected, len(good), Counter(reason for *_, reason in bad)


def _parse_ratings(spark: SparkSession, fmt: Format, path: str) -> DataFrame:
    """Every ratings line with its parsed fields and a first-found ``reason`` (or null)."""
    lines = numbered_lines(spark, [path])
    if fmt.header:
        # Line 1 is the header when it holds a letter and no digit (formats.is_header): a
        # file without its header loses no rating, a corrupt first line is rejected.
        header = ((F.col("line_no") == 1) & F.col("raw").rlike("[A-Za-z]")
                  & ~F.col("raw").rlike("[0-9]"))
        lines = lines.where(~header)
    parts = fmt.split_ratings(F.col("raw"))

    def token(i: int) -> Column:
        return F.trim(F.get(parts, i))

    def integer(i: int) -> tuple[Column, Column]:
        # (is an integer, its value or null beyond a long). Plain digits only: try_cast
        # alone would accept "1.0"; surrounding spaces are trimmed.
        return token(i).rlike("^-?[0-9]+$"), token(i).try_cast("long")

    def in_range(value: Column, hi: int) -> Column:
        return F.coalesce(value.between(0, hi), F.lit(False))

    user_is_int, user_id = integer(0)
    movie_is_int, movie_id = integer(1)
    # A plain decimal: try_cast alone would also take "NaN", "Infinity" and "1e3".
    rating = F.when(token(2).rlike(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"),
                    token(2).try_cast("double"))
    # RecBole writes timestamps as floats ("881250949.0" would still be whole seconds).
    ts_is_int = token(3).rlike(r"^-?[0-9]+(\.0*)?$")
    ts = F.regexp_extract(token(3), "^-?[0-9]+", 0).try_cast("long")
    parsed = lines.select(
        "source", "line_no",
        # Stored text must be valid UTF-8 (delta-rs and pyarrow readers insist on it).
        F.make_valid_utf8("raw").alias("raw"),
        F.is_valid_utf8("raw").alias("utf8"),
        (F.size(parts) == 4).alias("four_fields"),
        user_is_int.alias("user_is_int"), user_id.alias("user_id"),
        movie_is_int.alias("movie_is_int"), movie_id.alias("movie_id"),
        rating.alias("rating"), ts_is_int.alias("ts_is_int"), ts.alias("ts"),
    )
    c = F.col
    malformed = ~(c("four_fields") & c("user_is_int") & c("movie_is_int")
                  & c("rating").isNotNull() & c("ts_is_int"))
    return parsed.withColumn(
        "reason",
        F.when(~c("utf8"), F.lit("bad_encoding"))
         .when(malformed, F.lit("malformed"))
         .when(~in_range(c("user_id"), INT32_MAX) | ~in_range(c("movie_id"), INT32_MAX),
               F.lit("id_out_of_range"))
         .when(~in_range(c("ts"), TS_MAX), F.lit("timestamp_out_of_range"))
         .when(~fmt.valid_rating(c("rating")), F.lit("rating_out_of_range")),
    ).drop("utf8", "four_fields", "user_is_int", "movie_is_int", "ts_is_int")


def ingest(spark: SparkSession, warehouse: Warehouse, folder: str, fmt_name: str = "auto",
           strict: bool = False, append: bool = False) -> IngestResult:
    """Read the MovieLens files in ``folder`` into ``ratings``, ``movies``, ``rejected``.

    With ``append``, ``folder`` may also be one ratings file (``ingest --append FILE``): its
    format comes from ``fmt_name`` or its name; the format's catalogue file beside it, when
    there is one, extends ``movies``, otherwise the ratings are checked against the movies
    already ingested.
    """
    started = time.time()
    ratings_file = None
    if append and _checked(folder, lambda: fs.is_file(spark, folder)):
        folder, _, ratings_file = folder.rpartition("/")
    check_input_folder(spark, folder)
    if ratings_file is not None:
        fmt = detect_file(ratings_file, fmt_name)
    else:
        fmt = detect(folder, lambda p: _checked(p, lambda: fs.exists(spark, p)), fmt_name)
    ratings_path = f"{folder}/{ratings_file or fmt.ratings_file}"
    movies_path = f"{folder}/{fmt.movies_file}"
    _require_file(spark, ratings_path)
    if ratings_file is not None and warehouse.exists("movies") and not _checked(
            movies_path, lambda: fs.exists(spark, movies_path)):
        # A ratings file on its own: the catalogue is the one already ingested.
        movies = warehouse.read("movies")
        movie_rejects = spark.createDataFrame([], SCHEMAS["rejected"])
        n_movies: int | None = None  # counted by Spark below
        movie_counts: Counter[str] = Counter()
    else:
        _require_file(spark, movies_path, MAX_CATALOGUE_BYTES)
        movies, movie_rejects, n_movies, movie_counts = _parse_movies(spark, fmt, movies_path)
        if append and warehouse.exists("movies"):
            n_movies = None  # old and new catalogue lines: counted by Spark below
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
        # One job over the checkpointed rows gives the rejected counts per reason and, in
        # the null-reason group, the good ratings and their users (each Spark action costs
        # a second or more on a small local job; the catalogue's counts come from its
        # parse on the driver).
        by_reason = {r["reason"]: (r["n"], r["users"]) for r in
                     final.groupBy("reason").agg(F.count(F.lit(1)).alias("n"),
                                                 F.countDistinct("user_id").alias("users"))
                     .collect()}
        n_good, n_users = by_reason.pop(None, (0, 0))
        counts = dict(Counter({r: n for r, (n, _) in by_reason.items()}) + movie_counts)
        if strict and counts:
            first = one_row(rejected.orderBy("source", "line_no"))
            raw = first["raw"]
            quoted = repr(raw[:_QUOTE_CHARS]) + ("..." if len(raw) > _QUOTE_CHARS else "")
            raise IngestError(f"{first['source']}:{first['line_no']}: {first['reason']}: "
                              f"{quoted} (strict mode; {sum(counts.values())} bad rows in "
                              "all)")
        good = final.where(F.col("reason").isNull()).select(
            "user_id", "movie_id", "rating", "ts")
        if n_good == 0:
            raise IngestError(f"{ratings_path}: no valid ratings "
                              f"(rejected: {counts or 'none, the file has no data lines'})")
        result = IngestResult(format=fmt.name, ratings=n_good,
                              movies=movies.count() if n_movies is None else n_movies,
                              users=n_users,
                              rejected={r: counts.get(r, 0) for r in REASONS})
        mode = "append" if append else "overwrite"
        result.versions["movies"] = warehouse.write("movies", movies.orderBy("movie_id"))
        result.versions["ratings"] = warehouse.write("ratings", good, mode=mode)
        result.versions["rejected"] = warehouse.write("rejected", rejected, mode=mode)
        if append:
            result.ratings = warehouse.row_count("ratings")  # Delta log statistics
    finally:
        final.unpersist()
        movies.unpersist()
    result.seconds = time.time() - started
    return result
