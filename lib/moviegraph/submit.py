"""spark-submit options derived from the job's config (used by ``spark-submit.sh``).

Under spark-submit the JVM starts before any Python runs, so what must be known at JVM
start (master, driver memory, jars, log4j config) is computed here from the same config
the job will load. Only what nobody set is added: a ``--master``, ``--conf`` or
``--driver-memory`` given to ``spark-submit.sh``, or a line of the properties file
spark-submit will load (``--properties-file``, else ``spark-defaults.conf``), wins.

Prints the effective master on the first line, then the options, one argument per line.
"""

from __future__ import annotations

import sys

from moviegraph import jvm, sparkargs
from moviegraph.cli import parse
from moviegraph.config import ConfigError
from moviegraph.session import SessionError, job_settings, merged_java_options

#: Settings the command line must carry (the JVM reads them at start), with their option.
_AT_JVM_START = {"spark.master": "--master", "spark.driver.memory": "--driver-memory",
                 "spark.jars": "--jars", "spark.jars.packages": "--packages"}


def submit_args(job_argv: list[str], passthrough: list[str]) -> tuple[str, list[str]]:
    """``(effective master, spark-submit options)`` for ``job_argv`` that ``passthrough``
    and the properties file do not already set."""
    _, cfg = parse(job_argv)
    already = sparkargs.submitted_properties(passthrough)
    wanted = job_settings(cfg.spark, cfg.spark.app_name)
    out: list[str] = []
    for key, option in _AT_JVM_START.items():
        if key in wanted and key not in already:
            out += [option, wanted[key]]
    master = already.get("spark.master", wanted["spark.master"])
    cluster_mode = already.get("spark.submit.deployMode") == "cluster"
    # In cluster deploy mode the driver runs elsewhere: the platform's logging applies.
    if "spark.driver.extraJavaOptions" in wanted and not cluster_mode:
        given = already.get("spark.driver.extraJavaOptions")
        merged = merged_java_options(given)
        if merged != given:
            out += ["--conf", f"spark.driver.extraJavaOptions={merged}"]
    return master, out


def main() -> int:
    """``python -m moviegraph.submit <passthrough...> -- <job argv...>``."""
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else 0
    passthrough, job_argv = argv[:split], argv[split + 1:]
    try:
        master, args = submit_args(job_argv, passthrough)
    except (ConfigError, jvm.JarResolutionError, SessionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(master)
    for arg in args:
        print(arg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
