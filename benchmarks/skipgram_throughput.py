"""Skip-gram throughput and quality: moviegraph's trainer vs gensim Word2Vec, same walks.

Builds the PMI co-rating graph of MovieLens 100K's ranking-split train part (DESIGN.md
"Pairs and PMI": ratings >= min_rating, pmi * pair_count >= min_weight), walks it with the
project's node2vec kernel, then trains both skip-gram implementations on the same walks
with equal dims / window / negatives / sample / epochs / threads, and reports walk tokens
per second of training plus genre precision@10 and Recall@20 / NDCG@20 (EVALUATION.md).

    .venv/bin/python -m benchmarks.skipgram_throughput [--threads 2] [--epochs 5] ...
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=REPO / "data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--negative", type=int, default=5)
    ap.add_argument("--sample", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=5)
    add_walk_arguments(ap)
    ap.add_argument("--min-rating", type=float, default=5.0)
    ap.add_argument("--min-weight", type=float, default=10.0)
    ap.add_argument("--batch-walks", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-gensim", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    from moviegraph.protocol import metrics as mt
    from moviegraph.train.device import seed_everything, set_deterministic
    from moviegraph.train.loop import LoopConfig
    from moviegraph.train.skipgram import SkipGramConfig, train_skipgram
    from moviegraph.walks.csr import CSRGraph
    from moviegraph.walks.kernel import random_walks

    torch.set_num_threads(args.threads)
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

    out: dict[str, dict[str, float]] = {}
    seed_everything(args.seed)
    set_deterministic(args.threads)
    cfg = SkipGramConfig(dim=args.dim, window=args.window, negative=args.negative,
                         sample=args.sample, epochs=args.epochs, batch_walks=args.batch_walks,
                         seed=args.seed)
    t0 = time.perf_counter()
    res = train_skipgram(walks, n_items, cfg,
                         loop=LoopConfig(epochs=args.epochs, progress=False),
                         device=torch.device("cpu"))
    secs = time.perf_counter() - t0
    out["moviegraph"] = {"seconds": secs, "tokens_per_s": n_tokens * args.epochs / secs,
                         **quality(res.vectors)}
    print("moviegraph", json.dumps(out["moviegraph"]))

    if not args.skip_gensim:
        from gensim.models import Word2Vec

        sentences = [[str(t) for t in row[row >= 0]] for row in walks]
        model = Word2Vec(vector_size=args.dim, window=args.window, sg=1, hs=0,
                         negative=args.negative, sample=args.sample, min_count=1,
                         workers=args.threads, seed=args.seed)
        model.build_vocab(sentences)
        t0 = time.perf_counter()
        model.train(sentences, total_examples=len(sentences), epochs=args.epochs)
        secs = time.perf_counter() - t0
        vec = np.zeros((n_items, args.dim), dtype=np.float32)
        for key in model.wv.index_to_key:
            vec[int(key)] = model.wv[key]
        out["gensim"] = {"seconds": secs, "tokens_per_s": n_tokens * args.epochs / secs,
                         **quality(vec)}
        print("gensim    ", json.dumps(out["gensim"]))

    rng = np.random.default_rng(0)
    out["random"] = quality(rng.standard_normal((n_items, args.dim)))
    print("random    ", json.dumps(out["random"]))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "results": out}, indent=2))


if __name__ == "__main__":
    main()
