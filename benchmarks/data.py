"""The benchmarks' data: MovieLens 100K (RecBole copy), fetched once or from a folder, and
the walk settings the walk benchmarks share.

Every ml-100k benchmark takes ``--data-dir`` (where ``fetch`` puts it) or ``--folder`` (a
folder holding ``ml-100k.inter`` / ``ml-100k.item``, no fetch) and reads it with
:func:`moviegraph.protocol.data.load_ml100k`, so all of them see the same positions and
splits as the evaluate stage.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # moviegraph (torch) is imported on use: a benchmark may set threads first
    from moviegraph.protocol.data import MovieLens100K


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--folder``."""
    ap.add_argument("--data-dir", default="data", help="fetch target (default: data)")
    ap.add_argument("--folder", type=Path, help="folder with ml-100k.inter/.item (no fetch)")


def add_walk_arguments(ap: argparse.ArgumentParser) -> None:
    """``--num-walks``, ``--walk-length``, ``--p``, ``--q`` (the walks stage's defaults)."""
    ap.add_argument("--num-walks", type=int, default=10, help="walks per vertex")
    ap.add_argument("--walk-length", type=int, default=80, help="nodes per walk incl. the start")
    ap.add_argument("--p", type=float, default=1.0, help="node2vec return parameter")
    ap.add_argument("--q", type=float, default=1.0, help="node2vec in-out parameter")


def ml100k_folder(args: argparse.Namespace) -> Path:
    """``--folder``, else MovieLens 100K fetched (checksums verified) into ``--data-dir``."""
    if getattr(args, "folder", None) is not None:
        return Path(args.folder)
    from moviegraph.sources.fetch import fetch

    return fetch("ml-100k-recbole", args.data_dir)


def ml100k(args: argparse.Namespace) -> MovieLens100K:
    """MovieLens 100K in the protocol's positions, with both splits."""
    from moviegraph.protocol.data import load_ml100k

    return load_ml100k(ml100k_folder(args))
