"""The ``maintain`` job: Delta upkeep of the warehouse (not part of ``pipeline``).

Compacts the tables that changed since its last run (OPTIMIZE, Z-ordered where a reader
filters) and vacuums files no version still needed uses, keeping every version the
latest successful run of each stage names (:mod:`moviegraph.maintain`). It reads and
writes no table of its own and is never skipped: run it after the nightly pipeline.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from moviegraph.config import Config
from moviegraph.maintain import MAINTAIN_STAGE, run_maintain
from moviegraph.runs import StageRun
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse


def run(spark: SparkSession, cfg: Config, wh: Warehouse, stage_run: StageRun) -> str:
    """Compact and vacuum the warehouse (``[maintain]`` settings)."""
    return run_maintain(spark, wh, cfg.maintain, stage_run)


STAGE = Stage(
    name=MAINTAIN_STAGE, summary="Delta upkeep: compact and vacuum the warehouse's tables",
    reads_doc="every table",
    writes_doc="the same tables, compacted (OPTIMIZE, Z-order where a reader filters) and "
               "vacuumed without losing a version the `runs` table still names",
    sections=("maintain",), run=run)
