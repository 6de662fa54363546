"""Test hook: make the first attempt of a stage's Spark task fail, once.

Set ``MOVIEGRAPH_FAIL_ONCE=<stage>[,<stage>...]:<marker dir>`` in the environment of a
job (executors inherit it in local mode). The first task attempt of a named stage that
finds no marker file ``<marker dir>/<stage>.failed`` creates it (atomically, so exactly
one attempt fails even when tasks run in parallel) and raises :class:`InjectedFailure`;
every later attempt, the retry included, runs normally. With ``spark.task.maxFailures``
> 1 (``local[N,F]`` in local mode) Spark retries the task, and the outputs must be the
same as an uninterrupted run's -- which the platform tests check.

Unset (always, outside tests) the hook costs one environment lookup per Arrow batch.
"""

from __future__ import annotations

import os

ENV = "MOVIEGRAPH_FAIL_ONCE"


class InjectedFailure(RuntimeError):
    """The deliberate one-time task failure of the test hook."""


def fail_once(stage: str) -> None:
    """Raise InjectedFailure on the first call for ``stage`` across all processes."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    stages, _, marker_dir = spec.partition(":")
    if stage not in stages.split(",") or not marker_dir:
        return
    os.makedirs(marker_dir, exist_ok=True)
    try:
        # O_EXCL: of several attempts racing here, exactly one creates the marker.
        fd = os.open(os.path.join(marker_dir, f"{stage}.failed"),
                     os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"pid {os.getpid()}\n".encode())
    os.close(fd)
    raise InjectedFailure(f"{ENV}: injected one-time failure of a {stage} task")
