"""Skip-gram throughput and quality: moviegraph's trainer vs gensim Word2Vec, same walks.

Builds the PMI co-rating graph of MovieLens 100K's ranking-split train part (DESIGN.md
"Pairs and PMI": ratings >= min_rating, pmi * pair_count >= min_weight), walks it with the
project's node2vec kernel, then trains both skip-gram implementations on the same walks
with equal dims / window / negatives / sample / epochs / threads, and reports walk tokens
per second of training plus genre precision@10 and Recall@20 / NDCG@20 (EVALUATION.md).

    .venv/bin/python -m benchmarks.skipgram_throughput [--threads 1 2] [--seeds 3] ...

Each implementation runs at every ``--threads`` count (gensim's ``workers``), seeds outermost,
and the table gives wall tokens/s, CPU seconds (the process's, all threads) and tokens per
CPU second beside the quality, mean over ``--seeds`` training seeds. moviegraph's time is
the whole ``train_skipgram`` call; gensim's is ``Word2Vec.train`` after ``build_vocab``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from benchmarks.data import add_walk_arguments, ml100k

REPO = Path(__file__).resolve().parents[1]


def pmi_edges(
    user: np.ndarray, item: np.ndarray, rating: np.ndarray, n_items: int,
    min_rating: float, min_weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src < dst, weight) of the PMI co-rating graph, by one sparse X^T X."""
    keep = rating >= min_rating
    u, i = user[keep], item[keep]
    x = sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(int(user.max()) + 1, n_items))
    x.data[:] = 1.0  # duplicate (user, movie) rows count once
    cnt = np.asarray(x.sum(0)).ravel()
    pair = sp.triu(x.T @ x, k=1).tocoo()
    log_total = np.log(cnt.sum())
    pmi = np.log(pair.data) - np.log(cnt[pair.row]) - np.log(cnt[pair.col]) + log_total
    w = pmi * pair.data
    ok = w >= min_weight
    return pair.row[ok].astype(np.int64), pair.col[ok].astype(np.int64), w[ok]


def gensim_skipgram(sentences: list[list[str]], n_items: int, dim: int, window: int,
                    negative: int, sample: float, epochs: int, threads: int, seed: int,
                    alpha: float = 0.025, min_alpha: float = 1e-4
                    ) -> tuple[np.ndarray, float, float]:
    """gensim skip-gram on ``sentences`` (walks as lists of token strings ``"0".."n-1"``):
    ``(vectors (n_items, dim), wall s, CPU s)`` of ``Word2Vec.train`` alone (the
    vocabulary is built before the clock starts). Shared with ``benchmarks.pipeline``."""
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=dim, window=window, sg=1, hs=0, negative=negative,
                     sample=sample, min_count=1, alpha=alpha, min_alpha=min_alpha,
                     workers=threads, seed=seed)
    model.build_vocab(sentences)
    t0, c0 = time.perf_counter(), time.process_time()
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    vec = np.zeros((n_items, dim), dtype=np.float32)
    for key in model.wv.index_to_key:
        vec[int(key)] = model.wv[key]
    return vec, secs, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=REPO / "data")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="thread counts to run each implementation with (default: 1 2)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--negative", type=int, default=5)
    ap.add_argument("--sample", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=5)
    add_walk_arguments(ap)
    ap.add_argument("--min-rating", type=float, default=5.0)
    ap.add_argument("--min-weight", type=float, default=10.0)
    ap.add_argument("--batch-walks", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1, help="walks' seed, first training seed")
    ap.add_argument("--seeds", type=int, default=1,
                    help="training seeds per row (quality averaged over them)")
    ap.add_argument("--backend", default="auto", help="moviegraph's SkipGramConfig.backend")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="time the first moviegraph run with numba's compile / cache load")
    ap.add_argument("--skip-gensim", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(max(args.threads)))
    import torch

    from moviegraph.protocol import metrics as mt
    from moviegraph.train.device import set_deterministic
    from moviegraph.train.loop import LoopConfig
    from moviegraph.train.skipgram import SkipGramConfig, train_skipgram
    from moviegraph.walks.csr import CSRGraph
    from moviegraph.walks.kernel import random_walks

    torch.set_num_threads(max(args.threads))
    d = ml100k(args).data
    u, m, rating, is_test, n_items = d.u, d.m, d.r, d.is_test, d.n_items
    train, test, genres = d.train, d.test, d.genres

    t0 = time.perf_counter()
    src, dst, w = pmi_edges(u[~is_test], m[~is_test], rating[~is_test], n_items,
                            args.min_rating, args.min_weight)
    graph = CSRGraph.from_edges(src, dst, w, n_items)
    nodes = np.flatnonzero(np.diff(graph.indptr) > 0)
    starts = np.repeat(nodes, args.num_walks)
    rounds = np.tile(np.arange(args.num_walks), len(nodes))
    walks = random_walks(graph, starts, rounds, args.walk_length, args.p, args.q, args.seed)
    n_tokens = int((walks >= 0).sum())
    print(f"graph: {len(nodes)} nodes, {len(src)} edges; walks {walks.shape}, "
          f"{n_tokens} tokens ({time.perf_counter() - t0:.1f}s)")
    in_graph = np.zeros(n_items, dtype=bool)
    in_graph[nodes] = True

    def quality(vectors: np.ndarray) -> dict[str, float]:
        vec = np.where(in_graph[:, None], vectors, 0.0)  # unwalked movies: no vector
        gp = mt.genre_precision_at_k(vec, genres, 10, include=in_graph)
        rk = mt.ranking_metrics(mt.item_embedding_scores(vec, train), train, test, k=20)
        return {"genre_p10": gp, "recall20": rk.recall, "ndcg20": rk.ndcg}

    def timed(f, *a, **kw):
        t0, c0 = time.perf_counter(), time.process_time()
        out = f(*a, **kw)
        return out, time.perf_counter() - t0, time.process_time() - c0

    def moviegraph(threads: int, seed: int) -> tuple[np.ndarray, float, float]:
        """Vectors, wall and CPU seconds of the whole ``train_skipgram`` call."""
        set_deterministic(threads)
        cfg = SkipGramConfig(dim=args.dim, window=args.window, negative=args.negative,
                             sample=args.sample, epochs=args.epochs,
                             batch_walks=args.batch_walks, seed=seed, threads=threads,
                             backend=args.backend)
        res, secs, cpu = timed(train_skipgram, walks, n_items, cfg,
                               LoopConfig(epochs=args.epochs, progress=False),
                               torch.device("cpu"))
        return res.vectors, secs, cpu

    sentences = [[str(t) for t in row[row >= 0]] for row in walks]

    def gensim(threads: int, seed: int) -> tuple[np.ndarray, float, float]:
        """Vectors, wall and CPU seconds of ``Word2Vec.train`` (vocabulary built before)."""
        return gensim_skipgram(sentences, n_items, args.dim, args.window, args.negative,
                               args.sample, args.epochs, threads, seed)

    engines = {"moviegraph": moviegraph}
    if not args.skip_gensim:
        engines["gensim"] = gensim
    if args.warmup:  # numba compiles (or loads its cache) once, outside the timings
        moviegraph(1, args.seed)
    load = [os.getloadavg()]
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    # Seeds outermost and engines alternating, so that load changes hit every row alike.
    for seed in range(args.seed, args.seed + args.seeds):
        for threads in args.threads:
            for name, run_engine in engines.items():
                vectors, secs, cpu = run_engine(threads, seed)
                row = {"seed": seed, "seconds": secs, "cpu_seconds": cpu,
                       "tokens_per_s": n_tokens * args.epochs / secs,
                       "tokens_per_cpu_s": n_tokens * args.epochs / cpu, **quality(vectors)}
                runs.setdefault((name, threads), []).append(row)
                print(f"{name:10s} threads {threads} seed {seed}", json.dumps(row))
    load.append(os.getloadavg())

    rng = np.random.default_rng(0)
    rand = quality(rng.standard_normal((n_items, args.dim)))
    print("random    ", json.dumps(rand))
    print(f"\nload average (1, 5, 15 min) before {load[0]}, after {load[1]}; "
          f"{args.seeds} seed(s) from {args.seed}, means (quality: mean +- std over seeds)")
    print("| implementation | threads | tokens/s | CPU s | tokens/CPU s | genre P@10 | "
          "Recall@20 | NDCG@20 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    summary = {}
    for (name, threads), rows in runs.items():
        mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "seed"}
        std = {k: float(np.std([r[k] for r in rows])) for k in ("genre_p10", "recall20")}
        summary[f"{name}/{threads}"] = {"mean": mean, "std": std, "runs": rows}
        print(f"| {name} | {threads} | {mean['tokens_per_s']:,.0f} | {mean['cpu_seconds']:.1f} "
              f"| {mean['tokens_per_cpu_s']:,.0f} | {mean['genre_p10']:.4f} ± "
              f"{std['genre_p10']:.4f} | {mean['recall20']:.4f} ± {std['recall20']:.4f} "
              f"| {mean['ndcg20']:.4f} |")
    print(f"| random | — | — | — | — | {rand['genre_p10']:.4f} | {rand['recall20']:.4f} "
          f"| {rand['ndcg20']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "load": load, "results": summary, "random": rand},
                                        indent=2))


if __name__ == "__main__":
    main()
