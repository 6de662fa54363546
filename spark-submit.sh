#!/usr/bin/env bash
# The one entry point: ./spark-submit.sh [spark-submit options] <job> [job options]
#
#   ./spark-submit.sh pipeline                       # all stages, MovieLens 100K, local Spark
#   ./spark-submit.sh ingest --strict
#   ./spark-submit.sh walks --set walks.p=0.5 --set walks.q=2
#   ./spark-submit.sh --master yarn --deploy-mode client pipeline --config conf/cluster.toml
#
# spark-submit's own options (--master, --deploy-mode, --conf, --executor-memory, ...) may
# come before or after the job name; the rest goes to the job (see `python -m moviegraph -h`).
# The first run sets everything up (bin/bootstrap.sh): virtualenv, packages, JVM jars.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/bin/bootstrap.sh"
venv="$root/.venv"

spark_opts=()   # passed to spark-submit
job_args=()     # passed to the job
job=""
while [ $# -gt 0 ]; do
  case "$1" in
    --master|--deploy-mode|--conf|--name|--queue|--num-executors|--executor-memory|\
    --executor-cores|--driver-memory|--driver-cores|--total-executor-cores|--archives|\
    --py-files|--files|--jars|--packages|--properties-file|--principal|--keytab)
      spark_opts+=("$1" "$2"); shift 2 ;;
    -h|--help)
      if [ -z "$job" ]; then sed -n '2,11p' "$0"; exit 0; fi
      job_args+=("$1"); shift ;;
    *)
      if [ -z "$job" ]; then job="$1"; else job_args+=("$1"); fi
      shift ;;
  esac
done
if [ -z "$job" ]; then
  echo "usage: ./spark-submit.sh [spark-submit options] <job> [job options]" >&2
  echo "jobs: $(ls "$root/jobs" | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi
if [ ! -f "$root/jobs/$job.py" ]; then
  echo "unknown job '$job'; jobs: $(ls "$root/jobs" | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi

# Options fixed at JVM start (master, driver memory, jars), derived from the job's config;
# a bad config fails here, before Spark starts.
derived_text="$("$venv/bin/python" -m moviegraph.submit "${spark_opts[@]}" -- "$job" "${job_args[@]}")" \
  || exit 2
mapfile -t derived <<< "$derived_text"
export PYSPARK_PYTHON="$venv/bin/python"
export PYSPARK_DRIVER_PYTHON="$venv/bin/python"
exec "$venv/bin/spark-submit" "${derived[@]}" "${spark_opts[@]}" \
  "$root/jobs/$job.py" "${job_args[@]}"
