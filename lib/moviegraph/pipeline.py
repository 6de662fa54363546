"""Running stages: one warehouse lock, skip-if-unchanged, slices, run records.

What a stage reads, writes and depends on comes from the stage registry
(:mod:`moviegraph.stages`). A stage is skipped when its last successful run had the same
config hash (of the config sections its output depends on), read the same input table
versions, and its output tables are still at the versions it wrote; ``--force`` runs it
anyway.
Outputs are deterministic, so a re-run after a failure gives what an uninterrupted run
would have. One pipeline at a time per warehouse: a lock file in the warehouse root,
created atomically; a second run fails at once with a clear message (exit code 5).
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config, ConfigError
from moviegraph.runs import input_versions, new_run_id, record_stage
from moviegraph.stages import JOBS, STAGES, Stage
from moviegraph.tables import Warehouse


class PipelineLockedError(RuntimeError):
    """Another pipeline holds the warehouse."""


class WarehouseLock:
    """An exclusive lock file ``<root>/_moviegraph.lock`` (atomic create-if-absent).

    A lock left by a killed run on this host (its process is gone) is taken over; a lock
    held elsewhere must be removed by hand once that run is known to be dead.
    """

    def __init__(self, spark: SparkSession, root: str, run_id: str) -> None:
        jvm: Any = spark.sparkContext._jvm
        jsc: Any = spark.sparkContext._jsc
        self._path = jvm.org.apache.hadoop.fs.Path(f"{root}/_moviegraph.lock")
        self._fs = self._path.getFileSystem(jsc.hadoopConfiguration())
        self._fs.mkdirs(self._path.getParent())
        self.owner = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        # Hadoop's local create(overwrite=False) checks, then opens: not atomic (two runs
        # started together could both "win"). Local warehouses use O_EXCL instead.
        self._local = (self._path.toUri().getPath()
                       if self._fs.getScheme() == "file" else None)

    def _create(self) -> bool:
        """Create the lock file holding ``owner``; False when it already exists."""
        data = json.dumps(self.owner).encode()
        if self._local is not None:
            try:
                fd = os.open(self._local, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            return True
        try:
            out = self._fs.create(self._path, False)
        except Exception as exc:  # py4j: FileAlreadyExistsException
            if "FileAlreadyExists" not in str(exc) and "already exists" not in str(exc):
                raise
            return False
        try:
            out.write(data)
        finally:
            out.close()
        return True

    def _holder(self) -> dict:
        if self._local is not None:
            try:
                with open(self._local, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                data = b""
            try:
                return json.loads(data.decode() or "{}")
            except ValueError:
                return {}
        stream = self._fs.open(self._path)
        try:
            data = bytes(stream.readAllBytes()) if hasattr(stream, "readAllBytes") else b""
        finally:
            stream.close()
        try:
            return json.loads(data.decode() or "{}")
        except ValueError:
            return {}

    def _holder_is_dead(self, holder: dict) -> bool:
        if holder.get("host") != socket.gethostname() or "pid" not in holder:
            return False
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def acquire(self) -> None:
        """Take the lock or raise PipelineLockedError naming the holder."""
        for _ in range(2):
            if self._create():
                return
            holder = self._holder()
            if self._holder_is_dead(holder):
                self._fs.delete(self._path, False)
                continue
            raise PipelineLockedError(
                f"warehouse {self._path.getParent()} is in use by run "
                f"{holder.get('run_id', '?')} (host {holder.get('host', '?')}, pid "
                f"{holder.get('pid', '?')}, since {holder.get('since', '?')}); retry "
                f"later, or delete {self._path} if that run is dead")
        raise PipelineLockedError(f"could not take {self._path}")

    def release(self) -> None:
        """Remove the lock if it is still ours."""
        if self._fs.exists(self._path) and self._holder().get("run_id") == self.owner["run_id"]:
            self._fs.delete(self._path, False)


def current_inputs(spark: SparkSession, cfg: Config, wh: Warehouse, stage: Stage) -> dict[str, int]:
    """What the stage would read now: its tables' versions (-1 for an optional table that
    is absent), or what stands for its raw inputs (ingest: a fingerprint of the files)."""
    if stage.raw_inputs is not None:
        return stage.raw_inputs(spark, cfg)
    optional = set(stage.optional_reads)
    versions = input_versions(wh, *(t for t in stage.tables_read(cfg) if t not in optional))
    for table in stage.optional_reads:
        version = wh.version(table)
        versions[table] = -1 if version is None else version
    return versions


def is_up_to_date(wh: Warehouse, stage: str, config_hash: str,
                  inputs: dict[str, int]) -> str | None:
    """The run id of a successful earlier run that makes this one redundant, if any."""
    if not wh.exists("runs") or not inputs:
        return None
    last = (wh.read("runs").where((F.col("stage") == stage) & (F.col("status") == "succeeded"))
            .orderBy(F.col("started_at").desc()).limit(1).collect())
    if not last:
        return None
    row = last[0]
    if row["config_hash"] != config_hash or dict(row["inputs"]) != inputs:
        return None
    for table, version in (row["outputs"] or {}).items():
        if wh.version(table) != version:
            return None
    return row["run_id"]


def run_stage(name: str, spark: SparkSession, cfg: Config, wh: Warehouse, run_id: str,
              force: bool = False) -> bool:
    """Run one stage (unless up to date); return True when it ran."""
    stage = STAGES[name]
    config_hash = cfg.section_hash(*stage.sections)
    inputs = current_inputs(spark, cfg, wh, stage)
    if not force:
        previous = is_up_to_date(wh, name, config_hash, inputs)
        if previous:
            print(f"[stage] {name} skipped: unchanged since run {previous} (--force to rerun)",
                  flush=True)
            return False
    print(f"[stage] {name} started", flush=True)
    t0 = time.time()
    with record_stage(wh, name, config_hash, run_id) as run:
        run.inputs.update(inputs)
        summary = stage.run(spark, cfg, wh, run)
    rows = ", ".join(f"{k}={v:,}" for k, v in run.rows.items())
    print(f"[stage] {name} done in {time.time() - t0:.1f}s ({rows})", flush=True)
    if summary:
        print(summary, flush=True)
    return True


def stage_slice(start: str | None, until: str | None) -> list[str]:
    """Stage names from ``start`` to ``until`` inclusive, in pipeline order (ConfigError
    for an unknown stage or an empty slice)."""
    names = list(STAGES)
    for option, bound in (("--from", start), ("--until", until)):
        if bound is not None and bound not in names:
            raise ConfigError(f"{option} {bound}: unknown stage; stages: {', '.join(names)}")
    lo = names.index(start) if start else 0
    hi = names.index(until) + 1 if until else len(names)
    if lo >= hi:
        raise ConfigError(f"--from {start} comes after --until {until}")
    return names[lo:hi]


def run_job(job: str, cfg: Config, quiet: bool = False, force: bool = False,
            start: str | None = None, until: str | None = None) -> None:
    """Run ``job``: a stage, ``pipeline`` (optionally a slice) or a job without Spark."""
    action = JOBS[job].action if job in JOBS else None
    if action is not None:
        action(cfg, quiet)
        return
    if job != "pipeline" and job not in STAGES:
        raise ConfigError(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    names = stage_slice(start, until) if job == "pipeline" else [job]
    from moviegraph.session import build_session

    spark = build_session(cfg.spark, job)
    wh = Warehouse(spark, cfg.warehouse.root)
    run_id = new_run_id()
    lock = WarehouseLock(spark, wh.root, run_id)
    lock.acquire()
    try:
        for name in names:
            run_stage(name, spark, cfg, wh, run_id, force=force)
    finally:
        lock.release()
