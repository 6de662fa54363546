"""pairs + edges at scale on synth data, next to two single-machine references.

    .venv/bin/python -m benchmarks.graph_scale --sizes 1000000 5000000 25000095 \\
        --min-ratings 5 4 [--root /tmp/graphbench] [--skip 25000095:4]

For each size: synth data in ``/tmp/synth-<n>`` (generated when missing), ingested once
into ``<root>/wh-<n>``; then for each min_rating the real `pairs` and `edges` stages
(local[2]) with wall time, peak RSS of the whole process tree (driver Python + JVM +
Python workers, sampled every 0.2 s), pairs counted per second and edges kept. The
references, on the sizes they can handle (``--dict-max-pairs``, ``--scipy-max-pairs``):
the recipe's Python dict loop, and a scipy sparse ``X^T X`` co-occurrence product; their
distinct-pair and edge counts are checked against the Spark tables.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks.tree_rss import PeakRSS


def dict_reference(users: np.ndarray, movies: np.ndarray, min_weight: float) -> tuple[int, int]:
    """The recipe as a plain dict loop: (distinct pairs, edges)."""
    by_user: dict[int, list[int]] = {}
    for u, m in zip(users.tolist(), movies.tolist(), strict=True):
        by_user.setdefault(u, []).append(m)
    item, pair = Counter(), Counter()
    for ms in by_user.values():
        item.update(ms)
        pair.update(itertools.combinations(sorted(ms), 2))
    d = math.log(sum(item.values()))
    edges = sum(1 for (x, y), n in pair.items()
                if (math.log(n) - math.log(item[x]) - math.log(item[y]) + d) * n >= min_weight)
    return len(pair), edges


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


def scipy_reference(users: np.ndarray, movies: np.ndarray, min_weight: float) -> tuple[int, int]:
    """Co-occurrence as the sparse product X^T X (upper triangle): (distinct pairs, edges)."""
    _, co, counts = scipy_pairs(users, movies)
    item = counts.astype(np.float64)
    d = math.log(item.sum())
    n = co.data.astype(np.float64)
    w = (np.log(n) - np.log(item[co.row]) - np.log(item[co.col]) + d) * n
    return int(co.nnz), int((w >= min_weight).sum())


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
    parser.add_argument("--min-weight", type=float, default=10.0)
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
            # The recipe's graph (what the references compute): no count floor, no top-k.
            cfg = config.load(None, ["pairs.ratings=all", "edges.min_count=1", "edges.top_k=0",
                                     f"pairs.min_rating={min_rating}",
                                     f"edges.min_weight={args.min_weight}"])
            t0 = time.time()
            with PeakRSS() as rss:
                prun = StageRun("pairs", "bench", "bench")
                run_pairs(spark, cfg, wh, prun)
                tp = time.time() - t0
                erun = StageRun("edges", "bench", "bench")
                run_edges(spark, cfg, wh, erun)
            wall = time.time() - t0
            distinct, edges = prun.rows["pair_counts"], erun.rows["edges"]
            print(f"{head}  spark    {wall:7.1f}  {rss.gib:8.2f}  {sum_sq:<16,} {counted:<15,} "
                  f"{distinct:<15,} {edges:<10,} {counted / tp / 1e6:8.2f}  "
                  f"(pairs {tp:.1f}s, edges {wall - tp:.1f}s, load {os.getloadavg()[0]:.1f}, "
                  f"largest component {erun.notes['largest_share']:.3f})", flush=True)
            assert wh.read("pair_counts").agg(F.sum("n")).first()[0] == counted
            if args.save_npz and edges <= 20_000_000:  # for walks_job.py --graph npz
                e = wh.read("edges").select("src", "dst", "weight").toArrow()
                args.save_npz.mkdir(parents=True, exist_ok=True)
                np.savez(args.save_npz / f"edges-{n}-r{min_rating:g}.npz",
                         src=e.column("src").to_numpy(), dst=e.column("dst").to_numpy(),
                         weight=e.column("weight").to_numpy())
                del e
            for name, fn, limit in (("dict", dict_reference, args.dict_max_pairs),
                                    ("scipy", scipy_reference, args.scipy_max_pairs)):
                if counted > limit:
                    print(f"{head}  {name:<6}   skipped (pairs {counted:,} > {limit:,.0f})",
                          flush=True)
                    continue
                t0 = time.time()
                with PeakRSS(tree=False) as rss:
                    r_distinct, r_edges = fn(users, movies, args.min_weight)
                wall = time.time() - t0
                ok = "same" if (r_distinct, r_edges) == (distinct, edges) else "DIFFERENT"
                print(f"{head}  {name:<6} {wall:9.1f}  {rss.gib:8.2f}  {sum_sq:<16,} "
                      f"{counted:<15,} {r_distinct:<15,} {r_edges:<10,} "
                      f"{counted / wall / 1e6:8.2f}  ({ok} as Spark; RSS of this Python "
                      f"process only, holding the ratings arrays)", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
