"""CheckpointStore: checkpoints on a non-local store are staged locally, mirrored after
each save and fetched back for a resume (a cluster driver's local disk does not last)."""

from __future__ import annotations

import shutil
from pathlib import Path

from moviegraph.train.checkpoints import CheckpointStore


class FolderAsRemote:
    """A stand-in for Hadoop storage whose URIs ``remote://x`` map to a local folder and
    which says they are not local (as HDFS / S3 would)."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def _p(self, uri: str) -> Path:
        return self.base / uri.removeprefix("remote://")

    def is_local(self, uri: str) -> bool:
        return False

    def exists(self, uri: str) -> bool:
        return self._p(uri).exists()

    def download(self, uri: str, local: Path) -> None:
        shutil.copytree(self._p(uri), Path(local) / self._p(uri).name)

    def publish(self, local: Path, uri: str) -> None:
        shutil.rmtree(self._p(uri), ignore_errors=True)
        shutil.copytree(local, self._p(uri))


def test_remote_checkpoints_are_mirrored_and_fetched_back(tmp_path):
    storage = FolderAsRemote(tmp_path / "bucket")
    first = CheckpointStore(storage, "remote://ckpt")  # type: ignore[arg-type]
    folder = first.folder("mf")
    assert not str(folder).startswith(str(tmp_path / "bucket")), "trainers write locally"
    folder.mkdir(parents=True)
    (folder / "ckpt-000001.pt").write_bytes(b"epoch 1")
    first.sync("mf")
    first.close()
    assert not folder.exists(), "the staging folder is removed"
    assert (tmp_path / "bucket" / "ckpt" / "mf" / "ckpt-000001.pt").read_bytes() == b"epoch 1"

    # A later run (another driver) resumes from the mirrored folder.
    second = CheckpointStore(storage, "remote://ckpt")  # type: ignore[arg-type]
    second.fetch("mf")
    assert (second.folder("mf") / "ckpt-000001.pt").read_bytes() == b"epoch 1"
    second.fetch("absent")  # nothing mirrored yet: nothing to fetch, no error
    assert not second.folder("absent").exists()
    second.close()


def test_local_checkpoints_are_written_in_place(tmp_path):
    class Local(FolderAsRemote):
        def is_local(self, uri: str) -> bool:
            return True

        def local_path(self, uri: str) -> str:
            return str(self._p(uri))

    store = CheckpointStore(Local(tmp_path), "remote://ckpt")  # type: ignore[arg-type]
    assert store.folder("mf") == tmp_path / "ckpt" / "mf"
    store.folder("mf").mkdir(parents=True)
    store.sync("mf")
    store.close()
    assert (tmp_path / "ckpt" / "mf").is_dir(), "a local store is never cleaned up"
