"""Fetch MovieLens files into the data folder, checksums verified, never committed.

MovieLens' licence forbids redistributing the files, so the project fetches them:

* ``ml-100k-recbole`` (offline default): the ``recbole==1.2.1`` wheel from PyPI, via
  ``pip download --no-deps``, ships ``ml-100k.inter`` / ``ml-100k.item``; the wheel and
  both files are checked against pinned SHA-256 digests. recbole is never installed.
* ``ml-100k``, ``ml-1m``, ``ml-latest-small``, ``ml-25m``, ``ml-32m``: the GroupLens
  zips (needs internet), checked against GroupLens' published MD5 (pinned for the
  fixed releases; ``ml-latest-small`` changes over time, so its ``.md5`` file is fetched).

A dataset already fetched and verified is not fetched again (a ``.verified`` stamp).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from moviegraph.errors import InputError


class FetchError(InputError):
    """A dataset could not be fetched or failed its checksum."""


RECBOLE_VERSION = "1.2.1"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_FILES_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}
GROUPLENS_BASE = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class GroupLensZip:
    """One GroupLens archive: its name, pinned MD5 (None: use the published .md5)."""

    name: str
    md5: str | None
    members: tuple[str, ...]


GROUPLENS = {
    "ml-100k": GroupLensZip("ml-100k", "0e33842e24a9c977be4e0107933c0723",
                            ("u.data", "u.item", "u.genre")),
    "ml-1m": GroupLensZip("ml-1m", "c4d9eecfca2ab87c1945afe126590906",
                          ("ratings.dat", "movies.dat")),
    "ml-latest-small": GroupLensZip("ml-latest-small", None, ("ratings.csv", "movies.csv")),
    "ml-25m": GroupLensZip("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada",
                           ("ratings.csv", "movies.csv")),
    "ml-32m": GroupLensZip("ml-32m", "d472be332d4daa821edc399621853b57",
                           ("ratings.csv", "movies.csv")),
}
DATASETS = ("ml-100k-recbole", *GROUPLENS)


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Marker file of a fetched and checksum-verified dataset folder.
VERIFIED = ".verified"


def _stamp(folder: Path) -> Path:
    return folder / VERIFIED


def fetch(dataset: str, data_dir: str | Path, quiet: bool = False) -> Path:
    """Make ``<data_dir>/<dataset>/`` hold the dataset's raw files; return that folder."""
    if dataset not in DATASETS:
        raise FetchError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    folder = Path(data_dir) / dataset
    if _stamp(folder).is_file():
        return folder
    say = (lambda msg: None) if quiet else (lambda msg: print(f"[fetch] {msg}", flush=True))
    try:
        if dataset == "ml-100k-recbole":
            _fetch_recbole(folder, say)
        else:
            _fetch_grouplens(GROUPLENS[dataset], folder, say)
        _stamp(folder).write_text("ok\n")
    except (OSError, zipfile.BadZipFile) as exc:  # data.dir not writable, a file, disk full
        raise FetchError(f"{folder}: could not store {dataset}: {exc}") from None
    return folder


def _fetch_recbole(folder: Path, say) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        say(f"pip download --no-deps recbole=={RECBOLE_VERSION} (MovieLens 100K inside)")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
             "--only-binary=:all:", f"recbole=={RECBOLE_VERSION}", "-d", tmp],
            capture_output=True, text=True)
        wheels = list(Path(tmp).glob("recbole-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise FetchError("could not download the recbole wheel from PyPI: "
                             + (proc.stderr.strip().splitlines() or ["no wheel"])[-1])
        wheel = wheels[0]
        if _digest(wheel, "sha256") != RECBOLE_WHEEL_SHA256:
            raise FetchError(f"{wheel.name}: SHA-256 differs from the pinned digest")
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            for name, digest in RECBOLE_FILES_SHA256.items():
                target = folder / name
                with zf.open(f"recbole/dataset_example/ml-100k/{name}") as src, \
                        target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                if _digest(target, "sha256") != digest:
                    raise FetchError(f"{target}: SHA-256 differs from the pinned digest")
    say(f"MovieLens 100K (RecBole copy) verified in {folder}")


def _download(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, target.open("wb") as out:
            shutil.copyfileobj(resp, out)
    except OSError as exc:
        raise FetchError(f"could not download {url}: {exc} (this needs internet access; "
                         "offline, use dataset ml-100k-recbole)") from None


def _fetch_grouplens(spec: GroupLensZip, folder: Path, say) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"{spec.name}.zip"
        say(f"downloading {spec.name}.zip from GroupLens")
        _download(GROUPLENS_BASE + f"{spec.name}.zip", archive)
        expected = spec.md5
        if expected is None:
            md5_file = Path(tmp) / "zip.md5"
            _download(GROUPLENS_BASE + f"{spec.name}.zip.md5", md5_file)
            expected = md5_file.read_text().split()[0].strip().lower()
        if _digest(archive, "md5") != expected:
            raise FetchError(f"{spec.name}.zip: MD5 differs from GroupLens' {expected}")
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as zf:
            for member in spec.members:
                with zf.open(f"{spec.name}/{member}") as src, (folder / member).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    say(f"{spec.name} verified in {folder}")
