"""Running stages: one warehouse lock, skip-if-unchanged, slices, run records.

A stage is skipped when its last successful run had the same config hash (of the
config sections its output depends on), read the same input table versions, and its
output tables are still at the versions it wrote; ``--force`` runs it anyway.
Outputs are deterministic, so a re-run after a failure gives what an uninterrupted run
would have. One pipeline at a time per warehouse: a lock file in the warehouse root,
created atomically; a second run fails at once with a clear message (exit code 5).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config
from moviegraph.runs import input_versions, new_run_id, record_stage
from moviegraph.sources.ingest import check_input_folder
from moviegraph.stages import STAGES, _data_dir, input_folder
from moviegraph.tables import TableError, Warehouse

# Tables each stage reads; their versions decide whether a stage is up to date.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "pairs": ("ratings",),
    "edges": ("item_counts", "pair_counts"),
    "walks": ("edges",),
    "train": ("walks", "vocab", "ratings", "movies"),
    "similar": ("embeddings", "user_embeddings", "ratings"),
    "evaluate": ("embeddings", "user_embeddings", "ratings", "movies", "history", "walks",
                 "vertices", "edges"),
    "export": ("embeddings", "user_embeddings", "movies", "ratings"),
}


# Inputs a stage can do without (no model wrote user vectors yet): version -1 when absent.
OPTIONAL_INPUTS = {"user_embeddings"}
# Per stage, further inputs it can do without (evaluate: no walks or graph for cbow / mf).
STAGE_OPTIONAL_INPUTS = {"evaluate": {"history", "walks", "vertices", "edges"}}


class PipelineLockedError(RuntimeError):
    """Another pipeline holds the warehouse."""


class WarehouseLock:
    """An exclusive lock file ``<root>/_moviegraph.lock`` (atomic create-if-absent).

    A lock left by a killed run on this host (its process is gone) is taken over; a lock
    held elsewhere must be removed by hand once that run is known to be dead.
    """

    def __init__(self, spark: SparkSession, root: str, run_id: str) -> None:
        jvm = spark.sparkContext._jvm
        self._path = jvm.org.apache.hadoop.fs.Path(f"{root}/_moviegraph.lock")
        self._fs = self._path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
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


def _raw_fingerprint(spark: SparkSession, folder: str) -> int:
    """A 63-bit hash of the raw input files' names, sizes and modification times."""
    check_input_folder(spark, folder)  # a missing folder: ingest's one-line error, exit 3
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    entries = sorted((s.getPath().getName(), s.getLen(), s.getModificationTime())
                     for s in fs.listStatus(path) if s.isFile())
    digest = hashlib.sha256(repr(entries).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def current_inputs(spark: SparkSession, cfg: Config, wh: Warehouse, stage: str) -> dict[str, int]:
    """What the stage would read now: table versions (or the raw files' fingerprint)."""
    if stage == "ingest":
        if cfg.ingest.append:
            return {}
        return {"raw_files": _raw_fingerprint(spark, input_folder(cfg))}
    if stage == "train":
        from moviegraph.train.stage import model_inputs, model_list

        tables = sorted({t for m in model_list(cfg.train.models)
                         for t in model_inputs(m, cfg.train)})
        return input_versions(wh, *tables)
    tables = STAGE_INPUTS.get(stage, ())
    optional = OPTIONAL_INPUTS | STAGE_OPTIONAL_INPUTS.get(stage, set())
    versions = input_versions(wh, *(t for t in tables if t not in optional))
    for table in optional.intersection(tables):
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
    fn, sections = STAGES[name]
    config_hash = cfg.section_hash(*sections)
    inputs = current_inputs(spark, cfg, wh, name)
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
        summary = fn(spark, cfg, wh, run)
    rows = ", ".join(f"{k}={v:,}" for k, v in run.rows.items())
    print(f"[stage] {name} done in {time.time() - t0:.1f}s ({rows})", flush=True)
    if summary:
        print(summary, flush=True)
    return True


def stage_slice(start: str | None, until: str | None) -> list[str]:
    """Stage names from ``start`` to ``until`` inclusive, in pipeline order."""
    names = list(STAGES)
    for bound in (start, until):
        if bound is not None and bound not in names:
            raise TableError(f"unknown or unavailable stage {bound!r}; stages: "
                             f"{', '.join(names)}")
    lo = names.index(start) if start else 0
    hi = names.index(until) + 1 if until else len(names)
    if lo >= hi:
        raise TableError(f"--from {start} comes after --until {until}")
    return names[lo:hi]


def run_job(job: str, cfg: Config, quiet: bool = False, force: bool = False,
            start: str | None = None, until: str | None = None) -> None:
    """Run ``job``: a stage name, ``fetch``, ``synth`` or ``pipeline`` (optionally a slice)."""
    if job == "fetch":
        print(f"[fetch] {input_folder(cfg)}", flush=True)
        return
    if job == "synth":
        from moviegraph.sources import synth

        out = Path(cfg.synth.out or _data_dir(cfg) / f"synth-{cfg.synth.ratings}")
        summary = synth.generate(out, ratings=cfg.synth.ratings, users=cfg.synth.users,
                                 movies=cfg.synth.movies, seed=cfg.synth.seed,
                                 genres_per_taste=cfg.synth.genres_per_taste,
                                 progress=not quiet)
        print(f"[synth] {summary}", flush=True)
        return
    if job != "pipeline" and job not in STAGES:
        raise TableError(f"stage {job!r} is not available yet in this build")
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
