"""The driver JVM's class-data sharing options (moviegraph/cds.py, session.py)."""

from __future__ import annotations

import pytest

from moviegraph import cds, session


@pytest.fixture
def archive_dir(tmp_path, monkeypatch):
    """An empty archive folder in place of .jars/cds, and no dump request."""
    monkeypatch.setattr(cds, "ARCHIVE_DIR", tmp_path)
    monkeypatch.delenv(cds.DUMP_ENV, raising=False)
    return tmp_path


def test_no_archive_no_option(archive_dir):
    path = cds.archive_path()
    assert path is not None and path.parent == archive_dir and not path.exists()
    assert cds.java_options() == ""
    assert "SharedArchiveFile" not in session.driver_java_options()


def test_an_archive_for_this_jdk_and_spark_is_used_quietly(archive_dir):
    path = cds.archive_path()
    path.write_bytes(b"")
    opts = cds.java_options().split()
    assert f"-XX:SharedArchiveFile={path}" in opts
    # A stale or foreign archive must never stop or clutter a job: fall back, say nothing.
    assert "-Xshare:auto" in opts and "-Xlog:cds=off" in opts
    assert session.driver_java_options().split()[0].startswith("-Dlog4j2.configurationFile=")
    assert f"-XX:SharedArchiveFile={path}" in session.driver_java_options()


def test_the_name_follows_the_jdk_and_spark(archive_dir, monkeypatch):
    import pyspark

    first = cds.archive_path()
    monkeypatch.setattr(pyspark, "__version__", "0.0.0-other")
    assert cds.archive_path() != first


def test_the_build_workload_dumps_instead(archive_dir, monkeypatch):
    monkeypatch.setenv(cds.DUMP_ENV, "/tmp/x.jsa")
    assert cds.java_options().startswith("-XX:ArchiveClassesAtExit=/tmp/x.jsa ")


def test_options_given_by_spark_submit_keep_their_own_sharing_setting(archive_dir):
    cds.archive_path().write_bytes(b"")
    merged = session.merged_java_options("-Xss4m")
    assert merged.startswith("-Xss4m -Dlog4j2.configurationFile=")
    assert "SharedArchiveFile" in merged
    # Options that set sharing themselves get no archive of ours beside them.
    for own in ("-Xshare:off", "-XX:SharedArchiveFile=/x.jsa"):
        merged = session.merged_java_options(own)
        assert merged.startswith(f"{own} -Dlog4j2.configurationFile=")
        assert str(cds.archive_path()) not in merged
