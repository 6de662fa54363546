"""Data-parallel matrix factorisation: PyTorch DDP launched by Spark's TorchDistributor.

Every process holds the whole (small) model and all training ratings (read from one
``.npz`` file the driver writes, rather than pickled into the launch), draws the same
epoch permutation from ``(seed, epoch)`` and trains on its slice of each global batch of
``batch_size`` ratings. DDP averages the slices' gradients, so one step is the step the
single-process trainer takes on the whole global batch (up to float summation order and
the uneven split of a batch by at most one rating): the result matches single-process
training within noise, whatever the number of processes. A final global batch with fewer
ratings than processes is skipped (every process must take the same number of steps).

Backends: gloo on CPU, nccl on CUDA. Where the processes run follows the session's
master: with a ``local[...]`` master TorchDistributor starts them on the driver
(``local_mode=True``) and they share its disk: data and result pass through files, and
each process checkpoints through the shared loop (rank 0 into the model's folder, rank r
into ``rank<r>/`` below it), so ``resume`` works as in single-process training. On a
cluster they run as one barrier stage on the executors (``local_mode=False``): the arrays
travel with the tasks, rank 0 returns the weights to the driver, and nothing is
checkpointed (an executor's disk is not the driver's; the run is restarted whole).
Executors then need torch: ship the full environment (``--ship-venv``) or install it on
the nodes.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moviegraph.train.loop import FitResult, LoopConfig, fit
from moviegraph.train.mf import (
    BiasedMF,
    MFConfig,
    MFResult,
    descend,
    epoch_batches,
    make_optimizer,
    validation_rmse,
)


class _PenalisedMF(nn.Module):
    """Wraps :class:`BiasedMF` so DDP's forward returns the training objective.

    DDP synchronises gradients only for losses computed through its own ``forward``.
    """

    def __init__(self, mf: BiasedMF, reg_factors: float, reg_bias: float) -> None:
        super().__init__()
        self.mf = mf
        self.reg_factors = reg_factors
        self.reg_bias = reg_bias

    def forward(self, users: torch.Tensor, items: torch.Tensor,
                ratings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mf.penalised_loss(users, items, ratings, self.reg_factors, self.reg_bias)


def rank_checkpoint_dir(base: str | Path | None, rank: int) -> Path | None:
    """Checkpoint folder of process ``rank`` (rank 0: ``base`` itself)."""
    if base is None:
        return None
    return Path(base) if rank == 0 else Path(base) / f"rank{rank}"


def runs_on_executors(spark: Any) -> bool:
    """True when TorchDistributor would start the processes on executors (any master but
    ``local[...]``)."""
    return not str(spark.sparkContext.master).startswith("local")


def _mf_worker(data_source: str | dict[str, np.ndarray], num_users: int, num_items: int,
               cfg_dict: dict[str, Any], loop_dict: dict[str, Any], out_path: str | None,
               use_gpu: bool, threads: int) -> Any:
    """One DDP process (run by torchrun under TorchDistributor, or by ``spawn``).

    ``data_source`` is an ``.npz`` path (processes beside the driver) or the arrays
    themselves (processes on executors); with ``out_path`` None rank 0 returns the result
    instead of writing it.
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    backend = "nccl" if use_gpu else "gloo"
    dist.init_process_group(backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        if use_gpu:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            device = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
            # Processes share the cores; oversubscribed OpenMP threads only slow them down.
            torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world))
        cfg = MFConfig(**cfg_dict)
        loop_kw = dict(loop_dict)
        loop_kw["checkpoint_dir"] = rank_checkpoint_dir(loop_kw.get("checkpoint_dir"), rank)
        loop_kw["progress"] = bool(loop_kw.get("progress")) and rank == 0
        loop = LoopConfig(**loop_kw)

        data = np.load(data_source) if isinstance(data_source, str) else data_source
        u_all = torch.as_tensor(data["users"], dtype=torch.long, device=device)
        i_all = torch.as_tensor(data["items"], dtype=torch.long, device=device)
        r_all = torch.as_tensor(data["ratings"], dtype=torch.float32, device=device)
        torch.manual_seed(cfg.seed)  # same initial weights in every process (as train_mf)
        model = BiasedMF(num_users, num_items, cfg.dim, float(r_all.mean()),
                         cfg.init_std).to(device)
        ddp = DistributedDataParallel(_PenalisedMF(model, cfg.reg_factors, cfg.reg_bias),
                                      device_ids=[device.index] if use_gpu else None)
        opt = make_optimizer(model, cfg)
        n = len(r_all)

        def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
            for batch in epoch_batches(cfg, epoch, n, device):
                if len(batch) < world:
                    break
                idx = torch.tensor_split(batch, world)[rank]
                obj, mse = ddp(u_all[idx], i_all[idx], r_all[idx])
                descend(opt, obj)
                # The history reports the global batch's loss, not this slice's.
                tot = torch.stack([mse.detach() * len(idx),
                                   torch.tensor(float(len(idx)), device=device)])
                dist.all_reduce(tot)
                yield float(tot[0] / tot[1]), int(tot[1])

        validate = None
        if "val_users" in data:
            val = (data["val_users"], data["val_items"], data["val_ratings"])

            def validate() -> dict[str, float]:
                # Every process scores the same weights, so early stopping agrees everywhere.
                return validation_rmse(model, val)

        result = fit(model, run_epoch, loop, optimizer=opt, validate=validate)
        out = {"state": {k: v.cpu() for k, v in model.state_dict().items()},
               "fit": dataclasses.asdict(result)}
        if rank == 0 and out_path is not None:
            torch.save(out, out_path)
        dist.barrier()
        return out if rank == 0 and out_path is None else out_path
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_entry(rank: int, world: int, port: int, args: tuple) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    _mf_worker(*args)


def train_mf_distributed(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    num_users: int,
    num_items: int,
    cfg: MFConfig,
    loop: LoopConfig,
    num_processes: int = 2,
    use_gpu: bool = False,
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    launcher: str = "spark",
    workdir: str | Path | None = None,
    threads: int = 0,
) -> MFResult:
    """Train biased MF with DDP on ``num_processes`` processes; same contract as ``train_mf``.

    Args:
        users, items, ratings: aligned training arrays (dense indices).
        num_users, num_items: table sizes.
        cfg: model settings; ``cfg.batch_size`` is the global batch over all processes.
        loop: loop settings (checkpoints, resume, progress: rank 0's bar only).
        num_processes: DDP world size.
        use_gpu: one CUDA device per process, nccl backend (else gloo on CPU).
        val: optional validation arrays, scored each epoch as ``val_rmse``.
        launcher: ``"spark"``: TorchDistributor on the active SparkSession (processes on
            the driver under a ``local[...]`` master, on the executors otherwise, see
            :func:`runs_on_executors`), ``"spawn"``: ``torch.multiprocessing.spawn`` (no
            Spark).
        workdir: folder for the data and result files (default: a temporary folder).
        threads: torch CPU threads per process (0: the cores divided by the processes).
    """
    if launcher not in ("spark", "spawn"):
        raise ValueError(f"launcher must be 'spark' or 'spawn', got {launcher!r}")
    arrays: dict[str, np.ndarray] = {
        "users": np.asarray(users, np.int64), "items": np.asarray(items, np.int64),
        "ratings": np.asarray(ratings, np.float32)}
    if val is not None:
        arrays.update(val_users=np.asarray(val[0], np.int64),
                      val_items=np.asarray(val[1], np.int64),
                      val_ratings=np.asarray(val[2], np.float32))
    loop_dict = dataclasses.asdict(loop)
    if loop_dict["checkpoint_dir"] is not None:
        loop_dict["checkpoint_dir"] = str(loop_dict["checkpoint_dir"])
    settings = (num_users, num_items, dataclasses.asdict(cfg))
    distributor = None
    if launcher == "spark":
        from pyspark.ml.torch.distributor import TorchDistributor
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        on_executors = spark is not None and runs_on_executors(spark)
        distributor = TorchDistributor(num_processes=num_processes,
                                       local_mode=not on_executors, use_gpu=use_gpu)
        if on_executors:
            # An executor's disk is not the driver's: arrays in, weights back, no checkpoints.
            loop_dict["checkpoint_dir"] = None
            out = distributor.run(_mf_worker, arrays, *settings, loop_dict, None, use_gpu,
                                  threads)
            if out is None:
                raise RuntimeError("distributed mf: rank 0 returned no result")
            return _result(out, num_users, num_items, cfg)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        data_path = str(Path(tmp) / "data.npz")
        out_path = str(Path(tmp) / "result.pt")
        np.savez(data_path, allow_pickle=False, **arrays)
        args = (data_path, *settings, loop_dict, out_path, use_gpu, threads)
        if distributor is not None:
            distributor.run(_mf_worker, *args)
        else:
            import torch.multiprocessing as mp

            mp.spawn(_spawn_entry, args=(num_processes, _free_port(), args),
                     nprocs=num_processes, join=True)
        out = torch.load(out_path, map_location="cpu", weights_only=False)
    return _result(out, num_users, num_items, cfg)


def _result(out: dict[str, Any], num_users: int, num_items: int, cfg: MFConfig) -> MFResult:
    """The model and history rank 0 produced."""
    model = BiasedMF(num_users, num_items, cfg.dim, 0.0, cfg.init_std)
    model.load_state_dict(out["state"])  # global_mean is a buffer: restored too
    return MFResult(model=model, fit=FitResult(**out["fit"]))
