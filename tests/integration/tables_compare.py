"""Helpers of the platform tests: run the pipeline in a subprocess, compare warehouses.

Tables are read with delta-rs (not the suite's SparkSession), so a warehouse written by
another process is checked exactly as it sits on disk.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa

# The tables a pipeline run up to the walks stage writes.
PIPELINE_TABLES = ("ratings", "movies", "item_counts", "pair_counts", "edges", "vertices",
                   "walks", "vocab")


# Settings of every platform test's pipeline (seconds per stage): the stages up to walks...
STAGE_SETTINGS = ("ingest.dataset=path", "spark.shuffle_partitions=2", "spark.progress=false",
                  "pairs.min_rating=3.5", "edges.min_weight=0",
                  "walks.num_walks=2", "walks.walk_length=10")
# ...and the rest of the pipeline. One training thread: skip-gram's threads race
# (Hogwild), which would make two runs' vectors differ by more than float noise.
FULL_SETTINGS = (*STAGE_SETTINGS,
                 "train.models=node2vec,mf", "train.threads=1",
                 "train.node2vec.dim=16", "train.node2vec.epochs=2",
                 "train.mf.method=adam", "train.mf.adam.dim=8", "train.mf.adam.epochs=3",
                 "evaluate.baselines=mostpop,itemknn",
                 "evaluate.tsne_max_movies=200", "evaluate.tsne_max_iter=300")


def sets(*pairs: str) -> list[str]:
    """``--set`` options for ``pairs`` (``key=value`` each)."""
    return [arg for pair in pairs for arg in ("--set", pair)]


def pipeline_cmd(root: Path, data: Path, *extra: str, master: str = "local[2]") -> list[str]:
    """``python -m moviegraph pipeline --until walks`` on :data:`STAGE_SETTINGS`."""
    return [sys.executable, "-m", "moviegraph", "pipeline", "--until", "walks", "--quiet",
            *sets(*STAGE_SETTINGS, f"warehouse.root={root}", f"ingest.path={data}",
                  f"spark.master={master}", "spark.driver_memory=1g"), *extra]


def full_pipeline_cmd(root: Path, data: Path) -> list[str]:
    """``python -m moviegraph pipeline`` (every stage) on :data:`FULL_SETTINGS`, ``local[2]``."""
    return [sys.executable, "-m", "moviegraph", "pipeline", "--quiet",
            *sets(*FULL_SETTINGS, f"warehouse.root={root}", f"ingest.path={data}",
                  "spark.master=local[2]", "spark.driver_memory=2g")]


def delta_table(root: Path | str, name: str, version: int | None = None) -> pa.Table:
    """Table ``name`` under ``root`` (optionally at ``version``), rows in a canonical order."""
    from deltalake import DeltaTable

    table = DeltaTable(str(Path(root) / name), version=version).to_pyarrow_table()
    keys = [c for c in table.column_names if not pa.types.is_nested(table.schema.field(c).type)]
    return table.sort_by([(k, "ascending") for k in keys])


def assert_same_table(left: pa.Table, right: pa.Table, what: str) -> None:
    """Row-for-row equality, with a readable first difference when they differ."""
    assert left.schema.names == right.schema.names, f"{what}: columns differ"
    assert left.num_rows == right.num_rows, (
        f"{what}: {left.num_rows:,} rows vs {right.num_rows:,}")
    if left.equals(right):
        return
    for i, (a, b) in enumerate(zip(left.to_pylist(), right.to_pylist(), strict=True)):
        assert a == b, f"{what}: first difference at sorted row {i}: {a} != {b}"
    raise AssertionError(f"{what}: tables differ (types?)")


def assert_same_tables(actual: Path | str, expected: Path | str,
                       names: tuple[str, ...] = PIPELINE_TABLES) -> None:
    """Every table of ``names`` equal, row for row, in the two warehouses."""
    for name in names:
        assert_same_table(delta_table(actual, name), delta_table(expected, name), name)


def delta_versions(table_dir: Path) -> list[int]:
    """The commit versions present in a table's ``_delta_log`` (JSON entries)."""
    return sorted(int(p.stem) for p in (table_dir / "_delta_log").glob("*.json"))


def assert_warehouse_intact(root: Path) -> list[str]:
    """Every Delta table under ``root`` is whole: contiguous commits, readable, files present.

    Checks that each commit entry is complete JSON with its ``commitInfo`` (a half-written
    commit would be a partial version), that versions run 0..N without gaps, that no
    temporary commit file is left in the log, and that the latest snapshot reads and all
    its data files exist. Returns the table names checked.
    """
    from deltalake import DeltaTable

    names = []
    for log in sorted(root.glob("*/_delta_log")):
        table_dir = log.parent
        versions = delta_versions(table_dir)
        assert versions == list(range(len(versions))), f"{table_dir.name}: gaps {versions}"
        for version in versions:
            lines = (log / f"{version:020d}.json").read_text().splitlines()
            actions = [json.loads(line) for line in lines if line.strip()]
            assert any("commitInfo" in a for a in actions), (
                f"{table_dir.name} v{version}: no commitInfo")
        strays = [p.name for p in log.iterdir()
                  if p.is_file() and not p.name.endswith((".json", ".crc", ".checkpoint.parquet"))
                  and p.name != "_last_checkpoint"]
        assert not strays, f"{table_dir.name}: stray files in the Delta log: {strays}"
        table = DeltaTable(str(table_dir))
        assert table.version() == versions[-1]
        for uri in table.file_uris():
            assert Path(uri.removeprefix("file://")).exists(), f"{table_dir.name}: {uri} gone"
        table.to_pyarrow_table()
        names.append(table_dir.name)
    return names


def lease_state(root: Path):
    """The warehouse lease under ``root`` as a :class:`moviegraph.lock.LeaseState`."""
    from moviegraph.lock import LOCK_DIR, LocalStore, read_state

    return read_state(LocalStore(str(Path(root) / LOCK_DIR)), 600.0)


def lease_given_back(root: Path) -> bool:
    """True when the last run under ``root`` released the warehouse lease."""
    state = lease_state(root)
    return state.epoch > 0 and state.released
