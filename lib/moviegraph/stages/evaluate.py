"""The ``evaluate`` stage: every model's latest embeddings scored by EVALUATION.md's protocol.

Reads ``ratings``, ``movies``, ``embeddings`` (+ ``user_embeddings``, ``history``,
``runs``, and when present ``walks`` for the gensim baseline and ``vertices`` / ``edges``
for graph statistics) as Arrow (delta-rs, Spark as fallback), scores on the driver with
the numpy kernels of :mod:`moviegraph.evaluate.scoring`, and writes

- ``metrics(run_id, model, name, value)``: one Delta transaction that *replaces* the rows
  of this run id (``replaceWhere``) and keeps other runs' rows, so the table is a history
  of evaluations across runs (compare a model over time by ``run_id``), while a re-run of
  the stage within one pipeline run (``--force``) never duplicates rows;
- ``<evaluate.report_dir>/<run_id>.html`` and ``latest.html``: the self-contained report.

Leakage notes are part of the run's notes and the report: mf is trained on the rating
split's train part, which holds most of the ranking split's test ratings, so its ranking
numbers are optimistic; node2vec is honest only when ``pairs.ratings = ranking_train``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph import fs
from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.evaluate import report as rp
from moviegraph.evaluate import report_data as rdata
from moviegraph.evaluate import scoring as pr
from moviegraph.protocol.data import EvalData, align, prepare
from moviegraph.runs import StageRun
from moviegraph.similarity.joins import select_runs, vectors_of
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse
from moviegraph.train.data import padded_lists, read_ratings
from moviegraph.train.scorers import own_scorer

#: Preferred main model of the report (first present wins) when evaluate.main_model is empty.
MAIN_MODEL_ORDER = ("node2vec", "mf", "softmax", "cbow")


def fidelity_settings(cfg: Config) -> list[tuple[float, float]]:
    """The configured (walks.p, walks.q) then evaluate.fidelity_pq's extra pairs (checked
    when the config was loaded)."""
    pairs = [(cfg.walks.p, cfg.walks.q)]
    for item in cfg.evaluate.fidelity_pq:
        p, q = (float(x) for x in item.split(":"))
        if (p, q) not in pairs:
            pairs.append((p, q))
    return pairs


def _train_notes(wh: Warehouse, run_ids: set[str]) -> dict[str, dict[str, Any]]:
    """``{run_id: notes of its successful train stage}`` (global mean, test RMSE, ...)."""
    if not wh.exists("runs") or not run_ids:
        return {}
    rows = (wh.read("runs").where((F.col("stage") == "train") & (F.col("status") == "succeeded")
                                  & F.col("run_id").isin(sorted(run_ids)))
            .select("run_id", "notes").collect())
    return {r["run_id"]: json.loads(r["notes"] or "{}") for r in rows}


def _curves(wh: Warehouse, runs: dict[str, str]) -> dict[str, rp.ModelCurves]:
    """Per-model epoch curves of the evaluated runs from ``history``."""
    if not wh.exists("history"):
        return {}
    t = wh.read_arrow("history", ["run_id", "model", "epoch", "train_loss", "metrics"])
    curves = {}
    run_col = np.asarray(t.column("run_id").to_pylist())
    model_col = np.asarray(t.column("model").to_pylist())
    for model, run_id in runs.items():
        idx = np.flatnonzero((run_col == run_id) & (model_col == model))
        if idx.size == 0:
            continue
        sub = t.take(pa.array(idx))
        epochs = sub.column("epoch").to_numpy()
        order = np.argsort(epochs, kind="stable")
        loss = sub.column("train_loss").to_numpy()[order]
        extra: dict[str, list[float]] = {}
        maps = sub.column("metrics").to_pylist()
        for i in order:  # once per epoch: a handful of rows
            for key, value in (maps[i] or []):
                extra.setdefault(key, []).append(float(value))
        curves[model] = rp.ModelCurves(epochs[order].tolist(), loss.tolist(), extra)
    return curves


def _graph(wh: Warehouse) -> rdata.GraphStats | None:
    if not (wh.exists("vertices") and wh.exists("edges")):
        return None
    v = wh.read_arrow("vertices", ["degree", "component"])
    n_edges = wh.row_count("edges")  # from the Delta log's file statistics: no Spark job
    return rdata.graph_stats(v.column("degree").to_numpy(), v.column("component").to_numpy(),
                             n_edges)


def _walks(wh: Warehouse) -> np.ndarray | None:
    if not wh.exists("walks"):
        return None
    t = wh.read_arrow("walks", ["walk_id", "path"]).sort_by("walk_id")
    return padded_lists(t.column("path"))


def _cosine_view(vectors: np.ndarray, layout: str | None) -> np.ndarray:
    """Vectors for cosine-based views: mf's bias columns ([b_i, 1] or [b_i, 1, mu]) dropped
    (their constants would dominate the cosine of small factors)."""
    return vectors[:, :-pr.BIAS_COLUMNS[layout]] if layout in pr.BIAS_COLUMNS else vectors


def run_evaluate(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """Score every model's latest embeddings run and the baselines; write metrics + report."""
    ec = cfg.evaluate
    k = ec.k
    baselines = list(ec.baselines)
    fidelity = fidelity_settings(cfg)
    t_start = time.perf_counter()

    emb = wh.read("embeddings")
    runs = select_runs(emb, ec.models)
    if not runs:
        raise InputError("the embeddings table holds no model; run the train stage first")
    ratings = read_ratings(wh)
    movies = wh.read_arrow("movies", ["movie_id", "title", "genres"]).sort_by("movie_id")
    titles = movies.column("title").to_pylist()
    d = prepare(ratings.user_id, ratings.movie_id, ratings.rating, ratings.ts,
                   movies.column("movie_id").to_numpy(), movies.column("genres").to_pylist())
    out = pr.Collector()
    user_emb = wh.read("user_embeddings") if wh.exists("user_embeddings") else None
    train_notes = _train_notes(wh, set(runs.values()))
    cosine_vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for model, run_id in runs.items():
        t0 = time.perf_counter()
        of_run = (F.col("model") == model) & (F.col("run_id") == run_id)
        ids, raw = vectors_of(emb.where(of_run), "movie_id")
        vectors, has = align(ids, raw, d.movie_ids)
        notes = train_notes.get(run_id, {}).get("models", {}).get(model, {})
        layout = notes.get("vector_layout") if "vector_layout" in notes else \
            pr.bias_layout(vectors, has)
        cos = _cosine_view(vectors, layout)
        cosine_vectors[model] = (cos, has)
        out.add(model, "movies", int(has.sum()))
        user_vectors = None
        if user_emb is not None:
            uids, uvec = vectors_of(user_emb.where(of_run), "user_id")  # one collect
            if len(uids):
                user_vectors, has_user = align(uids, uvec, d.user_ids)
        own = own_scorer(model) if ec.own_scorers else None
        if user_vectors is not None:
            pr.evaluate_user_model(out, model, vectors, user_vectors, d, k, cos)
            if own is not None:
                out.ranking(model, "own", np.asarray(own(d.train, cos, ec.seed,
                                                         times=d.train_times)), d, k)
            mu = notes.get("global_mean")
            if layout == "full" and mu is None:
                mu = float(vectors[has][0, -1])  # movie rows end in mu
            if layout in pr.BIAS_COLUMNS and mu is not None:
                out.add(model, "rmse", pr.biased_dot_rmse(vectors, has, user_vectors, has_user,
                                                          float(mu), d, layout))
            elif model == "mf":
                out.notes["mf rmse"] = ("not computed: mf vectors were written without "
                                        "biases (train.mf_biases = drop) or the train run's "
                                        "global mean is not in `runs`")
        else:
            pr.evaluate_item_model(out, model, cos, has, d, k, own, ec.seed)
        pr.genre_metrics(out, model, cos, has, d, ec.seed)
        out.timed(model, t0)
    if "mf" in runs:
        out.notes["mf ranking"] = ("mf learns from the rating split's train part, which holds "
                                   "most ranking-test ratings: its Recall/NDCG are optimistic")
    if "node2vec" in runs and cfg.pairs.ratings != "ranking_train":
        out.notes["node2vec ranking"] = ("pairs.ratings is not ranking_train: the graph saw "
                                         "the test ratings, node2vec's Recall/NDCG leak")

    if "gensim" in baselines:
        _gensim_baseline(out, cfg, wh, d, k)
    pr.evaluate_baselines(out, d, k, baselines, ec.ease_lambdas, ec.max_dense_items)
    t0 = time.perf_counter()
    for p, q in fidelity:
        pr.walk_fidelity(out, p, q, cfg.walks.seed)
    out.timed("walk fidelity", t0)

    run.outputs["metrics"] = write_metrics(spark, wh, run.run_id, out.rows)
    run.rows["metrics"] = len(out.rows)

    t0 = time.perf_counter()
    data = build_report_data(cfg, wh, run.run_id, runs, out, d, titles, cosine_vectors)
    path = rp.write_report(rp.render_report(data), wh.output_uri(cfg.evaluate.report_dir),
                           run.run_id, fs.Storage(spark))
    out.timed("report", t0)
    run.notes.update({"models": runs, "k": k, "baselines": baselines, "report": str(path),
                      "remarks": out.notes,
                      "seconds": {key: round(v, 2) for key, v in out.seconds.items()}})
    return summary(out.rows, runs, k, path, out.notes, time.perf_counter() - t_start)


def _gensim_baseline(out: pr.Collector, cfg: Config, wh: Warehouse, d: EvalData,
                     k: int) -> None:
    """gensim skip-gram on the walks table with the node2vec trainer's settings."""
    try:
        import gensim  # noqa: F401
    except ImportError:
        out.notes["baseline:gensim"] = "skipped: gensim is not installed (a dev dependency)"
        return
    walks = _walks(wh)
    if walks is None:
        out.notes["baseline:gensim"] = "skipped: no walks table"
        return
    # The node2vec trainer's own settings, so the two skip-grams are comparable.
    s = replace(cfg.train.node2vec, seed=cfg.train.seed)
    t0 = time.perf_counter()
    ids, vec = pr.gensim_vectors(walks, s)
    vectors, has = align(ids, vec, d.movie_ids)
    pr.evaluate_item_model(out, "baseline:gensim", vectors, has, d, k, None, cfg.evaluate.seed)
    pr.genre_metrics(out, "baseline:gensim", vectors, has, d, cfg.evaluate.seed)
    out.timed("baseline:gensim", t0)


def write_metrics(spark: SparkSession, wh: Warehouse, run_id: str,
                  rows: list[pr.MetricRow]) -> int:
    """Replace this run's rows of ``metrics`` in one Delta transaction; return the version."""
    table = pa.table({"run_id": pa.array([run_id] * len(rows), pa.string()),
                      "model": pa.array([r[0] for r in rows], pa.string()),
                      "name": pa.array([r[1] for r in rows], pa.string()),
                      "value": pa.array([r[2] for r in rows], pa.float64())})
    cond = "run_id = '" + run_id.replace("'", "''") + "'"
    return wh.replace_where("metrics", spark.createDataFrame(table), cond)


def build_report_data(cfg: Config, wh: Warehouse, run_id: str, runs: dict[str, str],
                      out: pr.Collector, d: EvalData, titles: list[str],
                      cosine_vectors: dict[str, tuple[np.ndarray, np.ndarray]]
                      ) -> rp.ReportData:
    """Gather the report's tables and chart data (t-SNE of the main model included)."""
    ec = cfg.evaluate
    pop = d.popularity
    neighbours, norms = [], {}
    for model, (vec, has) in cosine_vectors.items():
        neighbours += rdata.neighbour_lists(model, vec, has, titles, pop)
        idx = np.flatnonzero(has)
        norms[model] = rp.NormPoints(pop[idx].astype(float), np.linalg.norm(vec[idx], axis=1),
                                     [titles[i] for i in idx])
    main = ec.main_model or next((m for m in MAIN_MODEL_ORDER if m in runs), next(iter(runs)))
    tsne = None
    if main in cosine_vectors:
        vec, has = cosine_vectors[main]
        idx = np.flatnonzero(has)
        idx = idx[np.argsort(-pop[idx], kind="stable")[: ec.tsne_max_movies]]
        idx.sort()
        if idx.size >= 3:
            xy = rdata.tsne_map(vec[idx], ec.tsne_seed, ec.tsne_perplexity, ec.tsne_max_iter)
            tsne = rp.MapPoints(main, xy, rdata.primary_genre(d.genres[idx]), d.genre_names,
                                [titles[i] for i in idx])
    settings = {"k": ec.k, "baselines": ",".join(ec.baselines), "walks.p": cfg.walks.p,
                "walks.q": cfg.walks.q, "pairs.ratings": cfg.pairs.ratings,
                "users": d.n_users, "movies": d.n_items, "ratings": int(d.u.shape[0])}
    return rp.ReportData(
        run_id=run_id, created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        metrics=out.rows, models=runs, notes=out.notes, settings=settings,
        graph=_graph(wh), curves=_curves(wh, runs), neighbours=neighbours, norms=norms,
        tsne=tsne)


def summary(rows: list[pr.MetricRow], runs: dict[str, str], k: int, path: str,
            notes: dict[str, str], seconds: float) -> str:
    """One screen: models and baselines x main metrics, fidelity, notes, report path."""
    value = {(m, n): v for m, n, v in rows}
    models = list(runs) + sorted({m for m, _, _ in rows if m.startswith("baseline:")})

    def cell(m: str, n: str) -> str:
        v = value.get((m, n))
        return f"{v:>8.4f}" if v is not None else f"{'':>8}"

    cols = [("cosine", f"R@{k} cos"), ("dot", f"R@{k} dot"), ("own", f"R@{k} own"),
            ("prior", f"R@{k} prior"), ("model", f"R@{k} model")]
    cols = [(s, h) for s, h in cols if any(n == f"recall@{k}:{s}" for _, n, _ in rows)]
    head = f"  {'model':<20}" + "".join(f"{h:>12}" for _, h in cols) + \
        f"{'NDCG best':>11}{'RMSE':>9}{'genreP@10':>11}{'(random)':>9}"
    lines = [f"evaluate: {len(runs)} model(s), protocol of EVALUATION.md, {seconds:.1f}s", head]
    for m in models:
        recalls = [(value.get((m, f"recall@{k}:{s}")), s) for s, _ in cols]
        best = max((r for r in recalls if r[0] is not None), default=(None, None))
        ndcg = value.get((m, f"ndcg@{k}:{best[1]}")) if best[1] else None
        line = f"  {m:<20}" + "".join(f"{'':>4}{cell(m, f'recall@{k}:{s}')}" for s, _ in cols)
        line += f"{'':>3}{ndcg:>8.4f}" if ndcg is not None else f"{'':>11}"
        line += f"{'':>1}{cell(m, 'rmse')}{'':>3}{cell(m, 'genre_p@10')}{'':>1}"
        line += cell(m, "genre_p@10:random")
        lines.append(line.rstrip())
    fid = [(n, v) for m, n, v in rows if m == "walks" and n.startswith("p_value")]
    if fid:
        lines.append("  walk fidelity (chi-square p-value): "
                     + ", ".join(f"{n[len('p_value'):]} {v:.3g}" for n, v in fid))
    lines += [f"  note: {key}: {text}" for key, text in notes.items()]
    lines.append(f"  report: {path}")
    return "\n".join(lines)


STAGE = Stage(
    name="evaluate", summary="EVALUATION.md's protocol for every model and the baselines; "
    "metrics table and HTML report",
    reads=("ratings", "movies", "embeddings"),
    optional_reads=("user_embeddings", "history", "walks", "vertices", "edges"),
    writes=("metrics",),
    writes_doc="`metrics(run_id, model, name, value)` (EVALUATION.md's protocol for every "
               "model and the baselines), `<evaluate.report_dir>/<run_id>.html` + "
               "`latest.html` (self-contained report)",
    sections=("evaluate", "walks", "train"), run=run_evaluate)
