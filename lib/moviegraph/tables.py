"""Table names, schemas and every Delta operation under one warehouse root.

:class:`Warehouse` is the one façade over Delta: reads (Spark, or Arrow through delta-rs),
writes, ``replaceWhere`` rewrites, MERGEs and the files appended since a version (from the
Delta history). Every write is one Delta transaction: a job that dies mid-write leaves the
table at its previous version, readable. Tables are written without deletion vectors or
column mapping so that delta-rs (the fast Arrow reader) can read them too.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import types as T

from moviegraph import fs
from moviegraph.deltalog import is_maintenance_commit

SCHEMAS: dict[str, T.StructType] = {
    "ratings": T.StructType([
        T.StructField("user_id", T.IntegerType(), False),
        T.StructField("movie_id", T.IntegerType(), False),
        T.StructField("rating", T.FloatType(), False),
        T.StructField("ts", T.LongType(), False),  # seconds since the epoch, UTC
    ]),
    "movies": T.StructType([
        T.StructField("movie_id", T.IntegerType(), False),
        T.StructField("title", T.StringType(), False),
        T.StructField("year", T.IntegerType(), True),  # release year, null when unknown
        T.StructField("genres", T.ArrayType(T.StringType()), False),
    ]),
    "rejected": T.StructType([
        T.StructField("source", T.StringType(), False),  # file path
        T.StructField("line_no", T.LongType(), False),  # 1-based line in that file
        T.StructField("raw", T.StringType(), True),
        T.StructField("reason", T.StringType(), False),
    ]),
    "item_counts": T.StructType([
        T.StructField("movie_id", T.IntegerType(), False),
        T.StructField("n", T.LongType(), False),
    ]),
    "pair_counts": T.StructType([
        T.StructField("movie_a", T.IntegerType(), False),  # movie_a < movie_b
        T.StructField("movie_b", T.IntegerType(), False),
        T.StructField("n", T.LongType(), False),
    ]),
    "edges": T.StructType([
        T.StructField("src", T.IntegerType(), False),
        T.StructField("dst", T.IntegerType(), False),
        T.StructField("weight", T.DoubleType(), False),
        T.StructField("pmi", T.DoubleType(), False),
        T.StructField("n", T.LongType(), False),
    ]),
    "vertices": T.StructType([
        T.StructField("movie_id", T.IntegerType(), False),
        T.StructField("degree", T.IntegerType(), False),
        T.StructField("strength", T.DoubleType(), False),
        T.StructField("component", T.IntegerType(), False),
    ]),
    "walks": T.StructType([
        T.StructField("walk_id", T.LongType(), False),
        T.StructField("start", T.IntegerType(), False),
        T.StructField("round", T.IntegerType(), False),
        T.StructField("path", T.ArrayType(T.IntegerType()), False),
    ]),
    "vocab": T.StructType([
        T.StructField("token", T.IntegerType(), False),
        T.StructField("movie_id", T.IntegerType(), False),
        T.StructField("count", T.LongType(), False),
    ]),
    "embeddings": T.StructType([
        T.StructField("model", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("movie_id", T.IntegerType(), False),
        T.StructField("vector", T.ArrayType(T.FloatType()), False),
    ]),
    "user_embeddings": T.StructType([
        T.StructField("model", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("user_id", T.IntegerType(), False),
        T.StructField("vector", T.ArrayType(T.FloatType()), False),
    ]),
    "history": T.StructType([  # one row per training epoch (train stage, appended)
        T.StructField("run_id", T.StringType(), False),
        T.StructField("model", T.StringType(), False),
        T.StructField("epoch", T.IntegerType(), False),  # 0-based
        T.StructField("train_loss", T.DoubleType(), False),
        T.StructField("metrics", T.MapType(T.StringType(), T.DoubleType()), False),
        T.StructField("seconds", T.DoubleType(), False),
    ]),
    "scorers": T.StructType([  # train stage: one row per model, its shipped ranking
        T.StructField("model", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("settings", T.StringType(), False),  # JSON of [train.scorers.<model>]
        T.StructField("movie_id", T.ArrayType(T.IntegerType()), False),  # ascending
        T.StructField("list_term", T.ArrayType(T.DoubleType()), False),  # per movie_id
        T.StructField("recommend_term", T.ArrayType(T.DoubleType()), False),
    ]),
    "similar_movies": T.StructType([
        T.StructField("model", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),  # cosine | dot
        T.StructField("movie_id", T.IntegerType(), False),
        T.StructField("rank", T.IntegerType(), False),  # 1 = most similar
        T.StructField("neighbor_id", T.IntegerType(), False),
        T.StructField("score", T.FloatType(), False),
    ]),
    "recommendations": T.StructType([
        T.StructField("model", T.StringType(), False),
        T.StructField("user_id", T.IntegerType(), False),
        T.StructField("rank", T.IntegerType(), False),  # 1 = best
        T.StructField("movie_id", T.IntegerType(), False),  # never one the user rated
        T.StructField("score", T.FloatType(), False),
    ]),
    "metrics": T.StructType([  # evaluate stage: one row per (model, metric) of a run
        T.StructField("run_id", T.StringType(), False),  # the evaluate run
        T.StructField("model", T.StringType(), False),  # model, baseline:<name> or walks
        T.StructField("name", T.StringType(), False),  # e.g. recall@20:cosine, rmse
        T.StructField("value", T.DoubleType(), True),  # NaN when undefined
    ]),
}


class TableError(RuntimeError):
    """A table is missing or does not have the expected schema."""


def one_row(df: DataFrame) -> Row:
    """The first row of ``df`` (an aggregate's single row); RuntimeError when empty."""
    row = df.first()
    if row is None:
        raise RuntimeError("expected a row, the query returned none")
    return row


@dataclass
class Appended:
    """Data files added by a run of plain appends (see :meth:`Warehouse.appended_files`)."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    reason: str = ""  # why the commits are not (or no longer known to be) plain appends


_LOG_ENTRY = re.compile(r"^(\d{20})\.(?:json|checkpoint\b)")


def log_version(spark: SparkSession, table_path: str) -> int | None:
    """Latest version committed to the Delta table at ``table_path`` (None: no commit).

    Local tables are listed by Python (no JVM round trip per log entry); others through
    the session's Hadoop FileSystem.
    """
    log = f"{table_path}/_delta_log"
    names: list[str] = []
    if not fs.has_scheme(table_path) or table_path.startswith("file:"):
        with contextlib.suppress(OSError):  # no table, or not a folder
            names = os.listdir(_local_path(log))
    else:
        jvm: Any = spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(log)
        system = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        try:
            names = [str(s.getPath().getName()) for s in system.listStatus(path)]
        except Exception:  # py4j: FileNotFoundException (no table), or not a folder
            return None
    versions = [int(m[1]) for m in map(_LOG_ENTRY.match, names) if m]
    return max(versions) if versions else None


def _local_path(uri: str) -> str:
    """``file:`` URIs as plain paths (as the warehouse names local tables), others as they
    are."""
    parsed = urllib.parse.urlparse(uri)
    return urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else uri


def resolve_root(root: str) -> str:
    """A warehouse root as Spark should see it: URIs and absolute paths as they are, a
    relative path under the job's working directory (never the code's location)."""
    if fs.has_scheme(root) or root.startswith("/"):
        return root.rstrip("/")
    return str((Path.cwd() / root).resolve())


class Warehouse:
    """Delta tables under one root directory (local path or Hadoop URI)."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = resolve_root(root)

    def path(self, name: str) -> str:
        """Storage path of table ``name``."""
        return f"{self.root}/{name}"

    def output_uri(self, path: str) -> str:
        """Where a configured output folder (reports, exports, checkpoints, data) lives:
        a URI or absolute path as it is, a relative one beside the warehouse root (the
        default ``reports`` of ``<x>/warehouse`` is ``<x>/reports``), so outputs follow
        the warehouse to HDFS / S3 / ABFS and never land in the code's folder."""
        return fs.resolve(path, fs.parent(self.root))

    def exists(self, name: str) -> bool:
        """True when ``name`` is a Delta table with at least one commit."""
        return self.version(name) is not None

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """The table (optionally at an older version); a clear error when it is missing."""
        if not self.exists(name):
            raise TableError(f"table {name!r} does not exist under {self.root}; run the stage "
                             "that writes it first")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(name))

    def version(self, name: str) -> int | None:
        """Latest committed version of ``name``, None when the table does not exist.

        Read from the file names in ``_delta_log`` (Delta protocol: a commit is
        ``<20-digit version>.json``, a checkpoint ``<version>.checkpoint*``; the latest
        commit's file is never cleaned up) with one listing: no Spark job. Asking Delta
        (``history(1)``) costs a log replay and a query, 0.3-1 CPU s per call, and every
        stage asks for each table it reads and writes.
        """
        return log_version(self.spark, self.path(name))

    def conform(self, name: str, df: DataFrame) -> DataFrame:
        """Select and cast ``df``'s columns to the documented schema of ``name``."""
        schema = SCHEMAS.get(name)
        if schema is None:
            return df
        missing = [f.name for f in schema.fields if f.name not in df.columns]
        if missing:
            raise TableError(f"cannot write {name!r}: columns missing: {', '.join(missing)}")
        current = {f.name: f.dataType for f in df.schema.fields}

        def column(f: T.StructField) -> Column:
            same = current[f.name].simpleString() == f.dataType.simpleString()
            return df[f.name] if same else df[f.name].cast(f.dataType).alias(f.name)

        return df.select(*[column(f) for f in schema.fields])

    def write(self, name: str, df: DataFrame, mode: str = "overwrite",
              partition_by: list[str] | None = None) -> int:
        """Write ``df`` as table ``name`` in one Delta transaction; return the new version."""
        writer = (self.conform(name, df).write.format("delta").mode(mode)
                  .option("overwriteSchema", "true" if mode == "overwrite" else "false"))
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.path(name))
        return self.latest_version(name)
    def read_arrow(self, name: str, columns: list[str] | None = None,
                   version: int | None = None) -> pa.Table:
        """The whole table (at ``version``, default the latest) as Arrow on the driver.

        delta-rs reads the Parquet files straight into Arrow without the JVM (several times
        faster than Spark's ``toArrow``: 25M ratings in ~7 s on 2 busy cores); a table it
        cannot open (a URI it cannot reach, a feature it refuses) is read by Spark. The
        project writes its tables without deletion vectors or column mapping so that the
        fast path applies.
        """
        try:
            from deltalake import DeltaTable as RsTable

            return RsTable(self.path(name), version=version).to_pyarrow_table(columns=columns)
        except Exception:  # not reachable or not supported by delta-rs: let Spark read it
            df = self.read(name, version)
            return (df.select(*columns) if columns else df).toArrow()

    def row_count(self, name: str, version: int | None = None) -> int:
        """Rows of ``name`` (at ``version``, default the latest), summed from the record
        counts the Delta log keeps per data file: read by delta-rs, no Spark job. Spark
        counts when a file has no statistics or delta-rs cannot open the table."""
        try:
            from deltalake import DeltaTable as RsTable

            actions = pa.table(RsTable(self.path(name), version=version)
                               .get_add_actions(flatten=True))
            counts = actions.column("num_records")
            if counts.null_count == 0:
                return int(pc.sum(counts).as_py() or 0)
        except Exception:  # not reachable or not supported by delta-rs: let Spark count
            pass
        return self.read(name, version).count()

    def replace_where(self, name: str, df: DataFrame, condition: str) -> int:
        """Replace the rows of ``name`` matching ``condition`` (a SQL predicate) by ``df``,
        in one Delta transaction; other rows stay. Creates the table when it is missing."""
        if not self.exists(name):
            return self.write(name, df, mode="overwrite")
        (self.conform(name, df).write.format("delta").mode("overwrite")
         .option("replaceWhere", condition).save(self.path(name)))
        return self.latest_version(name)

    def merge_add(self, name: str, increments: DataFrame, keys: tuple[str, ...],
                  column: str = "n") -> int:
        """Add ``increments.<column>`` into ``name`` where ``keys`` match, insert the other
        rows: one Delta MERGE. Returns the new version."""
        target = DeltaTable.forPath(self.spark, self.path(name))
        condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        (target.alias("t").merge(self.conform(name, increments).alias("s"), condition)
         .whenMatchedUpdate(set={column: f"t.{column} + s.{column}"})
         .whenNotMatchedInsertAll()
         .execute())
        return self.latest_version(name)

    def appended_files(self, name: str, after: int, upto: int) -> Appended:
        """The data files commits ``after+1 .. upto`` of ``name`` added, when every one of
        them is a plain append (in the Delta history: a WRITE in Append mode) or a
        maintenance commit (``maintain``'s compactions and retention settings: same rows).

        Otherwise ``reason`` says why and the file list is empty: a commit that is not a
        plain append, history that can no longer be read (log cleanup), or appended files
        since compacted and vacuumed. An append's files are the difference of its version's
        file list and the previous one's; ``rows`` sums the appends' ``numOutputRows``.
        """
        try:
            history = {int(r["version"]): r for r in
                       DeltaTable.forPath(self.spark, self.path(name)).history()
                       .where(f"version > {int(after)} AND version <= {int(upto)}")
                       .select("version", "operation", "operationParameters",
                               "operationMetrics").collect()}
            rows = 0
            files: list[str] = []
            for version in range(after + 1, upto + 1):
                commit = history.get(version)
                if commit is None:
                    return Appended(reason=f"the history of {name} v{version} is gone "
                                           "(log cleanup)")
                operation = commit["operation"]
                params = commit["operationParameters"] or {}
                if is_maintenance_commit(operation, params):
                    continue
                mode = params.get("mode", "?")
                if operation != "WRITE" or mode != "Append":
                    return Appended(reason=f"{name} v{version} is a {operation} ({mode}), "
                                           "not a plain append")
                rows += int((commit["operationMetrics"] or {}).get("numOutputRows", 0))
                before = set(self.read(name, version - 1).inputFiles())
                files += [f for f in self.read(name, version).inputFiles() if f not in before]
        except Exception as exc:  # py4j: the log between the versions cannot be read
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            return Appended(reason=f"the history of {name} v{after}..v{upto} cannot be read "
                                   f"({type(exc).__name__}: {first})")
        if not all(fs.exists(self.spark, f) for f in files):
            return Appended(reason="appended files were compacted and vacuumed since")
        return Appended(files=sorted(map(_local_path, files)), rows=rows)

    def read_files(self, name: str, files: list[str]) -> DataFrame:
        """The rows of some of ``name``'s data files (e.g. :meth:`appended_files`), read
        with the table's schema."""
        return self.spark.read.schema(SCHEMAS[name]).parquet(*files)

    def latest_version(self, name: str) -> int:
        """Latest committed version of ``name``, which must exist."""
        version = self.version(name)
        assert version is not None
        return version
