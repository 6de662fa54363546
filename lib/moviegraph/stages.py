"""Stage wiring: config -> library calls -> tables, one run record per stage.

Each stage function takes the session, the config, the warehouse and its ``StageRun``
(to fill with input/output versions and row counts) and returns a short summary.
Jobs and the pipeline call ``run_job``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import SparkSession

from moviegraph.config import PROJECT_ROOT, Config
from moviegraph.errors import InputError
from moviegraph.runs import StageRun, new_run_id, record_stage
from moviegraph.sources.fetch import fetch
from moviegraph.sources.ingest import IngestError, ingest
from moviegraph.tables import TableError, Warehouse

log = logging.getLogger("moviegraph")

InputDataError = InputError
MissingTableError = TableError


def _data_dir(cfg: Config) -> Path:
    d = Path(cfg.data.dir)
    return d if d.is_absolute() else PROJECT_ROOT / d


def input_folder(cfg: Config) -> str:
    """The raw input folder for ingest: fetched dataset or ``ingest.path``."""
    if cfg.ingest.dataset == "path":
        if not cfg.ingest.path:
            raise IngestError("ingest.dataset = 'path' needs ingest.path (--path FOLDER)")
        path = cfg.ingest.path
        return path if "://" in path else str(Path(path).resolve())
    return str(fetch(cfg.ingest.dataset, _data_dir(cfg)).resolve())


def stage_ingest(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Raw MovieLens files -> ratings, movies, rejected."""
    folder = input_folder(cfg)
    run.notes["input"] = folder
    result = ingest(spark, wh, folder, cfg.ingest.format, strict=cfg.ingest.strict,
                    append=cfg.ingest.append)
    run.outputs.update(result.versions)
    run.rows.update({"ratings": result.ratings, "movies": result.movies,
                     "rejected": sum(result.rejected.values())})
    run.notes["rejected"] = result.rejected
    return result.summary()


# Stages in pipeline order, with the config sections their output depends on.
STAGES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "ingest": (stage_ingest, ("ingest", "data")),
}


def run_stage(name: str, spark: SparkSession, cfg: Config, wh: Warehouse,
              run_id: str) -> None:
    """Run one Spark stage with its run record and start/end log lines."""
    fn, sections = STAGES[name]
    print(f"[stage] {name} started", flush=True)
    t0 = time.time()
    with record_stage(wh, name, cfg.section_hash(*sections), run_id) as run:
        summary = fn(spark, cfg, wh, run)
    rows = ", ".join(f"{k}={v:,}" for k, v in run.rows.items())
    print(f"[stage] {name} done in {time.time() - t0:.1f}s ({rows})", flush=True)
    if summary:
        print(summary, flush=True)


def run_job(job: str, cfg: Config, quiet: bool = False) -> None:
    """Run ``job`` (a stage name, ``fetch``, ``synth`` or ``pipeline``)."""
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
    from moviegraph.session import build_session

    spark = build_session(cfg.spark, job)
    wh = Warehouse(spark, cfg.warehouse.root)
    run_id = new_run_id()
    names = list(STAGES) if job == "pipeline" else [job]
    for name in names:
        if name not in STAGES:
            raise TableError(f"stage {name!r} is not available yet in this build")
        run_stage(name, spark, cfg, wh, run_id)
