"""pairs + edges at scale on synth data, next to two single-machine references.

    .venv/bin/python -m benchmarks.graph_scale --sizes 1000000 5000000 25000095 \\
        --min-ratings 5 4 [--root /tmp/graphbench] [--skip 25000095:4] \\
        [--weighting cosine --top-k 15 --min-weight 0]

For each size: synth data in ``/tmp/synth-<n>`` (generated when missing), ingested once
into ``<root>/wh-<n>``; then for each min_rating the real `pairs` and `edges` stages
(local[2]) with wall time, CPU seconds and peak RSS of the whole process tree (driver
Python + JVM + Python workers, sampled every 0.2 s), pairs counted per second and edges kept. The
references, on the sizes they can handle (``--dict-max-pairs``, ``--scipy-max-pairs``):
the recipe's Python dict loop, and a scipy sparse ``X^T X`` co-occurrence product followed
by the same weights, threshold and top-k cut in numpy, writing the same pair and edge rows
as Parquet with pyarrow (the single-process job the stages are measured against: ``x ref``
is the stages' CPU seconds over its); their distinct-pair and edge counts are checked
against the Spark tables. Defaults: the pipeline's edges (cosine, top 15 of either end).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks.tree_rss import PeakRSS


@dataclass(frozen=True)
class Rule:
    """The edges config the references apply."""

    weighting: str
    min_weight: float
    top_k: int


def _weights(n, nx, ny, d: float, weighting: str):
    """(weight, top-k score) of pairs counted n with item counts nx, ny (scalars or arrays)."""
    pmi = np.log(n) - np.log(nx) - np.log(ny) + d
    if weighting == "cosine":
        w = n / np.sqrt(nx * ny)
        return w, w
    return pmi * n, pmi


def dict_reference(users: np.ndarray, movies: np.ndarray, rule: Rule,
                   out: Path) -> tuple[int, int]:
    """The recipe as a plain dict loop: (distinct pairs, edges)."""
    by_user: dict[int, list[int]] = {}
    for u, m in zip(users.tolist(), movies.tolist(), strict=True):
        by_user.setdefault(u, []).append(m)
    item, pair = Counter(), Counter()
    for ms in by_user.values():
        item.update(ms)
        pair.update(itertools.combinations(sorted(ms), 2))
    d = math.log(sum(item.values()))
    edges = {}
    for (x, y), n in pair.items():
        pmi = math.log(n) - math.log(item[x]) - math.log(item[y]) + d
        w = n / math.sqrt(item[x] * item[y]) if rule.weighting == "cosine" else pmi * n
        if w >= rule.min_weight:
            edges[(x, y)] = w if rule.weighting == "cosine" else pmi
    if rule.top_k:
        ends: dict[int, list] = {}
        for (x, y), score in edges.items():
            ends.setdefault(x, []).append((-score, y))
            ends.setdefault(y, []).append((-score, x))
        keep = {(min(v, o), max(v, o)) for v, lst in ends.items()
                for _, o in sorted(lst)[:rule.top_k]}
        return len(pair), len(keep)
    return len(pair), len(edges)


def scipy_pairs(users: np.ndarray, movies: np.ndarray
                ) -> tuple[np.ndarray, sp.coo_matrix, np.ndarray]:
    """Co-occurrence as the sparse product X^T X: ``(movie ids, upper triangle as COO over
    their positions, item counts)``; one row per (user, movie) expected."""
    _, u = np.unique(users, return_inverse=True)
    mids, m = np.unique(movies, return_inverse=True)
    x = sp.csr_matrix((np.ones(len(u), dtype=np.int32), (u, m)),
                      shape=(int(u.max()) + 1, len(mids)))
    co = sp.triu(x.T.tocsr() @ x, k=1).tocoo()
    return mids, co, np.asarray(x.sum(axis=0)).ravel()


def scipy_reference(users: np.ndarray, movies: np.ndarray, rule: Rule,
                    out: Path) -> tuple[int, int]:
    """The single-process job: X^T X (upper triangle), weights, threshold, top-k of either
    end (ties to the smaller neighbour id), item/pair/edge rows written as Parquet with
    pyarrow under ``out``: (distinct pairs, edges)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    mids, co, counts = scipy_pairs(users, movies)
    co.sum_duplicates()  # canonical (row, col) order, as the stage writes
    a, b = mids[co.row].astype(np.int32), mids[co.col].astype(np.int32)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"movie_id": mids.astype(np.int32),
                             "n": counts.astype(np.int64)}), out / "item_counts.parquet")
    pq.write_table(pa.table({"movie_a": a, "movie_b": b, "n": co.data.astype(np.int64)}),
                   out / "pair_counts.parquet")
    item = counts.astype(np.float64)
    n = co.data.astype(np.float64)
    w, score = _weights(n, item[co.row], item[co.col], math.log(item.sum()), rule.weighting)
    keep = np.flatnonzero(w >= rule.min_weight)
    if rule.top_k:
        node = np.concatenate([co.row[keep], co.col[keep]])
        other = np.concatenate([co.col[keep], co.row[keep]])
        sc = np.concatenate([score[keep], score[keep]])
        order = np.lexsort((other, -sc, node))  # positions: other asc = id asc
        sn = node[order]
        first = np.searchsorted(sn, sn, side="left")
        chosen = order[np.arange(len(sn)) - first < rule.top_k] % len(keep)
        keep = keep[np.unique(chosen)]
    pq.write_table(pa.table({"src": a[keep], "dst": b[keep], "weight": w[keep],
                             "pmi": _weights(n[keep], item[co.row[keep]],
                                             item[co.col[keep]], math.log(item.sum()),
                                             "pmi")[1],
                             "n": co.data[keep].astype(np.int64)}), out / "edges.parquet")
    return int(co.nnz), len(keep)


def ensure_data(n: int, root: Path, spark):
    """Synth folder and an ingested warehouse for ``n`` ratings."""
    from moviegraph.sources import synth
    from moviegraph.sources.ingest import ingest
    from moviegraph.tables import Warehouse

    folder = Path(f"/tmp/synth-{n}")
    if not (folder / "ratings.csv").is_file():
        t0 = time.time()
        synth.generate(folder, ratings=n, progress=False)
        print(f"[data] synth {n:,} ratings in {time.time() - t0:.0f}s -> {folder}", flush=True)
    wh = Warehouse(spark, str(root / f"wh-{n}"))
    if not wh.exists("ratings"):
        t0 = time.time()
        ingest(spark, wh, str(folder))
        print(f"[data] ingest {n:,} in {time.time() - t0:.0f}s", flush=True)
    return wh


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print one line per (size, min_rating, method)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: int(float(s)), nargs="+",
                        default=[1_000_000, 5_000_000])
    parser.add_argument("--min-ratings", type=float, nargs="+", default=[5.0, 4.0])
    parser.add_argument("--min-weight", type=float, default=0.0)
    parser.add_argument("--weighting", choices=("cosine", "pmi"), default="cosine")
    parser.add_argument("--top-k", type=int, default=15)
    parser.add_argument("--root", type=Path, default=Path("/tmp/graphbench"))
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--dict-max-pairs", type=float, default=6e7)
    parser.add_argument("--scipy-max-pairs", type=float, default=4e8)
    parser.add_argument("--save-npz", type=Path, default=None,
                        help="save each graph's edges as DIR/edges-<size>-r<min_rating>.npz")
    parser.add_argument("--skip", nargs="*", default=[],
                        help="size:min_rating combinations to leave out (Spark run only)")
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from moviegraph import config
    from moviegraph.config import SparkConfig
    from moviegraph.runs import StageRun
    from moviegraph.session import build_session
    from moviegraph.stages.edges import run_edges
    from moviegraph.stages.pairs import run_pairs

    spark = build_session(SparkConfig(master="local[2]", shuffle_partitions=args.partitions,
                                      progress=False, driver_memory=args.driver_memory),
                          "graph-bench")
    print(f"[env] cores={os.cpu_count()} load={os.getloadavg()} partitions={args.partitions} "
          f"driver_memory={args.driver_memory}", flush=True)
    print("size        min_r  method   seconds  peak_GiB  Σn_u²            pairs_counted   "
          "distinct_pairs  edges      Mpairs/s", flush=True)
    for n in args.sizes:
        wh = ensure_data(n, args.root, spark)
        t = wh.read("ratings").select("user_id", "movie_id", "rating").toArrow()
        users_all = t.column("user_id").to_numpy()
        movies_all = t.column("movie_id").to_numpy()
        ratings_all = t.column("rating").to_numpy()
        del t
        for min_rating in args.min_ratings:
            keep = ratings_all >= min_rating
            users, movies = users_all[keep], movies_all[keep]
            nu = np.bincount(users).astype(np.int64)
            sum_sq = int((nu * nu).sum())
            counted = int((nu * (nu - 1) // 2).sum())
            head = f"{n:<11,} {min_rating:<5g}"
            if f"{n}:{min_rating:g}" in args.skip:
                print(f"{head}  spark    skipped  (Σn_u² {sum_sq:,}, pairs {counted:,})",
                      flush=True)
                continue
            # What the references compute: every rating, no count floor.
            cfg = config.load(None, ["pairs.ratings=all", "edges.min_count=1",
                                     f"edges.top_k={args.top_k}",
                                     f"edges.weighting={args.weighting}",
                                     f"pairs.min_rating={min_rating}",
                                     f"edges.min_weight={args.min_weight}"])
            t0 = time.time()
            with PeakRSS() as rss:
                cpu0 = rss.tree_cpu()
                prun = StageRun("pairs", "bench", "bench")
                run_pairs(spark, cfg, wh, prun)
                tp = time.time() - t0
                cpu_p = rss.tree_cpu() - cpu0
                erun = StageRun("edges", "bench", "bench")
                run_edges(spark, cfg, wh, erun)
            wall = time.time() - t0
            distinct, edges = prun.rows["pair_counts"], erun.rows["edges"]
            print(f"{head}  spark    {wall:7.1f}  {rss.gib:8.2f}  {sum_sq:<16,} {counted:<15,} "
                  f"{distinct:<15,} {edges:<10,} {counted / tp / 1e6:8.2f}  "
                  f"(CPU {rss.cpu:.1f}s: pairs {cpu_p:.1f}, edges {rss.cpu - cpu_p:.1f}; "
                  f"wall pairs {tp:.1f}s, edges {wall - tp:.1f}s, load {os.getloadavg()[0]:.1f}, "
                  f"largest component {erun.notes['largest_share']:.3f})", flush=True)
            assert wh.read("pair_counts").agg(F.sum("n")).first()[0] == counted
            if args.save_npz and edges <= 20_000_000:  # for walks_job.py --graph npz
                e = wh.read("edges").select("src", "dst", "weight").toArrow()
                args.save_npz.mkdir(parents=True, exist_ok=True)
                np.savez(args.save_npz / f"edges-{n}-r{min_rating:g}.npz",
                         src=e.column("src").to_numpy(), dst=e.column("dst").to_numpy(),
                         weight=e.column("weight").to_numpy())
                del e
            spark_cpu = rss.cpu
            rule = Rule(args.weighting, args.min_weight, args.top_k)
            for name, fn, limit in (("dict", dict_reference, args.dict_max_pairs),
                                    ("scipy", scipy_reference, args.scipy_max_pairs)):
                if counted > limit:
                    print(f"{head}  {name:<6}   skipped (pairs {counted:,} > {limit:,.0f})",
                          flush=True)
                    continue
                t0 = time.time()
                with PeakRSS(tree=False) as rss:
                    r_distinct, r_edges = fn(users, movies, rule,
                                             args.root / f"ref-{n}-r{min_rating:g}")
                wall = time.time() - t0
                ok = "same" if (r_distinct, r_edges) == (distinct, edges) else "DIFFERENT"
                print(f"{head}  {name:<6} {wall:9.1f}  {rss.gib:8.2f}  {sum_sq:<16,} "
                      f"{counted:<15,} {r_distinct:<15,} {r_edges:<10,} "
                      f"{counted / wall / 1e6:8.2f}  ({ok} as Spark; CPU {rss.cpu:.1f}s, "
                      f"Spark stages x{spark_cpu / max(rss.cpu, 1e-9):.1f} of it; RSS of this "
                      f"Python process only, holding the ratings arrays)", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
