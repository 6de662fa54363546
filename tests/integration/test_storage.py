"""Outputs at URIs through the session's Hadoop FileSystem (file:// here; HDFS alike)."""

from __future__ import annotations

import pytest

from moviegraph import fs


def test_resolve_and_parent():
    assert fs.resolve("reports", "hdfs://nn/mg") == "hdfs://nn/mg/reports"
    assert fs.resolve("s3a://b/r", "hdfs://nn/mg") == "s3a://b/r"
    assert fs.resolve("/abs/r", "file:/x") == "/abs/r"
    assert fs.parent("hdfs://nn/mg/warehouse") == "hdfs://nn/mg"
    assert fs.parent("file:/tmp/x/warehouse/") == "file:/tmp/x"
    assert fs.has_scheme("abfss://c@a.dfs.core.windows.net/p")
    assert not fs.has_scheme("relative/path") and not fs.has_scheme("/abs")
    with pytest.raises(ValueError):
        fs.parent("hdfs://nn/")


def test_publish_replaces_a_folder_whole(spark, tmp_path):
    storage = fs.Storage(spark)
    target = (tmp_path / "out" / "model").as_uri()
    first = tmp_path / "first"
    first.mkdir()
    (first / "a.tsv").write_text("1\n")
    (first / "stale.tsv").write_text("old\n")
    storage.publish(first, target)
    assert storage.list_names(target) == ["a.tsv", "stale.tsv"]
    second = tmp_path / "second"
    second.mkdir()
    (second / "a.tsv").write_text("2\n")
    storage.publish(second, target)
    assert storage.list_names(target) == ["a.tsv"]  # nothing of the old folder is left
    assert storage.read_bytes(f"{target}/a.tsv") == b"2\n"
    assert storage.list_names((tmp_path / "out").as_uri()) == ["model"]  # no temporaries


def test_text_roundtrip_download_and_qualify(spark, tmp_path):
    storage = fs.Storage(spark)
    uri = (tmp_path / "r" / "latest.html").as_uri()
    storage.write_text(uri, "<p>é</p>")
    storage.write_text(uri, "<p>ü</p>")
    assert storage.read_bytes(uri).decode() == "<p>ü</p>"
    local = tmp_path / "copy.html"
    storage.download(uri, local)
    assert local.read_text() == "<p>ü</p>"
    assert storage.is_local(uri)
    assert storage.qualify(str(tmp_path)).startswith("file:/")
    storage.delete((tmp_path / "r").as_uri())
    assert not storage.exists(uri)
