"""Delta round trip, GraphFrames on the classpath, and a write killed with kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from moviegraph.session import graphframes_available
from moviegraph.tables import TableError


def test_delta_round_trip_with_versions_and_time_travel(spark, warehouse):
    movies = spark.createDataFrame(
        [(1, "A (1990)", 1990, ["Drama"]), (2, "B", None, [])],
        "movie_id int, title string, year int, genres array<string>")
    assert warehouse.version("movies") is None
    assert warehouse.write("movies", movies) == 0
    assert warehouse.write("movies", movies.where("movie_id = 1")) == 1
    assert warehouse.read("movies").count() == 1
    old = sorted(tuple(r) for r in warehouse.read("movies", version=0).collect())
    assert old == [(1, "A (1990)", 1990, ["Drama"]), (2, "B", None, [])]
    # Tables stay readable by delta-rs: no deletion vectors, no column mapping.
    props = spark.sql(f"DESCRIBE DETAIL delta.`{warehouse.path('movies')}`").first()
    assert props["properties"].get("delta.enableDeletionVectors", "false") == "false"
    assert "delta.columnMapping.mode" not in props["properties"]


def test_version_and_row_count_agree_with_delta_past_a_checkpoint(spark, warehouse):
    """The log listing's version and the file statistics' row count equal Delta's own
    history and Spark's count, across the 10-commit checkpoint, appends and overwrites."""
    from delta.tables import DeltaTable

    assert warehouse.version("item_counts") is None
    assert not warehouse.exists("item_counts")
    for i in range(12):
        df = spark.range(i * 7 + 1).selectExpr("cast(id as int) as movie_id", "id as n")
        written = warehouse.write("item_counts", df, mode="append" if i % 3 else "overwrite")
        history = DeltaTable.forPath(spark, warehouse.path("item_counts")).history(1)
        assert written == warehouse.version("item_counts") == history.first()["version"] == i
        assert warehouse.row_count("item_counts") == warehouse.read("item_counts").count()
    log = Path(warehouse.path("item_counts")) / "_delta_log"
    assert (log / f"{10:020d}.checkpoint.parquet").is_file()
    assert warehouse.row_count("item_counts", version=4) == \
        warehouse.read("item_counts", version=4).count() == 29 + 22
    (Path(warehouse.path("movies")) / "_delta_log").mkdir(parents=True)  # no commit yet
    assert not warehouse.exists("movies") and warehouse.version("movies") is None


def test_missing_table_and_wrong_columns_are_clear(spark, warehouse):
    with pytest.raises(TableError, match="does not exist"):
        warehouse.read("ratings")
    with pytest.raises(TableError, match="columns missing: ts"):
        warehouse.write("ratings", spark.createDataFrame(
            [(1, 2, 3.0)], "user_id int, movie_id int, rating float"))


def test_graphframe_from_delta_table(spark, warehouse):
    if not graphframes_available(spark):
        pytest.skip("GraphFrames JVM artifact not resolvable on this machine "
                    "(conf/jvm-optional.txt); graph statistics use the built-in path")
    from graphframes import GraphFrame

    edges = spark.createDataFrame([(1, 2, 1.0, 0.5, 3), (2, 3, 2.0, 0.1, 4)],
                                  "src int, dst int, weight double, pmi double, n long")
    warehouse.write("edges", edges)
    e = warehouse.read("edges")
    v = e.selectExpr("src as id").union(e.selectExpr("dst as id")).distinct()
    g = GraphFrame(v, e)
    assert {r.id: r.degree for r in g.degrees.collect()} == {1: 1, 2: 2, 3: 1}


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pyspark.sql import functions as F
    from moviegraph.config import SparkConfig
    from moviegraph.session import build_session
    from moviegraph.tables import Warehouse
    spark = build_session(SparkConfig(master="local[2]", shuffle_partitions=2,
                                      progress=False, driver_memory="1g"), "killed")
    wh = Warehouse(spark, sys.argv[1])
    ratings = spark.range(1000).selectExpr(
        "cast(id as int) as user_id", "cast(id as int) as movie_id",
        "cast(4.0 as float) as rating", "id as ts")
    wh.write("ratings", ratings)
    print("VERSION0", flush=True)
    # 2 ms a row: a 2,000-row task takes ~4 s, so data files appear within seconds
    # while the 50-task write still has most of its tasks (~100 s) to go when killed.
    slow = F.udf(lambda x: (time.sleep(0.002), x)[1], "long")
    big = spark.range(0, 100000, 1, 50).selectExpr(
        "cast(id as int) as user_id", "cast(id as int) as movie_id",
        "cast(1.0 as float) as rating", "id as ts").withColumn("ts", slow("ts"))
    print("WRITING", flush=True)
    wh.write("ratings", big)
    print("DONE", flush=True)
""")


def test_write_killed_mid_way_leaves_last_good_version(spark, tmp_path):
    root = tmp_path / "wh"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "VERSION0"
        assert proc.stdout.readline().strip() == "WRITING"
        table = Path(root) / "ratings"
        deadline = time.time() + 120
        # Kill once the new write has started putting data files down.
        while time.time() < deadline and len(list(table.glob("*.parquet"))) < 3:
            time.sleep(0.2)
        assert len(list(table.glob("*.parquet"))) >= 3, "the slow write never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    from moviegraph.tables import Warehouse

    wh = Warehouse(spark, str(root))
    assert wh.version("ratings") == 0
    df = wh.read("ratings")
    assert df.count() == 1000 and df.where("rating != 4.0").count() == 0
