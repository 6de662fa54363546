"""The example Airflow DAG, loaded by Airflow itself from its own virtualenv.

Airflow pins many packages, so it never goes into the project's venv: ``.venv-airflow/``
(``airflow_venv.py``; ``run-tests.sh`` makes it before pytest, the first time in a checkout:
several minutes of pip) holds apache-airflow and the Spark provider, and
``airflow_dag_check.py`` runs in it. Loading the DAG then takes seconds, so the check is
part of the default suite.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from moviegraph.config import PROJECT_ROOT
from tests.integration.airflow_venv import AirflowUnavailable, airflow_python

CHECK = Path(__file__).with_name("airflow_dag_check.py")
MARKER = "MOVIEGRAPH-DAG-REPORT "


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    """What Airflow's DagBag makes of examples/airflow (see airflow_dag_check.py)."""
    try:
        python = airflow_python()
    except AirflowUnavailable as exc:
        pytest.skip(str(exc))
    home = tmp_path_factory.mktemp("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "MOVIEGRAPH_HOME": "/opt/moviegraph"}
    env.pop("PYTHONPATH", None)  # Airflow's venv must not see the project's packages
    done = subprocess.run([str(python), str(CHECK), str(PROJECT_ROOT / "examples" / "airflow"),
                           "moviegraph_nightly"], capture_output=True, text=True, env=env,
                          timeout=600, cwd=home)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len(MARKER):])


def test_dag_loads_without_import_errors(report):
    assert report["import_errors"] == {}
    assert report["dag_ids"] == ["moviegraph_nightly"]
    assert report["dag"] == {"max_active_runs": 1, "catchup": True, "schedule": "0 2 * * *"}


def test_task_chain_is_ingest_then_pipeline_then_maintain(report):
    tasks = report["tasks"]
    assert set(tasks) == {"ingest_day", "pipeline", "maintain"}
    assert (tasks["ingest_day"]["upstream"], tasks["ingest_day"]["downstream"]) == (
        [], ["pipeline"])
    assert (tasks["pipeline"]["upstream"], tasks["pipeline"]["downstream"]) == (
        ["ingest_day"], ["maintain"])
    assert (tasks["maintain"]["upstream"], tasks["maintain"]["downstream"]) == (
        ["pipeline"], [])


def test_spark_submit_settings(report):
    for task_id, task in report["tasks"].items():
        assert task["operator"] == "SparkSubmitOperator"
        # Deploy mode as the operator's parameter, so the hook tracks and kills the app.
        assert task["deploy_mode"] == "cluster"
        assert "spark.submit.deployMode" not in task["conf"]
        assert task["conn_id"] == "spark_yarn"
        assert task["conf"]["spark.yarn.maxAppAttempts"] == "1"
        assert task["execution_timeout"] and task["execution_timeout"] > 0
        # Retries rely on idempotent stages, and wait out a killed run's lease (10 min).
        assert task["retries"] >= 1 and task["retry_delay"] > 600
        assert task["application"] == f"/opt/moviegraph/jobs/{task_id.split('_')[0]}.py"
        assert task["application_args"][:3] == ["--config", "conf/cluster.toml", "--quiet"]
    # The run for the interval starting 2026-03-04 ingests that day's drop folder.
    assert report["tasks"]["ingest_day"]["application_args"][3:] == [
        "--append", "hdfs:///data/moviegraph/drops/2026-03-04"]
    assert report["tasks"]["pipeline"]["application_args"][3:] == ["--from", "pairs"]
    assert (report["tasks"]["pipeline"]["execution_timeout"]
            > report["tasks"]["ingest_day"]["execution_timeout"])
