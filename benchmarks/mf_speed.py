"""mf throughput (ratings x epochs per second): ALS vs Adam vs a numpy reference ALS.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.mf_speed [--sizes 1e6 5e6]
        [--dim 64] [--sweeps 3] [--threads 2] [--adam-epochs 1] [--adam-batch 65536]

For each size: synthetic MovieLens-25M-shaped ratings (``moviegraph.sources.synth``, in
``/tmp/synth-<n>``, generated when missing, as ``graph_scale.py`` does), then on the same
arrays, same threads and same dimension

- ``als``: :func:`moviegraph.train.als.train_als` (the compiled per-entity solve);
- ``reference``: :func:`numpy_als_reference`, the same ALS written the way a numpy user
  would (a loop over entities, each one's normal equations by a BLAS product and
  ``np.linalg.solve``), started from the same item states, so its result must equal
  ALS's up to rounding (printed as ``max |ALS - reference|``). A batched torch version
  (``index_add_`` of per-rating outer products, one batched Cholesky) moves
  ``ratings x k^2`` numbers through memory per half-sweep and ran far slower than this;
- ``adam``: :func:`moviegraph.train.mf.train_mf` (``--adam-batch`` ratings per step; 65,536
  is ``conf/large.toml``'s), one epoch unless ``--adam-epochs``.

Each row: wall and CPU seconds, ratings x epochs per wall and per CPU second with their
ratios to the reference, training RMSE. The reference's loop is one Python thread
whatever ``--threads`` says (run with ``OPENBLAS_NUM_THREADS=1``: BLAS threads on
``k x k`` blocks only spin), so on a quiet machine compare wall figures, on a busy one
CPU figures. :func:`mf_reference` is
the entry a pipeline benchmark calls for its mf reference figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Timing:
    """One measured run: ``work`` ratings x epochs in ``wall`` / ``cpu`` seconds."""

    name: str
    work: int
    wall: float
    cpu: float
    train_rmse: float

    @property
    def rate(self) -> float:
        """Ratings x epochs per wall second."""
        return self.work / max(self.wall, 1e-9)

    @property
    def cpu_rate(self) -> float:
        """Ratings x epochs per CPU second (the figure to compare on a busy machine)."""
        return self.work / max(self.cpu, 1e-9)


def synth_ratings(n: int, root: Path = Path("/tmp")) -> tuple[np.ndarray, ...]:
    """``(users, items, ratings, n_users, n_items)`` of ``n`` synthetic ratings in dense
    indices (``root/synth-<n>/ratings.csv``, generated when missing)."""
    import pyarrow.csv as pacsv

    from moviegraph.sources import synth

    folder = root / f"synth-{n}"
    if not (folder / "ratings.csv").exists():
        synth.generate(folder, ratings=n, progress=False)
    table = pacsv.read_csv(folder / "ratings.csv",
                           convert_options=pacsv.ConvertOptions(
                               include_columns=["userId", "movieId", "rating"]))
    _, u = np.unique(table.column("userId").to_numpy(), return_inverse=True)
    _, i = np.unique(table.column("movieId").to_numpy(), return_inverse=True)
    r = table.column("rating").to_numpy().astype(np.float64)
    return u.astype(np.int64), i.astype(np.int64), r, int(u.max()) + 1, int(i.max()) + 1


def numpy_als_reference(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                        n_users: int, n_items: int, item_states: np.ndarray, sweeps: int,
                        reg_factors: float, reg_bias: float) -> tuple[np.ndarray, np.ndarray]:
    """Biased ALS in plain numpy (float64), the way a numpy user writes it: ratings sorted
    by entity once, then per half-sweep a Python loop over the entities, each one's
    normal equations ``(Z^T Z + n diag(reg)) x = Z^T t`` by a BLAS product and
    ``np.linalg.solve``. ``item_states`` (n_items, k) holds the initial ``[q_i, b_i]``;
    returns the final ``(user_states, item_states)``. Entities without ratings stay 0."""
    resid = ratings - ratings.mean()
    y = np.array(item_states, dtype=np.float64)
    k = y.shape[1]
    reg = np.full(k, reg_factors)
    reg[-1] = reg_bias

    def grouped(entity: np.ndarray, other: np.ndarray, n: int):
        order = np.argsort(entity, kind="stable")
        bounds = np.searchsorted(entity[order], np.arange(n + 1))
        return order, bounds, other[order], resid[order]

    def half(groups, states: np.ndarray, n: int) -> np.ndarray:
        _, bounds, other, t_all = groups
        out = np.zeros((n, k))
        z_all = np.hstack([states[:, :-1], np.ones((len(states), 1))])
        for e in range(n):
            lo, hi = bounds[e], bounds[e + 1]
            if hi == lo:
                continue
            o = other[lo:hi]
            z = z_all[o]
            a = z.T @ z + np.diag((hi - lo) * reg)
            out[e] = np.linalg.solve(a, z.T @ (t_all[lo:hi] - states[o, -1]))
        return out

    by_user, by_item = grouped(users, items, n_users), grouped(items, users, n_items)
    x = np.zeros((n_users, k))
    for _ in range(sweeps):
        x = half(by_user, y, n_users)
        y = half(by_item, x, n_items)
    return x, y


def _train_rmse(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                x: np.ndarray, y: np.ndarray) -> float:
    """RMSE on the training ratings of ``mu + b_u + b_i + <p_u, q_i>`` (states ``[f, b]``)."""
    pred = ratings.mean() + x[users, -1] + y[items, -1]
    for s in range(0, len(users), 1 << 20):  # chunks: no (ratings, dim) temporary at 25M
        sl = slice(s, s + (1 << 20))
        pred[sl] += np.einsum("nd,nd->n", x[users[sl], :-1], y[items[sl], :-1])
    return float(np.sqrt(np.mean((ratings - pred) ** 2)))


def _states(model, side: str) -> np.ndarray:
    factors = getattr(model, f"{side}_factors").weight.detach().double().numpy()
    bias = getattr(model, f"{side}_bias").weight.detach().double().numpy()
    return np.hstack([factors, bias])


def mf_reference(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int,
                 n_items: int, dim: int = 64, sweeps: int = 3, reg_factors: float = 0.1,
                 reg_bias: float = 0.1, seed: int = 0) -> Timing:
    """The mf reference figure on given ratings: :func:`numpy_als_reference` for ``sweeps``
    sweeps from a seeded random start (``work`` = ratings x sweeps)."""
    start = np.random.default_rng(seed).normal(0, 0.1, (n_items, dim + 1))
    start[:, -1] = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    x, y = numpy_als_reference(users, items, ratings, n_users, n_items, start, sweeps,
                               reg_factors, reg_bias)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Timing("reference (numpy per-entity ALS)", len(ratings) * sweeps, wall, cpu,
                  _train_rmse(users, items, ratings, x, y))


def run_size(n: int, dim: int, sweeps: int, adam_epochs: int, adam_batch: int) -> None:
    """Measure and print one size's rows."""
    import torch

    from moviegraph.config.models import ALSConfig, MFConfig
    from moviegraph.train.als import train_als
    from moviegraph.train.loop import LoopConfig
    from moviegraph.train.mf import train_mf

    u, i, r, nu, ni = synth_ratings(n)
    print(f"\n{len(r):,} ratings, {nu:,} users, {ni:,} movies; dim {dim}, "
          f"{torch.get_num_threads()} threads", flush=True)
    quiet = LoopConfig(epochs=sweeps, progress=False)
    # Compile (numba caches to disk) and warm up outside the timing.
    train_als(u[:1000], i[:1000], r[:1000], nu, ni, ALSConfig(dim=dim, iterations=1),
              loop=LoopConfig(epochs=1, progress=False))
    cfg = ALSConfig(dim=dim, iterations=sweeps)
    t0, c0 = time.perf_counter(), time.process_time()
    als = train_als(u, i, r, nu, ni, cfg, loop=quiet)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    x_als, y_als = _states(als.model, "user"), _states(als.model, "item")
    rows = [Timing("als (compiled kernel)", len(r) * sweeps, wall, cpu,
                   _train_rmse(u, i, r, x_als, y_als))]
    # The reference from ALS's own start (same seed => same initial item table).
    torch.manual_seed(cfg.seed)
    from moviegraph.train.mf import BiasedMF

    start = _states(BiasedMF(nu, ni, dim, float(r.mean()), cfg.init_std), "item")
    t0, c0 = time.perf_counter(), time.process_time()
    x_ref, y_ref = numpy_als_reference(u, i, r, nu, ni, start, sweeps, cfg.reg_factors,
                                       cfg.reg_bias)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ref = Timing("reference (numpy per-entity ALS)", len(r) * sweeps, wall, cpu,
                 _train_rmse(u, i, r, x_ref, y_ref))
    rows.append(ref)
    diff = float(max(np.abs(x_als - x_ref).max(), np.abs(y_als - y_ref).max()))
    mc = MFConfig(dim=dim, epochs=adam_epochs, batch_size=adam_batch, lr=0.01)
    t0, c0 = time.perf_counter(), time.process_time()
    adam = train_mf(u, i, r, nu, ni, mc, loop=LoopConfig(epochs=adam_epochs, progress=False),
                    device=torch.device("cpu"))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows.append(Timing(f"adam (batch {adam_batch:,})", len(r) * adam_epochs, wall, cpu,
                       _train_rmse(u, i, r, _states(adam.model, "user"),
                                   _states(adam.model, "item"))))
    print("| method | ratings x epochs | wall s | CPU s | per wall s | vs reference | "
          "per CPU s | vs reference | train RMSE |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in rows:
        print(f"| {t.name} | {t.work:,} | {t.wall:.1f} | {t.cpu:.1f} | {t.rate:,.0f} | "
              f"{t.rate / ref.rate:.2f}x | {t.cpu_rate:,.0f} | {t.cpu_rate / ref.cpu_rate:.2f}x "
              f"| {t.train_rmse:.4f} |")
    print(f"max |ALS - reference| over the final states: {diff:.2e}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e6, 5e6])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--sweeps", type=int, default=3, help="ALS sweeps (reference too)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--adam-epochs", type=int, default=1)
    ap.add_argument("--adam-batch", type=int, default=65536)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    for n in args.sizes:
        run_size(int(n), args.dim, args.sweeps, args.adam_epochs, args.adam_batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
