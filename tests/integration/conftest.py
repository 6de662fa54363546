"""Fixtures of the integration tests shared across files (once per test run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from moviegraph.config import PROJECT_ROOT
from tests.integration.tables_compare import pipeline_cmd


@pytest.fixture(scope="session")
def small_ratings(tmp_path_factory) -> Path:
    """A small synthetic MovieLens-format folder (20k ratings)."""
    from moviegraph.sources.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, ratings=20_000, seed=3, progress=False)
    return out


@pytest.fixture(scope="session")
def reference_pipeline(small_ratings, tmp_path_factory) -> Path:
    """The warehouse of one uninterrupted ``pipeline --until walks`` run on
    :func:`small_ratings` (:func:`~tests.integration.tables_compare.pipeline_cmd`): what the
    fault tests' interrupted, retried and contended runs must equal."""
    root = tmp_path_factory.mktemp("reference") / "wh"
    done = subprocess.run(pipeline_cmd(root, small_ratings), capture_output=True, text=True,
                          timeout=900, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return root
