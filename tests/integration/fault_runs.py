"""The fault tests' pipeline runs (``--until walks`` subprocesses), started in the
background at the session's start like the reference run (:mod:`tests.background`).

Each fixture here runs fault scenarios and returns its own small result: two pipelines
started at once, the winner's tasks failing once each in pairs and walks
(``contended_started``: :class:`ContendedRuns`), and a pipeline killed with ``kill -9``
mid-stage and run again (``killed_started``: :class:`KilledRun`). The tests in
``test_platform_faults.py`` and ``test_pipeline_faults.py`` compare the results with the
reference run. Imported by ``tests/integration/conftest.py``, so that the session's first
integration test can start them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from moviegraph.config import PROJECT_ROOT
from moviegraph.faults import ENV
from tests import background
from tests.integration.tables_compare import lease_state, pipeline_cmd

RUN_TIMEOUT = 900


@dataclass(frozen=True)
class ContendedRuns:
    """Two identical pipelines started at once on one warehouse, with the fault hook set
    to fail one task of pairs and one of walks once: the loser is refused at the lease,
    before any stage, so the hook fires in the winner, whose retries must change nothing."""

    root: Path  # the shared warehouse
    outs: list[tuple[str, str]]  # (stdout, stderr) of each process
    codes: list[int]  # their exit codes, in the same order
    markers: Path  # the fault hook's "<stage>.failed" files


@dataclass(frozen=True)
class KilledRun:
    """A pipeline killed with ``kill -9`` inside edges, then run again."""

    root: Path  # its warehouse
    lease: object  # the lease the killed run left behind (lock.LeaseState)
    left_walks: bool  # whether the killed run had written walks
    rerun: subprocess.CompletedProcess  # the second run, to the end


R = TypeVar("R")


def _in_background(work: Callable[[], R]) -> Iterator[Future[R]]:
    future = background.start(work)
    yield future
    background.finish(future)


@pytest.fixture(scope="session")
def contended_started(small_ratings, tmp_path_factory) -> Iterator[Future[ContendedRuns]]:
    """Two identical pipelines on one warehouse, started at the same moment, on
    ``local[2,4]`` (two cores, a task may fail up to 4 times: ``spark.task.maxFailures``),
    with the fault hook failing one task of pairs and one of walks once.

    One scenario for two checks (the lease, and retried tasks): a pipeline run less in the
    suite, and the refused one never reaches a stage, so it cannot take the failures."""
    base = tmp_path_factory.mktemp("contended")
    root, markers = base / "wh", base / "markers"

    def run() -> ContendedRuns:
        cmd = pipeline_cmd(root, small_ratings, master="local[2,4]")
        env = {**os.environ, ENV: f"pairs,walks:{markers}"}
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=PROJECT_ROOT, env=env) for _ in range(2)]
        outs = [p.communicate(timeout=RUN_TIMEOUT) for p in procs]
        return ContendedRuns(root, outs, [p.returncode for p in procs], markers)

    yield from _in_background(run)


@pytest.fixture(scope="session")
def killed_started(small_ratings, tmp_path_factory) -> Iterator[Future[KilledRun]]:
    """The pipeline killed with ``kill -9`` inside the edges stage, then run again."""
    root = tmp_path_factory.mktemp("killed") / "wh"

    def run() -> KilledRun:
        proc = subprocess.Popen(pipeline_cmd(root, small_ratings), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                                cwd=PROJECT_ROOT)
        try:
            for line in proc.stdout or ():
                if line.startswith("[stage] edges started"):
                    time.sleep(1.5)  # inside edges: pair counts read, edges being built
                    break
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        lease, left_walks = lease_state(root), (root / "walks").exists()
        rerun = subprocess.run(pipeline_cmd(root, small_ratings), capture_output=True,
                               text=True, timeout=RUN_TIMEOUT, cwd=PROJECT_ROOT)
        return KilledRun(root, lease, left_walks, rerun)

    yield from _in_background(run)
