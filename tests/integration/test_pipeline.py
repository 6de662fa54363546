"""Pipeline mechanics: skip when unchanged, --force, slices (the lease: tests/unit/test_lock.py)."""

from __future__ import annotations

import json
import shutil

import pytest

from moviegraph import config
from moviegraph.config import ConfigError
from moviegraph.pipeline import (
    is_up_to_date,
    run_stage,
    stage_slice,
)
from tests.conftest import FIXTURES


def _cfg(folder, root):
    return config.load([], [f"warehouse.root={root}", "ingest.dataset=path",
                            f"ingest.path={folder}"])


def test_stage_is_skipped_when_config_and_inputs_are_unchanged(spark, warehouse, tmp_path):
    folder = tmp_path / "csv"
    shutil.copytree(FIXTURES / "csv", folder)
    cfg = _cfg(folder, warehouse.root)
    assert run_stage("ingest", spark, cfg, warehouse, "r1") is True
    v = warehouse.version("ratings")
    assert run_stage("ingest", spark, cfg, warehouse, "r2") is False
    assert warehouse.version("ratings") == v
    assert run_stage("ingest", spark, cfg, warehouse, "r3", force=True) is True
    assert warehouse.version("ratings") == v + 1
    # A config change of a section the stage depends on reruns it...
    strict = config.load([], [f"warehouse.root={warehouse.root}", "ingest.dataset=path",
                              f"ingest.path={folder}", "ingest.format=csv"])
    assert run_stage("ingest", spark, strict, warehouse, "r4") is True
    # ...and so does a change of the raw files.
    with (folder / "ratings.csv").open("a") as f:
        f.write("7,1,3.0,964982999\n")
    assert run_stage("ingest", spark, strict, warehouse, "r5") is True
    runs = warehouse.read("runs").where("stage = 'ingest'").orderBy("started_at").collect()
    assert [r.run_id for r in runs] == ["r1", "r3", "r4", "r5"]
    assert all(r.status == "succeeded" and r.outputs["ratings"] >= 0 for r in runs)
    assert runs[-1].rows["ratings"] == 5


def test_an_output_changed_by_hand_makes_the_stage_stale(spark, warehouse):
    cfg = _cfg(FIXTURES / "csv", warehouse.root)
    run_stage("ingest", spark, cfg, warehouse, "a")
    warehouse.write("movies", warehouse.read("movies").limit(1))
    assert is_up_to_date(warehouse, "ingest", cfg.section_hash("ingest", "data"),
                         {"x": 1}) is None
    assert run_stage("ingest", spark, cfg, warehouse, "b") is True


def test_failed_stage_is_recorded_and_never_counts_as_up_to_date(spark, warehouse, tmp_path):
    cfg = config.load([], [f"warehouse.root={warehouse.root}", "ingest.dataset=path",
                           f"ingest.path={FIXTURES / 'csv'}", "ingest.strict=true"])
    with pytest.raises(Exception, match="strict mode"):
        run_stage("ingest", spark, cfg, warehouse, "bad")
    row = warehouse.read("runs").first()
    assert (row.run_id, row.status) == ("bad", "failed")
    assert "strict mode" in json.loads(row.notes)["error"]


def test_slices():
    assert stage_slice(None, None)[0] == "ingest"
    assert stage_slice("ingest", "ingest") == ["ingest"]
    with pytest.raises(ConfigError, match="--from nope: unknown stage"):
        stage_slice("nope", None)
    with pytest.raises(ConfigError, match="comes after"):
        stage_slice("walks", "pairs")
