"""Delta upkeep (moviegraph.maintain): fewer files, same rows, the right versions kept.

Files are counted from Delta's own file list and from storage, rows are compared row for
row with what the tables held before, and the versions the runs table names are read
back by time travel after VACUUM.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from pathlib import Path

import pytest

from moviegraph.deltalog import table_properties
from moviegraph.maintain import MaintainConfig, run_maintain
from moviegraph.pipeline import is_up_to_date
from moviegraph.runs import record_stage
from moviegraph.tables import Warehouse

WINDOW = "delta.deletedFileRetentionDuration"
RATINGS = "user_id int, movie_id int, rating float, ts long"


def ratings(spark, users: range, files: int = 3):
    rows = [(u, m, float(1 + (u * m) % 5), u * 1000 + m) for u in users for m in range(1, 6)]
    return spark.createDataFrame(rows, RATINGS).repartition(files)


def files_of(spark, wh: Warehouse, table: str, version: int | None = None) -> list[Path]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return [Path(f.removeprefix("file:")) for f in reader.load(wh.path(table)).inputFiles()]


def age_removal(spark, wh: Warehouse, table: str, version: int, hours: float) -> list[Path]:
    """Make commit ``version``'s removals ``hours`` old, as if it had been made then: the
    tombstones' ``deletionTimestamp`` in the log and the removed files' times (VACUUM
    looks at both). Returns the removed files."""
    past = time.time() - hours * 3600
    log = Path(wh.path(table)) / "_delta_log" / f"{version:020d}.json"
    actions, removed = [json.loads(line) for line in log.read_text().splitlines()], []
    for action in actions:
        if "remove" in action:
            action["remove"]["deletionTimestamp"] = int(past * 1000)
            removed.append(Path(wh.path(table)) / urllib.parse.unquote(action["remove"]["path"]))
            os.utime(removed[-1], (past, past))
    log.write_text("".join(json.dumps(a) + "\n" for a in actions))
    (log.parent / f".{log.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the old text
    spark.sparkContext._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    return removed


def rows_of(wh: Warehouse, table: str, version: int | None = None) -> list:
    return sorted(wh.read(table, version).collect())


def record(wh: Warehouse, stage: str, run_id: str, inputs: dict, outputs: dict) -> None:
    with record_stage(wh, stage, "h", run_id) as run:
        run.inputs.update(inputs)
        run.outputs.update(outputs)


def maintain(spark, wh: Warehouse, run_id: str, **settings) -> str:
    with record_stage(wh, "maintain", "m", run_id) as run:
        return run_maintain(spark, wh, MaintainConfig(**settings), run)


def test_maintain_compacts_keeps_referenced_versions_and_vacuums_the_rest(spark, warehouse):
    wh = warehouse
    wh.write("ratings", ratings(spark, range(0, 40)))                     # v0
    wh.write("ratings", ratings(spark, range(100, 140)))                  # v1: overwrite
    pairs = "movie_a int, movie_b int, n long"
    wh.write("pair_counts", spark.createDataFrame([(1, 2, 3), (2, 3, 1)], pairs).repartition(2))
    wh.write("pair_counts", spark.createDataFrame(
        [(1, 2, 4), (2, 3, 1), (3, 4, 2)], pairs).repartition(3))          # v1: overwrite
    sim = [(model, "cosine", m, r, m + r, 1.0 / r) for model in ("mf", "node2vec")
           for m in range(1, 30) for r in (1, 2)]
    wh.write("similar_movies", spark.createDataFrame(
        sim, "model string, metric string, movie_id int, rank int, neighbor_id int, "
        "score float").repartition(6))
    # The last pairs run read ratings v1; later appends v2, v3; similar read v3.
    record(wh, "pairs", "p1", {"ratings": 1}, {"pair_counts": 1})
    wh.write("ratings", ratings(spark, range(200, 230)), mode="append")   # v2
    wh.write("ratings", ratings(spark, range(300, 330)), mode="append")   # v3
    record(wh, "similar", "s1", {"ratings": 3}, {"similar_movies": 0})

    tables = ("ratings", "pair_counts", "similar_movies", "runs")
    before = {t: rows_of(wh, t) for t in tables}
    ratings_v1 = rows_of(wh, "ratings", 1)
    assert {t: len(files_of(spark, wh, t)) for t in tables} == {
        "ratings": 9, "pair_counts": 3, "similar_movies": 6, "runs": 2}
    kept_files = [f for v in (1, 2, 3) for f in files_of(spark, wh, "ratings", v)]
    old_pairs = files_of(spark, wh, "pair_counts", 0) + files_of(spark, wh, "pair_counts", 1)
    # ratings v1 removed v0's files three hours ago. The compaction will remove v1's files
    # now: with a one-hour window for v1, VACUUM must keep those (pairs reads v1), not v0's.
    v0_files = age_removal(spark, wh, "ratings", 1, hours=3)
    assert sorted(v0_files) == sorted(files_of(spark, wh, "ratings", 0))

    summary = maintain(spark, wh, "m1", retain_hours=0, clock_slack_seconds=15, min_files=3)

    # runs gained maintain's own record (a third file), and kept every row it had.
    assert {t: len(files_of(spark, wh, t)) for t in tables} == {
        "ratings": 1, "pair_counts": 1, "similar_movies": 1, "runs": 3}
    for t in tables[:-1]:
        assert rows_of(wh, t) == before[t], f"{t} changed"
    assert ({(r.run_id, r.stage) for r in before["runs"]}
            < {(r.run_id, r.stage) for r in rows_of(wh, "runs")})
    assert "ratings: 9 -> 1 files (compaction); vacuum, retention 1 h" in summary
    assert "similar_movies: 6 -> 1 files (zorder(model, movie_id))" in summary
    assert "runs: 2 -> 2 files (skipped: 2 < maintain.min_files files)" in summary
    # The version the pairs run read stays readable, row for row; older files are gone.
    assert "keeps v1 (pairs run p1)" in summary
    assert all(f.is_file() for f in kept_files)
    assert rows_of(wh, "ratings", 1) == ratings_v1
    assert v0_files and not any(f.exists() for f in v0_files)
    with pytest.raises(Exception, match=r"(?i)not (be )?found|does not exist"):
        wh.read("ratings", 0).collect()
    # pair_counts v1 (the pairs run's output) holds the same rows as the compacted v2,
    # which is what a reader of "v1" is now sent to: none of the old files is kept.
    assert not any(f.exists() for f in old_pairs)

    # The window follows the references: v1 needs an hour, the rest only their current
    # version; the retention change is a commit of its own.
    assert table_properties(spark, wh.path("ratings"))[WINDOW] == "interval 1 hours"
    assert table_properties(spark, wh.path("pair_counts"))[WINDOW] == "interval 0 hours"
    # Compaction and retention commits are no change: the similar run is still up to date.
    versions = {t: wh.version(t) for t in tables if t != "runs"}
    assert versions["ratings"] == 5
    assert is_up_to_date(wh, "similar", "h", {"ratings": 5}) == "s1"
    # Run again: nothing changed since, nothing is rewritten.
    again = maintain(spark, wh, "m2", min_files=2, vacuum=False)
    assert again.count("skipped: unchanged since the last maintain run") == 3
    assert {t: wh.version(t) for t in versions} == versions
    # A real change still counts.
    wh.write("ratings", ratings(spark, range(400, 410)), mode="append")
    assert is_up_to_date(wh, "similar", "h", {"ratings": 6}) is None


def test_window_is_raised_for_an_old_referenced_version_and_lowered_after(spark, warehouse):
    wh = warehouse
    wh.write("ratings", ratings(spark, range(0, 10)))                      # v0
    record(wh, "pairs", "p1", {"ratings": 0}, {})
    wh.write("ratings", ratings(spark, range(50, 60)))                     # v1: overwrite
    wanted = files_of(spark, wh, "ratings", 0)
    # v0 needs its age plus 1.5 h of slack: more than the configured hour.
    summary = maintain(spark, wh, "m1", tables=["ratings"], retain_hours=1,
                       clock_slack_seconds=5400)
    assert "vacuum, retention 2 h: 0 files deleted; keeps v0 (pairs run p1)" in summary
    assert table_properties(spark, wh.path("ratings"))[WINDOW] == "interval 2 hours"
    assert all(f.is_file() for f in wanted)
    assert len(rows_of(wh, "ratings", 0)) == 50
    # Pairs runs again on the current version: the window goes back to the hour.
    record(wh, "pairs", "p2", {"ratings": wh.version("ratings")}, {})
    summary = maintain(spark, wh, "m2", tables=["ratings"], retain_hours=1,
                       clock_slack_seconds=5400)
    assert "vacuum, retention 1 h" in summary and "keeps" not in summary
    assert table_properties(spark, wh.path("ratings"))[WINDOW] == "interval 1 hours"


# Incremental pairs after maintain equal a full recount:
# test_incremental.py::test_appended_ratings_update_pair_counts_like_a_full_recount runs
# maintain (compaction + VACUUM) between its second append and that append's pairs run.
