"""Stage wiring: config -> library calls -> tables, one run record per stage.

Each stage function takes the session, the config, the warehouse and its ``StageRun``
(to fill with output versions, row counts and notes) and returns a short summary.
``pipeline.py`` runs them: locking, skipping what is up to date, run records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import SparkSession

from moviegraph.config import PROJECT_ROOT, Config
from moviegraph.graph.stages import stage_edges, stage_pairs
from moviegraph.runs import StageRun
from moviegraph.sources.fetch import fetch
from moviegraph.sources.ingest import IngestError, ingest
from moviegraph.tables import Warehouse

log = logging.getLogger("moviegraph")


def _data_dir(cfg: Config) -> Path:
    d = Path(cfg.data.dir)
    return d if d.is_absolute() else PROJECT_ROOT / d


def input_folder(cfg: Config) -> str:
    """The raw input folder for ingest: fetched dataset or ``ingest.path``."""
    if cfg.ingest.dataset == "path":
        if not cfg.ingest.path:
            raise IngestError("ingest.dataset = 'path' needs ingest.path (--path FOLDER)")
        path = cfg.ingest.path
        return path if "://" in path else str(Path(path).resolve())
    return str(fetch(cfg.ingest.dataset, _data_dir(cfg)).resolve())


def stage_ingest(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Raw MovieLens files -> ratings, movies, rejected."""
    folder = input_folder(cfg)
    run.notes["input"] = folder
    result = ingest(spark, wh, folder, cfg.ingest.format, strict=cfg.ingest.strict,
                    append=cfg.ingest.append)
    run.outputs.update(result.versions)
    run.rows.update({"ratings": result.ratings, "movies": result.movies,
                     "rejected": sum(result.rejected.values())})
    run.notes["rejected"] = result.rejected
    return result.summary()


def stage_walks(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """edges -> walks, vocab (node2vec walks, broadcast or partitioned mode)."""
    from moviegraph.walks.spark import generate_walks

    return generate_walks(spark, wh, cfg.walks, run).summary(cfg.walks)


def stage_train(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """walks, vocab, ratings -> embeddings, user_embeddings, history (PyTorch trainers)."""
    from moviegraph.train.stage import stage_train as train

    return train(spark, cfg, wh, run)


def stage_similar(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """embeddings, user_embeddings, ratings -> similar_movies, recommendations (exact top-k)."""
    from moviegraph.similarity.stage import stage_similar as similar

    return similar(spark, cfg, wh, run)


def stage_evaluate(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """embeddings, ratings, movies (+ walks, graph, history) -> metrics, the HTML report."""
    from moviegraph.evaluate.stage import stage_evaluate as evaluate

    return evaluate(spark, cfg, wh, run)


def stage_export(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """embeddings, movies, ratings -> Embedding Projector TSVs and Parquet per model."""
    from moviegraph.export.stage import stage_export as export

    return export(spark, cfg, wh, run)


# Stages in pipeline order, with the config sections their output depends on.
STAGES: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "ingest": (stage_ingest, ("ingest", "data")),
    "pairs": (stage_pairs, ("pairs",)),
    "edges": (stage_edges, ("pairs", "edges")),
    "walks": (stage_walks, ("walks",)),
    "train": (stage_train, ("train",)),
    "similar": (stage_similar, ("similar",)),
    "evaluate": (stage_evaluate, ("evaluate", "walks", "train")),
    "export": (stage_export, ("export",)),
}
