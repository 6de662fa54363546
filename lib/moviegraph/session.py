"""The one SparkSession builder used by every job and test: Delta Lake, optional GraphFrames.

Locally the JVM artifacts come from the offline cache in ``.jars/`` (see ``jvm.py``); on a
cluster the same builder takes ``spark.jars.packages`` (``spark.jars = "packages"``) or
jars already installed there (``"provided"``). Whatever spark-submit, its properties
file, ``spark-defaults.conf`` or ``PYSPARK_SUBMIT_ARGS`` set (master, deploy mode,
memory, jars, logging) wins; the config only fills what nobody set.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from pyspark import SparkConf
from pyspark.sql import SparkSession

from moviegraph import cds, jvm, sparkargs
from moviegraph.config import PROJECT_ROOT, SparkConfig

log = logging.getLogger(__name__)

LOG4J2_FILE = PROJECT_ROOT / "conf" / "log4j2.properties"


class SessionError(RuntimeError):
    """The session could not be built as configured."""


#: Settings read once, when the driver JVM starts: set on the spark-submit command line
#: (``spark-submit.sh``) or at JVM launch (plain ``python``), never on a running JVM.
JVM_START_KEYS = ("spark.driver.memory", "spark.driver.extraJavaOptions",
                  "spark.driver.extraClassPath")


def job_settings(cfg: SparkConfig, app_name: str) -> dict[str, str]:
    """Every Spark setting the job's config asks for (master and jars included).

    These are defaults: :func:`build_session` applies only those nobody else set.
    """
    settings = {
        "spark.master": cfg.master,
        "spark.app.name": app_name,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        # Delta rebuilds a table's state (its file list) from the log with this many
        # tasks (default 50) before every overwrite, MERGE and stats-answered count. The
        # project's tables hold a few files per commit, so the state is a few rows: one
        # task does it (measured on 2 cores: an overwrite of a small table 1.6 -> 0.9 CPU
        # s against 8 tasks).
        "spark.databricks.delta.snapshotPartitions": "1",
        # The per-commit checksum file (.crc) is optional (the protocol does not need it,
        # delta-rs ignores it) and Delta computes it with another pass over the state
        # after each commit: 0.9 -> 0.7 CPU s per small overwrite without it.
        "spark.databricks.delta.writeChecksumFile.enabled": "false",
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
    java_options = driver_java_options()
    if java_options:
        settings["spark.driver.extraJavaOptions"] = java_options
    use_graphframes = cfg.graphframes != "off"
    if cfg.jars == "local":
        try:
            jars = jvm.local_jars(require=True)
        except jvm.JarResolutionError as exc:
            raise SessionError(str(exc)) from None
        if not use_graphframes:
            jars = [j for j in jars if not j.name.startswith("graphframes")]
        settings["spark.jars"] = ",".join(str(j) for j in jars)
    elif cfg.jars == "packages":
        settings["spark.jars.packages"] = ",".join(jvm.packages(include_optional=use_graphframes))
    settings.update({key: str(value) for key, value in cfg.conf.items()})
    return settings


def log4j_option() -> str:
    """The JVM option that points log4j at the project's quiet console config."""
    return f"-Dlog4j2.configurationFile=file:{LOG4J2_FILE}"


def driver_java_options() -> str:
    """The project's driver JVM options: its quiet log4j config (when the file is there)
    and the class-data sharing archive when one was built for this JDK and Spark
    (:mod:`moviegraph.cds`)."""
    return " ".join(o for o in (log4j_option() if LOG4J2_FILE.is_file() else "",
                                cds.java_options()) if o)


def merged_java_options(given: str | None) -> str:
    """``given`` JVM options plus the project's log4j config and class archive, unless they
    name their own."""
    if not given:
        return driver_java_options()
    parts = [given]
    if "log4j2.configurationFile" not in given:
        parts.append(log4j_option())
    if not any(flag in given for flag in ("SharedArchiveFile", "ArchiveClassesAtExit",
                                          "-Xshare")):
        parts.append(cds.java_options())
    return " ".join(p for p in parts if p)


def _driver_jvm_running() -> bool:
    """True when a driver JVM exists: spark-submit started it (and this Python process),
    or an earlier session of this process did."""
    from pyspark import SparkContext

    return "PYSPARK_GATEWAY_PORT" in os.environ or SparkContext._gateway is not None


def settings_already_set() -> dict[str, str]:
    """Spark settings that spark-submit, its properties file or the platform already set.

    Under spark-submit the driver JVM exists and holds them as system properties (read
    after connecting to it). Under plain ``python`` no JVM exists yet: they are what
    ``PYSPARK_SUBMIT_ARGS`` and the spark-defaults file will give the JVM we launch.
    """
    if not _driver_jvm_running():
        return sparkargs.submitted_properties(sparkargs.pyspark_submit_args())
    from pyspark import SparkContext

    SparkContext._ensure_initialized()
    found = dict(SparkConf().getAll())  # loadDefaults: the JVM's spark.* properties
    # spark-submit names an application after its script when --name is not given.
    if found.get("spark.app.name") == os.path.basename(sys.argv[0] or ""):
        del found["spark.app.name"]
    return found


def _comparable(value: str) -> str:
    """A setting as spark-submit reports it, told apart from the config's only where it
    differs (spark-submit turns the jar paths the launcher derived from the config into
    ``file:`` URIs)."""
    return ",".join(part.removeprefix("file://") for part in value.split(","))


def build_session(cfg: SparkConfig, app_suffix: str = "") -> SparkSession:
    """Return the SparkSession for ``cfg``, creating it when none is active.

    Whatever spark-submit (options, ``--conf``, properties file), ``spark-defaults.conf``
    or ``PYSPARK_SUBMIT_ARGS`` set wins: the config only fills the settings nobody set,
    and each config value left unused is logged. Raises SessionError with a readable
    message when the Delta jars are missing or GraphFrames is required
    (``graphframes = "on"``) but not available.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Make executors' Python the driver's (a local venv, or the shipped archive).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    app_name = f"{cfg.app_name}-{app_suffix}" if app_suffix else cfg.app_name
    already = settings_already_set()
    jvm_running = _driver_jvm_running()
    builder = SparkSession.builder
    for key, value in job_settings(cfg, app_name).items():
        if key == "spark.driver.extraJavaOptions" and key in already:
            value = merged_java_options(already[key])
            if value == already[key]:
                continue
        elif key in already:
            if _comparable(already[key]) != _comparable(value):
                log.info("spark: %s = %s as set by spark-submit / the platform (config: %s)",
                         key, already[key], value)
            continue
        if jvm_running and key in JVM_START_KEYS:
            continue  # too late: spark-submit started the JVM (spark-submit.sh sets these)
        builder = builder.config(key, value)

    spark = builder.getOrCreate()
    if not delta_available(spark):
        raise SessionError(
            "Delta Lake's JVM classes are not on the classpath: spark.jars / "
            "spark.jars.packages set by spark-submit or the platform replaced the job's "
            f"({', '.join(jvm.packages())}); add them there, or leave those settings to "
            "the job (spark.jars = 'local' or 'packages')")
    if cfg.graphframes == "on" and not graphframes_available(spark):
        raise SessionError(
            "spark.graphframes = 'on' but the GraphFrames JVM artifact is not on the "
            f"classpath (listed in {jvm.OPTIONAL_FILE}); resolve it or set it to 'auto'")
    return spark


def _class_available(spark: SparkSession, name: str) -> bool:
    try:
        jvm_view: Any = spark.sparkContext._jvm
        jvm_view.java.lang.Class.forName(
            name, True, jvm_view.Thread.currentThread().getContextClassLoader())
        return True
    except Exception:  # py4j wraps ClassNotFoundException
        return False


def delta_available(spark: SparkSession) -> bool:
    """True when Delta Lake's session extension can be loaded in this session."""
    return _class_available(spark, "io.delta.sql.DeltaSparkSessionExtension")


def graphframes_available(spark: SparkSession) -> bool:
    """True when the GraphFrames JVM classes can be loaded in this session."""
    return _class_available(spark, "org.graphframes.GraphFrame")
