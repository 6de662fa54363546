"""Shared fixtures: one local SparkSession per test run, ml-100k files, fresh warehouses."""

from __future__ import annotations

from pathlib import Path

import pytest

from moviegraph.config import PROJECT_ROOT, SparkConfig
from tests.background import is_started_fixture

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_collection_modifyitems(session, config, items) -> None:
    """Tests that wait on a background end-to-end run (:mod:`tests.background`) go last,
    in their collected order, so that the runs overlap every other test."""
    waiting = [item for item in items
               if any(map(is_started_fixture, getattr(item, "fixturenames", ())))]
    if waiting:
        chosen = set(map(id, waiting))
        items[:] = [item for item in items if id(item) not in chosen] + waiting


@pytest.fixture(scope="session")
def spark():
    """The one local SparkSession of the test run (2 cores, tiny shuffles, no UI)."""
    from moviegraph.session import build_session

    session = build_session(SparkConfig(master="local[2]", shuffle_partitions=2,
                                        progress=False, driver_memory="3g"), "tests")
    yield session
    session.stop()


@pytest.fixture
def warehouse(spark, tmp_path):
    """An empty warehouse under the test's temporary folder."""
    from moviegraph.tables import Warehouse

    return Warehouse(spark, str(tmp_path / "warehouse"))


def ml100k_folder() -> Path:
    """MovieLens 100K (RecBole copy), fetched once into ./data (never committed).

    Skips the calling test when it cannot be fetched (no PyPI access).
    """
    from moviegraph.sources.fetch import FetchError, fetch

    try:
        return fetch("ml-100k-recbole", PROJECT_ROOT / "data", quiet=True)
    except FetchError as exc:
        pytest.skip(f"MovieLens 100K unavailable: {exc}")


def ml100k_fit_validation():
    """ml-100k train-part user x movie matrices: (fit, validation cut), EVALUATION.md splits."""
    from moviegraph.protocol.data import load_ml100k

    d = load_ml100k(ml100k_folder()).data
    return d.matrix(~d.is_test & ~d.is_val), d.matrix(d.is_val)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The ml100k_folder() as a fixture."""
    return ml100k_folder()


@pytest.fixture
def torch_one_thread():
    """torch on one thread for the test (small tensors: more threads only add contention)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
