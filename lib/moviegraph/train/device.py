"""Device choice and seeding for the trainers.

CUDA when present (training is the one stage a GPU speeds up), CPU otherwise; on CPU the
runs are made bit-for-bit repeatable so that a test can compare two runs' vectors.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on (training, the similarity joins' products).

    Args:
        prefer: a ``torch.device`` (used as it is), ``"cpu"``, ``"cuda"``, ``"auto"`` or
            None (CUDA when present). Asking for CUDA where none is present falls back to
            CPU rather than failing, so one config runs anywhere.
    """
    if isinstance(prefer, torch.device):
        return prefer
    if prefer == "cpu":
        return torch.device("cpu")
    if prefer not in (None, "auto", "cuda"):
        return torch.device(prefer)  # e.g. "cuda:1"
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy's legacy global state and torch (CPU and CUDA).

    Returns a fresh numpy ``Generator`` seeded with ``seed`` for callers that want an
    explicit stream instead of global state.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    return np.random.default_rng(seed)


def set_deterministic(threads: int | None = None) -> None:
    """Make CPU training repeatable.

    torch's CPU kernels used here (index_add_, matmul, embedding backward) give the same
    result for the same thread count; fixing the count removes the one source of drift.
    ``use_deterministic_algorithms(warn_only=True)`` keeps CUDA runs going where no
    deterministic kernel exists, with a warning instead of an error.
    """
    if threads is not None:
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
