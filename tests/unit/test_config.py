"""Config: defaults documented in conf/default.toml, validation before Spark starts."""

from __future__ import annotations

import tomllib

import pytest

from moviegraph import config
from moviegraph.cli import main, parse
from moviegraph.config import PROJECT_ROOT, ConfigError


def _toml_keys(table: dict, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every setting in a parsed TOML file (sections flattened)."""
    out: dict[str, object] = {}
    for name, value in table.items():
        if isinstance(value, dict) and f"{prefix}{name}" != "spark.conf":
            out.update(_toml_keys(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def test_default_toml_documents_every_parameter_with_its_default():
    text = (PROJECT_ROOT / "conf" / "default.toml").read_text()
    keys = _toml_keys(tomllib.loads(text))
    described = config.describe()
    assert described, "no parameters described"
    for key, default, doc in described:
        assert doc.strip(), f"{key} has no documentation"
        if default is None:  # TOML has no null: shown commented out
            assert key not in keys and f"# {key.rsplit('.', 1)[1]} = (unset)" in text, key
            continue
        assert key in keys, f"{key} missing from conf/default.toml"
        want = list(default) if isinstance(default, tuple) else default
        assert keys[key] == want, f"{key}: default.toml differs from config.py"
    n_set = sum(1 for _, default, _ in described if default is not None)
    assert len(keys) == n_set, "conf/default.toml has keys config.py does not know"


def test_model_settings_are_the_trainers_own_dataclasses():
    """[train.<model>] sections are the models' settings types, with the pipeline's
    defaults, so a trainer called without settings does what the pipeline does."""
    from moviegraph.train.cbow import CBOWConfig
    from moviegraph.train.edlae import EDLAEConfig
    from moviegraph.train.mf import MFConfig
    from moviegraph.train.skipgram import SkipGramConfig
    from moviegraph.train.softmax import SoftmaxConfig

    tc = config.Config().train
    for section, cls in (("node2vec", SkipGramConfig), ("cbow", CBOWConfig),
                         ("softmax", SoftmaxConfig), ("edlae", EDLAEConfig)):
        assert type(getattr(tc, section)) is cls
        assert getattr(tc, section) == cls()
    assert type(tc.mf.adam) is MFConfig
    cfg = config.load([], ["train.node2vec.dim=32", "train.mf.bpmf.samples=7"])
    assert cfg.train.node2vec.dim == 32 and cfg.train.mf.bpmf.samples == 7


def test_nested_sections_and_lists_load_from_toml(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text('[train]\nmodels = ["mf", "node2vec"]\n[train.node2vec]\ndim = 16\n'
                 '[train.mf.adam]\nlr = 0.5\n[evaluate]\nease_lambdas = [1, 2.5]\n'
                 'baselines = "mostpop, ease"\n')
    cfg = config.load([f])
    assert cfg.train.models == ["mf", "node2vec"] and cfg.train.node2vec.dim == 16
    assert cfg.train.mf.adam.lr == 0.5
    assert cfg.evaluate.ease_lambdas == [1.0, 2.5]
    assert cfg.evaluate.baselines == ["mostpop", "ease"]
    # --set takes lists as comma-separated values
    cfg = config.load([f], ["train.models=edlae,cbow", "evaluate.fidelity_pq=0.25:4,4:0.25"])
    assert cfg.train.models == ["edlae", "cbow"]
    assert cfg.evaluate.fidelity_pq == ["0.25:4", "4:0.25"]


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
    ("train.models=node2vec,word2vec",
     "train.models = 'word2vec': must be one of node2vec, cbow, mf, softmax, edlae"),
    ("train.models=", "train.models is empty"),
    ("evaluate.baselines=mostpop,lightgcn", "evaluate.baselines = 'lightgcn': must be one of"),
    ("evaluate.ease_lambdas=10,x", "evaluate.ease_lambdas = 'x': must be a number"),
    ("evaluate.fidelity_pq=0.25", "evaluate.fidelity_pq = '0.25': bad entry"),
    ("similar.models=nope", "similar.models = 'nope': must be one of"),
    ("train.node2vec.dim=0", "train.node2vec.dim = 0: must be >= 1"),
    ("train.node2vec.min_alpha=1", "[train.node2vec] min_alpha = 1.0: must be <= alpha"),
    ("train.node2vec.seed=1", "train.node2vec.seed is not a setting"),
    ("train.mf.nope=1", "unknown config key 'train.mf.nope'"),
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
