"""The blend model's weights and list settings by validation neighbour HR@20 (issue 14).

    PYTHONPATH=lib .venv/bin/python -m benchmarks.tune_blend [--data-dir data]
        [--folder PATH] [--seeds 42 43 44 45 46] [--top 15] [--out results.json]

Honest as :mod:`benchmarks.tune_node2vec` is: the ranking split's train part is cut again
(each user's last 20% of train); node2vec (graph, walks, skip-gram at the config's
defaults, then the fold-in) and cbow are trained on train minus the cut only, and every
setting's lists are ranked and scored by ``tune_lists`` (the similarity join's kernels).
The blend is :func:`moviegraph.train.blend.blend_vectors`, the train stage's own.

Grid: node2vec weight (cbow gets the rest) x list prior x list beta x co-rating weight;
a row's HR is the mean over the seeds. Issue 14 (seeds 42-46): best 0.75 / recent / 0.25
/ 0.5 at 0.6049, the [train.blend] and [train.scorers.blend] defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.data import add_arguments, ml100k_folder
from benchmarks.tune_node2vec import Ratings, current_defaults, load_ratings, node2vec_vectors

N2V_WEIGHTS = (0.4, 0.5, 0.6, 0.75)
PRIORS = ("recent", "popularity")
BETAS = (0.15, 0.2, 0.25, 0.3)
CORATES = (0.0, 0.25, 0.5)


def cbow_vectors(user_id: np.ndarray, movie_id: np.ndarray, ts: np.ndarray, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(movie_ids, vectors)`` of cbow on these ratings' histories (the config's
    ``[train.cbow]``, ``train.seed`` = ``seed``), on the CPU."""
    import torch

    from moviegraph.config import Config
    from moviegraph.train.cbow import sentences_from_history, train_cbow
    from moviegraph.train.loop import LoopConfig

    cc = dataclasses.replace(Config().train.cbow, seed=seed)
    ids, pos = np.unique(movie_id, return_inverse=True)
    sentences = sentences_from_history(user_id, pos.astype(np.int64), ts, cc.max_len)
    res = train_cbow(sentences, ids.size, cc, LoopConfig(epochs=cc.epochs, progress=False),
                     torch.device("cpu"))
    return ids.astype(np.int64), res.vectors


def score(ratings: Ratings, seed: int) -> dict[str, float]:
    """``{"w,prior,beta,corate": validation HR@20}`` for one seed."""
    from moviegraph.config import Config
    from moviegraph.protocol.splits import ranking_split
    from moviegraph.similarity.list_tuning import tune_lists
    from moviegraph.train.blend import blend_vectors
    from moviegraph.train.shipped import TrainRatings, fold_in

    cfg = Config()
    train = TrainRatings.of(ratings.user_id, ratings.movie_id, ratings.rating, ratings.ts)
    val = ranking_split(train.user_id, train.movie_id, train.ts)
    fit = TrainRatings(train.user_id[~val], train.movie_id[~val], train.rating[~val],
                       train.ts[~val])
    keep = fit.rating >= cfg.pairs.min_rating
    n_ids, n_vec = node2vec_vectors(fit.user_id[keep], fit.movie_id[keep],
                                    current_defaults(), seed)
    n_ids, n_vec, _ = fold_in(n_ids, n_vec, fit)
    c_ids, c_vec = cbow_vectors(fit.user_id, fit.movie_id, fit.ts, seed)
    out = {}
    for w in N2V_WEIGHTS:
        ids, vectors = blend_vectors([(n_ids, n_vec), (c_ids, c_vec)], [w, 1.0 - w])
        for prior in PRIORS:
            # The shipped list metric: dot (rows are unit wherever every part is present).
            tuned = tune_lists(ids.astype(np.int64), vectors, "dot", prior, train,
                               cfg.similar.k, betas=BETAS, corates=CORATES)
            for (b, c), hr in tuned.hit_rate.items():
                out[f"{w:g},{prior},{b:g},{c:g}"] = hr
    return out


def main() -> None:
    """Score the grid per seed; print the best rows by mean HR; write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    ap.add_argument("--top", type=int, default=15, help="rows to print")
    ap.add_argument("--out", type=Path, help="write every seed's grid as JSON here")
    args = ap.parse_args()
    ratings = load_ratings(ml100k_folder(args))
    runs = {}
    for seed in args.seeds:
        t0 = time.perf_counter()
        runs[seed] = score(ratings, seed)
        print(f"seed {seed}: {len(runs[seed])} settings in {time.perf_counter() - t0:.0f}s",
              flush=True)
    mean = {k: float(np.mean([r[k] for r in runs.values()])) for k in runs[args.seeds[0]]}
    # Ties: the smaller co-rating weight (the cheaper, simpler list).
    best = sorted(mean, key=lambda k: (-round(mean[k], 4), float(k.rsplit(",", 1)[1])))
    print(f"{'n2v weight':>10} {'prior':>10} {'beta':>5} {'corate':>6}  mean val HR@20")
    for k in best[:args.top]:
        w, prior, b, c = k.split(",")
        print(f"{w:>10} {prior:>10} {b:>5} {c:>6}  {mean[k]:.4f}")
    if args.out:
        args.out.write_text(json.dumps({str(s): r for s, r in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
