"""Config: defaults documented in conf/default.toml, validation before Spark starts."""

from __future__ import annotations

import tomllib

import pytest

from moviegraph import config
from moviegraph.cli import main, parse
from moviegraph.config import PROJECT_ROOT, ConfigError


def test_default_toml_documents_every_parameter_with_its_default():
    table = tomllib.loads((PROJECT_ROOT / "conf" / "default.toml").read_text())
    described = config.describe()
    assert described, "no parameters described"
    for key, default, doc in described:
        section, name = key.split(".")
        assert name in table.get(section, {}), f"{key} missing from conf/default.toml"
        assert table[section][name] == default, f"{key}: default.toml differs from config.py"
        assert doc.strip(), f"{key} has no documentation"
    n_toml = sum(len(v) for v in table.values())
    assert n_toml == len(described), "conf/default.toml has keys config.py does not know"


def test_default_toml_is_the_rendered_one():
    text = (PROJECT_ROOT / "conf" / "default.toml").read_text()
    assert text == config.render_default_toml(), (
        "conf/default.toml is stale: python -m moviegraph.config > conf/default.toml")


def test_profiles_load():
    for name in ("default", "local", "cluster", "large"):
        config.load([PROJECT_ROOT / "conf" / f"{name}.toml"])
    # The large profile changes nothing up to the walks: a 25M run resumed with it (or
    # without it) skips the graph stages already done.
    local = config.load([PROJECT_ROOT / "conf" / "local.toml"])
    large = config.load([PROJECT_ROOT / "conf" / "large.toml"])
    for section in ("spark", "ingest", "pairs", "edges", "walks", "similar"):
        assert getattr(local, section) == getattr(large, section), section


@pytest.mark.parametrize("override, message", [
    ("walks.p=0", "walks.p = 0.0: must be > 0.0"),
    ("walks.q=-2", "walks.q = -2.0: must be > 0.0"),
    ("walks.walk_length=1", "walks.walk_length = 1: must be >= 2"),
    ("walks.num_walks=2.5", "walks.num_walks = '2.5': must be an integer"),
    ("pairs.min_rating=7", "pairs.min_rating = 7.0: must be <= 5.0"),
    ("walks.mode=fast", "walks.mode = 'fast': must be one of auto, broadcast, partitioned"),
    ("ingest.strict=maybe", "ingest.strict = 'maybe': must be true or false"),
    ("walks.nope=1", "unknown config key 'walks.nope'"),
    ("nosection.x=1", "unknown config key 'nosection.x'"),
    ("walks.p", "expected key=value"),
])
def test_bad_values_are_rejected_naming_key_and_range(override, message):
    with pytest.raises(ConfigError) as err:
        config.load([], [override])
    assert message in str(err.value)


def test_overrides_apply_in_order_and_coerce_types(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text("[walks]\np = 0.25\nnum_walks = 3\n[spark.conf]\n'spark.foo' = 'bar'\n")
    cfg = config.load([f], ["walks.q=4", "walks.p=0.5", "ingest.strict=true"])
    assert (cfg.walks.p, cfg.walks.q, cfg.walks.num_walks) == (0.5, 4.0, 3)
    assert cfg.ingest.strict is True
    assert cfg.spark.conf == {"spark.foo": "bar"}


def test_bad_toml_and_missing_file_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[walks\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load([bad])
    with pytest.raises(ConfigError, match="config file not found"):
        config.load([tmp_path / "missing.toml"])


def test_cli_shortcuts_and_exit_code_before_spark(capsys):
    _, cfg = parse(["synth", "--ratings", "1e6", "--seed", "3"])
    assert cfg.synth.ratings == 1_000_000 and cfg.synth.seed == 3
    assert main(["walks", "--set", "walks.p=-1"]) == 2
    assert "walks.p" in capsys.readouterr().err


def test_section_hash_changes_only_with_its_sections():
    a, b = config.load(), config.load([], ["walks.p=2"])
    assert a.section_hash("pairs") == b.section_hash("pairs")
    assert a.section_hash("walks") != b.section_hash("walks")
