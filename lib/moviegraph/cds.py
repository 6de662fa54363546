"""A class-data sharing (CDS) archive for the driver JVM, built once per JDK and Spark.

Every job starts a driver JVM that loads and verifies some seventeen thousand classes of
Spark, Scala, Hadoop, Parquet and Arrow from their jars before the first table is read;
on 2 cores that, with the JIT compiling them, is much of a small run's CPU. A dynamic CDS
archive (JDK 13+: ``-XX:ArchiveClassesAtExit``) taken once, after a small workload of the
operations the stages use, holds those classes parsed and verified; later JVMs map it
instead (``-XX:SharedArchiveFile``). Measured on 2 cores, ML-100K ingest -> edges
(``./spark-submit.sh pipeline --until edges --quiet --force``, medians of three runs):
45.4 -> 41.3 s wall, 73 -> 67 CPU s.

The archive fits one JDK and one class path (the virtualenv's pyspark jars), so its name
carries a hash of both and it lives in ``.jars/cds/`` of the checkout (never in git).
``bin/bootstrap.sh`` builds it when missing (``python -m moviegraph.cds ensure``: about
40 s once, 183 MiB). The JVM ignores an archive that does not fit (``-Xshare:auto``)
without a word (``-Xlog:cds=off``), and a run without one starts the classic way: the
archive only ever saves time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from moviegraph.jvm import JARS_DIR, local_jars

ARCHIVE_DIR = JARS_DIR / "cds"
#: Set by :func:`build` for its workload process: dump the archive to this path at exit.
DUMP_ENV = "MOVIEGRAPH_CDS_DUMP"
#: The JVM would warn about an archive it cannot use, and list the classes it leaves out
#: of a dump; neither is the user's concern.
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def _java() -> Path | None:
    """The ``java`` that spark-submit starts: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = Path(home) / "bin" / "java" if home else None
    if found is None or not found.is_file():
        which = shutil.which("java")
        found = Path(which) if which else None
    return found.resolve() if found is not None else None


def archive_path() -> Path | None:
    """Where the archive for this JDK and Spark lives (None without a ``java``).

    The name hashes what the archive depends on: the JDK (its binary's path, size and
    time), pyspark's version and jars folder (the driver's class path), and the cached
    jars' names.
    """
    java = _java()
    if java is None:
        return None
    import pyspark

    stat = java.stat()
    jars = Path(pyspark.__file__).parent / "jars"
    key = repr((str(java), stat.st_size, int(stat.st_mtime), pyspark.__version__,
                str(jars.resolve()), sorted(j.name for j in local_jars())))
    return ARCHIVE_DIR / f"driver-{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def java_options() -> str:
    """Driver JVM options that use the archive: empty when none was built for this JDK and
    Spark; the dump options inside :func:`build`'s workload."""
    dump = os.environ.get(DUMP_ENV)
    if dump:
        return f"-XX:ArchiveClassesAtExit={dump} {_QUIET}"
    path = archive_path()
    if path is None or not path.is_file():
        return ""
    return f"-XX:SharedArchiveFile={path} -Xshare:auto {_QUIET}"


def build() -> Path | None:
    """Run :func:`_workload` in a JVM that dumps its classes at exit; put the archive in
    place (atomically: a concurrent run sees the old state or the whole archive). Returns
    its path, or None (with the reason on stderr) when it could not be made."""
    target = archive_path()
    if target is None:
        print("[cds] no java found; skipped", file=sys.stderr)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cds-", dir=target.parent) as tmp:
        dump = Path(tmp) / target.name
        done = subprocess.run([sys.executable, "-m", "moviegraph.cds", "workload", tmp],
                              env={**os.environ, DUMP_ENV: str(dump)},
                              capture_output=True, text=True)
        if done.returncode != 0 or not dump.is_file():
            tail = (done.stderr.strip().splitlines() or ["no archive written"])[-1]
            print(f"[cds] archive not built ({tail}); jobs start without it",
                  file=sys.stderr)
            return None
        os.replace(dump, target)
    for old in target.parent.glob("driver-*.jsa"):  # archives of an earlier JDK or Spark
        if old != target:
            old.unlink(missing_ok=True)
    return target


def _workload(folder: str) -> None:
    """What the stages do, small: Delta overwrite, append and read, text parsing,
    aggregation, a join, a window, Arrow both ways (the classes they load are archived)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from moviegraph import config
    from moviegraph.session import build_session

    cfg = config.load([], ["spark.master=local[2]", "spark.progress=false",
                           "spark.shuffle_partitions=2"])
    spark = build_session(cfg.spark, "cds")
    table = f"{folder}/table"
    text = Path(folder) / "lines.txt"
    text.write_text("".join(f"{i}\t{i % 7}\t{i % 5}.0\n" for i in range(200)))
    lines = spark.read.text(str(text)).select(F.split("value", "\t").alias("p"))
    rows = lines.select(F.get("p", 0).try_cast("int").alias("a"),
                        F.get("p", 1).try_cast("int").alias("b"),
                        F.get("p", 2).try_cast("double").alias("c"))
    rows.write.format("delta").mode("overwrite").save(table)
    rows.write.format("delta").mode("append").save(table)
    df = spark.read.format("delta").load(table)
    ranked = df.withColumn("k", F.row_number().over(Window.partitionBy("b").orderBy("a")))
    joined = ranked.join(df.groupBy("b").agg(F.count(F.lit(1)).alias("n")), "b")
    joined.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(table)
    arrow = spark.read.format("delta").load(table).mapInArrow(
        lambda batches: batches, joined.schema).toArrow()
    spark.createDataFrame(arrow.to_pandas()).collect()
    spark.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m moviegraph.cds [build|ensure|path|workload FOLDER]``."""
    args = sys.argv[1:] if argv is None else argv
    cmd = args[0] if args else "path"
    if cmd == "build":
        path = build()
        if path is not None:
            print(f"[cds] driver JVM class archive: {path} "
                  f"({path.stat().st_size / 2**20:,.0f} MiB)")
        return 0  # an optimisation: never fail the set-up over it
    if cmd == "ensure":  # build unless this JDK and Spark already have their archive
        path = archive_path()
        if path is not None and path.is_file():
            return 0
        return main(["build"])
    if cmd == "path":
        print(archive_path() or "")
        return 0
    if cmd == "workload" and len(args) == 2:
        _workload(args[1])
        return 0
    print(f"usage: python -m moviegraph.cds [build|ensure|path], got {' '.join(args)!r}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
