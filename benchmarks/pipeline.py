"""The whole pipeline per stage next to single-machine references doing the same work.

    .venv/bin/python -m benchmarks.pipeline --sizes ml100k,1e6,5e6,25e6

For each size, ``./spark-submit.sh pipeline --force`` runs in a subprocess as a user runs it
(MovieLens 100K with ``conf/local.toml``; ``N`` synthetic ratings, ``/tmp/synth-N`` made by
``synth`` when missing, with ``conf/large.toml``), in its own warehouse under ``--root``.
Its ``[stage]`` lines split the run; per stage it prints wall seconds, CPU seconds and peak
RSS of the whole process tree (spark-submit, driver JVM, Python driver, every Python
worker: sampled every ``--interval`` s; CPU counts reaped workers too), and the work done,
read from the stage's row in the ``runs`` table (pairs counted, walk steps, skip-gram
tokens, ratings x sweeps, scores computed).

Then each reference runs in a fresh process with ``--cores`` threads, on the tables the
pipeline just wrote (read with delta-rs), and the table puts it beside the stage with the
ratio stage / reference of wall and CPU seconds. A reference's seconds cover reading its
input, the computation and writing its output as Parquet where the stage writes a table;
imports are not timed. The references (:data:`REFERENCES`; ``--references`` picks):

- ingest: pyarrow's CSV reader on the raw ratings file, written as Parquet;
- pairs: scipy ``X^T X`` over the same kept ratings (``benchmarks.graph_scale.scipy_pairs``);
- edges: the stage's numpy kernels (``moviegraph.graph.weights``: PMI or cosine weights,
  top-k cut) in one process over ``pair_counts``, same edge count checked;
- walks: the numba walk kernel alone on the same graph (``benchmarks.walk_kernel``);
- train:node2vec: gensim skip-gram on the same walks and settings
  (``benchmarks.skipgram_throughput.gensim_skipgram``, ``Word2Vec.train`` alone);
- train:mf: numpy ALS (``benchmarks.mf_speed.mf_reference``), same fit ratings, rank, sweeps;
- similar: torch brute force (blocked matmul + ``topk``, ``benchmarks.similarity_scale``) for
  every model's similar movies and recommendations;
- evaluate: numpy scoring (users x movies per ranking view of the stage, top-k, recall).

A reference is a function ``fn(ctx) -> dict`` (``work``, optional ``note``) registered
under the stage's row name; engineers plug faster ones in by replacing the entry.

The machine is shared: the load average is printed; compare CPU seconds and ratios.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^\[stage\] (\w+) (started|done in ([\d.]+)s|skipped)")
ML100K = "ml100k"


# ------------------------------------------------------------------ the pipeline run


@dataclass
class Cost:
    """Wall seconds, CPU seconds and peak RSS bytes of a stretch of a run."""

    seconds: float = 0.0
    cpu: float = 0.0
    peak: int = 0
    status: str = "ok"


@dataclass
class PipelineRun:
    """One ``spark-submit.sh pipeline`` run: costs per stage and the run's records."""

    size: str
    warehouse: Path
    config: list[str]
    sets: list[str]
    code: int = 0
    total: Cost = field(default_factory=Cost)
    stages: dict[str, Cost] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_sizes(text: str) -> list[str]:
    """``ml100k,1e6`` -> ``["ml100k", "1000000"]``."""
    sizes = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        sizes.append(ML100K if item in (ML100K, "ml-100k") else str(int(float(item))))
    return sizes


def synth_folder(n: int) -> Path:
    """``/tmp/synth-N`` (shared with ``benchmarks.graph_scale``), generated when missing."""
    folder = Path(f"/tmp/synth-{n}")
    if not (folder / "ratings.csv").is_file():
        from moviegraph.sources import synth

        t0 = time.time()
        synth.generate(folder, ratings=n, progress=False)
        print(f"[data] synth {n:,} ratings in {time.time() - t0:.0f}s -> {folder}", flush=True)
    return folder


def pipeline_args(size: str, root: Path) -> tuple[list[str], list[str], Path]:
    """(config files, ``--set`` overrides, warehouse) of one size's run."""
    wh = root / size / "warehouse"
    sets = [f"warehouse.root={wh}"]
    if size == ML100K:
        return ["conf/local.toml"], sets, wh
    folder = synth_folder(int(size))
    return ["conf/large.toml"], [*sets, "ingest.dataset=path", f"ingest.path={folder}"], wh


def run_pipeline(size: str, root: Path, extra: list[str], interval: float,
                 echo: bool) -> PipelineRun:
    """Run the pipeline for ``size`` in a subprocess; measure each stage."""
    from benchmarks.tree_rss import PeakRSS

    configs, sets, wh = pipeline_args(size, root)
    # The references read the config the pipeline ran with: extra --config / --set too.
    given: dict[str, list[str]] = {"--config": [], "--set": []}
    for flag, value in itertools.pairwise(extra):
        if flag in given:
            given[flag].append(value)
    run = PipelineRun(size, wh, [*configs, *given["--config"]], [*sets, *given["--set"]])
    cmd = [str(ROOT / "spark-submit.sh"), "pipeline", "--force", "--quiet",
           *(a for c in configs for a in ("--config", c)),
           *(a for s in sets for a in ("--set", s)), *extra]
    print(f"[{size}] running: {' '.join(cmd)}", flush=True)
    env = dict(os.environ)
    # The checkout's code, whatever the venv's editable install points at.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "lib"),
                                                      env.get("PYTHONPATH")]))
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env=env)
    assert proc.stdout is not None
    marks: dict[str, tuple[float, float]] = {}  # stage -> (wall, cpu) at its start
    tail: list[str] = []
    with PeakRSS(proc.pid, interval=interval) as mem:
        mem.phase = "startup"
        for line in proc.stdout:
            tail = [*tail, line][-40:]
            if echo:
                sys.stdout.write(line)
            m = STAGE_LINE.match(line)
            if not m:
                continue
            name, what = m[1], m[2]
            now, cpu = time.time(), mem.tree_cpu()
            if what == "started":
                marks[name] = (now, cpu)
                mem.phase = name
            elif what == "skipped":
                run.stages[name] = Cost(status="skipped")
            else:
                start, cpu0 = marks.get(name, (now, cpu))
                run.stages[name] = Cost(now - start, cpu - cpu0, 0)
                mem.phase = "between stages"
        run.code = proc.wait()
    for name, cost in run.stages.items():
        cost.peak = mem.peaks.get(name, 0)
    run.total = Cost(time.time() - t0, mem.tree_cpu(), mem.peak)
    if run.code != 0:
        sys.stdout.write("".join(tail))
        print(f"[{size}] pipeline exited with {run.code}", flush=True)
    for name in marks:
        run.stages.setdefault(name, Cost(status="failed"))
    run.records = stage_records(wh)
    return run


def stage_records(wh: Path) -> dict[str, dict[str, Any]]:
    """The latest pipeline run's row of each stage in ``runs`` (rows and notes parsed)."""
    from deltalake import DeltaTable

    try:
        rows = DeltaTable(str(wh / "runs")).to_pyarrow_table().to_pylist()
    except Exception:  # no runs table: the pipeline failed before its first record
        return {}
    if not rows:
        return {}
    latest = max(rows, key=lambda r: r["started_at"])["run_id"]
    out = {}
    for r in sorted((r for r in rows if r["run_id"] == latest), key=lambda r: r["started_at"]):
        r["rows"] = dict(r["rows"] or [])
        r["outputs"] = dict(r["outputs"] or [])
        r["notes"] = json.loads(r["notes"] or "{}")
        out[r["stage"]] = r
    return out


# ------------------------------------------------------------------ work done


@dataclass
class Work:
    """What a stage (or one model of train) did, in its own unit."""

    count: float
    unit: str


def n_users(wh: Path) -> int:
    """Distinct users in ``ratings``."""
    return int(np.unique(_arrow(wh, "ratings", ["user_id"]).column(0).to_numpy()).size)


def work_done(run: PipelineRun) -> dict[str, Work]:
    """Work per row of the table, from the ``runs`` records (and the tables they name)."""
    rec = run.records
    out: dict[str, Work] = {}
    if "ingest" in rec:
        r = rec["ingest"]["rows"]
        out["ingest"] = Work(r.get("ratings", 0) + r.get("rejected", 0), "lines")
    if "pairs" in rec:
        out["pairs"] = Work(rec["pairs"]["rows"].get("pairs_counted", 0), "pairs")
    if "edges" in rec:
        out["edges"] = Work(rec["edges"]["rows"].get("pair_counts", 0), "pairs scored")
    if "walks" in rec:
        out["walks"] = Work(rec["walks"]["rows"].get("steps", 0), "steps")
    if "train" in rec:
        for model, info in rec["train"]["notes"].get("models", {}).items():
            epochs = info.get("epochs_run") or 0
            if "walk_tokens" in info:
                out[f"train:{model}"] = Work(info["walk_tokens"] * epochs, "tokens")
            elif "fit_ratings" in info:
                out[f"train:{model}"] = Work(info["fit_ratings"] * epochs, "ratings x sweeps")
            elif "tokens" in info:
                out[f"train:{model}"] = Work(info["tokens"] * epochs, "tokens")
            else:
                out[f"train:{model}"] = Work(info.get("movies", 0), "movie vectors")
    if "similar" in rec:
        notes = rec["similar"]["notes"]
        metrics = len(notes.get("metrics", [])) or 1
        scores = sum(metrics * i["movies"] ** 2 + i.get("users", 0) * i["movies"]
                     for i in notes.get("models", {}).values())
        out["similar"] = Work(scores, "scores")
    if "evaluate" in rec:
        views = evaluate_views(run.warehouse, rec["evaluate"]["run_id"])
        users = n_users(run.warehouse)
        out["evaluate"] = Work(sum(movies * users for _, _, movies in views),
                               "scores (model views)")
    if "export" in rec:
        out["export"] = Work(sum(v for k, v in rec["export"]["rows"].items()), "vectors")
    return out


def evaluate_views(wh: Path, run_id: str) -> list[tuple[str, str, int]]:
    """``(model, view, movies)`` of every full users x movies ranking the evaluate run
    scored for a trained model (its ``recall@k:<view>`` rows; baselines left out)."""
    t = _arrow(wh, "metrics", ["run_id", "model", "name", "value"]).to_pylist()
    mine = [r for r in t if r["run_id"] == run_id and not r["model"].startswith("baseline:")
            and r["model"] != "walks"]
    movies = {r["model"]: int(r["value"]) for r in mine if r["name"] == "movies"}
    return [(r["model"], r["name"].split(":", 1)[1], movies.get(r["model"], 0))
            for r in mine if r["name"].startswith("recall@") and ":" in r["name"]]


# ------------------------------------------------------------------ references


@dataclass
class Context:
    """What a reference gets: the warehouse the pipeline wrote, its config, cores, a
    scratch folder for its output."""

    warehouse: Path
    cfg: Any  # moviegraph.config.Config
    cores: int
    scratch: Path
    raw: Path | None  # folder of the raw files ingest read


def _arrow(wh: Path, table: str, columns: list[str] | None = None):
    from deltalake import DeltaTable

    return DeltaTable(str(wh / table)).to_pyarrow_table(columns=columns)


def _write_parquet(table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def _ratings(ctx: Context):
    from moviegraph.train.data import Ratings

    t = _arrow(ctx.warehouse, "ratings", ["user_id", "movie_id", "rating", "ts"]).sort_by(
        [("user_id", "ascending"), ("movie_id", "ascending")])
    return Ratings(*(t.column(c).to_numpy() for c in ("user_id", "movie_id", "rating", "ts")))


def ref_ingest(ctx: Context) -> dict:
    """pyarrow's CSV reader on the raw ratings file, written as Parquet."""
    import pyarrow.csv as pcsv

    assert ctx.raw is not None
    files = {"ml-100k.inter": "\t", "ratings.csv": ",", "u.data": "\t"}
    name = next(n for n in files if (ctx.raw / n).is_file())
    header = name != "u.data"
    table = pcsv.read_csv(
        ctx.raw / name,
        read_options=pcsv.ReadOptions(skip_rows=1 if header else 0,
                                      column_names=["user_id", "movie_id", "rating", "ts"]),
        parse_options=pcsv.ParseOptions(delimiter=files[name]))
    _write_parquet(table, ctx.scratch / "ratings.parquet")
    return {"work": table.num_rows, "note": f"{name}"}


def _kept_pairs_input(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """(users, movies) of the ratings the pairs stage counts (same split and threshold)."""
    from moviegraph.protocol.splits import ranking_split

    r = _ratings(ctx)
    keep = r.rating >= ctx.cfg.pairs.min_rating
    if ctx.cfg.pairs.ratings == "ranking_train":
        keep &= ~ranking_split(r.user_id, r.movie_id, r.ts)
    return r.user_id[keep], r.movie_id[keep]


def ref_pairs(ctx: Context) -> dict:
    """scipy ``X^T X`` (upper triangle) of the kept ratings, written as Parquet."""
    import pyarrow as pa

    from benchmarks.graph_scale import scipy_pairs

    users, movies = _kept_pairs_input(ctx)
    mids, co, _ = scipy_pairs(users, movies)
    _write_parquet(pa.table({"movie_a": mids[co.row], "movie_b": mids[co.col],
                             "n": co.data.astype(np.int64)}), ctx.scratch / "pairs.parquet")
    nu = np.bincount(np.unique(users, return_inverse=True)[1]).astype(np.int64)
    return {"work": int((nu * (nu - 1) // 2).sum()), "note": f"{co.nnz:,} distinct pairs"}


#: Node ranges of the edges reference's top-k cut: each range's rows are sorted on their
#: own, so its peak memory is a fraction of sorting every edge from both ends at once
#: (146M pairs at 5M ratings: 24 GB, killed on a 24 GB machine).
EDGE_CUT_CHUNKS = 16


def ref_edges(ctx: Context) -> dict:
    """The edges stage's work in one process without Spark: weights (``edges.weighting``),
    ``min_weight`` / ``min_count`` filters and the top-k cut over ``pair_counts`` and
    ``item_counts`` with the stage's numpy kernels (:mod:`moviegraph.graph.weights`),
    written as Parquet; its edge count is checked against the stage's ``edges`` table."""
    import pyarrow as pa

    from moviegraph.graph import weights as W

    ec = ctx.cfg.edges
    items = _arrow(ctx.warehouse, "item_counts", ["movie_id", "n"]).sort_by("movie_id")
    pairs = _arrow(ctx.warehouse, "pair_counts", ["movie_a", "movie_b", "n"])
    ids, cnt = items.column(0).to_numpy(), items.column(1).to_numpy()
    a, b = pairs.column(0).to_numpy(), pairs.column(1).to_numpy()
    n = pairs.column(2).to_numpy()
    del pairs
    w, pmi = W.scores(a, b, n, ids, cnt, float(np.log(cnt.sum())), ec.weighting)
    keep = w >= ec.min_weight
    if ec.min_count > 1:
        keep &= n >= ec.min_count
    scored = int(keep.size)
    a, b, n, pmi, w = a[keep], b[keep], n[keep], pmi[keep], w[keep]
    del keep
    if ec.top_k > 0:
        by = w if ec.weighting == "cosine" else pmi  # the stage's top-k score
        top = np.zeros(len(a), dtype=bool)
        # Ranges of about equal rows: cut where the edges' cumulative degree crosses each
        # 1/EDGE_CUT_CHUNKS of the total (a popular movie's rows all land in one range).
        degree = (np.bincount(np.searchsorted(ids, a), minlength=len(ids))
                  + np.bincount(np.searchsorted(ids, b), minlength=len(ids)))
        cuts = np.searchsorted(np.cumsum(degree), degree.sum() * np.arange(
            1, EDGE_CUT_CHUNKS) / EDGE_CUT_CHUNKS)
        bounds = np.unique(ids[np.minimum(cuts + 1, len(ids) - 1)].astype(np.int64))
        lows = np.r_[np.iinfo(np.int64).min, bounds]
        highs = np.r_[bounds, np.iinfo(np.int64).max]
        for lo, hi in zip(lows, highs, strict=True):  # nodes in [lo, hi), seen from both ends
            from_a = np.flatnonzero((a >= lo) & (a < hi))
            from_b = np.flatnonzero((b >= lo) & (b < hi))
            edge = np.concatenate([from_a, from_b])
            node = np.concatenate([a[from_a], b[from_b]])
            other = np.concatenate([b[from_a], a[from_b]])
            top[edge[W.local_top_k(node, other, by[edge], ec.top_k)]] = True
        a, b, n, pmi, w = a[top], b[top], n[top], pmi[top], w[top]
    _write_parquet(pa.table({"src": a, "dst": b, "weight": w, "pmi": pmi, "n": n}),
                   ctx.scratch / "edges.parquet")
    stage_edges = _arrow(ctx.warehouse, "edges", ["src"]).num_rows
    same = "same" if stage_edges == len(a) else f"DIFFERENT from the stage's {stage_edges:,}"
    return {"work": scored, "note": f"{len(a):,} edges ({same})"}


def ref_walks(ctx: Context) -> dict:
    """The numba walk kernel alone (``benchmarks.walk_kernel.worker_ours``: warm-up first,
    then every vertex x num_walks) on the graph the stage walked."""
    from benchmarks.walk_kernel import worker_ours
    from moviegraph.walks.vocab import tokens_of, vertex_ids

    wc = ctx.cfg.walks
    e = _arrow(ctx.warehouse, "edges", ["src", "dst", "weight"])
    src, dst, w = (e.column(i).to_numpy() for i in range(3))
    nz = w != 0
    src, dst, w = src[nz], dst[nz], w[nz]
    ids = vertex_ids(src, dst)
    path = ctx.scratch / "graph.npz"
    np.savez(path, src=tokens_of(ids, src), dst=tokens_of(ids, dst), weight=w,
             num_nodes=len(ids))
    r = worker_ours(argparse.Namespace(graph_npz=str(path), num_walks=wc.num_walks,
                                       walk_length=wc.walk_length, p=wc.p, q=wc.q,
                                       threads=ctx.cores))
    # The kernel's own timing excludes graph building and JIT warm-up.
    return {"work": r["steps"], "seconds": r["seconds"], "cpu": r["cpu_s"],
            "note": "kernel alone, walks in memory (not written)"}


def ref_node2vec(ctx: Context) -> dict:
    """gensim skip-gram on the walks table with ``[train.node2vec]``'s settings."""
    from benchmarks.skipgram_throughput import gensim_skipgram

    s = ctx.cfg.train.node2vec
    t = _arrow(ctx.warehouse, "walks", ["walk_id", "path"]).sort_by("walk_id")
    sentences = [[str(x) for x in p] for p in t.column("path").to_pylist()]
    tokens = sum(len(p) for p in sentences)
    n_items = max(int(x) for p in sentences for x in p) + 1
    _, secs, cpu = gensim_skipgram(sentences, n_items, s.dim, s.window, s.negative, s.sample,
                                   s.epochs, ctx.cores, ctx.cfg.train.seed, s.alpha,
                                   s.min_alpha)
    return {"work": tokens * s.epochs, "seconds": secs, "cpu": cpu,
            "note": "Word2Vec.train alone (vocabulary built before)"}


def ref_mf(ctx: Context) -> dict:
    """The mf owner's reference (``benchmarks.mf_speed.mf_reference``: numpy ALS, one
    normal-equation solve per entity) on the same fit ratings, rank and sweeps as mf."""
    from benchmarks.mf_speed import mf_reference
    from moviegraph.train.data import mf_data

    mc = ctx.cfg.train.mf
    section = getattr(mc, mc.method)
    rank = section.dim
    sweeps = (section.burn_in + section.samples if mc.method == "bpmf"
              else getattr(section, "iterations", None) or section.epochs)
    mf = mf_data(_ratings(ctx), hold_out_validation=False)
    u, i, y = mf.fit
    t = mf_reference(u, i, y, len(mf.user_ids), len(mf.movie_ids), dim=rank, sweeps=sweeps,
                     seed=ctx.cfg.train.seed)
    return {"work": t.work, "seconds": t.wall, "cpu": t.cpu,
            "note": f"numpy ALS, rank {rank}, {sweeps} sweeps, train RMSE {t.train_rmse:.3f}"}


def _latest_vectors(ctx: Context, table: str, key: str) -> dict[str, tuple[np.ndarray,
                                                                            np.ndarray]]:
    """``{model: (ids, vectors)}`` of each model's latest run in ``table``."""
    t = _arrow(ctx.warehouse, table, ["model", "run_id", key, "vector"])
    models, runs = t.column("model").to_pylist(), t.column("run_id").to_pylist()
    latest: dict[str, str] = {}
    for m, r in zip(models, runs, strict=True):
        latest[m] = max(latest.get(m, r), r)
    out = {}
    ids_all = t.column(key).to_numpy()
    for m, r in latest.items():
        idx = np.flatnonzero((np.asarray(models) == m) & (np.asarray(runs) == r))
        ids = ids_all[idx]
        order = np.argsort(ids)
        vec = np.asarray(t.column("vector").take(idx).to_pylist(), dtype=np.float32)
        out[m] = (ids[order], vec[order])
    return out


def _user_matrix(ctx: Context, movie_ids: np.ndarray):
    """(user ids, users x movies CSR of ratings, liked mask CSR) over ``movie_ids``."""
    import scipy.sparse as sp

    r = _ratings(ctx)
    uids, u = np.unique(r.user_id, return_inverse=True)
    m = np.searchsorted(movie_ids, r.movie_id)
    known = (m < len(movie_ids)) & (movie_ids[np.minimum(m, len(movie_ids) - 1)] == r.movie_id)
    shape = (len(uids), len(movie_ids))
    rated = sp.csr_matrix((np.ones(known.sum(), np.float32), (u[known], m[known])), shape)
    like = r.rating[known] >= ctx.cfg.similar.like_threshold
    liked = sp.csr_matrix((np.ones(like.sum(), np.float32),
                           (u[known][like], m[known][like])), shape)
    return uids, rated, liked


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v.astype(np.float64), axis=1, keepdims=True)
    return (v / np.where(n > 0, n, 1)).astype(np.float32)


def ref_similar(ctx: Context) -> dict:
    """torch brute force: blocked float32 products + ``topk`` for each model's similar
    movies (every metric of the stage) and its recommendations (user vectors by dot,
    else summed cosine of liked movies; rated movies masked), written as Parquet."""
    import pyarrow as pa
    import torch

    from benchmarks.similarity_scale import torch_brute_force

    torch.set_num_threads(ctx.cores)
    sc = ctx.cfg.similar
    metrics = ["cosine", "dot"] if sc.metric == "both" else [sc.metric]
    items = _latest_vectors(ctx, "embeddings", "movie_id")
    users = _latest_vectors(ctx, "user_embeddings", "user_id") \
        if (ctx.warehouse / "user_embeddings").exists() else {}
    scores = 0
    block = 1024
    for model, (ids, vec) in items.items():
        k = min(sc.k, len(ids) - 1)
        for metric in metrics:
            top = torch_brute_force(_unit(vec) if metric == "cosine" else vec, k, block)
            scores += len(ids) ** 2
            _write_parquet(pa.table({"movie_id": np.repeat(ids, k),
                                     "neighbor_id": ids[top.ravel()]}),
                           ctx.scratch / f"similar-{model}-{metric}.parquet")
        uids, rated, liked = _user_matrix(ctx, ids)
        if model in users:
            upos = np.searchsorted(users[model][0], uids)
            query = torch.from_numpy(users[model][1][np.minimum(upos, len(upos) - 1)])
            e = torch.from_numpy(vec)
        else:  # summed cosine over liked movies = (liked @ unit) @ unit^T
            unit = _unit(vec)
            query = torch.from_numpy(np.asarray(liked @ unit, dtype=np.float32))
            e = torch.from_numpy(unit)
        out = np.empty((len(uids), sc.k), dtype=np.int64)
        for s in range(0, len(uids), block):
            stop = min(s + block, len(uids))
            block_scores = query[s:stop] @ e.T
            mask = torch.from_numpy(rated[s:stop].toarray() > 0)
            block_scores[mask] = -torch.inf
            out[s:stop] = torch.topk(block_scores, min(sc.k, len(ids)), dim=1).indices.numpy()
            scores += (stop - s) * len(ids)
        _write_parquet(pa.table({"user_id": np.repeat(uids, out.shape[1]),
                                 "movie_id": ids[out.ravel()]}),
                       ctx.scratch / f"recs-{model}.parquet")
    return {"work": scores, "note": f"{len(items)} model(s), metrics {', '.join(metrics)}"}


def ref_evaluate(ctx: Context) -> dict:
    """numpy scoring of every ranking view the stage scored for a trained model (users x
    movies by dot of user vectors, or summed cosine of train movies), train masked,
    top-k by ``argpartition``, Recall@k against the ranking test part."""
    from moviegraph.protocol.splits import ranking_split

    k = ctx.cfg.evaluate.k
    r = _ratings(ctx)
    movie_ids = np.unique(_arrow(ctx.warehouse, "movies", ["movie_id"]).column(0).to_numpy())
    uids, u = np.unique(r.user_id, return_inverse=True)
    m = np.searchsorted(movie_ids, r.movie_id)
    test = ranking_split(r.user_id, r.movie_id, r.ts)
    train_m = np.zeros((len(uids), len(movie_ids)), dtype=bool)
    train_m[u[~test], m[~test]] = True
    test_m = np.zeros_like(train_m)
    test_m[u[test], m[test]] = True
    items = _latest_vectors(ctx, "embeddings", "movie_id")
    users = _latest_vectors(ctx, "user_embeddings", "user_id") \
        if (ctx.warehouse / "user_embeddings").exists() else {}
    run_id = stage_records(ctx.warehouse)["evaluate"]["run_id"]
    views = evaluate_views(ctx.warehouse, run_id)
    scores, recalls = 0, []
    for model, view, _ in views:
        if model not in items:
            continue
        ids, vec = items[model]
        full = np.zeros((len(movie_ids), vec.shape[1]), dtype=np.float32)
        pos = np.searchsorted(movie_ids, ids)
        full[pos] = vec
        if view == "dot" and model in users:
            uv = users[model]
            upos = np.searchsorted(uv[0], uids)
            s = uv[1][np.minimum(upos, len(upos) - 1)] @ full.T
        else:
            unit = _unit(full)
            s = (train_m.astype(np.float32) @ unit) @ unit.T
        s[train_m] = -np.inf
        top = np.argpartition(-s, k, axis=1)[:, :k]
        hits = np.take_along_axis(test_m, top, axis=1).sum(1)
        recalls.append(float(np.mean(hits / np.maximum(1, np.minimum(k, test_m.sum(1))))))
        scores += s.size
    return {"work": scores, "note": f"{len(recalls)} views"}


#: Row name -> reference. Replace an entry to plug in another engineer's reference.
REFERENCES: dict[str, Callable[[Context], dict]] = {
    "ingest": ref_ingest, "pairs": ref_pairs, "edges": ref_edges, "walks": ref_walks,
    "train:node2vec": ref_node2vec, "train:mf": ref_mf, "similar": ref_similar,
    "evaluate": ref_evaluate,
}
#: Modules every reference imports before its clock starts (torch comes with train.data).
COMMON_PRELOAD = ("deltalake", "pyarrow.csv", "pyarrow.parquet", "scipy.sparse",
                  "moviegraph.train.data", "moviegraph.protocol.splits")
#: Further modules a reference imports before its clock starts.
PRELOAD = {"train:node2vec": ("gensim",), "similar": ("torch",), "walks": ("numba",),
           "pairs": ("scipy.sparse",)}


def reference_worker(name: str, wh: Path, configs: list[str], sets: list[str], cores: int,
                     raw: str | None) -> None:
    """Child process: run one reference, print its figures as the last line (JSON)."""
    import importlib

    from moviegraph import config

    for module in (*COMMON_PRELOAD, *PRELOAD.get(name, ())):
        importlib.import_module(module)
    cfg = config.load([ROOT / c for c in configs], sets)
    with tempfile.TemporaryDirectory(prefix="pipeline-ref-") as scratch:
        ctx = Context(wh, cfg, cores, Path(scratch), Path(raw) if raw else None)
        t0, c0 = time.perf_counter(), time.process_time()
        out = REFERENCES[name](ctx)
        out.setdefault("seconds", time.perf_counter() - t0)
        out.setdefault("cpu", time.process_time() - c0)
    out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out, default=float))


def run_reference(name: str, run: PipelineRun, cores: int) -> dict:
    """One reference in a fresh process with ``cores`` threads; its figures or an error."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = str(cores)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "lib"),
                                                      env.get("PYTHONPATH")]))
    raw = run.records.get("ingest", {}).get("notes", {}).get("input")
    cmd = [sys.executable, "-m", "benchmarks.pipeline", "--reference", name,
           "--warehouse", str(run.warehouse), "--cores", str(cores),
           "--config-json", json.dumps({"configs": run.config, "sets": run.sets})]
    if raw:
        cmd += ["--raw", raw]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=ROOT)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": last[:160]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the table


def _num(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def print_table(run: PipelineRun, work: dict[str, Work], refs: dict[str, dict]) -> None:
    """The per-stage table of one size (markdown)."""
    load = os.getloadavg()
    print(f"\n### {run.size}: exit {run.code}, {run.total.seconds:.1f} s wall, "
          f"{run.total.cpu:.1f} CPU s, peak {run.total.peak / 2**30:.2f} GiB (process tree); "
          f"load average now {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print("| stage | wall s | CPU s | peak GiB | work | work/CPU s | reference | ref wall s "
          "| ref CPU s | ref peak GiB | wall ratio | CPU ratio |")
    print("| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    models = run.records.get("train", {}).get("notes", {}).get("models", {})
    rows: list[tuple[str, Cost | None]] = []
    for name, cost in run.stages.items():
        rows.append((name, cost))
        if name == "train":  # one line per model: wall seconds from the run record
            rows += [(f"train:{m}", Cost(seconds=info.get("seconds", 0.0), cpu=float("nan")))
                     for m, info in models.items()]
    accounted = Cost()
    for name, cost in rows:
        assert cost is not None
        if cost.status != "ok":
            print(f"| {name} | {cost.status} | | | | | | | | | | |")
            continue
        if ":" not in name:
            accounted.seconds += cost.seconds
            accounted.cpu += cost.cpu
        w = work.get(name)
        wtxt = f"{_num(w.count)} {w.unit}" if w else ""
        rate = _num(w.count / cost.cpu) if w and cost.cpu == cost.cpu and cost.cpu > 0 else ""
        cpu = f"{cost.cpu:.1f}" if cost.cpu == cost.cpu else "–"
        peak = f"{cost.peak / 2**30:.2f}" if cost.peak else "–"
        ref = refs.get(name)
        if ref is None:
            tail = "| – | | | | | |"
        elif "error" in ref:
            tail = f"| error: {ref['error']} | | | | | |"
        else:
            same = "" if not w or int(ref["work"]) == int(w.count) else \
                f" (work {_num(ref['work'])})"
            wall_ratio = cost.seconds / ref["seconds"] if ref["seconds"] else float("nan")
            cpu_ratio = cost.cpu / ref["cpu"] if ref["cpu"] and cost.cpu == cost.cpu \
                else float("nan")
            tail = (f"| {ref.get('note', '')}{same} | {ref['seconds']:.2f} | {ref['cpu']:.2f} "
                    f"| {ref['peak'] / 2**30:.2f} | {wall_ratio:.1f}x | "
                    + (f"{cpu_ratio:.1f}x |" if cpu_ratio == cpu_ratio else "– |"))
        print(f"| {name} | {cost.seconds:.1f} | {cpu} | {peak} | {wtxt} | {rate} {tail}")
    other = Cost(run.total.seconds - accounted.seconds, run.total.cpu - accounted.cpu)
    print(f"| start-up, skip checks, between stages | {other.seconds:.1f} | {other.cpu:.1f} "
          "| | | | | | | | | |")
    print(f"| all | {run.total.seconds:.1f} | {run.total.cpu:.1f} | "
          f"{run.total.peak / 2**30:.2f} | | | | | | | | |", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run every size; print one table per size. Exit 1 when a pipeline failed."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=ML100K,
                    help="comma-separated: ml100k and/or synthetic rating counts (1e6, ...)")
    ap.add_argument("--root", type=Path, default=Path("/tmp/moviegraph-bench"),
                    help="one warehouse per size under ROOT/<size>/")
    ap.add_argument("--references", default="all",
                    help="'all', 'none' or comma-separated row names (" +
                         ", ".join(REFERENCES) + ")")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                    help="threads of each reference (default: this machine's cores)")
    ap.add_argument("--interval", type=float, default=0.25, help="RSS sampling period (s)")
    ap.add_argument("--echo", action="store_true", help="stream the pipeline's output")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("pipeline_args", nargs="*", help="after `--`: more pipeline arguments")
    # The reference worker (a child of this command).
    ap.add_argument("--reference", help=argparse.SUPPRESS)
    ap.add_argument("--warehouse", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--config-json", help=argparse.SUPPRESS)
    ap.add_argument("--raw", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.reference:
        spec = json.loads(args.config_json)
        reference_worker(args.reference, args.warehouse, spec["configs"], spec["sets"],
                         args.cores, args.raw)
        return 0
    chosen = list(REFERENCES) if args.references == "all" else \
        [] if args.references == "none" else args.references.split(",")
    unknown = [c for c in chosen if c not in REFERENCES]
    if unknown:
        ap.error(f"--references: unknown {', '.join(unknown)}; known: {', '.join(REFERENCES)}")
    print(f"[env] cores {os.cpu_count()}, load average {os.getloadavg()}, references with "
          f"{args.cores} threads", flush=True)
    results = {}
    failed = False
    for size in parse_sizes(args.sizes):
        run = run_pipeline(size, args.root, args.pipeline_args, args.interval, args.echo)
        failed |= run.code != 0
        work = work_done(run) if run.records else {}
        refs = {}
        for name in chosen:
            if name in work:
                print(f"[{size}] reference {name} ...", flush=True)
                refs[name] = run_reference(name, run, args.cores)
        print_table(run, work, refs)
        results[size] = {"code": run.code, "total": vars(run.total),
                         "stages": {k: vars(v) for k, v in run.stages.items()},
                         "work": {k: vars(v) for k, v in work.items()}, "references": refs}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
