"""File checks through Hadoop's FileSystem, so local paths and cluster URIs work alike."""

from __future__ import annotations

from pyspark.sql import SparkSession


def _fs_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` exists (file or directory)."""
    fs, hpath = _fs_path(spark, path)
    return bool(fs.exists(hpath))


def size(spark: SparkSession, path: str) -> int:
    """Length of the file at ``path`` in bytes."""
    fs, hpath = _fs_path(spark, path)
    return int(fs.getFileStatus(hpath).getLen())


def read_bytes(spark: SparkSession, path: str) -> bytes:
    """Whole content of a small file (catalogues), read through Spark's binaryFile source."""
    row = spark.read.format("binaryFile").load(path).select("content").first()
    return bytes(row["content"]) if row is not None else b""


def qualify(path: str) -> str:
    """A local path as a file: URI, other URIs unchanged (matches input_file_name())."""
    if "://" in path or path.startswith("file:"):
        return path
    from pathlib import Path

    return Path(path).resolve().as_uri()
