"""What spark-submit, its properties file or a platform already set, as Spark properties.

The job's config only fills settings nobody else set: a master given to ``spark-submit``
(``--master yarn``), a ``--conf`` or a line of ``spark-defaults.conf`` always wins over
``conf/*.toml``. Two places need to know what was set before any JVM exists:

- ``spark-submit.sh`` (via :mod:`moviegraph.submit`) adds derived options to the
  spark-submit command line, where they would beat ``spark-defaults.conf``;
- :func:`moviegraph.session.build_session` under plain ``python`` launches the JVM itself,
  with ``PYSPARK_SUBMIT_ARGS`` and the defaults file as the platform's word.

Under ``spark-submit`` itself the JVM already holds the final settings, and the session
reads them from there instead.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

#: spark-submit options that stand for one Spark property.
OPTION_PROPERTIES: dict[str, str] = {
    "--master": "spark.master",
    "--deploy-mode": "spark.submit.deployMode",
    "--name": "spark.app.name",
    "--driver-memory": "spark.driver.memory",
    "--driver-cores": "spark.driver.cores",
    "--driver-java-options": "spark.driver.extraJavaOptions",
    "--driver-class-path": "spark.driver.extraClassPath",
    "--executor-memory": "spark.executor.memory",
    "--executor-cores": "spark.executor.cores",
    "--num-executors": "spark.executor.instances",
    "--total-executor-cores": "spark.cores.max",
    "--jars": "spark.jars",
    "--packages": "spark.jars.packages",
    "--py-files": "spark.submit.pyFiles",
    "--files": "spark.files",
    "--archives": "spark.archives",
    "--queue": "spark.yarn.queue",
    "--principal": "spark.kerberos.principal",
    "--keytab": "spark.kerberos.keytab",
}
#: spark-submit options that take a value but set no property of their own here.
OTHER_VALUED_OPTIONS = ("--conf", "-c", "--properties-file", "--repositories",
                        "--exclude-packages", "--class", "--proxy-user")
# Java properties syntax: "key value", "key=value" or "key: value".
_PROPERTY = re.compile(r"^([^\s=:]+)\s*(?:[=:]|\s)\s*(.*)$")


def spark_home() -> Path:
    """``$SPARK_HOME``, else the pyspark distribution's folder."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    import pyspark

    return Path(pyspark.__file__).parent


def read_properties(path: Path) -> dict[str, str]:
    """A ``spark-defaults.conf``-style file: ``key value`` (or ``key=value``) lines."""
    out: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        match = _PROPERTY.match(line.strip())
        if match and not line.lstrip().startswith(("#", "!")):
            out[match.group(1)] = match.group(2).strip()
    return out


def defaults_file(properties_file: str | None = None,
                  env: Mapping[str, str] | None = None) -> Path | None:
    """The properties file spark-submit will load: ``--properties-file``, else
    ``$SPARK_CONF_DIR/spark-defaults.conf``, else ``$SPARK_HOME/conf/spark-defaults.conf``."""
    env = os.environ if env is None else env
    if properties_file:
        return Path(properties_file)
    conf_dir = Path(env["SPARK_CONF_DIR"]) if env.get("SPARK_CONF_DIR") else \
        spark_home() / "conf"
    path = conf_dir / "spark-defaults.conf"
    return path if path.is_file() else None


def submitted_properties(args: Sequence[str], env: Mapping[str, str] | None = None,
                         with_defaults: bool = True) -> dict[str, str]:
    """Spark properties that spark-submit ``args`` (and its defaults file) set.

    ``--conf`` and options win over the properties file, as in spark-submit.
    """
    explicit: dict[str, str] = {}
    properties_file = None
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in OPTION_PROPERTIES or name in OTHER_VALUED_OPTIONS:
            if eq:
                value = inline
            elif i + 1 < len(args):
                value = args[i + 1]
                i += 1
            else:
                break
            if name in OPTION_PROPERTIES:
                explicit[OPTION_PROPERTIES[name]] = value
            elif name in ("--conf", "-c"):
                key, _, conf_value = value.partition("=")
                explicit[key.strip()] = conf_value
            elif name == "--properties-file":
                properties_file = value
        i += 1
    if not with_defaults:
        return explicit
    path = defaults_file(properties_file, env)
    merged = read_properties(path) if path is not None and path.is_file() else {}
    merged.update(explicit)
    return merged


def pyspark_submit_args(env: Mapping[str, str] | None = None) -> list[str]:
    """``$PYSPARK_SUBMIT_ARGS`` as arguments (what plain ``python`` passes spark-submit)."""
    env = os.environ if env is None else env
    return shlex.split(env.get("PYSPARK_SUBMIT_ARGS", ""))
