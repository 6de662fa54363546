"""Example Airflow DAG: the moviegraph pipeline every night on a YARN cluster.

Three Spark applications a night, in order: ``ingest_day`` appends the ratings dropped
for the run's data interval (``<DROP_ROOT>/<YYYY-MM-DD>/``, the day the interval starts)
to ``ratings``; ``pipeline`` runs the stages after ingest (skipping those whose config
and inputs did not change: incremental pairs folds the appended ratings in); ``maintain``
compacts and vacuums the tables, keeping every version the runs table still needs.

Written for Airflow 3 and apache-airflow-providers-apache-spark 6 (the versions the test
loads it with, tests/integration/test_airflow_dag.py). Build the artifacts once per
release on a machine with the repo (they are not committed): ``python -m
moviegraph.package zip``, ``python -m moviegraph.package venv`` and
``bin/bootstrap.sh`` (for ``.jars/``), then copy ``jobs/``, ``dist/`` and ``.jars/`` to
``MOVIEGRAPH_HOME`` on the Airflow workers.

The Spark connection (``SPARK_CONN_ID``) has host ``yarn`` and, in its extra, the
ResourceManager's web address (``{"yarn_resourcemanager_webapp_address":
"http://rm:8088"}``): in cluster deploy mode the operator then tracks the application
through the ResourceManager and kills it there on timeout, and a retry after a worker
crash reconnects to the running application instead of submitting a second one.

Retries are safe: every stage is idempotent (a rerun skips what is done and redoes a
killed stage from its last good table versions), a re-ingested day adds nothing (its
ratings are rejected as duplicates), and a run that finds the warehouse held by another
exits 5 and is retried. The retry delay is longer than the warehouse lease's ttl
(``pipeline.lock_ttl_seconds``, 10 minutes), so a killed run's lease has expired when
its retry starts. ``max_active_runs=1`` keeps the nights in order.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG

HOME = os.environ.get("MOVIEGRAPH_HOME", "/opt/moviegraph")
SPARK_CONN_ID = "spark_yarn"
CONFIG = ["--config", "conf/cluster.toml", "--quiet"]
# One folder of new ratings per day, named after the day (the data interval's start).
DROP_ROOT = "hdfs:///data/moviegraph/drops"
DAY_FOLDER = DROP_ROOT + "/{{ data_interval_start | ds }}"


def _newest(pattern: str) -> str:
    """The most recently built artifact matching ``pattern`` (its name carries a version or
    a hash of the pinned requirements); the pattern itself when none is there yet, so the
    DAG still loads and the task fails naming the missing file."""
    found = glob.glob(pattern)
    return max(found, key=os.path.getmtime) if found else pattern


def spark_job(task_id: str, job: str, args: list[str],
              timeout: timedelta) -> SparkSubmitOperator:
    """One moviegraph job as a cluster-mode Spark application."""
    jars = sorted(glob.glob(f"{HOME}/.jars/*/*.jar"))
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id=SPARK_CONN_ID,
        deploy_mode="cluster",
        yarn_track_via_rm_api=True,
        application=f"{HOME}/jobs/{job}.py",
        application_args=[*CONFIG, *args],
        py_files=_newest(f"{HOME}/dist/moviegraph-*.zip"),
        archives=_newest(f"{HOME}/dist/moviegraph-venv-*.tar.gz") + "#environment",
        jars=",".join(jars) or None,
        conf={
            "spark.pyspark.python": "./environment/bin/python",
            # Airflow retries the job; YARN must not start a second driver by itself.
            "spark.yarn.maxAppAttempts": "1",
            "spark.task.maxFailures": "4",
        },
        executor_memory="8g",
        num_executors=20,
        name=f"moviegraph-{task_id}-{{{{ ds }}}}",
        execution_timeout=timeout,
    )


with DAG(
    dag_id="moviegraph_nightly",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    # Each night ingests its own day's drop: missed nights are caught up, one at a time.
    catchup=True,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=15),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(hours=2),
    },
    tags=["moviegraph"],
) as dag:
    ingest_day = spark_job(
        "ingest_day", "ingest",
        ["--append", DAY_FOLDER],
        timeout=timedelta(hours=1))
    pipeline = spark_job("pipeline", "pipeline", ["--from", "pairs"],
                         timeout=timedelta(hours=6))
    maintain = spark_job("maintain", "maintain", [], timeout=timedelta(hours=2))

    ingest_day >> pipeline >> maintain
