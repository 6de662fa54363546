"""What Spark tasks import runs in the executors' slim environment (moviegraph.package's
executor archive: numpy, pyarrow, pandas, scipy, numba, Delta's Python API; no torch, no
delta-rs). A task's function is unpickled from its module, so importing that module, and
everything it imports at the top, must work there; the cluster test catches the same on a
real cluster, this catches it in seconds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from moviegraph.config import PROJECT_ROOT
from moviegraph.package import EXECUTOR_NO_DEPS, EXECUTOR_PACKAGES

# Modules whose functions run in Spark tasks (mapInArrow / applyInArrow), and what those
# functions import inside.
TASK_MODULES = ("moviegraph.graph.pairs", "moviegraph.graph.kernels", "moviegraph.graph.pmi",
                "moviegraph.graph.ranges", "moviegraph.graph.weights",
                "moviegraph.walks.broadcast", "moviegraph.walks.partitioned",
                "moviegraph.similarity.joins", "moviegraph.similarity.topk",
                "moviegraph.train.shipped", "moviegraph.protocol", "moviegraph.sources.ingest",
                "moviegraph.evaluate.lists")
# Installed on the driver only.
DRIVER_ONLY = ("torch", "deltalake", "graphframes", "sklearn", "gensim", "tqdm")


# Refuses what the executor archive leaves out (moviegraph.package.prune_site_packages):
# the packages' test suites.
NO_TEST_SUITES = """
import importlib.abc
class NoTestSuites(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if "tests" in name.split("."):
            raise ImportError(f"{name}: test suites are not in the executor archive")
sys.meta_path.insert(0, NoTestSuites())
"""


def test_task_modules_import_without_driver_only_packages():
    from moviegraph.package import EXECUTOR_PRUNE_PACKAGES

    assert "delta-spark" in EXECUTOR_NO_DEPS and "numpy" in EXECUTOR_PACKAGES
    code = "\n".join([
        "import sys",
        *(f"sys.modules[{name!r}] = None" for name in (*DRIVER_ONLY,
                                                       *EXECUTOR_PRUNE_PACKAGES)),
        NO_TEST_SUITES,
        *(f"import {module}" for module in TASK_MODULES),
    ])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_top_k_is_the_same_without_torch(monkeypatch):
    from moviegraph.protocol import metrics

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(50, 40)).astype(np.float64)  # many ties
    scores[:, :3] = -np.inf
    with_torch = metrics.top_k(scores, 10)
    monkeypatch.setitem(sys.modules, "torch", None)
    np.testing.assert_array_equal(metrics.top_k(scores, 10), with_torch)
    expected = np.array([sorted(range(40), key=lambda j: (-row[j], j))[:10] for row in scores])
    np.testing.assert_array_equal(with_torch, expected)


def test_executor_archive_leaves_out_test_suites_and_installers(tmp_path):
    from moviegraph.package import (
        EXECUTOR_PRUNE_DIRS,
        EXECUTOR_PRUNE_PACKAGES,
        prune_site_packages,
    )

    kept = ["numpy/__init__.py", "numpy/testing/__init__.py", "numpy/_core/multiarray.py",
            "pandas/util/_tester.py", "numba/testing/main.py", "tests/__init__.py",
            "venv_pack/__init__.py", "numpy-2.0.dist-info/METADATA"]
    dropped = ["numpy/tests/test_a.py", "numpy/_core/tests/data/x.bin",
               "pandas/tests/frame/test_b.py", "pip/__init__.py",
               "pip-24.0.dist-info/METADATA", "setuptools/__init__.py",
               "setuptools-70.0.dist-info/RECORD", "pkg_resources/__init__.py",
               "_distutils_hack/__init__.py", "distutils-precedence.pth"]
    for name in kept + dropped:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x" * 10)
    hook = "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; __import__('_distutils_hack')"
    (tmp_path / "distutils-precedence.pth").write_text(hook)
    (tmp_path / "other.pth").write_text("/some/path")
    files, size = prune_site_packages(tmp_path, EXECUTOR_PRUNE_DIRS, EXECUTOR_PRUNE_PACKAGES)
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    # A top-level `tests` package is some distribution's code, not a test suite inside one.
    assert left == sorted([*kept, "other.pth"])
    assert (files, size) == (len(dropped), 10 * (len(dropped) - 1) + len(hook))
