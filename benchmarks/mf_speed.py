"""mf throughput (ratings x epochs per second): ALS vs Adam vs a torch reference ALS.

    .venv/bin/python -m benchmarks.mf_speed [--sizes 1e6 5e6] [--dim 64] [--sweeps 3]
        [--threads 2] [--adam-epochs 1] [--adam-batch 65536]

For each size: synthetic MovieLens-25M-shaped ratings (``moviegraph.sources.synth``, in
``/tmp/synth-<n>``, generated when missing, as ``graph_scale.py`` does), then on the same
arrays, same threads and same dimension

- ``als``: :func:`moviegraph.train.als.train_als` (the compiled per-entity solve);
- ``reference``: :func:`torch_als_reference`, the same ALS written the way a torch user
  would (Gram matrices by ``index_add_`` of outer products in chunks, one batched
  ``cholesky`` + ``cholesky_solve`` per side), started from the same item states, so its
  result must equal ALS's up to rounding (``max |diff|`` column);
- ``adam``: :func:`moviegraph.train.mf.train_mf` (``--adam-batch`` ratings per step; 65,536
  is ``conf/large.toml``'s), one epoch unless ``--adam-epochs``.

Each row: wall and CPU seconds, ratings x epochs per wall second, the ratio to the
reference, training RMSE. :func:`mf_reference` is the entry a pipeline benchmark calls for
its mf reference figure.
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


def torch_als_reference(users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                        n_users: int, n_items: int, item_states: np.ndarray, sweeps: int,
                        reg_factors: float, reg_bias: float, chunk: int = 8192
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Biased ALS in plain torch (float64): per half-sweep, each entity's normal equations
    ``(sum z z^T + n diag(reg)) x = sum z t`` built by ``index_add_`` over ``chunk``
    ratings at a time and solved by one batched Cholesky. ``item_states`` (n_items, k)
    holds the initial ``[q_i, b_i]``; returns the final ``(user_states, item_states)``."""
    import torch

    u = torch.as_tensor(users)
    i = torch.as_tensor(items)
    r = torch.as_tensor(ratings, dtype=torch.float64)
    resid = r - r.mean()
    y = torch.as_tensor(item_states, dtype=torch.float64)
    k = y.shape[1]
    reg = torch.full((k,), reg_factors, dtype=torch.float64)
    reg[-1] = reg_bias

    def half(entity: torch.Tensor, other: torch.Tensor, states: torch.Tensor,
             n: int) -> torch.Tensor:
        gram = torch.zeros((n, k, k), dtype=torch.float64)
        rhs = torch.zeros((n, k), dtype=torch.float64)
        for s in range(0, len(entity), chunk):
            e, o = entity[s:s + chunk], other[s:s + chunk]
            z = torch.cat([states[o, :-1], torch.ones((len(o), 1), dtype=torch.float64)], 1)
            gram.index_add_(0, e, z[:, :, None] * z[:, None, :])
            rhs.index_add_(0, e, z * (resid[s:s + chunk] - states[o, -1])[:, None])
        count = torch.bincount(entity, minlength=n).double()
        gram += torch.diag_embed(count[:, None] * reg)
        gram[count == 0] = torch.eye(k, dtype=torch.float64)  # unrated: solve to zero
        chol = torch.linalg.cholesky(gram)
        return torch.cholesky_solve(rhs[:, :, None], chol)[:, :, 0]

    x = torch.zeros((n_users, k), dtype=torch.float64)
    for _ in range(sweeps):
        x = half(u, i, y, n_users)
        y = half(i, u, x, n_items)
    return x.numpy(), y.numpy()


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
    """The mf reference figure on given ratings: :func:`torch_als_reference` for ``sweeps``
    sweeps from a seeded random start (``work`` = ratings x sweeps)."""
    start = np.random.default_rng(seed).normal(0, 0.1, (n_items, dim + 1))
    start[:, -1] = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    x, y = torch_als_reference(users, items, ratings, n_users, n_items, start, sweeps,
                               reg_factors, reg_bias)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Timing("reference (torch batched ALS)", len(ratings) * sweeps, wall, cpu,
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
    x_ref, y_ref = torch_als_reference(u, i, r, nu, ni, start, sweeps, cfg.reg_factors,
                                       cfg.reg_bias)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ref = Timing("reference (torch batched ALS)", len(r) * sweeps, wall, cpu,
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
    print("| method | ratings x epochs | wall s | CPU s | ratings x epochs / s | "
          "vs reference | train RMSE |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t in rows:
        print(f"| {t.name} | {t.work:,} | {t.wall:.1f} | {t.cpu:.1f} | {t.rate:,.0f} | "
              f"{t.rate / ref.rate:.2f}x | {t.train_rmse:.4f} |")
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
