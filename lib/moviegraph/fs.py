"""Files through Hadoop's FileSystem, so local paths and cluster URIs work alike."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession


def _fs_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """(Hadoop FileSystem, Hadoop Path) of ``path`` (py4j objects)."""
    jvm: Any = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    jsc: Any = spark.sparkContext._jsc
    return hpath.getFileSystem(jsc.hadoopConfiguration()), hpath


def exists(spark: SparkSession, path: str) -> bool:
    """True when ``path`` exists (file or directory)."""
    fs, hpath = _fs_path(spark, path)
    return bool(fs.exists(hpath))


def is_file(spark: SparkSession, path: str) -> bool:
    """True when ``path`` is an existing file (not a directory)."""
    fs, hpath = _fs_path(spark, path)
    return bool(fs.exists(hpath) and fs.getFileStatus(hpath).isFile())


def list_files(spark: SparkSession, path: str) -> list[tuple[str, int, int]]:
    """``(name, bytes, modification time)`` of the files in folder ``path`` (of ``path``
    itself when it is a file); empty when nothing is there."""
    fs, hpath = _fs_path(spark, path)
    if not fs.exists(hpath):
        return []
    return [(s.getPath().getName(), int(s.getLen()), int(s.getModificationTime()))
            for s in fs.listStatus(hpath) if s.isFile()]


def is_dir(spark: SparkSession, path: str) -> bool:
    """True when ``path`` is a directory (False when it is a file or missing)."""
    fs, hpath = _fs_path(spark, path)
    return bool(fs.exists(hpath) and fs.getFileStatus(hpath).isDirectory())


def size(spark: SparkSession, path: str) -> int:
    """Length of the file at ``path`` in bytes."""
    fs, hpath = _fs_path(spark, path)
    return int(fs.getFileStatus(hpath).getLen())


def read_head(spark: SparkSession, path: str, n: int) -> bytes:
    """The first ``n`` bytes of the file at ``path`` (fewer when it is shorter)."""
    fs, hpath = _fs_path(spark, path)
    stream = fs.open(hpath)
    try:
        out = bytearray()
        for _ in range(n):  # n is tiny (a byte order mark): one py4j call per byte is fine
            b = stream.read()
            if b < 0:
                break
            out.append(b)
        return bytes(out)
    finally:
        stream.close()


def read_bytes(spark: SparkSession, path: str) -> bytes:
    """Whole content of a small file (catalogues), read through Spark's binaryFile source."""
    row = spark.read.format("binaryFile").load(path).select("content").first()
    return bytes(row["content"]) if row is not None else b""


def qualify(path: str) -> str:
    """A local path as a file: URI, other URIs unchanged (matches input_file_name())."""
    if "://" in path or path.startswith("file:"):
        return path
    return Path(path).resolve().as_uri()


# ---------------------------------------------------------------- outputs at URIs
#
# Reports, exports, checkpoints and fetched data are files, not tables; on a cluster they
# must outlive the driver's container, so they go to URIs (hdfs://, s3a://, abfss://,
# gs://, file://) through the Hadoop FileSystem of the session: the one the cluster is
# configured for, credentials included. Writers fill a local staging folder; publishing
# uploads it next to the target and renames it into place, so readers see the old
# output or the new one, not half of one.


def has_scheme(path: str) -> bool:
    """True for ``scheme:...`` URIs (``file:/x``, ``hdfs://nn/x``), False for plain paths."""
    head, sep, _ = path.partition(":")
    return bool(sep) and len(head) > 1 and head.replace("+", "").replace("-", "").isalnum()


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for URIs and paths alike."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def resolve(path: str, base: str) -> str:
    """``path`` as is when it is a URI or absolute, else under ``base`` (a URI or path)."""
    if has_scheme(path) or path.startswith("/"):
        return path
    return join(base, path)


def parent(uri: str) -> str:
    """The folder holding ``uri`` (``hdfs://nn/a/b`` -> ``hdfs://nn/a``)."""
    trimmed = uri.rstrip("/")
    head, sep, _ = trimmed.rpartition("/")
    if not sep or head.endswith(":/") or head.endswith("://") or not head:
        raise ValueError(f"{uri!r} has no parent folder")
    return head


class Storage:
    """Files under URIs through the session's Hadoop FileSystem."""

    def __init__(self, spark: SparkSession) -> None:
        self._spark = spark
        self._jvm: Any = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self._conf), path

    def qualify(self, uri: str) -> str:
        """``uri`` fully qualified by its file system (scheme, authority, absolute path);
        a plain relative path is taken against the file system's working directory."""
        fs, path = self._path(uri)
        return str(fs.makeQualified(path).toString())

    def exists(self, uri: str) -> bool:
        """True when ``uri`` exists (file or folder)."""
        fs, path = self._path(uri)
        return bool(fs.exists(path))

    def is_local(self, uri: str) -> bool:
        """True when ``uri`` lives on the driver's local file system."""
        fs, _ = self._path(uri)
        return str(fs.getScheme()) == "file"

    def local_path(self, uri: str) -> str:
        """The local file system path of a ``file:`` URI (or plain local path)."""
        _, path = self._path(uri)
        return str(path.toUri().getPath())

    def mkdirs(self, uri: str) -> None:
        """Create the folder ``uri`` and its parents."""
        fs, path = self._path(uri)
        fs.mkdirs(path)

    def delete(self, uri: str) -> None:
        """Remove ``uri`` (recursively) if it exists."""
        fs, path = self._path(uri)
        if fs.exists(path):
            fs.delete(path, True)

    def list_names(self, uri: str) -> list[str]:
        """Names of the entries of folder ``uri`` (empty when it does not exist)."""
        fs, path = self._path(uri)
        if not fs.exists(path):
            return []
        return sorted(str(s.getPath().getName()) for s in fs.listStatus(path))

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of a (small) file."""
        fs, path = self._path(uri)
        stream = fs.open(path)
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    def download(self, uri: str, local: str | Path) -> None:
        """Copy file or folder ``uri`` to the local path ``local``."""
        fs, path = self._path(uri)
        fs.copyToLocalFile(False, path, self._jvm.org.apache.hadoop.fs.Path(
            Path(local).resolve().as_uri()), True)

    def upload(self, local: str | Path, uri: str) -> None:
        """Copy local file or folder ``local`` to ``uri`` (replacing a file there)."""
        fs, path = self._path(uri)
        fs.mkdirs(path.getParent())
        fs.copyFromLocalFile(False, True, self._jvm.org.apache.hadoop.fs.Path(
            Path(local).resolve().as_uri()), path)

    def publish(self, local: str | Path, uri: str) -> None:
        """Put local file or folder ``local`` at ``uri``, replacing what is there.

        It is uploaded beside the target first, then renamed into place, so a reader sees
        the previous output or the new one, and a failed upload changes nothing.
        """
        fs, target = self._path(uri)
        fs.mkdirs(target.getParent())
        tag = uuid.uuid4().hex[:8]
        staged = self._jvm.org.apache.hadoop.fs.Path(target.getParent(),
                                                     f".{target.getName()}.tmp-{tag}")
        fs.copyFromLocalFile(False, True, self._jvm.org.apache.hadoop.fs.Path(
            Path(local).resolve().as_uri()), staged)
        old = None
        if fs.exists(target):
            old = self._jvm.org.apache.hadoop.fs.Path(target.getParent(),
                                                      f".{target.getName()}.old-{tag}")
            if not fs.rename(target, old):
                fs.delete(staged, True)
                raise OSError(f"could not move the previous {uri} aside")
        if not fs.rename(staged, target):
            if old is not None:
                fs.rename(old, target)
            fs.delete(staged, True)
            raise OSError(f"could not rename the new output into {uri}")
        if old is not None:
            fs.delete(old, True)

    def write_text(self, uri: str, text: str) -> None:
        """Publish ``text`` as the file ``uri`` (UTF-8)."""
        with tempfile.TemporaryDirectory(prefix="moviegraph-") as tmp:
            local = Path(tmp) / "out"
            local.write_text(text, encoding="utf-8")
            self.publish(local, uri)
