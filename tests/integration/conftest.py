"""Fixtures of the integration tests shared across files (once per test run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from moviegraph.config import PROJECT_ROOT
from tests.integration.tables_compare import full_pipeline_cmd


@pytest.fixture(scope="session")
def small_ratings(tmp_path_factory) -> Path:
    """A small synthetic MovieLens-format folder (20k ratings)."""
    from moviegraph.sources.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, ratings=20_000, seed=3, progress=False)
    return out


@pytest.fixture(scope="session")
def reference_pipeline(small_ratings, tmp_path_factory) -> Path:
    """The warehouse of the suite's one uninterrupted run of the whole ``pipeline``
    (every stage, :func:`~tests.integration.tables_compare.full_pipeline_cmd`) on
    :func:`small_ratings`, in a ``local[2]`` subprocess. Read-only for its users: what the
    fault tests' interrupted, retried and contended ``--until walks`` runs must equal
    (their tables up to walks) and what the standalone cluster's run must equal (every
    table). A test that changes a warehouse copies this one first."""
    root = tmp_path_factory.mktemp("reference") / "wh"
    done = subprocess.run(full_pipeline_cmd(root, small_ratings), capture_output=True,
                          text=True, timeout=1200, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return root
