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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession

from moviegraph import fs
from moviegraph.config import Config
from moviegraph.errors import InputError
from moviegraph.evaluate import lists as ev_lists
from moviegraph.evaluate import report as rp
from moviegraph.evaluate import report_data as rdata
from moviegraph.evaluate import scoring as pr
from moviegraph.protocol import metrics as mt
from moviegraph.protocol.data import EvalData, align, prepare
from moviegraph.runs import StageRun
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse
from moviegraph.train.data import padded_lists, read_ratings
from moviegraph.train.output import latest_runs, vectors_from_table

#: Preferred main model of the report (first present wins) when evaluate.main_model is empty.
MAIN_MODEL_ORDER = ("node2vec", "mf", "softmax", "cbow", "blend")


def fidelity_settings(cfg: Config) -> list[tuple[float, float]]:
    """The configured (walks.p, walks.q) then evaluate.fidelity_pq's extra pairs (checked
    when the config was loaded)."""
    pairs = [(cfg.walks.p, cfg.walks.q)]
    for item in cfg.evaluate.fidelity_pq:
        p, q = (float(x) for x in item.split(":"))
        if (p, q) not in pairs:
            pairs.append((p, q))
    return pairs


def _runs(wh: Warehouse) -> list[dict[str, Any]]:
    """The successful rows of ``runs`` (run_id, stage, started_at, notes), read once as
    Arrow: the table is small, and a Spark query over its many one-row files costs more
    than reading them all."""
    if not wh.exists("runs"):
        return []
    t = wh.read_arrow("runs", ["run_id", "stage", "status", "started_at", "notes"])
    return [r for r in t.to_pylist() if r["status"] == "succeeded"]


def _train_notes(runs_rows: list[dict[str, Any]], run_ids: set[str]
                 ) -> dict[str, dict[str, Any]]:
    """``{run_id: notes of its successful train stage}`` (global mean, test RMSE, ...)."""
    return {r["run_id"]: json.loads(r["notes"] or "{}") for r in runs_rows
            if r["stage"] == "train" and r["run_id"] in run_ids}


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

    # The vector tables hold each model's latest run (train replaces a model's rows):
    # read once as Arrow (delta-rs) and split on the driver, not a Spark job per model.
    emb = wh.read_arrow("embeddings", ["model", "run_id", "movie_id", "vector"])
    runs = latest_runs(emb, ec.models)
    if not runs:
        raise InputError("the embeddings table holds no model; run the train stage first")
    ratings = read_ratings(wh)
    movies = wh.read_arrow("movies", ["movie_id", "title", "genres"]).sort_by("movie_id")
    titles = movies.column("title").to_pylist()
    d = prepare(ratings.user_id, ratings.movie_id, ratings.rating, ratings.ts,
                   movies.column("movie_id").to_numpy(), movies.column("genres").to_pylist())
    out = pr.Collector()
    user_emb = (wh.read_arrow("user_embeddings", ["model", "run_id", "user_id", "vector"])
                if wh.exists("user_embeddings") else None)
    runs_rows = _runs(wh)
    train_notes = _train_notes(runs_rows, set(runs.values()))
    similar = _similar_run(runs_rows, runs, out)
    # gensim trains on its own thread (its Cython loop releases the GIL) while the models,
    # the other baselines and the map are scored here: the stage waits for the longer of
    # the two, not their sum. One gensim worker keeps its vectors the same run to run.
    gensim = _start_gensim(out, cfg, wh) if "gensim" in baselines else None
    sims = wh.read_arrow("similar_movies", ["model", "metric", "movie_id", "rank",
                                            "neighbor_id", "score"])
    recs = wh.read_arrow("recommendations", ["model", "user_id", "rank", "movie_id"])
    cosine_vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    shipped_lists: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    for model, run_id in runs.items():
        t0 = time.perf_counter()
        ids, raw = vectors_from_table(emb, model, run_id, "movie_id")
        vectors, has = align(ids, raw, d.movie_ids)
        notes = train_notes.get(run_id, {}).get("models", {}).get(model, {})
        layout = notes.get("vector_layout") if "vector_layout" in notes else \
            pr.bias_layout(vectors, has)
        cosine_vectors[model] = (_cosine_view(vectors, layout), has)
        out.add(model, "movies", int(has.sum()))
        # The shipped tables, scored as they are (EVALUATION.md: what is shipped).
        shipped = (notes.get("scorer") or {}).get("list_metric") \
            or similar.get(model, {}).get("metrics", ["cosine"])[0]
        for metric in _table_metrics(sims, model):
            rows = _rows(sims, model, metric)
            lists = ev_lists.lists_of(rows, "movie_id", "neighbor_id", d.movie_ids,
                                      d.movie_ids, k)
            scores = _list_scores(rows, d.movie_ids, k)
            tag = "" if metric == shipped else f":{metric}"
            pr.list_metrics(out, model, lists, d, k, tag)
            if metric == shipped or model not in shipped_lists:
                shipped_lists[model] = (metric, lists, scores)
        model_recs = _rows(recs, model)
        if model_recs.num_rows:
            out.ranking_lists(model, "shipped", ev_lists.lists_of(
                model_recs, "user_id", "movie_id", d.user_ids, d.movie_ids, k), d, k)
        else:
            out.notes[f"{model} recommendations"] = "no rows in `recommendations`"
        # RMSE: mf's rating predictions (not a ranking of the tables).
        if user_emb is not None and layout in pr.BIAS_COLUMNS:
            uids, uvec = vectors_from_table(user_emb, model, run_id, "user_id")
            user_vectors, has_user = align(uids, uvec, d.user_ids)
            mu = notes.get("global_mean")
            if layout == "full" and mu is None:
                mu = float(vectors[has][0, -1])  # movie rows end in mu
            if mu is not None:
                out.add(model, "rmse", pr.biased_dot_rmse(vectors, has, user_vectors,
                                                          has_user, float(mu), d, layout))
        elif model == "mf":
            out.notes["mf rmse"] = ("not computed: mf vectors were written without "
                                    "biases (train.mf_biases = drop) or the train run's "
                                    "global mean is not in `runs`")
        out.timed(model, t0)
    folded = {m: n.get("models", {}).get(m, {}).get("folded_in") for m, n in
              ((m, train_notes.get(r, {})) for m, r in runs.items())}
    out.notes["coverage"] = (
        "every movie with a vector has a list; item-only models (node2vec, cbow) give each "
        "train movie outside their vocabulary a fold-in vector (the normalised sum of its "
        "raters' profiles, [train.scorers.<model>] fold_in) in train"
        + "".join(f"; {m}: {n} folded in" for m, n in folded.items() if n is not None))
    if "mf" in runs:
        out.notes["mf ranking"] = ("mf learns from the rating split's train part, which holds "
                                   "most ranking-test ratings: its Recall/NDCG are optimistic")
    if "node2vec" in runs and cfg.pairs.ratings != "ranking_train":
        out.notes["node2vec ranking"] = ("pairs.ratings is not ranking_train: the graph saw "
                                         "the test ratings, node2vec's Recall/NDCG leak"
                                         + (" (and blend's, which holds node2vec)"
                                            if "blend" in runs
                                            and "node2vec" in cfg.train.blend.models
                                            else ""))

    pr.evaluate_baselines(out, d, k, baselines, ec.ease_lambdas, ec.max_dense_items)
    _landmarks(out, shipped_lists, d, titles)
    t0 = time.perf_counter()
    for p, q in fidelity:
        pr.walk_fidelity(out, p, q, cfg.walks.seed)
    out.timed("walk fidelity", t0)
    t0 = time.perf_counter()
    tsne = _tsne_map(cfg, runs, cosine_vectors, d, titles)
    out.timed("map", t0)
    if gensim is not None:
        _gensim_scores(out, gensim, d, k)

    run.outputs["metrics"] = write_metrics(spark, wh, run.run_id, out.rows)
    run.rows["metrics"] = len(out.rows)

    t0 = time.perf_counter()
    data = build_report_data(cfg, wh, run.run_id, runs, out, d, titles, cosine_vectors,
                             shipped_lists, tsne)
    path = rp.write_report(rp.render_report(data), wh.output_uri(cfg.evaluate.report_dir),
                           run.run_id, fs.Storage(spark))
    out.timed("report", t0)
    run.notes.update({"models": runs, "k": k, "baselines": baselines, "report": str(path),
                      "remarks": out.notes,
                      "seconds": {key: round(v, 2) for key, v in out.seconds.items()}})
    return summary(out.rows, runs, k, path, out.notes, time.perf_counter() - t_start)


def _start_gensim(out: pr.Collector, cfg: Config, wh: Warehouse
                  ) -> Future[tuple[np.ndarray, np.ndarray, float]] | None:
    """gensim skip-gram on the walks table with the node2vec trainer's settings, started
    on a thread of its own; None (and a note) when gensim or the walks are missing."""
    try:
        import gensim  # noqa: F401
    except ImportError:
        out.notes["baseline:gensim"] = "skipped: gensim is not installed (a dev dependency)"
        return None
    walks = _walks(wh)
    if walks is None:
        out.notes["baseline:gensim"] = "skipped: no walks table"
        return None
    # The node2vec trainer's own settings, so the two skip-grams are comparable.
    s = replace(cfg.train.node2vec, seed=cfg.train.seed)

    def train() -> tuple[np.ndarray, np.ndarray, float]:
        t0 = time.perf_counter()
        ids, vec = pr.gensim_vectors(walks, s)
        return ids, vec, time.perf_counter() - t0

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gensim")
    try:
        return pool.submit(train)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def _gensim_scores(out: pr.Collector, job: Future[tuple[np.ndarray, np.ndarray, float]],
                   d: EvalData, k: int) -> None:
    """Wait for the gensim thread and score its vectors like the random baseline."""
    t0 = time.perf_counter()
    ids, vec, seconds = job.result()
    vectors, has = align(ids, vec, d.movie_ids)
    out.ranking("baseline:gensim", "cosine", mt.item_embedding_scores(vectors, d.train), d, k)
    pr.list_metrics(out, "baseline:gensim", ev_lists.vector_lists(vectors, has & d.in_train,
                                                                  k), d, k)
    # Its training seconds (on its own thread) plus the scoring here.
    out.timed("baseline:gensim", t0 - seconds)


def _similar_run(runs_rows: list[dict[str, Any]], runs: dict[str, str], out: pr.Collector
                 ) -> dict[str, dict[str, Any]]:
    """The latest successful ``similar`` run's per-model notes; notes on ``out`` when its
    tables were not built from the evaluated embeddings runs or from the train part."""
    rows = [r for r in runs_rows if r["stage"] == "similar"]
    if not rows:
        return {}
    rows = [max(rows, key=lambda r: r["started_at"])]
    notes = json.loads(rows[0]["notes"] or "{}")
    models = notes.get("models", {})
    stale = [m for m, r in runs.items() if models.get(m, {}).get("run_id") not in (None, r)]
    if stale:
        out.notes["similar tables"] = ("built from older embeddings runs of "
                                       + ", ".join(stale) + ": rerun the similar stage")
    if notes.get("ratings", "ranking_train") != "ranking_train":
        out.notes["similar ratings"] = ("similar.ratings is not ranking_train: profiles saw "
                                        "the test ratings and never recommend them; the "
                                        "table metrics are not the protocol's")
    return models


def _rows(table: pa.Table, model: str, metric: str | None = None) -> pa.Table:
    """The rows of ``model`` (and ``metric``) of a list table."""
    mask = pc.equal(table.column("model"), model)
    if metric is not None:
        mask = pc.and_(mask, pc.equal(table.column("metric"), metric))
    return table.filter(mask)


def _table_metrics(sims: pa.Table, model: str) -> list[str]:
    """Metrics with rows for ``model`` in ``similar_movies``."""
    return sorted(set(_rows(sims, model).column("metric").to_pylist()))


def _list_scores(rows: pa.Table, movie_ids: np.ndarray, k: int) -> np.ndarray:
    """Scores of a model's list rows at (query position, rank - 1); NaN elsewhere."""
    out = np.full((len(movie_ids), k), np.nan)
    q = np.searchsorted(movie_ids, rows.column("movie_id").to_numpy())
    r = rows.column("rank").to_numpy() - 1
    ok = (q < len(movie_ids)) & (r < k)
    q, r = q[ok], r[ok]
    ok2 = movie_ids[q] == rows.column("movie_id").to_numpy()[ok]
    out[q[ok2], r[ok2]] = rows.column("score").to_numpy()[ok][ok2]
    return out


#: (query, expected neighbours) checked in each model's shipped top 10.
LANDMARKS = (("Star Wars", ("The Empire Strikes Back", "Return of the Jedi")),
             ("The Godfather", ("The Godfather: Part II",)))


def _landmarks(out: pr.Collector, shipped: dict[str, tuple[str, np.ndarray, np.ndarray]],
               d: EvalData, titles: list[str]) -> None:
    """``landmark:<query> -> <movie>``: 1 when the movie is in the query's top 10 of the
    model's shipped list, 0 when not (absent when a title is not in the catalogue)."""
    found = rdata.find_movies([q for q, _ in LANDMARKS] + [m for _, ms in LANDMARKS
                                                            for m in ms],
                              titles, d.popularity)
    for model, (_, lists, _) in shipped.items():
        for query, expected in LANDMARKS:
            for movie in expected:
                if query in found and movie in found:
                    out.add(model, f"landmark:{query} -> {movie}",
                            float(found[movie] in lists[found[query], :10]))


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
                      cosine_vectors: dict[str, tuple[np.ndarray, np.ndarray]],
                      shipped_lists: dict[str, tuple[str, np.ndarray, np.ndarray]]
                      | None = None, tsne: rp.MapPoints | None = None) -> rp.ReportData:
    """Gather the report's tables and chart data (``tsne``: the map of :func:`_tsne_map`);
    the query movies' neighbours are the rows of ``similar_movies`` (``shipped_lists``)."""
    ec = cfg.evaluate
    pop = d.popularity
    neighbours, norms = [], {}
    for model, (metric, lists, scores) in (shipped_lists or {}).items():
        neighbours += rdata.table_neighbour_lists(model, metric, lists, scores, titles, pop)
    for model, (vec, has) in cosine_vectors.items():
        idx = np.flatnonzero(has)
        norms[model] = rp.NormPoints(pop[idx].astype(float), np.linalg.norm(vec[idx], axis=1),
                                     [titles[i] for i in idx])
    settings = {"k": ec.k, "baselines": ",".join(ec.baselines), "walks.p": cfg.walks.p,
                "walks.q": cfg.walks.q, "pairs.ratings": cfg.pairs.ratings,
                "users": d.n_users, "movies": d.n_items, "ratings": int(d.u.shape[0])}
    return rp.ReportData(
        run_id=run_id, created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        metrics=out.rows, models=runs, notes=out.notes, settings=settings,
        graph=_graph(wh), curves=_curves(wh, runs), neighbours=neighbours, norms=norms,
        tsne=tsne)


def _tsne_map(cfg: Config, runs: dict[str, str],
              cosine_vectors: dict[str, tuple[np.ndarray, np.ndarray]], d: EvalData,
              titles: list[str]) -> rp.MapPoints | None:
    """The report's 2-D t-SNE map of the main model's most rated movies (None without
    the model or with fewer than 3 movies)."""
    ec = cfg.evaluate
    main = ec.main_model or next((m for m in MAIN_MODEL_ORDER if m in runs), next(iter(runs)))
    if main not in cosine_vectors:
        return None
    vec, has = cosine_vectors[main]
    idx = np.flatnonzero(has)
    idx = idx[np.argsort(-d.popularity[idx], kind="stable")[: ec.tsne_max_movies]]
    idx.sort()
    if idx.size < 3:
        return None
    xy = rdata.tsne_map(vec[idx], ec.tsne_seed, ec.tsne_perplexity, ec.tsne_max_iter)
    return rp.MapPoints(main, xy, rdata.primary_genre(d.genres[idx]), d.genre_names,
                        [titles[i] for i in idx])


def summary(rows: list[pr.MetricRow], runs: dict[str, str], k: int, path: str,
            notes: dict[str, str], seconds: float) -> str:
    """One screen: models and baselines x main metrics, landmarks, fidelity, notes, report."""
    value = {(m, n): v for m, n, v in rows}
    models = list(runs) + sorted({m for m, _, _ in rows if m.startswith("baseline:")})

    def cell(m: str, n: str, width: int = 9) -> str:
        v = value.get((m, n))
        return f"{v:>{width}.4f}" if v is not None else f"{'':>{width}}"

    cols = [(f"neighbour_hr@{k}", f"nbr HR@{k}"), (f"neighbour_recall@{k}", f"nbr R@{k}"),
            ("genre_p@10", "genreP@10"), (f"recall@{k}:shipped", f"R@{k} table"),
            (f"ndcg@{k}:shipped", f"NDCG@{k} tbl"), (f"recall@{k}:model", f"R@{k} model"),
            (f"recall@{k}:cosine", f"R@{k} cos"), ("rmse", "RMSE")]
    cols = [(n, h) for n, h in cols if any(name == n for _, name, _ in rows)]
    lines = [f"evaluate: {len(runs)} model(s), protocol of EVALUATION.md (models scored "
             f"from their similar_movies / recommendations tables), {seconds:.1f}s",
             f"  {'model':<20}" + "".join(f"{h:>13}" for _, h in cols)]
    for m in models:
        if not any((m, n) in value for n, _ in cols):
            continue
        lines.append((f"  {m:<20}" + "".join(f"{'':>4}{cell(m, n)}" for n, _ in cols)).rstrip())
    marks = [(m, n[len("landmark:"):], v) for m, n, v in rows if n.startswith("landmark:")]
    if marks:
        lines.append("  landmarks (in the shipped top 10): " + "; ".join(
            f"{m} {n} {'yes' if v else 'no'}" for m, n, v in marks))
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
    reads=("ratings", "movies", "embeddings", "similar_movies", "recommendations"),
    optional_reads=("user_embeddings", "history", "walks", "vertices", "edges"),
    writes=("metrics",),
    writes_doc="`metrics(run_id, model, name, value)` (EVALUATION.md's protocol for every "
               "model and the baselines), `<evaluate.report_dir>/<run_id>.html` + "
               "`latest.html` (self-contained report)",
    sections=("evaluate", "walks", "train", "similar"), run=run_evaluate)
