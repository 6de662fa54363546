"""spark-submit.sh as a cluster runs it: the package shipped as a zip, not the source tree."""

from __future__ import annotations

import json
import subprocess

import pytest

from moviegraph.config import PROJECT_ROOT
from tests.conftest import FIXTURES


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


def test_job_runs_through_spark_submit_with_the_shipped_zip(spark, tmp_path):
    root = tmp_path / "wh"
    proc = subprocess.run(
        [str(PROJECT_ROOT / "spark-submit.sh"), "--ship", "--master", "local[2]",
         "--conf", "spark.sql.shuffle.partitions=2", "ingest", "--quiet",
         "--set", f"warehouse.root={root}", "--set", "ingest.dataset=path",
         "--path", str(FIXTURES / "csv")],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[stage] ingest done" in proc.stdout
    from moviegraph.tables import Warehouse

    wh = Warehouse(spark, str(root))
    assert wh.read("ratings").count() == 4
    run = wh.read("runs").first()
    assert run.status == "succeeded"
    assert ".zip" in json.loads(run.notes)["package"], "the job imported the source tree"


# That the master given to spark-submit wins over the config's local[*] is shown by
# test_cluster.py::test_application_registers_with_the_master_and_runs_on_two_executors
# (its pipeline is submitted with --master spark://..., and every run records that master).
