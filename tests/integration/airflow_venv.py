"""The Airflow virtualenv of the DAG test (``.venv-airflow/``, git-ignored).

Airflow pins many packages, so it never goes into the project's venv. ``run-tests.sh``
makes it before pytest starts (``python -m tests.integration.airflow_venv``), so the one-off
install (several minutes, once per checkout while the pins below are unchanged) is set-up
time, not test time; the test makes it itself when it is still missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from moviegraph.config import PROJECT_ROOT

PINS = ("apache-airflow==3.3.2", "apache-airflow-providers-apache-spark==6.3.4")
VENV = PROJECT_ROOT / ".venv-airflow"


class AirflowUnavailable(Exception):
    """The venv could not be made (no PyPI access, a failed install)."""


def airflow_python() -> Path:
    """The Airflow venv's interpreter, made (once per set of pins) when missing."""
    python, stamp = VENV / "bin" / "python", VENV / ".moviegraph-pins"
    if python.is_file() and stamp.is_file() and stamp.read_text() == "\n".join(PINS):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PINS],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise AirflowUnavailable(f"cannot install {', '.join(PINS)}: {done.stderr[-500:]}")
    stamp.write_text("\n".join(PINS))
    return python


def main() -> int:
    """Make the venv when missing; a failure is one warning line (the test then skips)."""
    try:
        airflow_python()
    except AirflowUnavailable as exc:
        print(f"[airflow-venv] warning: {exc}; the Airflow DAG test will be skipped",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
