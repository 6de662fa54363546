"""Checkpoint folders of the train stage: where they live, what they must match to resume."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from moviegraph.config import PROJECT_ROOT, ConfigError, TrainConfig
from moviegraph.train.loop import last_checkpoint

#: Settings left out of the fingerprint, so a finished run can be resumed for more epochs
#: (for node2vec the learning-rate schedule then differs from a fresh longer run).
_NOT_FINGERPRINTED = ("epochs", "patience")


def checkpoint_root(tc: TrainConfig) -> Path:
    """``train.checkpoint_dir`` as a path (relative ones under the project root)."""
    p = Path(tc.checkpoint_dir)
    return p if p.is_absolute() else PROJECT_ROOT / p


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
