"""Typed configuration: dataclasses loaded from TOML plus ``--set key=value`` overrides.

Every parameter has a default here; ``conf/default.toml`` documents the same values
(a test keeps the two equal). Values are validated before Spark starts, and a bad
value is rejected with the key and the allowed range, e.g.::

    ConfigError: walks.p = -1.0: must be > 0

Sections nest: ``[train.node2vec]`` is the node2vec trainer's own settings dataclass
(:mod:`moviegraph.config.models`), set with ``--set train.node2vec.dim=32``. List
settings take TOML arrays or, on ``--set``, comma-separated values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from moviegraph.config.models import (
    BlendConfig,
    BPMFConfig,
    CBOWConfig,
    EDLAEConfig,
    MFConfig,
    MFSettings,
    ScorerConfig,
    ScorersConfig,
    SkipGramConfig,
    SoftmaxConfig,
    check_range,
)
from moviegraph.config.params import ConfigError, is_setting
from moviegraph.config.params import param as _param

__all__ = ["BPMFConfig", "BlendConfig", "CBOWConfig", "Config", "ConfigError", "EDLAEConfig",
           "MFConfig", "MFSettings", "ScorerConfig", "ScorersConfig", "SkipGramConfig",
           "SoftmaxConfig", "apply", "describe", "load", "render_default_toml"]

PROJECT_ROOT = Path(__file__).resolve().parents[3]

#: The models ``train`` can fit, in training order: one settings section each in
#: :class:`TrainConfig` below (a test keeps these, the sections and the train stage's model
#: registry equal).
MODELS = ("node2vec", "cbow", "mf", "softmax", "edlae", "blend")
#: The evaluate stage's baselines.
BASELINES = ("mostpop", "itemknn", "cocount", "ease", "gensim", "biases", "random")
#: What evaluate runs unless told: every baseline but the peer skip-gram (gensim).
DEFAULT_BASELINES = tuple(b for b in BASELINES if b != "gensim")


def pq_pair(item: str) -> str:
    """``"0.25:4"`` -> the same text once both numbers parse and are > 0; else ValueError."""
    try:
        p, q = (float(x) for x in str(item).split(":"))
    except ValueError:
        raise ValueError(f"bad entry {item!r}: want p:q, e.g. 0.25:4") from None
    if not (p > 0 and q > 0):
        raise ValueError(f"bad entry {item!r}: p and q must be > 0")
    return str(item).strip()


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
    root: str = _param("warehouse", "Root of the Delta tables: any Hadoop URI (hdfs://, s3a://, "
                                    "abfss://, file://) or a path (relative: under the "
                                    "job's working directory).")


@dataclass
class DataConfig:
    dir: str = _param("data", "Where fetched and generated raw files live (never committed): a "
                              "URI, or a path (relative: beside the warehouse root).")


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
    min_rating: float = _param(1.0, "Ratings below this are ignored by pair counting (1: "
                                    "every rating counts, a rating is a co-watch).",
                               ge=0.0, le=5.0)
    max_items_per_user: int = _param(
        0, "Optional cap: users with more kept movies are subsampled reproducibly to this "
           "many (0 = exact, no cap). Recorded in the run record.", ge=0)
    block_size: int = _param(
        2000, "Bounds a kernel call's work to block_size² pair cells: a full count's "
              "movie-range tasks count their rows in chunks of that much work; the "
              "incremental count cuts users' lists into blocks of this many movies. So no "
              "task holds a heavy user's whole square.", ge=2)
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
    weighting: str = _param(
        "cosine", "Edge weight: cosine = n_xy / sqrt(n_x n_y) (co-raters over the geometric "
        "mean of the raters: the neighbours ItemKNN would pick); pmi = pmi * n_xy (the "
        "recipe's). top_k ranks by the same measure (cosine, or pmi).",
        choices=("cosine", "pmi"))
    min_weight: float = _param(0.0, "Edges with a weight (cosine, or pmi * pair_count) "
                                     "below this are dropped.")
    min_count: int = _param(1, "Pairs co-rated by fewer users than this make no edge.", ge=1)
    # 10 (was 15): node2vec's validation neighbour HR@20 (issue 14,
    # benchmarks/tune_node2vec.py: temporal validation cut of train, never the test part).
    top_k: int = _param(10, "Keep an edge only when it is among the top_k strongest edges "
                            "(by edges.weighting) of either endpoint (a k-NN graph); 0 = "
                            "keep all.", ge=0)


@dataclass
class WalksConfig:
    num_walks: int = _param(10, "Walks started at every node.", ge=1)
    walk_length: int = _param(80, "Nodes per walk, the start included.", ge=2)
    p: float = _param(1.0, "Return parameter: weight of stepping back is w/p.", gt=0.0)
    # 2 (was 1; walks stay closer to the start, BFS-like): chosen with edges.top_k = 10 by
    # node2vec's validation neighbour HR@20 (issue 14, benchmarks/tune_node2vec.py).
    q: float = _param(2.0, "In-out parameter: weight of moving away is w/q.", gt=0.0)
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
    models: list[str] = _param(
        ["node2vec", "cbow", "mf", "edlae"],
        "Models to train (in the order node2vec, cbow, mf, softmax, edlae, blend whatever the "
        "order given): node2vec (skip-gram on walks), cbow (users' histories), mf (biased "
        "matrix factorisation), softmax (retrieval model: user tower, softmax over movies), "
        "edlae (low-rank linear autoencoder in closed form; the best ranker on ml-100k), "
        "blend (opt-in: the weighted cosine of the [train.blend] models). Each "
        "model's settings are the section [train.<model>].", choices=MODELS, nonempty=True)
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
                                      "launched by Spark's TorchDistributor (mf with "
                                      "method = adam only).")
    num_processes: int = _param(2, "Distributed: number of training processes.", ge=1)
    checkpoint_dir: str = _param("checkpoints", "Checkpoints go to <checkpoint_dir>/<model>/: "
                                                "a URI, or a path (relative: beside the "
                                                "warehouse root).")
    resume: bool = _param(False, "Continue each model from its last checkpoint (same config "
                                 "and inputs only); otherwise old checkpoints are cleared.")
    node2vec: SkipGramConfig = field(default_factory=SkipGramConfig)
    cbow: CBOWConfig = field(default_factory=CBOWConfig)
    mf: MFSettings = field(default_factory=MFSettings)
    softmax: SoftmaxConfig = field(default_factory=SoftmaxConfig)
    edlae: EDLAEConfig = field(default_factory=EDLAEConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    scorers: ScorersConfig = field(default_factory=ScorersConfig)

    def __post_init__(self) -> None:
        if "blend" in self.models:
            missing = [m for m in self.blend.models if m not in self.models]
            if missing:
                raise ConfigError(
                    f"models includes blend but not its part(s) {', '.join(missing)} "
                    f"(train.blend.models = {self.blend.models}): add them to "
                    "train.models or drop blend")


@dataclass
class SimilarConfig:
    k: int = _param(20, "Neighbours per movie and recommendations per user.", ge=1)
    metric: str = _param("model", "Similarity of similar_movies: model (each model's shipped "
                                  "list metric, [train.scorers.<model>] list_metric), "
                                  "cosine, dot or both (one row set per metric, told apart "
                                  "by the `metric` column); the model's list prior is added "
                                  "to any of them.",
                         choices=("model", "cosine", "dot", "both"))
    block_size: int = _param(256, "Query rows (movies or users) scored per matrix product; "
                                  "a task holds block_size x catalogue scores at a time.",
                             ge=1)
    models: list[str] = _param([], "Models to process; empty = every model in `embeddings`.",
                               choices=MODELS)
    run_id: str = _param("", "Embeddings run_id to use; empty = the latest run of each model.")
    partitions: int = _param(0, "Tasks for the similarity joins; 0 = Spark's default "
                                "parallelism (similar_movies of a small catalogue: one "
                                "task per ~134M scores).", ge=0)
    like_threshold: float = _param(
        4.0, "Item-embedding models: a user's movies rated >= this form the profile (all "
             "rated movies when none is).", ge=0.0, le=5.0)
    ratings: str = _param(
        "ranking_train", "The ratings that make the users' profiles and the movies never "
        "recommended: ranking_train = the train part of EVALUATION.md's ranking split (the "
        "tables the evaluate stage scores); all = every rating (production).",
        choices=("ranking_train", "all"))


@dataclass
class EvaluateConfig:
    k: int = _param(20, "Cut-off of Recall@k and NDCG@k (ranking split).", ge=1)
    models: list[str] = _param([], "Models to evaluate; empty = every model in `embeddings` "
                                   "(its latest run).", choices=MODELS)
    baselines: list[str] = _param(
        list(DEFAULT_BASELINES), "Baselines: mostpop, itemknn (ranking and neighbour lists), "
        "cocount (most co-rated neighbours), ease (lambda tuned on a validation cut of "
        "train), gensim (skip-gram on the same walks with the node2vec settings, a dev "
        "dependency; off by default: it retrains skip-gram, about 14 of the 22 s of "
        "evaluate on ML-100K, and the benchmarks compare it), biases (global mean and user + "
        "item biases, RMSE), random (random vectors).", choices=BASELINES)
    ease_lambdas: list[float] = _param([10.0, 50.0, 100.0, 200.0, 500.0, 1000.0],
                                       "EASE lambda grid.", gt=0.0, nonempty=True)
    max_dense_items: int = _param(20_000, "ItemKNN / EASE hold n_movies^2 floats: skipped "
                                          "above this many movies.", ge=1)
    fidelity_pq: list[str] = _param([], "Extra (p, q) pairs for the walk-fidelity check, "
                                        "e.g. ['0.25:4', '4:0.25']; the configured walks.p, "
                                        "walks.q always.", check=pq_pair)
    report_dir: str = _param("reports", "Folder of the HTML reports (<run_id>.html and "
                                        "latest.html): a URI, or a path (relative: beside "
                                        "the warehouse root).")
    main_model: str = _param("", "Model of the 2-D map and first in the report; empty = the "
                                 "first of node2vec, mf, softmax, cbow, blend present.")
    tsne_seed: int = _param(0, "Seed of the t-SNE map.", ge=0)
    tsne_perplexity: float = _param(30.0, "t-SNE perplexity.", gt=0.0)
    tsne_max_movies: int = _param(2000, "The map shows at most this many movies (the most "
                                        "rated), so t-SNE stays quick on large catalogues.",
                                  ge=10)
    tsne_max_iter: int = _param(500, "t-SNE iterations (the first 250 are the early "
                                      "exaggeration phase: allow several hundred more).",
                                ge=300)
    seed: int = _param(0, "Seed of random baselines and scorers.", ge=0)


@dataclass
class ExportConfig:
    out: str = _param("exports", "Folder of the Embedding Projector TSVs and Parquet copies, "
                                 "one subfolder per model: a URI, or a path (relative: "
                                 "beside the warehouse root).")
    models: list[str] = _param([], "Models to export; empty = every model.", choices=MODELS)


@dataclass
class PipelineConfig:
    """How pipelines share a warehouse: the lease that lets one run at a time (moviegraph.lock)."""

    lock_ttl_seconds: int = _param(
        600, "Warehouse lease: a run that stopped heartbeating for this long (killed driver, "
        "lost node) is considered dead and any host may take the warehouse over. Keep it "
        "well above heartbeat_seconds plus the hosts' clock skew, and below the "
        "scheduler's retry delay.", ge=10)
    heartbeat_seconds: int = _param(
        30, "Warehouse lease: how often a running pipeline renews its lease; at most a "
        "third of lock_ttl_seconds.", ge=1)


@dataclass
class MaintainConfig:
    """The ``[maintain]`` section: what the ``maintain`` job compacts and vacuums."""

    tables: list[str] = _param([], "Tables to maintain; empty = every Delta table under the "
                                   "warehouse root.")
    optimize: bool = _param(True, "Compact small files (OPTIMIZE), Z-ordered where a reader "
                                  "filters (similar_movies, recommendations, embeddings, "
                                  "user_embeddings).")
    zorder: bool = _param(True, "Z-order the tables that have Z-order columns; false = plain "
                                "compaction everywhere.")
    min_files: int = _param(4, "Compact a table only when it changed since the last maintain "
                               "run and has at least this many data files.", ge=2)
    target_file_mb: int = _param(256, "Size of compacted files; files of at least half of it "
                                      "are left as they are.", ge=1)
    vacuum: bool = _param(True, "Delete data files that no version still needed uses "
                                "(VACUUM).")
    retain_hours: int = _param(
        168, "Time-travel window: set as each table's delta.deletedFileRetentionDuration "
        "(Delta refuses reads of versions committed longer ago, and VACUUM deletes files "
        "removed longer ago), raised per table so that every version the latest successful "
        "run of any stage names in `runs` stays readable (up to the log retention, 30 days).",
        ge=0)
    clock_slack_seconds: int = _param(
        600, "Added to a retention computed from a referenced version: covers clock "
        "differences between the driver that removed the files and this one, and VACUUM's "
        "own start-up.", ge=0)


@dataclass
class NeighboursConfig:
    """The ``neighbours`` job: one movie's rows of ``similar_movies``, printed."""

    movie: str = _param("", "Movie title (matched forgivingly) or movie id.")
    model: str = _param("", "Model whose lists to print; empty = node2vec when present, "
                            "else the first model in the table.", choices=("", *MODELS))
    k: int = _param(10, "Neighbours to print.", ge=1)
    metric: str = _param("", "Metric of the lists; empty = the model's (first) one.",
                         choices=("", "cosine", "dot"))


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
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    maintain: MaintainConfig = field(default_factory=MaintainConfig)
    neighbours: NeighboursConfig = field(default_factory=NeighboursConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every value."""
        return dataclasses.asdict(self)

    def section_hash(self, *sections: str) -> str:
        """Stable hash of the named sections, used by run records to spot changed configs."""
        blob = json.dumps({s: dataclasses.asdict(getattr(self, s)) for s in sections},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _is_section(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _scalar(key: str, value: Any, typ: Any) -> Any:
    """``value`` coerced to the scalar type ``typ``; ConfigError naming ``key`` otherwise."""
    if typ is bool:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"{key} = {value!r}: must be true or false")
            return lowered in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: must be true or false")
        return value
    if typ is int:
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} = {value!r}: must be an integer") from None
        if isinstance(value, bool) or as_float != int(as_float):
            raise ConfigError(f"{key} = {value!r}: must be an integer")
        return int(as_float)
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: must be a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} = {value!r}: must be a number") from None
    if typ is str:
        if isinstance(value, (list, dict)):
            raise ConfigError(f"{key} = {value!r}: must be a string")
        return str(value)
    if typ is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a table of settings")
        return value
    raise ConfigError(f"{key}: settings of type {typ} are not supported")


def _check_value(key: str, value: Any, f: dataclasses.Field, typ: Any) -> Any:
    """Coerce ``value`` to the field's type and check its range; raise ConfigError.

    ``X | None`` fields take ``none`` (or an empty string) on ``--set``; list fields take
    a TOML array or a comma-separated string.
    """
    meta = f.metadata
    origin = get_origin(typ)
    if origin in (Union, types.UnionType):
        inner = next(a for a in get_args(typ) if a is not type(None))
        if value is None or (isinstance(value, str)
                             and value.strip().lower() in ("", "none", "null")):
            return None
        return _check_value(key, value, f, inner)
    if origin in (list, tuple):
        item_type = get_args(typ)[0]
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ConfigError(f"{key} = {value!r}: must be a list (a TOML array or "
                              "comma-separated values)")
        coerced = [_scalar(key, item, item_type) for item in items]
        if meta.get("check"):
            coerced = [_checked(key, item, meta["check"]) for item in coerced]
        check_range(key, coerced, meta)
        return tuple(coerced) if origin is tuple else coerced
    value = _scalar(key, value, typ)
    if meta.get("check"):
        value = _checked(key, value, meta["check"])
    check_range(key, value, meta)
    return value


def _checked(key: str, value: Any, check: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(f"{key} = {value!r}: {exc}") from None


def _section_fields(section: Any) -> dict[str, tuple[dataclasses.Field, Any]]:
    hints = get_type_hints(type(section))
    return {f.name: (f, hints[f.name]) for f in fields(section)}


def _known(section: Any) -> str:
    return ", ".join(f.name for f in fields(section)
                     if is_setting(f) or _is_section(getattr(section, f.name)))


def apply(cfg: Config, key: str, value: Any) -> None:
    """Set ``section[.subsection].name`` (or ``spark.conf.<spark key>``) to ``value``,
    validated."""
    section_name, _, rest = key.partition(".")
    if not rest or not hasattr(cfg, section_name):
        raise ConfigError(f"unknown config key {key!r} (expected section.name, sections: "
                          f"{', '.join(f.name for f in fields(cfg))})")
    section = getattr(cfg, section_name)
    if section_name == "spark" and rest.startswith("conf."):
        section.conf[rest[len("conf."):]] = str(value)
        return
    path = [section_name]
    *inner, name = rest.split(".")
    for part in inner:
        child = getattr(section, part, None) if part in _section_fields(section) else None
        if not _is_section(child):
            raise ConfigError(f"unknown config key {key!r} (known in [{'.'.join(path)}]: "
                              f"{_known(section)})")
        section, path = child, [*path, part]
    known = _section_fields(section)
    where = ".".join(path)
    if name not in known:
        raise ConfigError(f"unknown config key {key!r} (known in [{where}]: "
                          f"{_known(section)})")
    f, typ = known[name]
    if _is_section(getattr(section, name)):
        raise ConfigError(f"{key} is the section [{key}]: set its keys, e.g. "
                          f"{key}.{fields(getattr(section, name))[0].name}=...")
    if not is_setting(f):
        raise ConfigError(f"{key} is not a setting: {f.metadata.get('doc', '')}")
    setattr(section, name, _check_value(key, value, f, typ))


def _apply_table(cfg: Config, table: dict[str, Any], source: str, prefix: str = "") -> None:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if key == "spark.conf":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [spark.conf] must be a table")
            for k, v in value.items():
                apply(cfg, f"spark.conf.{k}", v)
        elif isinstance(value, dict):
            _apply_table(cfg, value, source, f"{key}.")
        elif not prefix:
            raise ConfigError(f"{source}: [{name}] must be a table")
        else:
            apply(cfg, key, value)


def sections(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted name, section)`` of every section below ``obj`` (depth first, in order)."""
    out = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if _is_section(value):
            out.append((f"{prefix}{f.name}", value))
            out.extend(sections(value, f"{prefix}{f.name}."))
    return out


def validate(cfg: Config) -> Config:
    """Re-check every section as a whole (rules across fields, e.g. skip-gram's
    ``min_alpha <= alpha``), raising ConfigError naming the section."""
    for name, section in sections(cfg):
        check = getattr(section, "__post_init__", None)
        if check is None:
            continue
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"[{name}] {exc}") from None
    return cfg


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


def load(paths: list[str | Path] | list[str] | list[Path] | None = None,
         overrides: list[str] | None = None) -> Config:
    """Defaults, then each TOML file in order, then ``key=value`` overrides; validated."""
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
    return validate(cfg)


def _settings(section: Any, prefix: str) -> list[tuple[str, Any, dataclasses.Field]]:
    return [(f"{prefix}{f.name}", getattr(section, f.name), f) for f in fields(section)
            if is_setting(f) and not _is_section(getattr(section, f.name))]


def describe() -> list[tuple[str, Any, str]]:
    """(key, default, doc) for every parameter, for docs and the default.toml check."""
    cfg = Config()
    return [(key, value, f.metadata["doc"])
            for name, section in sections(cfg)
            for key, value, f in _settings(section, f"{name}.")]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    return repr(value)


def _limits(meta: Any, is_list: bool) -> list[str]:
    limits = []
    if meta.get("choices"):
        limits.append(("each " if is_list else "") + "one of "
                      + ", ".join(map(str, meta["choices"])))
    for bound, sign in (("gt", ">"), ("ge", ">="), ("le", "<="), ("lt", "<")):
        if meta.get(bound) is not None:
            limits.append(f"{sign} {meta[bound]}")
    return limits


def render_default_toml() -> str:
    """conf/default.toml as it must read: every key, its default, doc and allowed range.

    Regenerate the file with ``python -m moviegraph.config > conf/default.toml``.
    """
    import textwrap

    out = ["# moviegraph: every parameter, its default and what it does.",
           "# Profiles (conf/local.toml, conf/cluster.toml) and --set key=value override these;",
           "# a bad value is rejected before Spark starts, naming the key and the allowed range.",
           "# Lists: TOML arrays here; comma-separated values on --set.",
           "# Generated by `python -m moviegraph.config > conf/default.toml`; a test keeps it so.",
           ""]
    for name, section in sections(Config()):
        out.append(f"[{name}]")
        doc = (type(section).__doc__ or "").strip()
        if "." in name and doc:
            out.extend("# " + line for line in textwrap.wrap(" ".join(doc.split()), 86))
        for key, value, f in _settings(section, ""):
            limits = _limits(f.metadata, isinstance(value, (list, tuple)))
            text = f.metadata["doc"] + (f" [{'; '.join(limits)}]" if limits else "")
            out.extend("# " + line for line in textwrap.wrap(text, 86))
            # TOML has no null: an unset optional setting is shown commented out.
            out.append(f"# {key} = (unset)" if value is None else f"{key} = {_toml_value(value)}")
        out.append("")
    return "\n".join(out)
