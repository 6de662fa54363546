"""RMSE of the mf variants on MovieLens 100K's rating split, beside global mean and biases.

    .venv/bin/python -m benchmarks.mf_ml100k [--data-dir data] [--folder PATH]
        [--split test|validation] [--only NAME ...] [--quick]

EVALUATION.md's rating split: a rating is test when ``(user * 1000003 + movie) % 10 == 0``.
``--split validation`` fits on the train part minus the train stage's validation cut
(``% 10 == 1``) and scores that cut: use it for every choice of settings; ``--split test``
(default) fits on the whole train part and scores the test part. Each row also gives its
wall seconds (one thread on the CPU, or CUDA when present). The BPMF rows' RMSE is
computed from the vectors the train stage would write (``train.mf.biases = "full"``:
``user . movie`` = prediction) and checked against the sampler's own posterior average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from benchmarks.data import add_arguments, ml100k
from moviegraph.config import TrainConfig
from moviegraph.evaluate import baselines as bl
from moviegraph.protocol import metrics as mt
from moviegraph.train.bpmf import BPMFConfig, interaction_vectors, posterior_biases, train_bpmf
from moviegraph.train.data import validation_rows
from moviegraph.train.device import pick_device
from moviegraph.train.loop import LoopConfig
from moviegraph.train.mf import MFConfig, train_mf
from moviegraph.train.models import mf_vector_layout

#: BPMF settings measured (the train stage's defaults are the "default" row).
BPMF_VARIANTS = {
    "BPMF dim 10": BPMFConfig(dim=10, burn_in=20, samples=150, side="none"),
    "BPMF dim 20": BPMFConfig(dim=20, burn_in=20, samples=150, side="none"),
    "BPMF dim 10, robust noise (user_movie)": BPMFConfig(dim=10, burn_in=20, samples=150,
                                                         noise="user_movie", side="none"),
    "BPMF dim 10 + implicit side info (both, reg 1)": BPMFConfig(
        dim=10, burn_in=20, samples=150, side="both", side_reg=1.0),
}
#: Adam (penalised least squares) settings measured.
ADAM_VARIANTS = {
    "biased MF, Adam (MFConfig(), dim 128)": MFConfig(),
    "SVD++, Adam (implicit, lr 0.002)": MFConfig(implicit=True, lr=0.002),
}


def default_bpmf() -> BPMFConfig:
    """The train stage's BPMF settings (``[train.mf.bpmf]``'s defaults, ``train.seed``)."""
    tc = TrainConfig()
    return replace(tc.mf.bpmf, seed=tc.seed)


def bpmf_row(cfg: BPMFConfig, fit: tuple, n_users: int, n_items: int, ev: tuple,
             device: torch.device) -> tuple[float, str]:
    """RMSE from the exact written ("full" layout) vectors, and in the note the sampler
    check and the RMSE from vectors truncated to the train stage's ``train.mf.write_rank``."""
    u, m, r = fit
    res = train_bpmf(u, m, r, n_users, n_items, cfg, evaluate=[ev[:2]], device=device)
    bu, bi = posterior_biases(res)

    def from_vectors(rank: int | None) -> tuple[float, np.ndarray, int]:
        g, f, _ = interaction_vectors(res, rank)
        movie, user = mf_vector_layout(f, g, bi, bu, res.global_mean, "full")
        pred = np.einsum("nd,nd->n", user[ev[0]].astype(np.float64),
                         movie[ev[1]].astype(np.float64))
        return mt.rmse(pred, ev[2]), np.clip(pred, 1, 5), user.shape[1]

    exact, pred, width = from_vectors(None)
    diff = float(np.max(np.abs(pred - np.clip(res.eval_predictions[0], 1, 5))))
    rank = TrainConfig().mf.write_rank
    trunc, _, t_width = from_vectors(rank)
    return exact, (f"exact vectors {width} wide, |vectors - sampler| <= {diff:.1e}; "
                   f"write rank {rank} ({t_width} wide): RMSE {trunc:.4f}; "
                   f"final alpha {res.history[-1]['alpha']:.2f}")


def main() -> None:
    """Parse arguments, fit every variant, print one table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap)
    ap.add_argument("--split", choices=("test", "validation"), default="test")
    ap.add_argument("--only", nargs="*", help="run only rows whose name contains one of these")
    ap.add_argument("--quick", action="store_true", help="few sweeps / epochs (smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    device = pick_device()
    d = ml100k(args).data
    uid, mid, u, m, r = d.user_ids[d.u], d.movie_ids[d.m], d.u, d.m, d.r
    n_users, n_items = d.n_users, d.n_items
    test = d.rated_test
    if args.split == "validation":
        scored = validation_rows(uid, mid) & ~test
        fit_rows = ~test & ~scored
    else:
        scored, fit_rows = test, ~test
    fit = (u[fit_rows], m[fit_rows], r[fit_rows])
    ev = (u[scored], m[scored], r[scored])

    rows: list[tuple[str, float, float, str]] = []

    def timed(name: str, make: Callable[[], tuple[float, str]]) -> None:
        if args.only and not any(s in name for s in args.only):
            return
        t0 = time.perf_counter()
        value, note = make()
        rows.append((name, value, time.perf_counter() - t0, note))
        print(f"  {name}: RMSE {value:.4f} ({rows[-1][2]:.1f} s)", file=sys.stderr, flush=True)

    timed("global mean", lambda: (mt.rmse(bl.global_mean(fit[2], n_users, n_items)
                                          .predict(ev[0], ev[1]), ev[2]), ""))
    timed("user + item biases (reg 5)", lambda: (mt.rmse(bl.fit_biases(*fit, n_users, n_items)
                                                         .predict(ev[0], ev[1]), ev[2]), ""))
    for name, mc in ADAM_VARIANTS.items():
        if args.quick:
            mc = replace(mc, epochs=2)

        def adam(mc: MFConfig = mc) -> tuple[float, str]:
            res = train_mf(*fit, n_users, n_items, mc, device=device,
                           loop=LoopConfig(epochs=mc.epochs, progress=False))
            return mt.rmse(res.predict(ev[0], ev[1]), ev[2]), f"{mc.epochs} epochs"

        timed(name, adam)
    variants = {**BPMF_VARIANTS, "BPMF, train stage defaults": default_bpmf()}
    for name, bc in variants.items():
        if args.quick:
            bc = replace(bc, burn_in=2, samples=3)
        timed(name, lambda bc=bc: bpmf_row(bc, fit, n_users, n_items, ev, device))

    load = os.getloadavg()
    print(f"ml-100k rating split, scored on {args.split} ({len(ev[2]):,} ratings; fit on "
          f"{len(fit[2]):,}); device {device}; load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f} (machine shared: seconds are noisy)\n")
    print("| model | RMSE | seconds | note |\n| --- | --- | --- | --- |")
    for name, value, seconds, note in rows:
        print(f"| {name} | {value:.4f} | {seconds:.1f} | {note} |")


if __name__ == "__main__":
    main()
