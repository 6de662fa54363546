"""spark-submit options derived from the job's config (used by ``spark-submit.sh``).

Under spark-submit the JVM starts before any Python runs, so what must be known at JVM
start (master, driver memory, jars, log4j config) is computed here from the same config
the job will load, and printed one argument per line for the shell script.
"""

from __future__ import annotations

import sys

from moviegraph import jvm
from moviegraph.cli import parse
from moviegraph.config import ConfigError
from moviegraph.session import LOG4J2_FILE


def submit_args(job_argv: list[str], passthrough: list[str]) -> list[str]:
    """spark-submit options for ``job_argv`` that ``passthrough`` does not already set."""
    _, cfg = parse(job_argv)
    given = set(passthrough)
    out: list[str] = []
    if "--master" not in given:
        out += ["--master", cfg.spark.master]
    if "--driver-memory" not in given:
        out += ["--driver-memory", cfg.spark.driver_memory]
    with_gf = cfg.spark.graphframes != "off"
    if cfg.spark.jars == "local" and "--jars" not in given:
        jars = [j for j in jvm.local_jars(require=True)
                if with_gf or not j.name.startswith("graphframes")]
        out += ["--jars", ",".join(str(j) for j in jars)]
    elif cfg.spark.jars == "packages" and "--packages" not in given:
        out += ["--packages", ",".join(jvm.packages(include_optional=with_gf))]
    log4j = f"-Dlog4j2.configurationFile=file:{LOG4J2_FILE}"
    out += ["--conf", f"spark.driver.extraJavaOptions={log4j}"]
    return out


def main() -> int:
    """``python -m moviegraph.submit <passthrough...> -- <job argv...>``."""
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else 0
    passthrough, job_argv = argv[:split], argv[split + 1:]
    try:
        for arg in submit_args(job_argv, passthrough):
            print(arg)
    except (ConfigError, jvm.JarResolutionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
