"""Running stages: one warehouse lock, skip-if-unchanged, slices, run records.

What a stage reads, writes and depends on comes from the stage registry
(:mod:`moviegraph.stages`). A stage is skipped when its last successful run had the same
config hash (of the config sections its output depends on), read the same input table
versions, and its output tables are still at the versions it wrote; ``--force`` runs it
anyway.
Outputs are deterministic, so a re-run after a failure gives what an uninterrupted run
would have. One pipeline at a time per warehouse: a lease with a heartbeat and an expiry
in the warehouse root (:mod:`moviegraph.lock`); a second run fails at once with a clear
message (exit code 5), and a dead run's lease is taken over from any host once expired.
"""

from __future__ import annotations

import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config, ConfigError
from moviegraph.deltalog import versions_equivalent
from moviegraph.lock import open_lease
from moviegraph.runs import input_versions, new_run_id, record_stage
from moviegraph.stages import JOBS, STAGES, STANDALONE, Stage, stage
from moviegraph.tables import Warehouse


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
    # Versions that differ only by maintain's compactions hold the same rows: unchanged.
    recorded, outputs = dict(row["inputs"]), dict(row["outputs"] or {})
    # Only tables have a history; raw-input fingerprints (``raw_files``) must match exactly.
    tables = {t for spec in STAGES.values() for t in spec.writes}
    paths = {t: wh.path(t) for t in {*recorded, *outputs} if t in tables}
    if row["config_hash"] != config_hash or not versions_equivalent(
            wh.spark, paths, recorded, inputs):
        return None
    found = {table: wh.version(table) for table in outputs}
    current = {table: v for table, v in found.items() if v is not None}
    if len(current) < len(found) or not versions_equivalent(wh.spark, paths, outputs, current):
        return None
    return row["run_id"]


def run_stage(name: str, spark: SparkSession, cfg: Config, wh: Warehouse, run_id: str,
              force: bool = False) -> bool:
    """Run one stage (unless up to date); return True when it ran."""
    spec = stage(name)
    config_hash = cfg.section_hash(*spec.sections)
    inputs = current_inputs(spark, cfg, wh, spec)
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
        summary = spec.run(spark, cfg, wh, run)
    rows = ", ".join(f"{k}={v:,}" for k, v in run.rows.items())
    # A job that writes no table (neighbours) has no counts: no empty "()".
    print(f"[stage] {name} done in {time.time() - t0:.1f}s" + (f" ({rows})" if rows else ""),
          flush=True)
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
    if job != "pipeline" and job not in STAGES and job not in STANDALONE:
        raise ConfigError(f"unknown job {job!r}; jobs: {', '.join(JOBS)}")
    names = stage_slice(start, until) if job == "pipeline" else [job]
    from moviegraph.session import build_session

    spark = build_session(cfg.spark, job)
    wh = Warehouse(spark, cfg.warehouse.root)
    run_id = new_run_id()
    lease = open_lease(spark, wh.root, run_id, cfg.pipeline)
    lease.acquire()
    try:
        for name in names:
            lease.check()  # a run whose lease was taken over stops before the next stage
            run_stage(name, spark, cfg, wh, run_id, force=force)
    finally:
        lease.release()
