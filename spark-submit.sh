#!/usr/bin/env bash
# The one entry point: ./spark-submit.sh [spark-submit options] <job> [job options]
#
#   ./spark-submit.sh pipeline                       # all stages, MovieLens 100K, local Spark
#   ./spark-submit.sh ingest --strict
#   ./spark-submit.sh walks --set walks.p=0.5 --set walks.q=2
#   ./spark-submit.sh --master yarn --deploy-mode client pipeline --config conf/cluster.toml
#   ./spark-submit.sh --ship-venv --master yarn --deploy-mode cluster pipeline --config conf/cluster.toml
#
# Off local mode (or with --ship) the package goes to the cluster as a zip (--py-files);
# --ship-venv also packs the virtualenv (venv-pack, --archives) so executors get torch,
# numpy and pyarrow without anything installed on the nodes; --ship-executor-env packs
# only what Spark tasks import (no torch: a few hundred MB instead of several GB), enough
# for every stage except train.distributed on executors.
#
# spark-submit's own options (--master, --deploy-mode, --conf, --executor-memory, ...) may
# come before or after the job name; the rest goes to the job (`./spark-submit.sh <job> --help`
# lists the job's own options).
# The first run sets everything up (bin/bootstrap.sh): virtualenv, packages, JVM jars.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/bin/bootstrap.sh"
venv="$root/.venv"

spark_opts=()   # passed to spark-submit
job_args=()     # passed to the job
job=""
ship=0
ship_env=""     # "", "venv" (everything) or "executor" (what Spark tasks import)
while [ $# -gt 0 ]; do
  case "$1" in
    --master|--deploy-mode|--conf|--name|--queue|--num-executors|--executor-memory|\
    --executor-cores|--driver-memory|--driver-cores|--total-executor-cores|--archives|\
    --py-files|--files|--jars|--packages|--properties-file|--principal|--keytab)
      spark_opts+=("$1" "$2"); shift 2 ;;
    --ship) ship=1; shift ;;
    --ship-venv) ship=1; ship_env=venv; shift ;;
    --ship-executor-env) ship=1; ship_env=executor; shift ;;
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
for arg in ${job_args[@]+"${job_args[@]}"}; do
  case "$arg" in
    # The job's own options, from the job itself: spark-submit would take --help as its
    # own and fail with a Java stack trace.
    -h|--help) exec "$venv/bin/python" -m moviegraph "$job" --help ;;
  esac
done

# Options fixed at JVM start (master, driver memory, jars), derived from the job's config
# where neither these options nor spark-submit's properties file set them; a bad config
# fails here, before Spark starts. The first line is the master the job will run on.
derived_text="$("$venv/bin/python" -m moviegraph.submit "${spark_opts[@]}" -- "$job" "${job_args[@]}")" \
  || exit 2
mapfile -t derived <<< "$derived_text"
master="${derived[0]}"
derived=("${derived[@]:1}")
case "$master" in local*) ;; *) ship=1 ;; esac
if [ "$ship" -eq 1 ]; then
  zip_path="$("$venv/bin/python" -m moviegraph.package zip)"
  derived+=(--py-files "$zip_path")
fi
if [ -n "$ship_env" ]; then
  # Built once per set of pinned requirements (the name carries their hash), then reused.
  archive="$("$venv/bin/python" -m moviegraph.package "$ship_env")"
  derived+=(--archives "$archive#environment" --conf spark.pyspark.python=./environment/bin/python)
  # A client-mode driver runs here, outside any container: it keeps this venv's Python.
  case " ${spark_opts[*]} " in
    *" --deploy-mode cluster "*) ;;
    *) derived+=(--conf "spark.pyspark.driver.python=$venv/bin/python") ;;
  esac
fi
export PYSPARK_PYTHON="$venv/bin/python"
export PYSPARK_DRIVER_PYTHON="$venv/bin/python"
exec "$venv/bin/spark-submit" "${derived[@]}" "${spark_opts[@]}" \
  "$root/jobs/$job.py" "${job_args[@]}"
