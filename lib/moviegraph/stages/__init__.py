"""The stage registry: every job of the batch, in pipeline order, with what it reads and writes.

One module per stage (``ingest``, ``pairs``, ``edges``, ``walks``, ``train``, ``similar``,
``evaluate``, ``export``; ``maintain`` and ``neighbours``, run on their own) declares a
:class:`Stage`: its name, the tables it reads (and those it can do without), the tables it
writes, the config sections its output depends on, its command-line flags and its ``run``.
``fetch``, ``synth`` and ``pipeline`` are jobs without a Spark stage (:class:`Job`).
Everything else is derived from :data:`JOBS`: the pipeline's order and skip-if-unchanged
inputs (:mod:`moviegraph.pipeline`), the command line's subcommands and their flags
(:mod:`moviegraph.cli`), and the README's jobs table (:func:`jobs_table`; a test keeps
the README equal to it).

A stage's ``run(spark, cfg, wh, run) -> summary`` takes the session, the config, the
warehouse and its :class:`~moviegraph.runs.StageRun` (to fill with output versions, row
counts and notes) and returns a short summary for the log.
"""

from __future__ import annotations

from moviegraph.stages.base import Flag, Job, Stage
from moviegraph.stages.edges import STAGE as EDGES
from moviegraph.stages.evaluate import STAGE as EVALUATE
from moviegraph.stages.export import STAGE as EXPORT
from moviegraph.stages.ingest import FETCH, SYNTH
from moviegraph.stages.ingest import STAGE as INGEST
from moviegraph.stages.maintain import STAGE as MAINTAIN
from moviegraph.stages.neighbours import STAGE as NEIGHBOURS
from moviegraph.stages.pairs import STAGE as PAIRS
from moviegraph.stages.similar import STAGE as SIMILAR
from moviegraph.stages.train import STAGE as TRAIN
from moviegraph.stages.walks import STAGE as WALKS

__all__ = ["JOBS", "PIPELINE", "STAGES", "STANDALONE", "Flag", "Job", "Stage", "jobs_table",
           "stage", "writer_of"]

#: The Spark stages in pipeline order.
STAGES: dict[str, Stage] = {s.name: s for s in (INGEST, PAIRS, EDGES, WALKS, TRAIN, SIMILAR,
                                                  EVALUATE, EXPORT)}

#: ``pipeline``: the stages above in order with one config (optionally a slice).
PIPELINE = Job(
    name="pipeline", summary="run the stages in order with one config (a slice with "
    "--from/--until)", reads_doc="–", writes_doc="runs the stages above in order with one config",
    flags=(Flag("--from", "", "first stage to run", metavar="STAGE", dest="start"),
           Flag("--until", "", "last stage to run", metavar="STAGE", dest="until")))

#: Stages run on their own, never by ``pipeline``: Delta upkeep, looking up a movie's
#: neighbours.
STANDALONE: dict[str, Stage] = {s.name: s for s in (MAINTAIN, NEIGHBOURS)}

#: Every job of the command line, in the README's order.
JOBS: dict[str, Job] = {j.name: j for j in (FETCH, SYNTH, *STAGES.values(), PIPELINE,
                                            *STANDALONE.values())}


def stage(name: str) -> Stage:
    """The Spark stage ``name``, in the pipeline or standalone (KeyError when none)."""
    return STAGES[name] if name in STAGES else STANDALONE[name]


def writer_of(table: str) -> Stage:
    """The one stage that writes ``table`` (KeyError when none does)."""
    for stage in STAGES.values():
        if table in stage.writes:
            return stage
    raise KeyError(f"no stage writes table {table!r}")


def jobs_table() -> str:
    """The README's jobs table (markdown), rendered from :data:`JOBS`."""
    lines = ["| job | reads | writes |", "| --- | --- | --- |"]
    for job in JOBS.values():
        lines.append(f"| `{job.name}` | {job.reads_markdown()} | {job.writes_markdown()} |")
    return "\n".join(lines)
