"""Checkpoint folders of the train stage: where they live, what they must match to resume."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from moviegraph import fs
from moviegraph.config import ConfigError, TrainConfig
from moviegraph.fs import Storage
from moviegraph.train.loop import last_checkpoint

#: Settings left out of the fingerprint, so a finished run can be resumed for more epochs
#: (for node2vec the learning-rate schedule then differs from a fresh longer run).
_NOT_FINGERPRINTED = ("epochs", "patience")


class CheckpointStore:
    """Where each model's checkpoint folder lives: ``train.checkpoint_dir`` (a URI, or a
    path beside the warehouse, see :meth:`~moviegraph.tables.Warehouse.output_uri`).

    Training always writes to a local folder. On the driver's local file system that is
    the configured folder itself; elsewhere (HDFS, S3, ABFS: a cluster driver's disk is
    gone with its container) it is a local staging folder, mirrored to the configured one
    after every checkpoint (:meth:`sync`) and fetched back before a resume (:meth:`fetch`).
    """

    def __init__(self, storage: Storage, uri: str) -> None:
        self.storage = storage
        self.uri = uri
        if storage.is_local(uri):
            self.remote: str | None = None
            self.local_root = Path(storage.local_path(uri))
        else:
            self.remote = uri
            self.local_root = Path(tempfile.mkdtemp(prefix="moviegraph-checkpoints-"))

    def folder(self, model: str) -> Path:
        """The local folder ``model``'s trainer writes its checkpoints to."""
        return self.local_root / model

    def fetch(self, model: str) -> None:
        """Bring ``model``'s mirrored checkpoints back to the local folder (resume)."""
        if self.remote is None:
            return
        source = fs.join(self.remote, model)
        if self.storage.exists(source):
            shutil.rmtree(self.folder(model), ignore_errors=True)
            self.storage.download(source, self.local_root)

    def sync(self, model: str) -> None:
        """Mirror ``model``'s local checkpoint folder to the configured place."""
        if self.remote is not None and self.folder(model).is_dir():
            self.storage.publish(self.folder(model), fs.join(self.remote, model))

    def close(self) -> None:
        """Remove the local staging folder (remote stores only)."""
        if self.remote is not None:
            shutil.rmtree(self.local_root, ignore_errors=True)


def _settings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _settings(v) for k, v in value.items() if k not in _NOT_FINGERPRINTED}
    return value


def fingerprint(tc: TrainConfig, model: str, distributed: bool,
                versions: dict[str, int], tables: tuple[str, ...]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the model's settings (its section of
    ``[train]``, epoch counts and patience left out) and its input versions."""
    keep = {"section": _settings(asdict(getattr(tc, model))), "seed": tc.seed,
            "deterministic": tc.deterministic}
    if distributed:
        keep.update(distributed=tc.distributed,
                    num_processes=tc.num_processes if tc.distributed else 1)
    return {"model": model, "settings": keep, "inputs": {t: versions[t] for t in tables}}


def prepare_checkpoints(folder: Path, fingerprint: dict[str, Any], resume: bool) -> bool:
    """Make ``folder`` ready; return True when training resumes from a checkpoint there.

    Without ``resume`` the folder is emptied (a stale higher-numbered checkpoint must never
    be picked up later). With it, the checkpoints must come from the same model settings
    and input versions (``fingerprint``, kept in ``meta.json``), else ConfigError.
    """
    meta = folder / "meta.json"
    wanted = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    if resume and last_checkpoint(folder) is not None:
        found = json.loads(meta.read_text()) if meta.is_file() else None
        if found != wanted:
            raise ConfigError(f"cannot resume from {folder}: its checkpoints were written with "
                              f"other settings or inputs ({found} != {wanted}); rerun without "
                              "--resume")
        return True
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    meta.write_text(json.dumps(wanted, sort_keys=True))
    return False
