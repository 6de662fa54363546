"""Text files as (source, line_no, raw) rows, line numbers exact, read in parallel.

Spark's text reader splits a file into blocks and gives no line numbers. Each line
belongs to exactly one block (a split skips its partial first line and finishes its
last), and a block's lines are contiguous and in order inside its partition. So one
cheap pass counts lines per (file, block start); the prefix sums of those counts give
each block's first line number, and ``monotonically_increasing_id`` gives the offset of
a row inside its block. No row ever goes through Python.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def numbered_lines(spark: SparkSession, paths: list[str]) -> DataFrame:
    """Rows ``(source, line_no, raw)`` for every line of ``paths`` (UTF-8/ASCII text).

    ``line_no`` is 1-based within each file. The files are read twice (once to count
    lines per block); callers that use the result more than once should persist it.
    """
    rows = (spark.read.text(paths)
            .select(F.input_file_name().alias("source"),
                    F.input_file_block_start().alias("block"),
                    F.monotonically_increasing_id().alias("rid"),
                    F.col("value").alias("raw")))
    blocks = (rows.groupBy("source", "block")
              .agg(F.min("rid").alias("first_rid"), F.count(F.lit(1)).alias("n"))
              .collect())
    offsets = []
    for source in sorted({b["source"] for b in blocks}):
        seen = 0
        for b in sorted((b for b in blocks if b["source"] == source), key=lambda b: b["block"]):
            offsets.append((source, b["block"], b["first_rid"], seen))
            seen += b["n"]
    if not offsets:
        return rows.select("source", F.lit(0).cast("long").alias("line_no"), "raw")
    offset_df = spark.createDataFrame(
        offsets, "source string, block long, first_rid long, lines_before long")
    numbered = (rows.join(F.broadcast(offset_df), ["source", "block"])
                .select("source",
                        (F.col("lines_before") + F.col("rid") - F.col("first_rid") + 1)
                        .alias("line_no"),
                        "raw"))
    return numbered
