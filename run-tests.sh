#!/usr/bin/env bash
# Run the test suite on a fresh clone: sets everything up (bin/bootstrap.sh), checks
# style with ruff and the library's types with mypy, then runs pytest. Extra arguments
# go to pytest, e.g.
#   ./run-tests.sh tests/unit            # no Spark needed
#   ./run-tests.sh -m slow               # only the slow checks (README: Tests)
# pytest's "no tests collected" (exit 5) counts as a failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
bin/bootstrap.sh
# The report's test renders it in headless Chromium (Debian's package). Only the tests
# install it: a job never installs system packages.
bin/ensure-chromium.sh
# The Airflow DAG test loads the DAG in a virtualenv of its own (.venv-airflow/): made here,
# once per checkout (minutes of pip), so that pytest's time is the tests' own.
PYTHONPATH="$root/lib${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python -m tests.integration.airflow_venv
.venv/bin/ruff check lib tests jobs benchmarks examples
.venv/bin/mypy lib
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
