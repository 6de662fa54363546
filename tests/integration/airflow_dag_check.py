"""Run inside the Airflow virtualenv by test_airflow_dag.py (never by the project's venv).

Loads ``examples/airflow`` with Airflow's own DagBag and prints, as JSON, what the test
checks: import errors, the DAG's settings and each task's wiring and Spark arguments,
with the templated arguments rendered for one data interval.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

try:  # Airflow 3
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models.dagbag import DagBag


MARKER = "MOVIEGRAPH-DAG-REPORT "


def main(folder: str, dag_id: str) -> None:
    """Print the report for ``dag_id`` in ``folder``."""
    bag = DagBag(dag_folder=folder)  # examples off: AIRFLOW__CORE__LOAD_EXAMPLES=False
    out: dict = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
                 "dag_ids": sorted(bag.dag_ids)}
    dag = bag.dags.get(dag_id)
    if dag is not None:
        env = dag.get_template_env()
        interval = {"data_interval_start": datetime(2026, 3, 4, 2, tzinfo=UTC),
                    "ds": "2026-03-05"}
        out["dag"] = {"max_active_runs": dag.max_active_runs, "catchup": dag.catchup,
                      "schedule": str(dag.schedule)}
        out["tasks"] = {
            t.task_id: {
                "operator": type(t).__name__,
                "upstream": sorted(t.upstream_task_ids),
                "downstream": sorted(t.downstream_task_ids),
                "conn_id": getattr(t, "_conn_id", None),
                "deploy_mode": getattr(t, "_deploy_mode", None),
                "application": getattr(t, "application", None),
                "application_args": [env.from_string(str(a)).render(**interval)
                                     for a in (getattr(t, "application_args", None) or [])],
                "name": env.from_string(str(getattr(t, "name", ""))).render(**interval),
                "conf": getattr(t, "conf", None),
                "execution_timeout": (t.execution_timeout.total_seconds()
                                      if t.execution_timeout else None),
                "retries": t.retries,
                "retry_delay": t.retry_delay.total_seconds(),
            } for t in dag.tasks}
    # Airflow logs to stdout too: the report is the line after this marker.
    print(MARKER + json.dumps(out, sort_keys=True), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
