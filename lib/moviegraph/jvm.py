"""JVM artifacts (Delta Lake, optionally GraphFrames): resolve once, then run offline.

The coordinates live in ``conf/jvm-packages.txt`` (required) and
``conf/jvm-optional.txt`` (used when they resolve). ``resolve`` asks Maven, with the
machine's own Maven configuration (no registry address is written here), to copy each
artifact and its runtime dependencies into ``.jars/``; pyspark already ships Spark and
Scala, so those are left out. Sessions then put the cached jars on the classpath, so
later runs and CI need no network.

Command line::

    python -m moviegraph.jvm resolve      # fill .jars/ (idempotent)
    python -m moviegraph.jvm classpath    # comma-separated jars, for spark-submit --jars
    python -m moviegraph.jvm packages     # coordinates, for spark.jars.packages
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from moviegraph.config import PROJECT_ROOT

CONF_DIR = PROJECT_ROOT / "conf"
JARS_DIR = PROJECT_ROOT / ".jars"
REQUIRED_FILE = CONF_DIR / "jvm-packages.txt"
OPTIONAL_FILE = CONF_DIR / "jvm-optional.txt"
# Provided by pyspark's own jars/ folder; copying them again would shadow its versions.
_PROVIDED_GROUPS = "org.apache.spark,org.scala-lang,org.scala-lang.modules,org.slf4j"


class JarResolutionError(RuntimeError):
    """A required JVM artifact could not be resolved or is missing from the cache."""


def read_coordinates(path: Path) -> list[str]:
    """Maven coordinates (group:artifact:version) listed in ``path``, comments skipped."""
    if not path.is_file():
        return []
    coords = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            if line.count(":") != 2:
                raise JarResolutionError(f"{path}: {line!r} is not group:artifact:version")
            coords.append(line)
    return coords


def _artifact_dir(coord: str) -> Path:
    group, artifact, version = coord.split(":")
    return JARS_DIR / f"{group}__{artifact}__{version}"


def _artifact_name(jar_file: str) -> str:
    """``jackson-core-2.13.5.jar`` -> ``jackson-core``."""
    m = re.match(r"^(.*?)-\d[\w.\-]*\.jar$", jar_file)
    return m.group(1) if m else jar_file.removesuffix(".jar")


def _pyspark_artifact_names() -> set[str]:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    return {_artifact_name(j.name) for j in jars.glob("*.jar")}


def _maven_copy(coord: str, dest: Path) -> None:
    group, artifact, version = coord.split(":")
    pom = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>moviegraph</groupId><artifactId>jvm-deps</artifactId><version>0</version>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>
      <version>{version}</version></dependency>
  </dependencies>
</project>
"""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarResolutionError("Maven (mvn) is not on PATH; it resolves the JVM artifacts")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "pom.xml").write_text(pom)
        staging = Path(tmp) / "jars"
        cmd = [mvn, "-q", "-B", "-f", str(Path(tmp) / "pom.xml"),
               "dependency:copy-dependencies", f"-DoutputDirectory={staging}",
               "-DincludeScope=runtime", f"-DexcludeGroupIds={_PROVIDED_GROUPS}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise JarResolutionError(f"Maven could not resolve {coord}:\n{tail}")
        # pyspark already ships many of these (jackson, parquet, hadoop, log4j) in
        # versions Spark was built with; a second copy would shadow them.
        shipped = _pyspark_artifact_names()
        for jar in list(staging.glob("*.jar")):
            if _artifact_name(jar.name) in shipped:
                jar.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staging), str(dest))


def resolve(verbose: bool = True) -> list[Path]:
    """Resolve required and optional artifacts into .jars/; return the jar files.

    Already-resolved artifacts are not asked for again. A required artifact that does
    not resolve raises; an optional one is reported and skipped (and retried next time).
    """
    for coord, required in ([(c, True) for c in read_coordinates(REQUIRED_FILE)]
                            + [(c, False) for c in read_coordinates(OPTIONAL_FILE)]):
        dest = _artifact_dir(coord)
        if dest.is_dir() and any(dest.glob("*.jar")):
            continue
        try:
            _maven_copy(coord, dest)
            if verbose:
                print(f"[jvm] resolved {coord} ({len(list(dest.glob('*.jar')))} jars)")
        except JarResolutionError as exc:
            if required:
                raise
            if verbose:
                print(f"[jvm] optional {coord} not available, continuing without it: "
                      f"{str(exc).splitlines()[0]}", file=sys.stderr)
    return local_jars(require=True)


def local_jars(require: bool = False) -> list[Path]:
    """Cached jars for every listed artifact that resolved, deduplicated by file name."""
    jars: dict[str, Path] = {}
    for coord in read_coordinates(REQUIRED_FILE) + read_coordinates(OPTIONAL_FILE):
        d = _artifact_dir(coord)
        if not d.is_dir():
            if require and coord in read_coordinates(REQUIRED_FILE):
                raise JarResolutionError(
                    f"{coord} is not in {JARS_DIR}; run bin/bootstrap.sh (or "
                    "`python -m moviegraph.jvm resolve`) once with Maven access")
            continue
        for jar in sorted(d.glob("*.jar")):
            jars.setdefault(jar.name, jar)
    return list(jars.values())


def packages(include_optional: bool = True) -> list[str]:
    """Coordinates for ``spark.jars.packages`` (cluster mode with Maven access)."""
    coords = read_coordinates(REQUIRED_FILE)
    if include_optional:
        coords += read_coordinates(OPTIONAL_FILE)
    return coords


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m moviegraph.jvm``."""
    args = sys.argv[1:] if argv is None else argv
    cmd = args[0] if args else "classpath"
    try:
        if cmd == "resolve":
            jars = resolve()
            print(f"[jvm] {len(jars)} jars cached in {JARS_DIR}")
        elif cmd == "classpath":
            print(",".join(str(j) for j in local_jars(require=True)))
        elif cmd == "packages":
            print(",".join(packages()))
        else:
            print(f"usage: python -m moviegraph.jvm [resolve|classpath|packages], got {cmd!r}",
                  file=sys.stderr)
            return 2
    except JarResolutionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
