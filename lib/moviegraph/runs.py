"""The ``runs`` table: one row per stage run (config hash, table versions, rows, timing)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import Row
from pyspark.sql import types as T

from moviegraph.tables import SCHEMAS, TableError, Warehouse

SCHEMAS["runs"] = T.StructType([
    T.StructField("run_id", T.StringType(), False),
    T.StructField("stage", T.StringType(), False),
    T.StructField("status", T.StringType(), False),  # succeeded | failed
    T.StructField("config_hash", T.StringType(), False),
    T.StructField("inputs", T.MapType(T.StringType(), T.LongType()), False),  # table->version
    T.StructField("outputs", T.MapType(T.StringType(), T.LongType()), False),
    T.StructField("rows", T.MapType(T.StringType(), T.LongType()), False),
    T.StructField("started_at", T.TimestampType(), False),
    T.StructField("seconds", T.DoubleType(), False),
    T.StructField("notes", T.StringType(), True),  # JSON: options, errors, summaries
])


def new_run_id() -> str:
    """A sortable unique id: UTC time plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class StageRun:
    """What a stage reports about itself while it runs."""

    stage: str
    run_id: str
    config_hash: str
    inputs: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)


@contextmanager
def record_stage(warehouse: Warehouse, stage: str, config_hash: str,
                 run_id: str | None = None) -> Iterator[StageRun]:
    """Record the stage's run in ``runs`` when the block ends, succeeded or failed."""
    run = StageRun(stage=stage, run_id=run_id or new_run_id(), config_hash=config_hash)
    # Which code ran: on a cluster, the shipped zip rather than an installed copy.
    import moviegraph

    run.notes["package"] = moviegraph.__file__
    # Where it ran: the master actually used (spark-submit's, not the config's default).
    sc = warehouse.spark.sparkContext
    run.notes["spark"] = {"master": sc.master, "app_id": sc.applicationId,
                          "deploy_mode": sc.getConf().get("spark.submit.deployMode", "client")}
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    t0 = time.time()
    status = "failed"
    try:
        yield run
        status = "succeeded"
    except BaseException as exc:
        run.notes["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        row = Row(run_id=run.run_id, stage=stage, status=status, config_hash=config_hash,
                  inputs=run.inputs, outputs=run.outputs, rows=run.rows, started_at=started,
                  seconds=round(time.time() - t0, 3),
                  notes=json.dumps(run.notes, sort_keys=True, default=str))
        try:
            df = warehouse.spark.createDataFrame([row], SCHEMAS["runs"])
            warehouse.write("runs", df, mode="append")
        except Exception:
            if status == "succeeded":
                raise
            # The stage's own error is the one to report; the session may be gone.


def input_versions(warehouse: Warehouse, *tables: str) -> dict[str, int]:
    """Current versions of ``tables`` (all must exist)."""
    out = {}
    for name in tables:
        version = warehouse.version(name)
        if version is None:
            warehouse.read(name)  # raises the readable "does not exist" error
            raise TableError(f"table {name!r} has no version")  # (not reached)
        out[name] = int(version)
    return out
