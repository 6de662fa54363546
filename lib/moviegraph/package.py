"""Cluster packaging: the library as a zip for ``--py-files``, the venv for ``--archives``.

spark-submit takes no wheels in ``--py-files``, so the package goes as a zip (with the
``conf/`` files inside, so configs resolve on a cluster driver too). Third-party
packages (torch, numpy, pyarrow) reach executors as a packed virtualenv (venv-pack),
unpacked by YARN/Kubernetes next to each container as ``./environment``.

    python -m moviegraph.package zip        # dist/moviegraph-<version>.zip
    python -m moviegraph.package venv       # dist/moviegraph-venv-<hash>.tar.gz (large: torch)
    python -m moviegraph.package executor   # dist/moviegraph-executor-<hash>.tar.gz

The executor environment holds only what Spark tasks import (numpy, pyarrow, pandas,
scipy, numba, with the project's pinned versions): a few hundred MB instead of the
several GB that torch's CUDA build adds. Training runs on the driver, so executors need
torch only for ``train.distributed`` on a cluster (``local_mode=False``): ship the full
``venv`` archive then.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from moviegraph.config import PROJECT_ROOT

#: Distributions Spark tasks import (mapInArrow kernels: walks, pairs, similarity, ingest;
#: threadpoolctl holds BLAS to one thread in the similarity tasks).
EXECUTOR_PACKAGES = ("numpy", "pyarrow", "pandas", "scipy", "numba", "threadpoolctl")
#: Installed without their dependencies: the Spark layer's modules, which a task's
#: function is unpickled from, import Delta Lake's Python API (pure Python over pyspark,
#: which Spark itself puts on the executors' path).
EXECUTOR_NO_DEPS = ("delta-spark",)

#: What the executor archive leaves out of its site-packages: the packages' own test suites
#: (``<package>/.../tests/``: 5,098 files and 109 MB of the 11,690 files and 706 MB it
#: unpacked to, never imported by a task) and the installers (a task installs nothing).
#: Every executor fetches and unpacks the archive when it starts.
EXECUTOR_PRUNE_DIRS = ("tests",)
EXECUTOR_PRUNE_PACKAGES = ("pip", "setuptools", "pkg_resources", "_distutils_hack")
#: Part of the archive's name: a change to what goes into it makes a new archive.
EXECUTOR_LAYOUT = "pruned-3"

DIST = PROJECT_ROOT / "dist"
PACKAGE_DIR = PROJECT_ROOT / "lib" / "moviegraph"
CONF_DIR = PROJECT_ROOT / "conf"


def _version() -> str:
    try:
        return metadata.version("moviegraph")
    except metadata.PackageNotFoundError:
        return "0"


def build_zip(dest: Path | None = None) -> Path:
    """Zip ``lib/moviegraph`` (sources only) plus ``conf/`` as ``moviegraph/conf/``."""
    dest = dest or DIST / f"moviegraph-{_version()}.zip"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE_DIR.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                zf.write(path, Path("moviegraph") / path.relative_to(PACKAGE_DIR))
        for path in sorted(CONF_DIR.glob("*")):
            if path.is_file():
                zf.write(path, Path("moviegraph") / "conf" / path.name)
    tmp.replace(dest)
    return dest


def pinned_requirements(names: tuple[str, ...]) -> list[str]:
    """The project's own pins (pyproject.toml) of the distributions ``names``."""
    import tomllib

    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"]
    found = {d.split("==")[0].split(">")[0].split("<")[0].strip().lower(): d for d in deps}
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"not pinned in pyproject.toml: {', '.join(missing)}")
    return [found[n] for n in names]


def _archive_name(kind: str, requirements: list[str]) -> Path:
    """``dist/moviegraph-<kind>-<hash>.tar.gz``: a new name whenever a pin changes."""
    import hashlib

    key = "\n".join([sys.version, *requirements, (PROJECT_ROOT / "pyproject.toml").read_text()
                     if kind == "venv" else ""])
    return DIST / f"moviegraph-{kind}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.tar.gz"


def prune_site_packages(site: Path, dirs: tuple[str, ...], packages: tuple[str, ...]
                        ) -> tuple[int, int]:
    """Remove every folder named in ``dirs`` below the packages of ``site`` and the
    top-level ``packages`` (with their ``*.dist-info`` and any ``.pth`` hook importing
    them); return (files, bytes) removed."""
    doomed = [p for name in dirs for p in site.glob(f"*/**/{name}") if p.is_dir()]
    for name in packages:
        doomed += [p for p in (site / name, *site.glob(f"{name}-*.dist-info")) if p.is_dir()]
    files = size = 0
    # A .pth hook that imports a removed package (setuptools' distutils-precedence.pth)
    # would print an error at every interpreter start.
    names = re.compile(r"\b(" + "|".join(map(re.escape, packages)) + r")\b")
    for hook in site.glob("*.pth"):
        lines = hook.read_text(errors="replace").splitlines()
        if any(line.startswith("import") and names.search(line) for line in lines):
            files, size = files + 1, size + hook.stat().st_size
            hook.unlink()
    for folder in sorted(set(doomed), key=lambda p: len(p.parts)):
        if not folder.exists():  # inside a folder already removed
            continue
        found = [f for f in folder.rglob("*") if f.is_file()]
        files += len(found)
        size += sum(f.stat().st_size for f in found)
        shutil.rmtree(folder)
    return files, size


def _pack(requirements: list[str], dest: Path, no_deps: list[str] | None = None,
          prune: bool = False) -> Path:
    """A fresh virtualenv with ``requirements`` (pip's cache reused), packed by venv-pack.

    venv-pack refuses editable installs, hence the separate virtualenv; the archive is
    written beside ``dest`` and renamed into place, so a half-built one is never used.
    An existing ``dest`` is reused (its name changes with the requirements). ``prune``
    leaves out the test suites and installers (:data:`EXECUTOR_PRUNE_DIRS`,
    :data:`EXECUTOR_PRUNE_PACKAGES`).
    """
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Without the caller's PYTHONPATH: pip would see the project's own egg-info there and
    # complain about its dependencies missing from this slim environment.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
               "--disable-pip-version-check"]
        subprocess.run([*pip, *requirements, "venv-pack==0.2.0"], check=True, env=env)
        if no_deps:
            subprocess.run([*pip, "--no-deps", *no_deps], check=True, env=env)
        if prune:
            for site in venv.glob("lib/python*/site-packages"):
                prune_site_packages(site, EXECUTOR_PRUNE_DIRS, EXECUTOR_PRUNE_PACKAGES)
            for script in venv.glob("bin/pip*"):  # their package is gone
                script.unlink()
        partial = dest.with_name(dest.name + ".partial")
        subprocess.run([str(venv / "bin" / "venv-pack"), "-p", str(venv), "-o", str(partial),
                        "--format", "tar.gz", "--compress-level", "1", "--force", "--quiet"],
                       check=True, env=env)
        partial.replace(dest)
    return dest


def build_venv_archive(dest: Path | None = None) -> Path:
    """A relocatable venv with the project and all its dependencies (torch included)."""
    return _pack([str(PROJECT_ROOT)], dest or _archive_name("venv", []))


def build_executor_archive(dest: Path | None = None) -> Path:
    """A relocatable venv with what Spark tasks import (:data:`EXECUTOR_PACKAGES`)."""
    requirements = pinned_requirements(EXECUTOR_PACKAGES)
    no_deps = pinned_requirements(EXECUTOR_NO_DEPS)
    return _pack(requirements, dest or _archive_name(
        "executor", [*requirements, *no_deps, EXECUTOR_LAYOUT]), no_deps, prune=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m moviegraph.package``."""
    args = sys.argv[1:] if argv is None else argv
    what = args[0] if args else "zip"
    if what == "zip":
        print(build_zip())
    elif what == "venv":
        print(build_venv_archive())
    elif what == "executor":
        print(build_executor_archive())
    else:
        print("usage: python -m moviegraph.package [zip|venv|executor]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
