"""A Delta table's history (Delta's API): which commits changed rows, and when files went.

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
from pyspark.sql import functions as F

# Operations that rewrite files without changing rows (OPTIMIZE, Z-order included: every
# add/remove has dataChange = false) or commit no files at all (VACUUM's audit entries).
MAINTENANCE_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END"})
# Table properties maintain may set: retention only, never the rows or their layout.
RETENTION_PROPERTIES = frozenset({"delta.deletedFileRetentionDuration",
                                  "delta.logRetentionDuration"})


# Delta's defaults for the retention properties, in hours.
DEFAULT_DELETED_FILE_RETENTION_HOURS = 168.0
DEFAULT_LOG_RETENTION_HOURS = 720.0
_UNITS = {"week": 168.0, "day": 24.0, "hour": 1.0, "minute": 1 / 60, "second": 1 / 3600,
          "millisecond": 1 / 3.6e6, "microsecond": 1 / 3.6e9}


class LogGapError(RuntimeError):
    """A commit is no longer in the table's history (log cleanup)."""


def _history(spark: SparkSession, table_path: str, first: int, last: int) -> dict[int, Any]:
    """Delta's history rows (``DeltaTable.history``) of versions ``first..last``."""
    from delta.tables import DeltaTable

    rows = (DeltaTable.forPath(spark, table_path).history()
            .where(f"version >= {int(first)} AND version <= {int(last)}")
            .select("version", F.col("timestamp").cast("double").alias("epoch"), "operation",
                    "operationParameters").collect())
    return {int(r["version"]): r for r in rows}


def _commit(history: dict[int, Any], table_path: str, version: int) -> Any:
    try:
        return history[version]
    except KeyError:
        raise LogGapError(f"{table_path}: version {version} is gone from the history "
                          "(log cleanup)") from None


def is_maintenance_commit(operation: str | None, parameters: dict[str, str] | None) -> bool:
    """True when a commit (its history's operation and parameters) left the rows as they
    were: a compaction (OPTIMIZE, Z-order included: it only rewrites files), VACUUM's audit
    entries, or a ``SET TBLPROPERTIES`` of retention properties only."""
    if operation in MAINTENANCE_OPERATIONS:
        return True
    if operation == "SET TBLPROPERTIES":
        try:
            changed = json.loads((parameters or {}).get("properties", "?"))
        except ValueError:
            return False
        return bool(changed) and set(changed) <= RETENTION_PROPERTIES
    return False


def commit_timestamp(spark: SparkSession, table_path: str, version: int) -> float:
    """When commit ``version`` was made (seconds), as Delta's time travel sees it (the
    history's timestamp: the in-commit timestamp when the table records one)."""
    row = _commit(_history(spark, table_path, version, version), table_path, version)
    return float(row["epoch"])


def _maintenance_run(spark: SparkSession, table_path: str, first: int, last: int) -> int:
    """The last version v in ``first-1..last`` such that every commit ``first..v`` is
    maintenance (``first - 1`` when commit ``first`` is not, or is gone)."""
    history = _history(spark, table_path, first, last)
    v = first - 1
    for version in range(first, last + 1):
        row = history.get(version)
        if row is None or not is_maintenance_commit(row["operation"],
                                                    row["operationParameters"]):
            break
        v = version
    return v


def same_data(spark: SparkSession, table_path: str, older: int, newer: int) -> bool:
    """True when versions ``older`` and ``newer`` hold the same rows because every commit
    in between is maintenance (False too when a commit in between is gone)."""
    if older == newer:
        return True
    if older > newer or older < 0:
        return False
    return _maintenance_run(spark, table_path, older + 1, newer) == newer


def data_equivalent_version(spark: SparkSession, table_path: str, version: int,
                            current: int) -> int:
    """The newest version <= ``current`` holding the same rows as ``version``: follows the
    maintenance commits right after it (reading it reads the compacted files)."""
    if version >= current:
        return version
    return _maintenance_run(spark, table_path, version + 1, current)


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
    return dict(row["properties"] or {}) if row is not None else {}


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
