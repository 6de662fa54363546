"""spark-submit.sh's own handling: a bad config and ``--help`` answered before Spark starts.

That a submitted job runs from the shipped zip is checked by ``test_cluster.py``."""

from __future__ import annotations

import subprocess

import pytest

from moviegraph.config import PROJECT_ROOT


def test_bad_config_fails_before_spark_starts():
    proc = subprocess.run([str(PROJECT_ROOT / "spark-submit.sh"), "walks", "--set", "walks.p=0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "walks.p = 0.0: must be > 0.0" in proc.stderr


@pytest.mark.parametrize("job, own, foreign", [
    ("walks", "--force", "--append"),
    ("ingest", "--append FILE", "--resume"),
    ("export", "--out FOLDER", "--ratings"),
])
def test_job_help_through_spark_submit_lists_the_jobs_own_options(job, own, foreign):
    """``--help`` goes to the job, not to spark-submit (which would fail in Java)."""
    proc = subprocess.run([str(PROJECT_ROOT / "spark-submit.sh"), "--master", "local[1]", job,
                           "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: moviegraph {job}")
    assert own in proc.stdout and foreign not in proc.stdout
    assert "Exception" not in proc.stderr


# That the master given to spark-submit wins over the config's local[*], and that the job
# imports the shipped zip rather than the source tree, is shown by
# test_cluster.py::test_application_registers_with_the_master_and_runs_on_two_executors
# (its pipeline is submitted with --master spark://... from another folder; every run
# records that master and the zip).
