"""Cluster packaging: the library as a zip for ``--py-files``, the venv for ``--archives``.

spark-submit takes no wheels in ``--py-files``, so the package goes as a zip (with the
``conf/`` files inside, so configs resolve on a cluster driver too). Third-party
packages (torch, numpy, pyarrow) reach executors as a packed virtualenv (venv-pack),
unpacked by YARN/Kubernetes next to each container as ``./environment``.

    python -m moviegraph.package zip      # dist/moviegraph-<version>.zip
    python -m moviegraph.package venv     # dist/moviegraph-venv.tar.gz (large: torch)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from moviegraph.config import PROJECT_ROOT

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


def build_venv_archive(dest: Path | None = None) -> Path:
    """A relocatable venv with the project and its dependencies, packed by venv-pack.

    Built in a fresh virtualenv (venv-pack refuses editable installs), reusing pip's
    cache, so the first build downloads nothing the dev venv did not already fetch.
    """
    dest = dest or DIST / "moviegraph-venv.tar.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, str(PROJECT_ROOT), "venv-pack==0.2.0"], check=True)
        subprocess.run([str(venv / "bin" / "venv-pack"), "-p", str(venv), "-o", str(dest),
                        "--force"], check=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m moviegraph.package``."""
    args = sys.argv[1:] if argv is None else argv
    what = args[0] if args else "zip"
    if what == "zip":
        print(build_zip())
    elif what == "venv":
        print(build_venv_archive())
    else:
        print("usage: python -m moviegraph.package [zip|venv]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
