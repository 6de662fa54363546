"""Where numba keeps the compiled kernels when the package runs from a zip.

Off local mode, Spark ships the package as a zip (``--py-files``) into a folder of each
application, and executors import the kernels from there. numba's own locator for modules
in a zip names its cache folder after the zip's absolute path, so every application
compiled the walk kernels again in every executor's Python worker (about 7 CPU s each on
2 cores) and left one more folder in ``~/.cache/numba`` on each node.

:class:`PackageZipLocator` names the folder after the kernel's package folder and a hash
of all the package's Python files in the zip and of the numba and numpy versions: runs of
the same code on one node share their compiled kernels, and changed code gets folders of
its own. Every module is hashed, not only the kernel's, because numba does not track the
functions a kernel inlines from other modules (``walks.rng`` into ``walks.kernel``). The
folders are under ``NUMBA_CACHE_DIR`` when set, else numba's user cache folder; where that
is not writable, numba's own locators apply as before. Modules imported from a checkout
are not affected (numba caches beside them; ``bin/bootstrap.sh`` fills that cache), nor is
a process where the user chose the locators (``NUMBA_CACHE_LOCATOR_CLASSES``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from typing import Any

#: The package's folder inside the zip: only its modules are located here.
PACKAGE_PREFIX = "moviegraph/"


@functools.lru_cache(maxsize=8)
def package_digest(zip_path: str, mtime: float, size: int) -> str:
    """Hash of the names and contents of the package's Python files in ``zip_path``, and
    of the numba and numpy versions that compile them (the zip's time and size key the
    memo: a rewritten zip is hashed again). The zip's ``conf/`` files are left out: a
    changed config compiles nothing."""
    import numba
    import numpy

    h = hashlib.sha256(f"numba {numba.__version__} numpy {numpy.__version__}\0".encode())
    with zipfile.ZipFile(zip_path) as zf:
        for name in sorted(n for n in zf.namelist()
                           if n.startswith(PACKAGE_PREFIX) and n.endswith(".py")):
            h.update(name.encode() + b"\0" + zf.read(name) + b"\0")
    return h.hexdigest()[:20]


def _locator_class() -> type | None:
    """The locator class, built on numba's zip locator (None without one)."""
    try:
        from numba.core import caching, config
        from numba.misc.appdirs import AppDirs
    except ImportError:
        return None
    base: Any = getattr(caching, "ZipCacheLocator", None)
    if base is None:
        return None

    class PackageZipLocator(base):
        """numba's zip locator with a cache folder keyed by content, not by zip path."""

        def __init__(self, py_func: Any, py_file: str) -> None:
            super().__init__(py_func, py_file)  # sets _zip_path and _internal_path
            st = os.stat(self._zip_path)
            digest = package_digest(self._zip_path, st.st_mtime, st.st_size)
            folder = os.path.dirname(self._internal_path).replace("/", "-")
            root = config.CACHE_DIR or AppDirs(appname="numba", appauthor=False).user_cache_dir
            self.cache_folder: str = os.path.join(root, f"{folder}-{digest}")

        def get_cache_path(self) -> str:
            return self.cache_folder

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> PackageZipLocator | None:
            if ".zip" not in py_file:
                return None
            try:
                _, internal = base._split_zip_path(py_file)
                if not internal.startswith(PACKAGE_PREFIX):
                    return None  # another package's zip: numba's own locators
                locator = cls(py_func, py_file)
                locator.ensure_cache_path()
            except (OSError, ValueError, zipfile.BadZipFile):
                return None  # not writable, not a zip we can read: numba's own locators
            return locator

    return PackageZipLocator


def install() -> None:
    """Put :class:`PackageZipLocator` first among numba's cache locators (once per
    process). Call before the module's ``@njit(cache=True)`` functions are defined."""
    try:
        from numba.core import caching
    except ImportError:
        return
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list) or any(
            c.__name__ == "PackageZipLocator" for c in classes):
        return
    locator = _locator_class()
    if locator is not None:
        classes.insert(0, locator)
