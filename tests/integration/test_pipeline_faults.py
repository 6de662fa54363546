"""The pipeline killed with kill -9 mid-stage, then re-run, equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from moviegraph.config import PROJECT_ROOT
from tests.integration.tables_compare import (
    assert_same_tables,
    lease_given_back,
    lease_state,
    pipeline_cmd,
)


def test_killed_pipeline_resumes_to_the_same_tables(small_ratings, reference_pipeline,
                                                     tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(pipeline_cmd(killed, small_ratings), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                            cwd=PROJECT_ROOT)
    try:
        for line in proc.stdout:
            if line.startswith("[stage] edges started"):
                time.sleep(1.5)  # inside the edges stage: pair counts read, edges being built
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    left = lease_state(killed)
    assert left.epoch > 0 and not left.released, "the killed run should leave its lease"
    assert not (killed / "walks").exists()

    rerun = subprocess.run(pipeline_cmd(killed, small_ratings), capture_output=True,
                           text=True, timeout=900, cwd=PROJECT_ROOT)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "[stage] ingest skipped" in rerun.stdout
    assert "[stage] pairs skipped" in rerun.stdout
    assert "[stage] walks done" in rerun.stdout
    assert_same_tables(killed, reference_pipeline)
    assert lease_given_back(killed)
