"""The ``ingest`` stage (raw MovieLens files -> ratings, movies, rejected) and the jobs that
make raw files: ``fetch`` and ``synth``."""

from __future__ import annotations

import hashlib
import tempfile
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from moviegraph import fs
from moviegraph.config import Config, ConfigError
from moviegraph.runs import StageRun
from moviegraph.sources.fetch import VERIFIED
from moviegraph.stages.base import Flag, Job, Stage
from moviegraph.tables import Warehouse, resolve_root

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from moviegraph.fs import Storage


def data_dir(cfg: Config) -> str:
    """``data.dir``: a URI or absolute path as it is, a relative one beside the warehouse
    root (like the other outputs; see ``Warehouse.output_uri``)."""
    return fs.resolve(cfg.data.dir, fs.parent(resolve_root(cfg.warehouse.root)))


def local_data_dir(cfg: Config) -> Path:
    """``data.dir`` on this machine's disk; ConfigError for a cluster URI (jobs that write
    files without Spark: ``fetch``, ``synth``)."""
    folder = data_dir(cfg)
    if folder.startswith("file:"):
        return Path(urllib.parse.urlparse(folder).path)
    if fs.has_scheme(folder):
        raise ConfigError(f"data.dir = {cfg.data.dir!r} is not on this machine's disk: "
                          "`ingest` fetches a dataset into it; synth --out takes a local "
                          "folder")
    return Path(folder)


def input_path(cfg: Config, storage: Storage | None = None) -> str:
    """The raw input of ingest: the fetched dataset's folder, or ``ingest.path`` (a folder,
    or with ``ingest.append`` a ratings file too).

    A dataset is fetched into ``data.dir``; when that is a cluster URI (``storage``
    given), it is fetched on the driver and published there once, so executors on other
    nodes read it from shared storage.
    """
    from moviegraph.sources.fetch import fetch
    from moviegraph.sources.ingest import IngestError

    if cfg.ingest.dataset == "path":
        if not cfg.ingest.path:
            raise IngestError("ingest.dataset = 'path' needs ingest.path (--path FOLDER)")
        path = cfg.ingest.path
        return path if fs.has_scheme(path) else str(Path(path).resolve())
    folder = data_dir(cfg)
    if storage is None or storage.is_local(folder):
        local = Path(storage.local_path(folder)) if storage is not None else \
            local_data_dir(cfg)
        return str(fetch(cfg.ingest.dataset, local).resolve())
    target = fs.join(folder, cfg.ingest.dataset)
    if not storage.exists(fs.join(target, VERIFIED)):
        with tempfile.TemporaryDirectory(prefix="moviegraph-fetch-") as tmp:
            storage.publish(fetch(cfg.ingest.dataset, tmp), target)
    return target


def raw_fingerprint(spark: SparkSession, cfg: Config) -> dict[str, int]:
    """``{"raw_files": 63-bit hash of the raw files' names, sizes and times}``; nothing
    with ``ingest.append`` (an append always runs)."""
    if cfg.ingest.append:
        return {}
    from moviegraph.sources.ingest import check_input_folder

    folder = input_path(cfg, fs.Storage(spark))
    check_input_folder(spark, folder)  # a missing or unreadable folder: a one-line error
    entries = sorted(fs.list_files(spark, folder))
    digest = hashlib.sha256(repr(entries).encode()).digest()
    return {"raw_files": int.from_bytes(digest[:8], "big") >> 1}


def run_ingest(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Raw MovieLens files -> ratings, movies, rejected."""
    from moviegraph.sources.ingest import ingest

    path = input_path(cfg, fs.Storage(spark))
    run.notes["input"] = path
    result = ingest(spark, wh, path, cfg.ingest.format, strict=cfg.ingest.strict,
                    append=cfg.ingest.append)
    run.outputs.update(result.versions)
    run.rows.update({"ratings": result.ratings, "movies": result.movies,
                     "rejected": sum(result.rejected.values())})
    run.notes["rejected"] = result.rejected
    return result.summary()


STAGE = Stage(
    name="ingest", summary="raw MovieLens files -> ratings, movies, rejected",
    reads_doc="raw files", writes=("ratings", "movies", "rejected"),
    sections=("ingest", "data"), run=run_ingest, raw_inputs=raw_fingerprint,
    flags=(Flag("--dataset", "ingest.dataset", "dataset to read", metavar="NAME"),
           Flag("--path", "ingest.path", "folder of the raw files (with --set "
                "ingest.dataset=path)", metavar="FOLDER"),
           Flag("--strict", "ingest.strict", "fail on the first bad row"),
           Flag("--append", "ingest.path", "append the ratings of FILE (or of the ratings "
                "file in FOLDER) to `ratings`", metavar="FILE",
                sets=("ingest.append=true", "ingest.dataset=path"))))


def fetch_job(cfg: Config, quiet: bool) -> None:
    """Fetch (and verify) ``ingest.dataset`` into ``data.dir``; print its folder."""
    print(f"[fetch] {input_path(cfg)}", flush=True)


def synth_job(cfg: Config, quiet: bool) -> None:
    """Generate MovieLens-25M-shaped ratings (``[synth]``)."""
    from moviegraph.sources import synth

    sc = cfg.synth
    out = Path(sc.out) if sc.out else local_data_dir(cfg) / f"synth-{sc.ratings}"
    summary = synth.generate(out, ratings=sc.ratings, users=sc.users, movies=sc.movies,
                             seed=sc.seed, genres_per_taste=sc.genres_per_taste,
                             progress=not quiet)
    print(f"[synth] {summary}", flush=True)


def ratings_count(value: str) -> str:
    """``1e6`` -> ``1000000`` (``synth --ratings``); other text is left to the config check."""
    try:
        return str(int(float(value)))
    except ValueError:
        return value


FETCH = Job(
    name="fetch", summary="fetch a MovieLens dataset (checksums verified) into data/",
    reads_doc="GroupLens / PyPI", action=fetch_job,
    writes_doc="raw files under `data/<dataset>/` (`--dataset ml-100k-recbole` (default, "
               "offline), `ml-100k`, `ml-1m`, `ml-latest-small`, `ml-25m`, `ml-32m`)",
    flags=(Flag("--dataset", "ingest.dataset", "dataset to fetch", metavar="NAME"),))

SYNTH = Job(
    name="synth", summary="generate MovieLens-25M-shaped ratings", reads_doc="–",
    action=synth_job,
    writes_doc="`data/synth-<n>/ratings.csv`, `movies.csv`: MovieLens-25M-shaped data in the "
               "25M CSV format (`--ratings 1e6`, `--seed`)",
    flags=(Flag("--ratings", "synth.ratings", "ratings to generate, e.g. 1e6",
                metavar="N", convert=ratings_count),
           Flag("--seed", "synth.seed", "random seed", metavar="N"),
           Flag("--out", "synth.out", "output folder", metavar="FOLDER")))
