"""What a job and a stage declare (see :mod:`moviegraph.stages`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

from moviegraph.config import Config
from moviegraph.runs import StageRun
from moviegraph.tables import Warehouse

#: ``run(spark, cfg, wh, run) -> summary`` of a Spark stage.
StageFn = Callable[[SparkSession, Config, Warehouse, StageRun], str]


@dataclass(frozen=True)
class Flag:
    """A job's own command-line option: a shortcut for config keys, or a job argument.

    Attributes:
        option: e.g. ``--append``.
        key: the config key it sets (``""``: none, the value goes to ``dest``).
        help: one line for ``--help``.
        metavar: the value's name; None makes the flag a switch that sets ``key=true``.
        sets: further ``key=value`` overrides the flag implies.
        convert: turns the given text into the config value (e.g. ``1e6`` -> ``1000000``).
        dest: attribute of the parsed arguments (default: from ``option``).
    """

    option: str
    key: str
    help: str
    metavar: str | None = None
    sets: tuple[str, ...] = ()
    convert: Callable[[str], str] | None = None
    dest: str | None = None

    @property
    def attribute(self) -> str:
        """Name of the parsed argument."""
        return self.dest or self.option.lstrip("-").replace("-", "_")

    def overrides(self, value: object) -> list[str]:
        """The ``key=value`` overrides of this flag given ``value`` (none when unset)."""
        if not self.key or value is None or value is False:
            return []
        if self.metavar is None:
            return [f"{self.key}=true", *self.sets]
        text = self.convert(str(value)) if self.convert else str(value)
        return [f"{self.key}={text}", *self.sets]


@dataclass(frozen=True, kw_only=True)
class Job:
    """A job of the command line.

    Attributes:
        name: the subcommand.
        summary: one line for ``--help``.
        reads_doc, writes_doc: the README jobs table's cells (markdown). A stage's reads
            cell is rendered from its tables unless ``reads_doc`` is given; its
            ``writes_doc`` must name every table it writes (a test checks).
        flags: the job's own options.
        action: what a job without a Spark stage does, ``action(cfg, quiet)``.
    """

    name: str
    summary: str
    reads_doc: str = ""
    writes_doc: str = ""
    flags: tuple[Flag, ...] = ()
    action: Callable[[Config, bool], None] | None = None

    def reads_markdown(self) -> str:
        """The README's reads cell."""
        return self.reads_doc

    def writes_markdown(self) -> str:
        """The README's writes cell."""
        return self.writes_doc


@dataclass(frozen=True, kw_only=True)
class Stage(Job):
    """A Spark stage: tables in, tables out, one run record.

    Attributes:
        reads: tables read (their versions decide whether the stage is up to date).
        optional_reads: tables read when present (version -1 when absent).
        writes: tables written (each table has exactly one writer; a test checks).
        sections: config sections the output depends on (their hash is recorded).
        run: ``run(spark, cfg, wh, run) -> summary``.
        input_tables: the tables read under a given config, when that depends on it
            (train: the chosen models' inputs); default ``reads``.
        raw_inputs: what stands for the inputs when they are not tables (ingest: a
            fingerprint of the raw files), ``raw_inputs(spark, cfg) -> {name: int}``.
    """

    reads: tuple[str, ...] = ()
    optional_reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    run: StageFn
    input_tables: Callable[[Config], tuple[str, ...]] | None = None
    raw_inputs: Callable[[SparkSession, Config], dict[str, int]] | None = None

    def tables_read(self, cfg: Config) -> tuple[str, ...]:
        """Required tables under ``cfg``."""
        return self.input_tables(cfg) if self.input_tables else self.reads

    def reads_markdown(self) -> str:
        """Tables read (the optional ones marked), or ``reads_doc``."""
        if self.reads_doc:
            return self.reads_doc
        cell = ", ".join(f"`{t}`" for t in self.reads)
        if self.optional_reads:
            cell += " (+ " + ", ".join(f"`{t}`" for t in self.optional_reads) + " when present)"
        return cell or "–"

    def writes_markdown(self) -> str:
        """``writes_doc`` (which names every table written), or the tables' names."""
        return self.writes_doc or ", ".join(f"`{t}`" for t in self.writes)
