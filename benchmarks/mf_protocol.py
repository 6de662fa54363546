"""mf as the train stage fits it, scored as the evaluate stage scores it, on MovieLens 100K.

    .venv/bin/python -m benchmarks.mf_protocol [--data-dir data] [--folder PATH]
        [--seeds 42 43 44] [--variant 'NAME:KEY=VALUE,KEY=VALUE' ...] [--threads 1]

Each variant is a list of config overrides (``--set`` syntax) on top of the defaults;
without ``--variant`` the rows are the default (``train.mf.method``'s default settings),
BPMF with today's 20 + 150 sweeps, ALS and Adam. For each seed (``train.seed``) the
model is fitted by :func:`moviegraph.train.models.fit_mf` (the train stage's code, the
rating split's train part) and its written vectors go through the evaluate stage's
scoring (:mod:`moviegraph.evaluate.scoring`: RMSE on the rating split from the vectors,
Recall@20 / NDCG@20 of the dot product and of summed cosine on the ranking split, genre
P@10 of the factor columns). Rows give mean and standard deviation over the seeds (the
noise a setting must stay within), and wall / CPU seconds of the fit.

Runs against any checkout: ``PYTHONPATH=../main/lib`` scores main's code (the "before").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.data import add_arguments, ml100k

#: The default rows: label -> overrides.
VARIANTS = {
    "default": [],
    "bpmf 20+150 (before)": ["train.mf.method=bpmf", "train.mf.bpmf.burn_in=20",
                             "train.mf.bpmf.samples=150"],
    "als": ["train.mf.method=als"],
    "adam": ["train.mf.method=adam"],
}
#: Metrics printed, in order.
COLUMNS = ("rmse", "recall@20:dot", "ndcg@20:dot", "recall@20:cosine", "genre_p@10")


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> ``(NAME, [KEY=VALUE, ...])``."""
    name, _, rest = text.partition(":")
    return name, [s for s in rest.split(",") if s]


def score_mf(overrides: list[str], seed: int, ratings, d, k: int = 20
             ) -> tuple[dict[str, float], float, float]:
    """One fit by the train stage's ``fit_mf`` and the evaluate stage's scores of its
    vectors: ``(metrics, wall seconds, CPU seconds)`` of the fit."""
    import torch

    from moviegraph import config as config_mod
    from moviegraph.evaluate import scoring as pr
    from moviegraph.protocol.data import align
    from moviegraph.train.models import ModelData, fit_mf

    cfg = config_mod.load([], ["spark.progress=false", f"train.seed={seed}", *overrides])
    with tempfile.TemporaryDirectory() as folder:
        t0, c0 = time.perf_counter(), time.process_time()
        t = fit_mf(ModelData(loaded=ratings), cfg, torch.device("cpu"), Path(folder))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    vectors, has = align(t.movie_ids, t.vectors, d.movie_ids)
    user_vectors, has_user = align(t.user_ids, t.user_vectors, d.user_ids)
    layout = t.notes["vector_layout"]
    cos = vectors[:, :-pr.BIAS_COLUMNS[layout]] if layout in pr.BIAS_COLUMNS else vectors
    out = pr.Collector()
    pr.evaluate_user_model(out, "mf", vectors, user_vectors, d, k, cos)
    if layout in pr.BIAS_COLUMNS:
        out.add("mf", "rmse", pr.biased_dot_rmse(vectors, has, user_vectors, has_user,
                                                 float(t.notes["global_mean"]), d, layout))
    pr.genre_metrics(out, "mf", cos, has, d, cfg.evaluate.seed)
    return {name: value for _, name, value in out.rows}, wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(ap)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME:KEY=VALUE,KEY=VALUE (repeatable); default: the built-in rows")
    ap.add_argument("--threads", type=int, default=1, help="torch / kernel threads")
    args = ap.parse_args(argv)
    import torch

    from moviegraph.train.data import Ratings

    torch.set_num_threads(args.threads)
    d = ml100k(args).data
    ratings = Ratings(d.user_ids[d.u], d.movie_ids[d.m], d.r, d.ts)
    variants = dict(parse_variant(v) for v in args.variant) if args.variant else VARIANTS
    print(f"MovieLens 100K, seeds {args.seeds}, {args.threads} thread(s); mean +- sd over "
          "seeds", flush=True)
    print("| mf | " + " | ".join(COLUMNS) + " | fit wall s | fit CPU s |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for name, overrides in variants.items():
        rows, walls, cpus = [], [], []
        for seed in args.seeds:
            metrics, wall, cpu = score_mf(overrides, seed, ratings, d)
            rows.append(metrics)
            walls.append(wall)
            cpus.append(cpu)
        cells = []
        for col in COLUMNS:
            values = np.array([m.get(col, np.nan) for m in rows])
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():.4f} +- {sd:.4f}")
        print(f"| {name} | " + " | ".join(cells)
              + f" | {np.mean(walls):.1f} | {np.mean(cpus):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
