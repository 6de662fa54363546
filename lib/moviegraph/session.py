"""The one SparkSession builder used by every job and test: Delta Lake, optional GraphFrames.

Locally the JVM artifacts come from the offline cache in ``.jars/`` (see ``jvm.py``); on a
cluster the same builder takes ``spark.jars.packages`` (``spark.jars = "packages"``) or
jars already installed there (``"provided"``). Under ``spark-submit`` the master and the
classpath are whatever spark-submit set; the builder only adds what is missing.
"""

from __future__ import annotations

import logging
import os
import sys

from pyspark import SparkConf
from pyspark.sql import SparkSession

from moviegraph import jvm
from moviegraph.config import PROJECT_ROOT, SparkConfig

log = logging.getLogger(__name__)

LOG4J2_FILE = PROJECT_ROOT / "conf" / "log4j2.properties"


class SessionError(RuntimeError):
    """The session could not be built as configured."""


def _base_settings(cfg: SparkConfig) -> dict[str, str]:
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        # Delta reads its log with this many tasks (default 50): tiny tables pay for it.
        "spark.databricks.delta.snapshotPartitions": str(cfg.shuffle_partitions),
        "spark.ui.enabled": str(cfg.ui).lower(),
        "spark.ui.showConsoleProgress": str(cfg.progress).lower(),
        # Arrow moves batches between the JVM and Python workers (mapInArrow, toArrow).
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Tables read by delta-rs (the trainer's fast path) must not use deletion
        # vectors or column mapping, which it refuses.
        "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Same answers whatever the cluster: no adaptive coalescing surprises in tests.
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": cfg.driver_memory,
    }
    if LOG4J2_FILE.is_file():
        settings["spark.driver.extraJavaOptions"] = (
            f"-Dlog4j2.configurationFile=file:{LOG4J2_FILE}")
    return settings


def build_session(cfg: SparkConfig, app_suffix: str = "") -> SparkSession:
    """Return the SparkSession for ``cfg``, creating it when none is active.

    Raises SessionError with a readable message when the Delta jars are missing or
    GraphFrames is required (``graphframes = "on"``) but not available.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Make executors' Python the driver's (a local venv, or the shipped archive).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    submitted = SparkConf()  # holds spark-submit's settings when launched through it
    builder = SparkSession.builder.appName(
        f"{cfg.app_name}-{app_suffix}" if app_suffix else cfg.app_name)
    if not submitted.contains("spark.master"):
        builder = builder.master(cfg.master)
    for key, value in _base_settings(cfg).items():
        if not submitted.contains(key):
            builder = builder.config(key, value)

    use_graphframes = cfg.graphframes != "off"
    if cfg.jars == "local" and not submitted.contains("spark.jars"):
        try:
            jars = jvm.local_jars(require=True)
        except jvm.JarResolutionError as exc:
            raise SessionError(str(exc)) from None
        if not use_graphframes:
            jars = [j for j in jars if not j.name.startswith("graphframes")]
        builder = builder.config("spark.jars", ",".join(str(j) for j in jars))
    elif cfg.jars == "packages" and not submitted.contains("spark.jars.packages"):
        builder = builder.config("spark.jars.packages",
                                 ",".join(jvm.packages(include_optional=use_graphframes)))
    for key, value in cfg.conf.items():
        builder = builder.config(key, value)

    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if cfg.graphframes == "on" and not graphframes_available(spark):
        raise SessionError(
            "spark.graphframes = 'on' but the GraphFrames JVM artifact is not on the "
            f"classpath (listed in {jvm.OPTIONAL_FILE}); resolve it or set it to 'auto'")
    return spark


def graphframes_available(spark: SparkSession) -> bool:
    """True when the GraphFrames JVM classes can be loaded in this session."""
    try:
        jvm_view = spark.sparkContext._jvm
        jvm_view.java.lang.Class.forName(
            "org.graphframes.GraphFrame", True,
            jvm_view.Thread.currentThread().getContextClassLoader())
        return True
    except Exception:  # py4j wraps ClassNotFoundException
        return False
