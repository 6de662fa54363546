"""Typed configuration: dataclasses loaded from TOML plus ``--set key=value`` overrides.

Every parameter has a default here; ``conf/default.toml`` documents the same values
(a test keeps the two equal). Values are validated before Spark starts, and a bad
value is rejected with the key and the allowed range, e.g.::

    ConfigError: walks.p = -1.0: must be > 0
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """A configuration key is unknown, has the wrong type or is out of range."""


def _param(default: Any, doc: str, *, gt: float | None = None, ge: float | None = None,
           le: float | None = None, choices: tuple[Any, ...] | None = None) -> Any:
    """A dataclass field carrying its documentation and allowed range."""
    meta = {"doc": doc, "gt": gt, "ge": ge, "le": le, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SparkConfig:
    master: str = _param("local[*]", "Spark master when not set by spark-submit.")
    app_name: str = _param("moviegraph", "Spark application name prefix.")
    shuffle_partitions: int = _param(8, "spark.sql.shuffle.partitions.", ge=1)
    driver_memory: str = _param("4g", "Driver memory (local mode: the whole job).")
    jars: str = _param(
        "local", "Where the JVM artifacts come from: 'local' = jars resolved by "
        "bin/bootstrap.sh into .jars/ (offline), 'packages' = spark.jars.packages "
        "(cluster with Maven access), 'provided' = already on the cluster classpath.",
        choices=("local", "packages", "provided"))
    graphframes: str = _param(
        "auto", "GraphFrames JVM artifact: 'on' requires it, 'auto' uses it when it "
        "resolves, 'off' never loads it.", choices=("auto", "on", "off"))
    ui: bool = _param(False, "Start the Spark web UI.")
    progress: bool = _param(True, "Show Spark's console progress bar.")
    conf: dict = _param({}, "Extra spark.* settings passed through as they are.")


@dataclass
class WarehouseConfig:
    root: str = _param("warehouse", "Root of the Delta tables (local path or any Hadoop URI).")


@dataclass
class DataConfig:
    dir: str = _param("data", "Where fetched and generated raw files live (never committed).")


@dataclass
class IngestConfig:
    dataset: str = _param(
        "ml-100k-recbole", "Input: a dataset name known to `fetch` (ml-100k-recbole, ml-100k, "
        "ml-1m, ml-latest-small, ml-25m, ml-32m) or 'path' to read ingest.path.",
        choices=("ml-100k-recbole", "ml-100k", "ml-1m", "ml-latest-small", "ml-25m",
                 "ml-32m", "path"))
    path: str = _param("", "With dataset='path': folder holding the raw files.")
    format: str = _param(
        "auto", "Raw file format; 'auto' detects it from the file names.",
        choices=("auto", "ml-100k", "recbole", "ml-1m", "csv"))
    strict: bool = _param(False, "Fail on the first bad row (file, line, reason) instead "
                                 "of writing it to the `rejected` table.")
    append: bool = _param(False, "Append the input's ratings to `ratings` instead of "
                                 "replacing the table.")


@dataclass
class SynthConfig:
    ratings: int = _param(25_000_095, "Number of ratings to generate.", ge=1000)
    users: int = _param(0, "Number of users; 0 scales MovieLens 25M's 162,541 to the size.",
                        ge=0)
    movies: int = _param(0, "Number of movies; 0 scales MovieLens 25M's 59,047 to the size.",
                         ge=0)
    genres_per_taste: int = _param(3, "Genres that define one user's taste.", ge=1, le=19)
    seed: int = _param(42, "Random seed.", ge=0)
    out: str = _param("", "Output folder; empty = <data.dir>/synth-<ratings>.")


@dataclass
class PairsConfig:
    min_rating: float = _param(4.0, "Ratings below this are ignored by pair counting.",
                               ge=0.0, le=5.0)
    max_items_per_user: int = _param(
        0, "Optional cap: users with more kept movies are subsampled reproducibly to this "
           "many (0 = exact, no cap). Recorded in the run record.", ge=0)
    block_size: int = _param(
        2000, "Users' movie lists are cut into blocks of this many movies; a task handles "
              "one block pair, so no task holds a heavy user's whole square.", ge=2)
    seed: int = _param(7, "Seed for the optional per-user cap sample.", ge=0)
    ratings: str = _param(
        "ranking_train", "Which ratings build the graph: ranking_train = the train part of "
        "EVALUATION.md's ranking split (each user's last 20% held out, so the evaluate "
        "stage scores node2vec honestly); all = every rating (production embeddings).",
        choices=("ranking_train", "all"))
    incremental: bool = _param(
        True, "After `ingest --append`, update item_counts/pair_counts from the appended "
        "ratings alone (Delta MERGE; equal to a full recount) when possible: needs ratings = "
        "all, no max_items_per_user cap, only appends to `ratings` since the last pairs run "
        "and its outputs untouched; otherwise (or when false) recount, saying why.")


@dataclass
class EdgesConfig:
    min_weight: float = _param(0.0, "Edges with weight = pmi * pair_count below this are "
                                     "dropped.")
    min_count: int = _param(5, "Pairs co-rated by fewer users than this make no edge "
                                  "(rare pairs give noisy PMI).", ge=1)
    top_k: int = _param(15, "Keep an edge only when it is among the top_k highest-PMI edges "
                           "of either endpoint (a k-NN graph); 0 = keep all.", ge=0)


@dataclass
class WalksConfig:
    num_walks: int = _param(10, "Walks started at every node.", ge=1)
    walk_length: int = _param(80, "Nodes per walk, the start included.", ge=2)
    p: float = _param(1.0, "Return parameter: weight of stepping back is w/p.", gt=0.0)
    q: float = _param(1.0, "In-out parameter: weight of moving away is w/q.", gt=0.0)
    seed: int = _param(1234, "Global seed; walk (start, round) streams derive from it.",
                       ge=0)
    directed: bool = _param(False, "Treat edges as directed (src -> dst only).")
    mode: str = _param("auto", "broadcast: each task holds the whole graph; partitioned: "
                               "walkers joined with adjacency step by step; auto: by size.",
                       choices=("auto", "broadcast", "partitioned"))
    partitions: int = _param(0, "Tasks for the walk stage; 0 = Spark's default parallelism.",
                             ge=0)
    broadcast_max_bytes: int = _param(
        1 << 30, "auto mode picks broadcast while the CSR graph is smaller than this.", ge=1)


@dataclass
class TrainConfig:
    models: str = _param("node2vec,cbow,mf,edlae",
                         "Comma-separated models to train: node2vec (skip-gram on walks), cbow "
                         "(users' histories), mf (biased matrix factorisation), softmax "
                         "(retrieval model: user tower, softmax over movies), edlae (low-rank "
                         "linear autoencoder in closed form; the best ranker on ml-100k).")
    seed: int = _param(42, "Seed of every model's initialisation and random draws.", ge=0)
    device: str = _param("auto", "auto = CUDA when present, else CPU; cuda falls back to CPU "
                                 "where none is present.", choices=("auto", "cpu", "cuda"))
    deterministic: bool = _param(
        True, "Bit-for-bit repeatable CPU runs: skip-gram's numba kernel on one thread "
              "(several threads race, as in word2vec) and torch's deterministic kernels.")
    threads: int = _param(0, "CPU threads of torch while training (0 = torch's default, one "
                             "per core); 1 is faster for small models on a busy machine.",
                          ge=0)
    distributed: bool = _param(False, "Train with PyTorch DDP (gloo on CPU, nccl on CUDA) "
                                      "launched by Spark's TorchDistributor (mf only).")
    num_processes: int = _param(2, "Distributed: number of training processes.", ge=1)
    checkpoint_dir: str = _param("checkpoints", "Checkpoints go to <checkpoint_dir>/<model>/ "
                                                "(relative paths: under the project root).")
    resume: bool = _param(False, "Continue each model from its last checkpoint (same config "
                                 "and inputs only); otherwise old checkpoints are cleared.")
    patience: int = _param(0, "mf: stop after this many epochs without a better validation "
                              "RMSE (a validation cut of the train part is then held out) and "
                              "keep the best epoch; 0 = off.", ge=0)
    node2vec_dim: int = _param(64, "node2vec: vector size.", ge=1)
    node2vec_epochs: int = _param(5, "node2vec: passes over the walks.", ge=1)
    node2vec_window: int = _param(5, "node2vec: context window.", ge=1)
    node2vec_negative: int = _param(5, "node2vec: negative samples per pair.", ge=1)
    node2vec_lr: float = _param(0.025, "node2vec: initial SGD learning rate (decays linearly).",
                                gt=0.0)
    node2vec_sample: float = _param(1e-3, "node2vec: frequent-token subsampling threshold "
                                          "(0 = off).", ge=0.0)
    node2vec_batch_walks: int = _param(256, "node2vec: walks per step.", ge=1)
    cbow_dim: int = _param(64, "cbow: vector size.", ge=1)
    cbow_epochs: int = _param(10, "cbow: passes over the users' histories.", ge=1)
    cbow_window: int = _param(5, "cbow: context positions on each side.", ge=1)
    cbow_loss: str = _param("softmax", "cbow: full softmax or negative sampling.",
                            choices=("softmax", "negative"))
    cbow_negative: int = _param(10, "cbow: negatives per centre (cbow_loss = negative).", ge=1)
    cbow_lr: float = _param(0.01, "cbow: Adam learning rate.", gt=0.0)
    cbow_batch: int = _param(64, "cbow: histories per step.", ge=1)
    cbow_max_len: int = _param(200, "cbow: longer histories are cut into rows of this many.",
                               ge=2)
    mf_method: str = _param(
        "bpmf", "mf: how the model is fitted: bpmf (Bayesian, Gibbs sampling; prediction = "
                "posterior average) or adam (penalised least squares, mini-batch Adam).",
        choices=("bpmf", "adam"))
    mf_bpmf_dim: int = _param(20, "mf (bpmf): latent factors.", ge=1)
    mf_burn_in: int = _param(20, "mf (bpmf): Gibbs sweeps discarded before averaging.", ge=0)
    mf_samples: int = _param(150, "mf (bpmf): Gibbs sweeps averaged (each one pass over the "
                                  "training ratings).", ge=1)
    mf_side: str = _param(
        "both", "mf (bpmf): implicit feedback as side information: a user's prior mean from "
                "the movies they rated (users), also a movie's from who rated it (both), or "
                "none.", choices=("none", "users", "both"))
    mf_side_reg: float = _param(1.0, "mf (bpmf): ridge weight of the side-information link.",
                                gt=0.0)
    mf_noise: str = _param(
        "global", "mf (bpmf): rating noise precision: one (global), scaled per user (user) or "
                  "per user and movie (user_movie, robust BPMF).",
        choices=("global", "user", "user_movie"))
    mf_write_rank: int = _param(64, "mf (bpmf): columns of the written factor block (truncated "
                                    "SVD of the posterior-mean interaction); 0 = exact (up to "
                                    "min(users, movies, samples x dim) columns).", ge=0)
    mf_dim: int = _param(128, "mf (adam): latent factors.", ge=1)
    mf_epochs: int = _param(16, "mf (adam): passes over the training ratings.", ge=1)
    mf_lr: float = _param(0.005, "mf (adam): learning rate.", gt=0.0)
    mf_reg: float = _param(0.1, "mf (adam): L2 weight on factors, per observed rating.", ge=0.0)
    mf_reg_bias: float = _param(0.01, "mf (adam): L2 weight on biases, per observed rating.",
                                ge=0.0)
    mf_batch_size: int = _param(1024, "mf (adam): ratings per step (distributed: over all "
                                      "processes).", ge=1)
    mf_biases: str = _param(
        "full", "mf biases in the written vectors: drop (factors only), append (movie "
                "[q, b_i, 1], user [p, 1, b_u], so user.movie = prediction - global mean) or "
                "full (movie [q, b_i, 1, mu], user [p, 1, b_u, 1], so user.movie = "
                "prediction).", choices=("drop", "append", "full"))
    softmax_dim: int = _param(64, "softmax: user / movie vector size (+1 bias column).", ge=1)
    softmax_epochs: int = _param(20, "softmax: passes over the users.", ge=1)
    softmax_lr: float = _param(2e-3, "softmax: AdamW learning rate.", gt=0.0)
    softmax_batch: int = _param(128, "softmax: users per step.", ge=1)
    softmax_features: bool = _param(True, "softmax: pool genre and release-decade features "
                                          "of the user's movies into the user tower.")
    edlae_dim: int = _param(64, "edlae: vector size (rank of the low-rank EDLAE, Steck 2020; "
                                "movie vectors V, user vectors x_u W).", ge=1)
    edlae_dropout: float = _param(0.33, "edlae: emphasized-dropout probability.",
                                  ge=0.0, le=0.95)
    edlae_lam: float = _param(100.0, "edlae: ridge on the diagonal.", gt=0.0)


@dataclass
class SimilarConfig:
    k: int = _param(20, "Neighbours per movie and recommendations per user.", ge=1)
    metric: str = _param("both", "Similarity of similar_movies: cosine, dot or both (one row "
                                 "set per metric, told apart by the `metric` column).",
                         choices=("cosine", "dot", "both"))
    block_size: int = _param(256, "Query rows (movies or users) scored per matrix product; "
                                  "a task holds block_size x catalogue scores at a time.",
                             ge=1)
    models: str = _param("", "Comma-separated models to process; empty = every model in "
                             "`embeddings`.")
    run_id: str = _param("", "Embeddings run_id to use; empty = the latest run of each model.")
    partitions: int = _param(0, "Tasks for the similarity joins; 0 = Spark's default "
                                "parallelism (similar_movies of a small catalogue: one "
                                "task per ~134M scores).", ge=0)
    like_threshold: float = _param(
        4.0, "Item-embedding models: a user's movies rated >= this form the profile (all "
             "rated movies when none is).", ge=0.0, le=5.0)


@dataclass
class EvaluateConfig:
    k: int = _param(20, "Cut-off of Recall@k and NDCG@k (ranking split).", ge=1)
    models: str = _param("", "Comma-separated models to evaluate; empty = every model in "
                             "`embeddings` (its latest run).")
    baselines: str = _param(
        "mostpop,itemknn,ease,gensim,biases,random", "Comma-separated baselines: mostpop, "
        "itemknn, ease (lambda tuned on a validation cut of train), gensim (skip-gram on the "
        "same walks, skipped when gensim is not installed), biases (global mean and user + "
        "item biases, RMSE), random (random vectors).")
    ease_lambdas: str = _param("10,50,100,200,500,1000", "EASE lambda grid (comma-separated).")
    own_scorers: bool = _param(True, "Also rank with each model's own scorer from "
                                     "moviegraph.train.scorers (e.g. a user tower trained over "
                                     "frozen item vectors: minutes per model on ml-100k); off "
                                     "= the popularity-prior scorer, tuned on a validation cut.")
    max_dense_items: int = _param(20_000, "ItemKNN / EASE hold n_movies^2 floats: skipped "
                                          "above this many movies.", ge=1)
    fidelity_pq: str = _param("", "Extra (p, q) pairs for the walk-fidelity check, e.g. "
                                  "'0.25:4,4:0.25'; the configured walks.p, walks.q always.")
    report_dir: str = _param("reports", "Folder of the HTML reports (<run_id>.html and "
                                        "latest.html; relative paths: under the project root).")
    main_model: str = _param("", "Model of the 2-D map and first in the report; empty = the "
                                 "first of node2vec, mf, softmax, cbow present.")
    tsne_seed: int = _param(0, "Seed of the t-SNE map.", ge=0)
    tsne_perplexity: float = _param(30.0, "t-SNE perplexity.", gt=0.0)
    tsne_max_movies: int = _param(2000, "The map shows at most this many movies (the most "
                                        "rated), so t-SNE stays quick on large catalogues.",
                                  ge=10)
    tsne_max_iter: int = _param(1000, "t-SNE iterations (the first 250 are the early "
                                      "exaggeration phase: allow several hundred more).",
                                ge=300)
    seed: int = _param(0, "Seed of random baselines and scorers.", ge=0)


@dataclass
class ExportConfig:
    out: str = _param("exports", "Folder of the Embedding Projector TSVs and Parquet copies "
                                 "(local path, one subfolder per model).")
    models: str = _param("", "Comma-separated models to export; empty = every model.")


@dataclass
class Config:
    """The whole job configuration."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    edges: EdgesConfig = field(default_factory=EdgesConfig)
    walks: WalksConfig = field(default_factory=WalksConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    similar: SimilarConfig = field(default_factory=SimilarConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every value."""
        return dataclasses.asdict(self)

    def section_hash(self, *sections: str) -> str:
        """Stable hash of the named sections, used by run records to spot changed configs."""
        blob = json.dumps({s: dataclasses.asdict(getattr(self, s)) for s in sections},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _check_value(key: str, value: Any, f: dataclasses.Field, typ: type) -> Any:
    """Coerce ``value`` to the field's type and check its range; raise ConfigError."""
    meta = f.metadata
    if typ is bool:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{key} = {value!r}: must be true or false")
            value = lowered in ("true", "1", "yes")
        elif not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: must be true or false")
    elif typ is int:
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} = {value!r}: must be an integer") from None
        if isinstance(value, bool) or as_float != int(as_float):
            raise ConfigError(f"{key} = {value!r}: must be an integer")
        value = int(as_float)
    elif typ is float:
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} = {value!r}: must be a number") from None
    elif typ is str:
        value = str(value)
    elif typ is dict and not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a table of settings")
    if meta.get("choices") and value not in meta["choices"]:
        allowed = ", ".join(map(str, meta["choices"]))
        raise ConfigError(f"{key} = {value!r}: must be one of {allowed}")
    if meta.get("gt") is not None and not value > meta["gt"]:
        raise ConfigError(f"{key} = {value!r}: must be > {meta['gt']}")
    if meta.get("ge") is not None and not value >= meta["ge"]:
        raise ConfigError(f"{key} = {value!r}: must be >= {meta['ge']}")
    if meta.get("le") is not None and not value <= meta["le"]:
        raise ConfigError(f"{key} = {value!r}: must be <= {meta['le']}")
    return value


def _section_fields(section: Any) -> dict[str, tuple[dataclasses.Field, type]]:
    hints = get_type_hints(type(section))
    return {f.name: (f, hints[f.name]) for f in fields(section)}


def apply(cfg: Config, key: str, value: Any) -> None:
    """Set ``section.name`` (or ``spark.conf.<spark key>``) to ``value``, validated."""
    section_name, _, name = key.partition(".")
    if not name or not hasattr(cfg, section_name):
        raise ConfigError(f"unknown config key {key!r} (expected section.name, sections: "
                          f"{', '.join(f.name for f in fields(cfg))})")
    section = getattr(cfg, section_name)
    if section_name == "spark" and name.startswith("conf."):
        section.conf[name[len("conf."):]] = str(value)
        return
    known = _section_fields(section)
    if name not in known:
        raise ConfigError(f"unknown config key {key!r} (known in [{section_name}]: "
                          f"{', '.join(known)})")
    f, typ = known[name]
    setattr(section, name, _check_value(key, value, f, typ))


def _apply_table(cfg: Config, table: dict[str, Any], source: str) -> None:
    for section_name, values in table.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section_name}] must be a table")
        for name, value in values.items():
            if section_name == "spark" and name == "conf":
                for k, v in value.items():
                    apply(cfg, f"spark.conf.{k}", v)
            else:
                apply(cfg, f"{section_name}.{name}", value)


def _read_config_text(path: Path) -> str:
    """The file's text; ``conf/X.toml`` falls back to the copy shipped inside the package
    (the --py-files zip on a cluster driver has no project tree around it)."""
    if path.is_file():
        return path.read_text()
    if path.parent.name == "conf" or len(path.parts) == 1:
        from importlib import resources

        shipped = resources.files("moviegraph").joinpath("conf", path.name)
        if shipped.is_file():
            return shipped.read_text()
    raise ConfigError(f"config file not found: {path}")


def load(paths: list[str | Path] | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then each TOML file in order, then ``key=value`` overrides."""
    cfg = Config()
    for path in paths or []:
        p = Path(path)
        text = _read_config_text(p)
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
        _apply_table(cfg, table, str(p))
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        apply(cfg, key.strip(), value.strip())
    return cfg


def describe() -> list[tuple[str, Any, str]]:
    """(key, default, doc) for every parameter, for docs and the default.toml check."""
    out = []
    cfg = Config()
    for sec in fields(cfg):
        section = getattr(cfg, sec.name)
        for f in fields(section):
            out.append((f"{sec.name}.{f.name}", getattr(section, f.name), f.metadata["doc"]))
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    return repr(value)


def render_default_toml() -> str:
    """conf/default.toml as it must read: every key, its default, doc and allowed range.

    Regenerate the file with ``python -m moviegraph.config > conf/default.toml``.
    """
    import textwrap

    out = ["# moviegraph: every parameter, its default and what it does.",
           "# Profiles (conf/local.toml, conf/cluster.toml) and --set key=value override these;",
           "# a bad value is rejected before Spark starts, naming the key and the allowed range.",
           "# Generated by `python -m moviegraph.config > conf/default.toml`; a test keeps it so.",
           ""]
    cfg = Config()
    for sec in fields(cfg):
        section = getattr(cfg, sec.name)
        out.append(f"[{sec.name}]")
        for f in fields(section):
            meta = f.metadata
            limits = []
            if meta.get("choices"):
                limits.append("one of " + ", ".join(map(str, meta["choices"])))
            for bound, sign in (("gt", ">"), ("ge", ">="), ("le", "<=")):
                if meta.get(bound) is not None:
                    limits.append(f"{sign} {meta[bound]}")
            doc = meta["doc"] + (f" [{'; '.join(limits)}]" if limits else "")
            out.extend("# " + line for line in textwrap.wrap(doc, 86))
            out.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render_default_toml(), end="")
