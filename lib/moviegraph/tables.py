"""Table names, schemas and Delta reads/writes under one warehouse root.

Every write is one Delta transaction: a job that dies mid-write leaves the table at its
previous version, readable. Tables are written without deletion vectors or column
mapping so that delta-rs (the trainer's fast reader) can read them too.
"""

from __future__ import annotations

from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from moviegraph.config import PROJECT_ROOT

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


def resolve_root(root: str) -> str:
    """A warehouse root as Spark should see it: relative local paths become absolute."""
    if "://" in root or root.startswith("/"):
        return root.rstrip("/")
    return str((PROJECT_ROOT / root).resolve()) if not Path(root).is_absolute() else root


class Warehouse:
    """Delta tables under one root directory (local path or Hadoop URI)."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = resolve_root(root)

    def path(self, name: str) -> str:
        """Storage path of table ``name``."""
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        """True when ``name`` is a Delta table with at least one commit."""
        return DeltaTable.isDeltaTable(self.spark, self.path(name))

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
        """Latest committed version of ``name``, None when the table does not exist."""
        if not self.exists(name):
            return None
        row = DeltaTable.forPath(self.spark, self.path(name)).history(1).select("version").first()
        return int(row["version"])

    def conform(self, name: str, df: DataFrame) -> DataFrame:
        """Select and cast ``df``'s columns to the documented schema of ``name``."""
        schema = SCHEMAS.get(name)
        if schema is None:
            return df
        missing = [f.name for f in schema.fields if f.name not in df.columns]
        if missing:
            raise TableError(f"cannot write {name!r}: columns missing: {', '.join(missing)}")
        current = {f.name: f.dataType for f in df.schema.fields}

        def column(f: T.StructField):
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
        version = self.version(name)
        assert version is not None
        return version
