"""Delta upkeep (the ``maintain`` job's library part): compaction, Z-order, VACUUM.

Nightly runs append to ``ratings``, ``runs`` and ``history`` and rewrite the other tables
with one file per shuffle partition, so small files pile up (400 files of a 60k-row
``vocab`` under ``conf/cluster.toml``), and every rewrite leaves the old files behind.

OPTIMIZE
    A table is compacted when it changed since the last ``maintain`` run and has at
    least ``maintain.min_files`` data files; files of at least half
    ``maintain.target_file_mb`` are left alone, smaller ones are binned into files of up
    to that size. Z-order is used only where a reader filters on the columns
    (:data:`ZORDER`): the serving lookups of ``similar_movies`` (a model's neighbours of
    one movie) and ``recommendations`` (a model's list for one user), and the per-model
    reads of ``embeddings`` / ``user_embeddings``, whose compacted files would otherwise
    mix models. Everything else is read whole by the stages (pairs, edges, walks, train
    scan their inputs), so ordering it buys nothing and plain compaction is used;
    ``pair_counts`` in particular is written range-sorted by ``(movie_a, movie_b)`` by a
    full count, and the incremental MERGE scans it whole. Delta's liquid clustering
    would need the tables created with ``CLUSTER BY`` (a writer table feature) and every
    write to keep it, which the stages' overwrites do not; not used.

    A compaction commits a version holding the same rows; stages and incremental pairs
    treat such versions as unchanged (``moviegraph.deltalog``), so it never causes a rerun.

VACUUM and the time-travel window
    Delta 4 ties both to one table property, ``delta.deletedFileRetentionDuration``: a
    version committed longer ago cannot be read (time travel is refused), VACUUM deletes
    the files removed longer ago, and a ``RETAIN n HOURS`` argument other than 0 is
    ignored. The runs table names versions (incremental pairs reads ``ratings`` as of the
    version its last run read), so they are converted to that property: per table, the
    oldest version named by the latest successful run of any stage (inputs and outputs;
    moved forward over compactions, which keep the rows) must stay readable, which takes
    ``now - its commit time + maintain.clock_slack_seconds``. The property is set to
    ``max(maintain.retain_hours, that)`` in whole hours (a metadata-only commit, made
    only when the value changes; 168 h is Delta's default, so the usual nightly cadence
    changes nothing), then VACUUM runs with it. It is capped at the table's log
    retention (``delta.logRetentionDuration``, 30 days): older log entries are cleaned
    up, so such a version is gone anyway and its stage recounts (incremental pairs checks
    the window before it reads). VACUUM's own audit commits are switched off, so it
    never changes a table's version.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph.config import ConfigError, MaintainConfig
from moviegraph.deltalog import (
    LogGapError,
    commit_timestamp,
    data_equivalent_version,
    retention_hours,
)
from moviegraph.runs import StageRun
from moviegraph.tables import Warehouse, one_row

MAINTAIN_STAGE = "maintain"

#: Z-order columns per table, where some reader filters on them (see the module doc).
ZORDER: dict[str, tuple[str, ...]] = {
    "similar_movies": ("model", "movie_id"),
    "recommendations": ("model", "user_id"),
    "embeddings": ("model",),
    "user_embeddings": ("model",),
}



@dataclass
class TableReport:
    """What maintain did to one table."""

    name: str
    version_before: int
    version_after: int = -1
    files_before: int = 0
    files_after: int = 0
    optimize: str = "skipped"  # "compaction", "zorder(a, b)" or "skipped: why"
    stored_before: int = 0  # data files on storage, referenced or not
    stored_after: int = 0
    vacuum: str = "skipped"
    retain_hours: int | None = None
    protects: list[str] = field(default_factory=list)  # "v3 (pairs run R)"

    def line(self) -> str:
        """One summary line."""
        vac = self.vacuum
        if self.retain_hours is not None:
            vac = (f"{'' if self.vacuum == 'skipped' else self.vacuum}vacuum, retention "
                   f"{self.retain_hours} h: {self.stored_before - self.stored_after} files "
                   "deleted")
        keeps = f"; keeps {', '.join(self.protects)}" if self.protects else ""
        return (f"  {self.name}: {self.files_before} -> {self.files_after} files "
                f"({self.optimize}); {vac}{keeps}")


@contextmanager
def _session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set Spark SQL settings for the block, then put the previous values back."""
    previous: dict[str, str | None] = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def delta_tables(spark: SparkSession, wh: Warehouse) -> list[str]:
    """Names of the Delta tables directly under the warehouse root."""
    jvm: Any = spark.sparkContext._jvm
    jsc: Any = spark.sparkContext._jsc
    root = jvm.org.apache.hadoop.fs.Path(wh.root)
    fs = root.getFileSystem(jsc.hadoopConfiguration())
    if not fs.exists(root):
        return []
    names = [s.getPath().getName() for s in fs.listStatus(root) if s.isDirectory()]
    return sorted(n for n in names if not n.startswith(("_", ".")) and wh.exists(n))


def stored_data_files(spark: SparkSession, table_path: str) -> int:
    """Data files on storage under a table (referenced or not; the log excluded)."""
    jvm: Any = spark.sparkContext._jvm
    jsc: Any = spark.sparkContext._jsc
    path = jvm.org.apache.hadoop.fs.Path(table_path)
    fs = path.getFileSystem(jsc.hadoopConfiguration())
    it = fs.listFiles(path, True)
    count = 0
    while it.hasNext():
        file = it.next().getPath()
        if file.getName().endswith(".parquet") and "/_delta_log/" not in str(file):
            count += 1
    return count


def table_detail(spark: SparkSession, table_path: str) -> tuple[int, dict[str, str]]:
    """``(data files of the current version, table properties)`` from DESCRIBE DETAIL."""
    row = one_row(DeltaTable.forPath(spark, table_path).detail().select("numFiles",
                                                                       "properties"))
    return int(row["numFiles"]), dict(row["properties"] or {})


def latest_runs(wh: Warehouse) -> dict[str, dict[str, Any]]:
    """The latest successful run of every stage: stage -> {run_id, inputs, outputs}."""
    if not wh.exists("runs"):
        return {}
    rows = (wh.read("runs").where(F.col("status") == "succeeded")
            .select("stage", "run_id", "started_at", "inputs", "outputs").collect())
    latest: dict[str, Any] = {}
    for row in rows:
        best = latest.get(row["stage"])
        if best is None or (row["started_at"], row["run_id"]) > (best["started_at"],
                                                                 best["run_id"]):
            latest[row["stage"]] = row
    return {stage: {"run_id": r["run_id"], "inputs": dict(r["inputs"] or {}),
                    "outputs": dict(r["outputs"] or {})} for stage, r in latest.items()}


def referenced_versions(spark: SparkSession, wh: Warehouse, current: dict[str, int],
                        runs: dict[str, dict[str, Any]]) -> dict[str, list[tuple[int, str]]]:
    """Per table (of ``current``: name -> version now), the versions the latest successful
    run of each stage but maintain read or wrote, moved forward over compactions (which
    keep the rows): ``[(version, "stage run R")]``."""
    refs: dict[str, list[tuple[int, str]]] = {t: [] for t in current}
    for stage, run in sorted(runs.items()):
        if stage == MAINTAIN_STAGE:
            continue
        for table, version in [*run["inputs"].items(), *run["outputs"].items()]:
            now = current.get(table)
            if now is None or version is None or version < 0 or version > now:
                continue
            v = data_equivalent_version(spark, wh.path(table), int(version), now)
            refs[table].append((v, f"{stage} run {run['run_id']}"))
    return refs


def needed_retention_hours(spark: SparkSession, table_path: str, current: int,
                           refs: list[tuple[int, str]], now: float,
                           slack_seconds: float) -> tuple[float, str]:
    """Hours of retention that keep every referenced version of the table readable: the
    age of the oldest one's commit plus the slack (time travel is refused, and the files
    it needs are vacuumed, once that commit is older than the retention).

    Returns ``(hours, who)``: 0 when only the current version is referenced; ``math.inf``
    when the oldest one's log entry is gone. ``who`` names that version and its run.
    """
    older = [(v, who) for v, who in refs if v < current]
    if not older:
        return 0.0, ""
    version, who = min(older)
    try:
        committed = commit_timestamp(spark, table_path, version)
    except LogGapError:
        return math.inf, f"v{version} ({who})"
    return (now - committed + slack_seconds) / 3600.0, f"v{version} ({who})"


def _set_retention(spark: SparkSession, path: str, hours: int) -> None:
    """Set the table's deleted-file retention (time-travel window): a metadata commit."""
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES "
              f"('delta.deletedFileRetentionDuration' = 'interval {hours} hours')")


def _optimize(spark: SparkSession, path: str, columns: tuple[str, ...],
              target_bytes: int) -> int:
    """OPTIMIZE (Z-ordered by ``columns`` if any); return files added minus removed."""
    settings = {"spark.databricks.delta.optimize.maxFileSize": str(target_bytes),
                "spark.databricks.delta.optimize.minFileSize": str(max(1, target_bytes // 2))}
    with _session_conf(spark, settings):
        builder = DeltaTable.forPath(spark, path).optimize()
        result = builder.executeZOrderBy(*columns) if columns else builder.executeCompaction()
        metrics = one_row(result.select("metrics.numFilesAdded", "metrics.numFilesRemoved"))
    return int(metrics[0]) - int(metrics[1])


def _vacuum(spark: SparkSession, path: str) -> None:
    """VACUUM with the table's own retention (Delta 4 ignores a RETAIN argument but 0)."""
    parallelism = max(1, spark.sparkContext.defaultParallelism) * 2
    settings = {
        # No VACUUM START / END commits: the table's version stays what the stages recorded.
        "spark.databricks.delta.vacuum.logging.enabled": "false",
        # VACUUM lists the table with this many tasks (Spark's default is 10,000).
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(parallelism),
    }
    with _session_conf(spark, settings):
        DeltaTable.forPath(spark, path).vacuum()


def run_maintain(spark: SparkSession, wh: Warehouse, cfg: MaintainConfig,
                 run: StageRun) -> str:
    """Compact and vacuum the warehouse's tables (see the module doc); return a summary.

    Fills ``run``: ``inputs``/``outputs`` = each table's version before/after (the next
    run compacts only the tables changed since), ``rows`` = ``files:<table>``, the data
    files after, and ``notes["maintain"]`` = what was done to each table and why.
    """
    wanted = list(cfg.tables)
    present = delta_tables(spark, wh)
    unknown = [t for t in wanted if t not in present]
    if unknown:
        raise ConfigError(f"maintain.tables: no Delta table {', '.join(unknown)} under "
                          f"{wh.root} (tables: {', '.join(present) or 'none'})")
    reports = [TableReport(t, version_before=wh.latest_version(t)) for t in wanted or present]
    props: dict[str, dict[str, str]] = {}
    for rep in reports:
        rep.files_before, props[rep.name] = table_detail(spark, wh.path(rep.name))
    runs = latest_runs(wh)
    last_outputs = runs.get(MAINTAIN_STAGE, {}).get("outputs", {})
    for rep in reports:
        columns = ZORDER.get(rep.name, ()) if cfg.zorder else ()
        rep.files_after = rep.files_before
        if not cfg.optimize:
            rep.optimize = "skipped: maintain.optimize = false"
        elif last_outputs.get(rep.name) == rep.version_before:
            rep.optimize = "skipped: unchanged since the last maintain run"
        elif rep.files_before < cfg.min_files:
            rep.optimize = f"skipped: {rep.files_before} < maintain.min_files files"
        else:
            rep.files_after += _optimize(spark, wh.path(rep.name), columns,
                                         cfg.target_file_mb * 1024 * 1024)
            rep.optimize = f"zorder({', '.join(columns)})" if columns else "compaction"
        rep.version_after = wh.latest_version(rep.name)
    # References move forward over the compactions just made.
    refs = referenced_versions(spark, wh, {r.name: r.version_after for r in reports}, runs)
    for rep in reports:
        path = wh.path(rep.name)
        rep.stored_before = rep.stored_after = stored_data_files(spark, path)
        if not cfg.vacuum:
            rep.vacuum = "vacuum skipped: maintain.vacuum = false"
            continue
        needed, who = needed_retention_hours(spark, path, rep.version_after, refs[rep.name],
                                             time.time(), cfg.clock_slack_seconds)
        if who:
            rep.protects.append(who)
        current, log_hours = retention_hours(props[rep.name])
        hours = max(cfg.retain_hours, math.ceil(needed))
        if hours > log_hours:
            # Delta drops log entries older than the log retention: such a version cannot
            # be read whatever VACUUM keeps (its run's stage recounts or rewrites instead).
            rep.vacuum = f"{who} is older than the log retention ({log_hours:g} h); "
            hours = math.floor(log_hours)
        if hours != current:
            _set_retention(spark, path, hours)
        rep.retain_hours = hours
        _vacuum(spark, path)
        rep.stored_after = stored_data_files(spark, path)
        # A retention change commits a version (same rows): the one maintain leaves.
        rep.version_after = wh.latest_version(rep.name)
    for rep in reports:
        run.inputs[rep.name] = rep.version_before
        run.outputs[rep.name] = rep.version_after
        run.rows[f"files:{rep.name}"] = rep.files_after
    run.notes["maintain"] = {rep.name: {
        "files": [rep.files_before, rep.files_after],
        "stored_files": [rep.stored_before, rep.stored_after],
        "optimize": rep.optimize, "vacuum": rep.vacuum if rep.retain_hours is None else
        f"retention {rep.retain_hours} h", "keeps": rep.protects} for rep in reports}
    return "\n".join(["[maintain] data files before -> after:",
                      *(rep.line() for rep in reports)])
