"""A Delta table's commit log, read directly: which commits changed rows, and when files went.

``maintain`` compacts tables (OPTIMIZE), which commits new versions that hold the same
rows in fewer files (every ``add``/``remove`` has ``dataChange = false``). Stages compare
table versions with the ones their last run recorded, and incremental pairs reads
``ratings`` as of such a version; both use :func:`same_data` /
:func:`data_equivalent_version` so that a compaction alone never counts as a change.
``maintain`` also uses :func:`commit_timestamp` to turn "version v must stay readable"
into a retention: Delta (4.x) refuses time travel to a version committed longer ago than
the table's ``delta.deletedFileRetentionDuration``, and VACUUM deletes a removed file once
its tombstone is older than that same property.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pyspark.sql import SparkSession

from moviegraph.fs import read_text

# Operations that rewrite files without changing rows (OPTIMIZE, Z-order included) or
# commit no files at all (VACUUM's audit entries).
MAINTENANCE_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})
# Table properties maintain may set: retention only, never the rows or their layout.
RETENTION_PROPERTIES = frozenset({"delta.deletedFileRetentionDuration",
                                  "delta.logRetentionDuration"})
_FILE_ACTIONS = ("add", "remove")


# Delta's defaults for the retention properties, in hours.
DEFAULT_DELETED_FILE_RETENTION_HOURS = 168.0
DEFAULT_LOG_RETENTION_HOURS = 720.0
_UNITS = {"week": 168.0, "day": 24.0, "hour": 1.0, "minute": 1 / 60, "second": 1 / 3600,
          "millisecond": 1 / 3.6e6, "microsecond": 1 / 3.6e9}


class LogGapError(RuntimeError):
    """A commit's JSON entry is gone from ``_delta_log`` (log cleanup)."""


def commit_path(table_path: str, version: int) -> str:
    """Path of commit ``version``'s JSON entry."""
    return f"{table_path}/_delta_log/{version:020d}.json"


def commit_actions(spark: SparkSession, table_path: str, version: int) -> list[dict[str, Any]]:
    """The actions of commit ``version`` (one dict per JSON line); LogGapError when gone."""
    text = read_text(spark, commit_path(table_path, version))
    if text is None:
        raise LogGapError(f"{table_path}: the log entry of version {version} is gone")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def is_maintenance(actions: list[dict[str, Any]]) -> bool:
    """True when the commit left the rows as they were: a maintenance operation whose file
    actions all say ``dataChange = false`` (no metadata, protocol or other action), or a
    ``SET TBLPROPERTIES`` of retention properties only."""
    kinds = {kind for action in actions for kind in action}
    info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
    operation = info.get("operation")
    if operation == "SET TBLPROPERTIES":
        try:
            changed = json.loads(info.get("operationParameters", {}).get("properties", "?"))
        except ValueError:
            return False
        return kinds <= {"commitInfo", "metaData"} and set(changed) <= RETENTION_PROPERTIES
    if kinds - {"commitInfo", *_FILE_ACTIONS} or operation not in MAINTENANCE_OPERATIONS:
        return False
    return all(not action[kind].get("dataChange", True)
               for action in actions for kind in _FILE_ACTIONS if kind in action)


def commit_timestamp(spark: SparkSession, table_path: str, version: int) -> float:
    """When commit ``version`` was made (seconds), as Delta's time travel sees it: the
    in-commit timestamp when the table records one, else the log entry's file time."""
    for action in commit_actions(spark, table_path, version):
        ict = action.get("commitInfo", {}).get("inCommitTimestamp")
        if ict is not None:
            return int(ict) / 1000.0
    return file_mtime(spark, commit_path(table_path, version))


def file_mtime(spark: SparkSession, path: str) -> float:
    """Modification time (seconds) of a file through the Hadoop FS."""
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs.getFileStatus(hpath).getModificationTime() / 1000.0


def same_data(spark: SparkSession, table_path: str, older: int, newer: int) -> bool:
    """True when versions ``older`` and ``newer`` hold the same rows because every commit
    in between is maintenance (False too when a log entry in between is gone)."""
    if older == newer:
        return True
    if older > newer or older < 0:
        return False
    try:
        return all(is_maintenance(commit_actions(spark, table_path, v))
                   for v in range(older + 1, newer + 1))
    except LogGapError:
        return False


def data_equivalent_version(spark: SparkSession, table_path: str, version: int,
                            current: int) -> int:
    """The newest version <= ``current`` holding the same rows as ``version``: follows the
    maintenance commits right after it (reading it reads the compacted files)."""
    v = version
    while v < current:
        try:
            if not is_maintenance(commit_actions(spark, table_path, v + 1)):
                break
        except LogGapError:
            break
        v += 1
    return v


def versions_equivalent(spark: SparkSession, table_paths: dict[str, str],
                        recorded: dict[str, int], current: dict[str, int]) -> bool:
    """True when ``current`` (name -> version) reads what ``recorded`` read: same names,
    and each version equal or differing only by maintenance commits. Names without a
    table path (e.g. ``raw_files``, a fingerprint) must be equal."""
    if set(recorded) != set(current):
        return False
    for name, version in recorded.items():
        now = current[name]
        if version == now:
            continue
        path = table_paths.get(name)
        if path is None or not same_data(spark, path, int(version), int(now)):
            return False
    return True


def interval_hours(text: str) -> float:
    """Hours in a Delta interval such as ``interval 1 week`` or ``7 days``."""
    total = 0.0
    matches = re.findall(r"(-?\d+(?:\.\d+)?)\s*([a-z]+?)s?\b", text.lower())
    if not matches or any(unit not in _UNITS for _, unit in matches):
        raise ValueError(f"cannot read the Delta interval {text!r}")
    for number, unit in matches:
        total += float(number) * _UNITS[unit]
    return total


def retention_hours(properties: dict[str, str]) -> tuple[float, float]:
    """``(deleted-file retention, log retention)`` in hours from a table's properties."""
    files = properties.get("delta.deletedFileRetentionDuration")
    log = properties.get("delta.logRetentionDuration")
    return (DEFAULT_DELETED_FILE_RETENTION_HOURS if files is None else interval_hours(files),
            DEFAULT_LOG_RETENTION_HOURS if log is None else interval_hours(log))


def table_properties(spark: SparkSession, table_path: str) -> dict[str, str]:
    """The table's properties (DESCRIBE DETAIL)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, table_path).detail().select("properties").first()
    return dict(row["properties"] or {})


def within_time_travel_window(spark: SparkSession, table_path: str, version: int,
                              margin_seconds: float = 1800.0) -> bool:
    """True when Delta will still let ``version`` be read a while from now (the margin,
    at most a tenth of the window): it refuses versions committed longer ago than the
    table's ``delta.deletedFileRetentionDuration``."""
    window = retention_hours(table_properties(spark, table_path))[0] * 3600.0
    try:
        age = time.time() - commit_timestamp(spark, table_path, version)
    except LogGapError:
        return False
    return age + min(margin_seconds, window / 10) <= window
