"""Fixtures of the integration tests shared across files (once per test run).

The suite's slow end-to-end runs (the reference pipeline, the standalone cluster's runs,
the fault scenarios of ``fault_runs.py``) start in the background when the first
integration test is set up (:func:`start_end_to_end_runs`) and are waited for by the tests
that read them, which run last (:mod:`tests.background`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import pytest

from moviegraph.config import PROJECT_ROOT
from tests import background
from tests.integration.fault_runs import (  # noqa: F401 (fixtures, started early)
    contended_started,
    killed_started,
)
from tests.integration.tables_compare import FULL_SETTINGS, full_pipeline_cmd, sets
from tests.standalone import StandaloneCluster

# How long one end-to-end subprocess may take (a loaded 2-core machine is far quicker).
RUN_TIMEOUT = 1200


@pytest.fixture(scope="session")
def small_ratings(tmp_path_factory) -> Path:
    """A small synthetic MovieLens-format folder (20k ratings)."""
    from moviegraph.sources.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, ratings=20_000, seed=3, progress=False)
    return out


@pytest.fixture(scope="session")
def reference_started(small_ratings, tmp_path_factory) -> Iterator[Future[Path]]:
    """The reference pipeline (:func:`reference_pipeline`), started in the background."""
    root = tmp_path_factory.mktemp("reference") / "wh"

    def run() -> Path:
        done = subprocess.run(full_pipeline_cmd(root, small_ratings), capture_output=True,
                              text=True, timeout=RUN_TIMEOUT, cwd=PROJECT_ROOT)
        assert done.returncode == 0, done.stderr[-3000:]
        return root

    future = background.start(run)
    yield future
    background.finish(future)


@pytest.fixture(scope="session")
def reference_pipeline(reference_started) -> Path:
    """The warehouse of the suite's one uninterrupted run of the whole ``pipeline``
    (every stage, :func:`~tests.integration.tables_compare.full_pipeline_cmd`) on
    :func:`small_ratings`, in a ``local[2]`` subprocess. Read-only for its users: what the
    fault tests' interrupted, retried and contended ``--until walks`` runs must equal
    (their tables up to walks) and what the standalone cluster's run must equal (every
    table). A test that changes a warehouse copies this one first."""
    return reference_started.result()


@dataclass
class ClusterRuns:
    """What the standalone cluster ran: the whole pipeline, then DDP training on a copy."""

    cluster: StandaloneCluster
    pipeline: subprocess.CompletedProcess  # spark-submit ... pipeline
    root: Path  # its warehouse
    events: Path  # its event log folder
    ddp: subprocess.CompletedProcess  # spark-submit ... train, train.distributed=true
    ddp_root: Path  # a copy of `root` taken before, which DDP training then changed
    ddp_events: Path


def event_log_conf(folder: Path) -> list[str]:
    """spark-submit options for a plain-text, single-file event log per application."""
    return ["--conf", "spark.eventLog.enabled=true",
            "--conf", f"spark.eventLog.dir={folder.as_uri()}",
            "--conf", "spark.eventLog.compress=false",
            "--conf", "spark.eventLog.rolling.enabled=false"]


def _run_on_cluster(cluster: StandaloneCluster, data: Path, base: Path) -> ClusterRuns:
    """Start ``cluster``; submit the pipeline as a user would, from a folder that is not the
    checkout, shipping the executors' Python; then DDP training on a copy of its warehouse."""
    cluster.start()
    folders = {name: base / name for name in ("cwd", "events", "ddp-cwd", "ddp-events")}
    for folder in folders.values():
        folder.mkdir()
    root, ddp_root = base / "warehouse", base / "ddp" / "warehouse"
    pipeline = subprocess.run(
        [str(PROJECT_ROOT / "spark-submit.sh"), "--master", cluster.url,
         "--ship-executor-env", "--executor-memory", "1g", "--driver-memory", "2g",
         *event_log_conf(folders["events"]), "pipeline", "--quiet",
         *sets(*FULL_SETTINGS, f"ingest.path={data}", f"warehouse.root={root.as_uri()}")],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=folders["cwd"])
    assert pipeline.returncode == 0, pipeline.stderr[-3000:]
    # DDP training changes the embeddings: on a copy, so that `root` stays the pipeline's.
    shutil.copytree(root, ddp_root)
    # The executors need torch, which the slim executor archive leaves out; on this
    # one-machine cluster they use the project's virtualenv (on a real one: --ship-venv).
    ddp = subprocess.run(
        [str(PROJECT_ROOT / "spark-submit.sh"), "--master", cluster.url,
         "--executor-memory", "1g", "--driver-memory", "2g",
         "--conf", f"spark.pyspark.python={PROJECT_ROOT / '.venv' / 'bin' / 'python'}",
         *event_log_conf(folders["ddp-events"]), "train", "--quiet", "--force",
         *sets(*FULL_SETTINGS, f"warehouse.root={ddp_root.as_uri()}", "train.models=mf",
               "train.distributed=true", "train.num_processes=2")],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=folders["ddp-cwd"])
    return ClusterRuns(cluster, pipeline, root, folders["events"], ddp, ddp_root,
                       folders["ddp-events"])


@pytest.fixture(scope="session")
def cluster_started(small_ratings, tmp_path_factory) -> Iterator[Future[ClusterRuns]]:
    """A standalone cluster (a master and two 1-core workers, each its own JVM on
    127.0.0.1) and its runs (:class:`ClusterRuns`), started in the background."""
    base = tmp_path_factory.mktemp("submitted")
    cluster = StandaloneCluster(base / "cluster", workers=2, cores=1, memory="2g")
    future = background.start(lambda: _run_on_cluster(cluster, small_ratings, base))
    yield future
    background.finish(future)
    cluster.stop()


@pytest.fixture(scope="session")
def cluster_runs(cluster_started) -> ClusterRuns:
    """The standalone cluster's runs, once they are done (see :func:`cluster_started`)."""
    return cluster_started.result()


@pytest.fixture(scope="session", autouse=True)
def start_end_to_end_runs(request) -> None:
    """Start every background run (a ``*_started`` fixture) that a selected test needs."""
    wanted = {name for item in request.session.items for name in item.fixturenames}
    for name in background.start_order(wanted):
        request.getfixturevalue(name)
