"""Example Airflow DAG: the moviegraph pipeline every night on a YARN cluster.

Build the artifacts once per release on a machine with the repo (they are not
committed): ``python -m moviegraph.package zip``, ``python -m moviegraph.package venv``
and ``bin/bootstrap.sh`` (for ``.jars/``), then copy ``dist/`` and ``.jars/`` to
``MOVIEGRAPH_HOME`` on the Airflow workers (or to HDFS and use hdfs:// paths below).

Re-runs are safe: stages whose config and inputs did not change are skipped, a killed
run leaves every table at its last good version, and a run that finds the warehouse
locked by another exits with code 5, which the retry below waits out.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

HOME = os.environ.get("MOVIEGRAPH_HOME", "/opt/moviegraph")

with DAG(
    dag_id="moviegraph_nightly",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=15)},
    tags=["moviegraph"],
) as dag:
    SparkSubmitOperator(
        task_id="pipeline",
        conn_id="spark_yarn",  # a Spark connection with master=yarn
        application=f"{HOME}/jobs/pipeline.py",
        application_args=["--config", "conf/cluster.toml", "--quiet"],
        py_files=f"{HOME}/dist/moviegraph-0.1.0.zip",
        archives=f"{HOME}/dist/moviegraph-venv.tar.gz#environment",
        jars=",".join(sorted(glob.glob(f"{HOME}/.jars/*/*.jar"))),
        conf={
            "spark.pyspark.python": "./environment/bin/python",
            "spark.submit.deployMode": "cluster",
            "spark.task.maxFailures": "4",
        },
        executor_memory="8g",
        num_executors=20,
        name="moviegraph-nightly",
    )
