"""The suite's slow end-to-end runs, started early and waited for late.

The reference pipeline, the standalone cluster's runs and the fault scenarios are
subprocesses that spend much of their time waiting (JVM start-up, Delta commits,
executors launching): one such run keeps about one of the machine's two cores busy.
Queued when the session's first integration test is set up, they run one at a time while
the in-process tests go on; the tests that read their results are moved to the end of the
session (:func:`tests.conftest.pytest_collection_modifyitems`), by which time the runs are
done.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# A fixture named "<run>_started" queues a background run and gives its future.
STARTED_SUFFIX = "_started"
# Runs at once beside the in-process tests. On 2 cores one run uses the core that the
# in-process tests leave; two at once made the whole suite slower (778 s, 1,340 CPU s
# against 723 s, 1,282 CPU s: the same commit, `pytest -q`, CHANGELOG).
AT_ONCE = 1
# Queued first: the longest run, then the one that every waiting test compares with.
FIRST = ("cluster_started", "reference_started")

_pool = ThreadPoolExecutor(max_workers=AT_ONCE, thread_name_prefix="background-run")


def is_started_fixture(name: str) -> bool:
    """Whether fixture ``name`` queues a background run (a test using it goes last)."""
    return name.endswith(STARTED_SUFFIX)


def start_order(names: set[str]) -> list[str]:
    """The ``*_started`` fixtures among ``names``, in the order to queue them."""
    started = [n for n in names if is_started_fixture(n)]
    return sorted(started, key=lambda n: (FIRST.index(n) if n in FIRST else len(FIRST), n))


def start(work: Callable[[], T]) -> Future[T]:
    """Queue ``work`` on the background threads; return its future."""
    return _pool.submit(work)


def finish(future: Future) -> None:
    """At the fixture's teardown: drop a run not begun, wait for one under way."""
    if not future.cancel():
        future.exception()  # waits; the run's own failure was the tests' to report
