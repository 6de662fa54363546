"""Shared training loop: epochs, progress bars, early stopping, checkpoints, history.

Models plug in by giving one function, ``run_epoch(epoch)``, that trains one epoch and
yields ``(batch_loss, batch_items)`` per batch; the loop drives the progress bar, times the
epoch, calls the validation function, keeps the best weights, writes checkpoints and
resumes from the last one. The loop owns no randomness: trainers derive each epoch's
random stream from ``(seed, epoch)`` (see :func:`epoch_generator`), so a run resumed from a
checkpoint draws exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextvars
import copy
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

EpochFn = Callable[[int], Iterator[tuple[float, int]]]
ValidateFn = Callable[[], dict[str, float]]

_CKPT = re.compile(r"^ckpt-(\d{6})\.pt$")


#: Called after every checkpoint the loop writes, when set (the train stage mirrors a
#: model's checkpoint folder to ``train.checkpoint_dir`` on HDFS / S3 with it, so a
#: ``--resume`` after a lost driver finds them). A context variable keeps the trainers'
#: signatures free of storage concerns.
CHECKPOINT_SAVED: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "checkpoint_saved", default=None)


@dataclass
class LoopConfig:
    """Settings of :func:`fit`.

    Attributes:
        epochs: maximum number of epochs.
        monitor: name of the validation metric used for early stopping / best weights
            (a key of the validation function's dict); None disables both.
        mode: ``"min"`` or ``"max"``: whether a lower or higher ``monitor`` is better.
        patience: stop after this many epochs without improvement (None: never stop early).
        min_delta: smallest change of ``monitor`` that counts as an improvement.
        restore_best: load the best epoch's weights at the end.
        checkpoint_dir: folder for ``ckpt-NNNNNN.pt`` files (None: no checkpoints).
        resume: continue from the last checkpoint in ``checkpoint_dir`` if there is one.
        keep_checkpoints: how many recent checkpoints to keep (older ones are deleted).
        progress: show a per-epoch tqdm bar.
        unit: what ``batch_items`` counts, shown in the bar's throughput (e.g. "tok").
        desc: label of the bar.
    """

    epochs: int = 10
    monitor: str | None = None
    mode: str = "min"
    patience: int | None = None
    min_delta: float = 0.0
    restore_best: bool = True
    checkpoint_dir: str | Path | None = None
    resume: bool = True
    keep_checkpoints: int = 2
    progress: bool = True
    unit: str = "it"
    desc: str = "train"

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        history: one dict per epoch: ``epoch``, ``train_loss``, ``items``, ``seconds``,
            ``items_per_s`` and the validation metrics (rows for the Delta history table).
        best_epoch: epoch with the best ``monitor`` value (last epoch when not monitoring).
        best_metric: that value (None when not monitoring).
        stopped_early: True when patience ran out before ``epochs``.
        resumed_from: epoch of the checkpoint the run resumed from (None: fresh start).
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_metric: float | None = None
    stopped_early: bool = False
    resumed_from: int | None = None


def epoch_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator for one epoch, derived from the run seed and the epoch number only.

    Deriving rather than carrying one stream over epochs makes resume exact without saving
    generator states, and keeps epochs independent of how many batches earlier ones had.
    """
    g = torch.Generator(device=device)
    # Mix with a large odd constant so consecutive seeds/epochs give unrelated streams.
    g.manual_seed((int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9) % 2**63)
    return g


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def last_checkpoint(folder: str | Path) -> Path | None:
    """Path of the highest-numbered ``ckpt-NNNNNN.pt`` in ``folder``, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if _CKPT.match(p.name))
    return found[-1] if found else None


def save_checkpoint(
    folder: str | Path,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    result: FitResult,
    best_state: dict[str, torch.Tensor] | None,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write one checkpoint atomically (temp file + rename) and prune old ones."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt-{epoch:06d}.pt"
    payload = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_metric": result.best_metric,
        "best_state": best_state,
        "rng": _rng_state(),
        "extra": extra or {},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # a crash mid-write never leaves a truncated "last" checkpoint
    old = sorted(p for p in folder.iterdir() if _CKPT.match(p.name))
    for p in old[:-keep]:
        p.unlink()
    return path


def load_checkpoint(path: str | Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    # Checkpoints hold numpy RNG state and history dicts, so full unpickling is needed;
    # they are files this job wrote itself.
    return torch.load(path, map_location=map_location, weights_only=False)


def _better(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def fit(
    model: torch.nn.Module,
    run_epoch: EpochFn,
    cfg: LoopConfig,
    optimizer: torch.optim.Optimizer | None = None,
    validate: ValidateFn | None = None,
    extra_state: Callable[[], dict[str, Any]] | None = None,
    load_extra: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` for up to ``cfg.epochs`` epochs.

    Args:
        model: the module whose ``state_dict`` is checkpointed and whose best weights are
            kept.
        run_epoch: ``run_epoch(epoch)`` trains one epoch, yielding ``(loss, items)`` per
            batch (``loss`` a float mean over the batch's ``items``).
        cfg: loop settings.
        optimizer: checkpointed with the model when given (trainers with hand-written
            updates pass None).
        validate: returns validation metrics after each epoch.
        extra_state / load_extra: save and restore trainer state that is not in the model
            or optimizer (e.g. a learning-rate schedule position).

    Returns:
        A :class:`FitResult` with one history row per epoch run (including epochs of the
        run that was resumed).
    """
    result = FitResult()
    best_state: dict[str, torch.Tensor] | None = None
    start = 0
    if cfg.checkpoint_dir is not None and cfg.resume:
        path = last_checkpoint(cfg.checkpoint_dir)
        if path is not None:
            device = next(iter(model.state_dict().values()), torch.empty(0)).device
            ck = load_checkpoint(path, map_location=device)
            model.load_state_dict(ck["model"])
            if optimizer is not None and ck["optimizer"] is not None:
                optimizer.load_state_dict(ck["optimizer"])
            result.history = list(ck["history"])
            result.best_epoch = ck["best_epoch"]
            result.best_metric = ck["best_metric"]
            best_state = ck["best_state"]
            _set_rng_state(ck["rng"])
            if load_extra is not None:
                load_extra(ck["extra"])
            start = ck["epoch"] + 1
            result.resumed_from = ck["epoch"]
            if _out_of_patience(result, cfg):
                result.stopped_early = True
                start = cfg.epochs

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        total_loss = 0.0
        total_items = 0
        bar = tqdm(
            total=None,
            desc=f"{cfg.desc} {epoch + 1}/{cfg.epochs}",
            unit=cfg.unit,
            unit_scale=True,
            disable=not cfg.progress,
            leave=False,
        )
        model.train()
        for loss, items in run_epoch(epoch):
            total_loss += float(loss) * items
            total_items += items
            bar.update(items)
            bar.set_postfix(loss=f"{total_loss / max(total_items, 1):.4f}", refresh=False)
        bar.close()
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total_loss / max(total_items, 1),
            "items": total_items,
            "seconds": seconds,
            "items_per_s": total_items / seconds if seconds > 0 else float("nan"),
        }
        if validate is not None:
            model.eval()
            with torch.no_grad():
                row.update({k: float(v) for k, v in validate().items()})
        result.history.append(row)

        if cfg.monitor is not None:
            if cfg.monitor not in row:
                raise KeyError(f"monitor {cfg.monitor!r} not among epoch metrics {list(row)}")
            if _better(row[cfg.monitor], result.best_metric, cfg.mode, cfg.min_delta):
                result.best_metric = row[cfg.monitor]
                result.best_epoch = epoch
                best_state = copy.deepcopy(model.state_dict())
        else:
            result.best_epoch = epoch

        if cfg.checkpoint_dir is not None:
            save_checkpoint(
                cfg.checkpoint_dir, epoch, model, optimizer, result, best_state,
                extra_state() if extra_state is not None else None, cfg.keep_checkpoints,
            )
            hook = CHECKPOINT_SAVED.get()
            if hook is not None:
                hook()
        if _out_of_patience(result, cfg):
            result.stopped_early = epoch + 1 < cfg.epochs
            break

    if cfg.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return result


def _out_of_patience(result: FitResult, cfg: LoopConfig) -> bool:
    if cfg.monitor is None or cfg.patience is None or not result.history:
        return False
    return result.history[-1]["epoch"] - result.best_epoch >= cfg.patience
