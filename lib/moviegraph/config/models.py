"""The models' own settings: one dataclass per model, used by its trainer and as its config section.

``[train.node2vec]`` *is* a :class:`SkipGramConfig`, ``[train.cbow]`` a :class:`CBOWConfig`,
``[train.mf]`` an :class:`MFSettings` (with ``[train.mf.bpmf]`` a :class:`BPMFConfig`,
``[train.mf.adam]`` an :class:`MFConfig` and ``[train.mf.als]`` an :class:`ALSConfig`),
``[train.softmax]`` a :class:`SoftmaxConfig`
and ``[train.edlae]`` an :class:`EDLAEConfig`. The trainers in :mod:`moviegraph.train`
take these same objects, so each setting has one name, one default, one doc and one range.

The defaults are the pipeline's. Fields declared with :func:`~moviegraph.config.params.option`
are not job settings: the train stage fills them from ``[train]`` (``seed`` from
``train.seed``; skip-gram's ``threads`` and BPMF's ``dtype`` from ``train.deterministic``
and the device), or they are library knobs the pipeline does not use.

These classes live at the bottom layer (no torch, no numpy) so that the config can be
loaded and validated before Spark or any trainer is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from moviegraph.config.params import ConfigError, is_setting, option, param


def check_fields(obj: Any) -> None:
    """Check every setting of ``obj`` against its declared range; raise ConfigError (a
    ValueError) naming the field, e.g. ``dim = 0: must be >= 1``."""
    for f in fields(obj):
        if is_setting(f):
            check_range(f.name, getattr(obj, f.name), f.metadata)


def check_range(key: str, value: Any, meta: Any) -> None:
    """Raise ConfigError when ``value`` (or, for a list, one element) is out of range."""
    if isinstance(value, (list, tuple)):
        if meta.get("nonempty") and not value:
            raise ConfigError(f"{key} is empty: name at least one"
                              + (f" of {', '.join(map(str, meta['choices']))}"
                                 if meta.get("choices") else ""))
        for item in value:
            check_range(key, item, meta)
        return
    if value is None:
        return
    if meta.get("choices") and value not in meta["choices"]:
        allowed = ", ".join(map(str, meta["choices"]))
        raise ConfigError(f"{key} = {value!r}: must be one of {allowed}")
    if meta.get("gt") is not None and not value > meta["gt"]:
        raise ConfigError(f"{key} = {value!r}: must be > {meta['gt']}")
    if meta.get("ge") is not None and not value >= meta["ge"]:
        raise ConfigError(f"{key} = {value!r}: must be >= {meta['ge']}")
    if meta.get("le") is not None and not value <= meta["le"]:
        raise ConfigError(f"{key} = {value!r}: must be <= {meta['le']}")
    if meta.get("lt") is not None and not value < meta["lt"]:
        raise ConfigError(f"{key} = {value!r}: must be < {meta['lt']}")


SEED_DOC = "Set by the train stage from train.seed; seeds initialisation and every draw."


@dataclass
class SkipGramConfig:
    """node2vec: skip-gram with negative sampling on the walks (word2vec's recipe)."""

    dim: int = param(64, "Vector size.", ge=1)
    window: int = param(5, "Maximum distance between centre and context tokens.", ge=1)
    negative: int = param(5, "Negative samples per positive pair.", ge=1)
    ns_exponent: float = param(0.75, "Exponent of the unigram distribution negatives are "
                                     "drawn from.")
    sample: float = param(1e-3, "Frequent-token subsampling threshold (0 = off).", ge=0.0)
    alpha: float = param(0.025, "SGD learning rate at the first token (decays linearly to "
                                "min_alpha).", gt=0.0)
    min_alpha: float = param(1e-4, "SGD learning rate at the last token (<= alpha).", gt=0.0)
    epochs: int = param(5, "Passes over the walks.", ge=1)
    batch_walks: int = param(
        256, "Walks per SGD step of the torch backend (numba updates per pair, as "
             "word2vec). Rows touched several times in one step get the sum of their "
             "updates, so very large batches on a small vocabulary act like a larger "
             "learning rate; a few hundred walks keep word2vec's behaviour.", ge=1)
    backend: str = param(
        "auto", "numba (CPU: word2vec's per-pair SGD in a compiled loop over the walks, "
                "in cache, Hogwild over threads), torch (batched gather / bmm / "
                "index_add_, any device) or auto (numba on CPU, torch on CUDA).",
        choices=("auto", "numba", "torch"))
    seed: int = option(0, SEED_DOC)
    threads: int | None = option(
        None, "CPU threads of the numba kernel (None: torch's thread count); set to 1 by "
              "train.deterministic. With more than one thread updates race as in word2vec, "
              "so runs are bit-for-bit repeatable only with 1.")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.min_alpha > self.alpha:
            raise ConfigError(f"min_alpha = {self.min_alpha}: must be <= alpha = {self.alpha}")


@dataclass
class CBOWConfig:
    """cbow: CBOW over each user's time-ordered train history (ranking split)."""

    dim: int = param(64, "Vector size.", ge=1)
    window: int = param(5, "Context positions on each side of the centre.", ge=1)
    loss: str = param("softmax", "Full softmax or negative sampling.",
                      choices=("softmax", "negative"))
    negative: int = param(10, "Negatives per centre (loss = negative).", ge=1)
    lr: float = param(0.01, "Adam learning rate.", gt=0.0)
    epochs: int = param(10, "Passes over the users' histories.", ge=1)
    batch_sentences: int = param(64, "Histories (rows) per step.", ge=1)
    max_len: int = param(200, "Longer histories are cut into rows of this many movies.", ge=2)
    seed: int = option(0, SEED_DOC)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class BlendConfig:
    """blend (opt-in, add it to train.models): other models' unit movie vectors side by
    side, each scaled by the square root of its weight, so its cosine is the weighted sum
    of theirs. Built by the train stage from its parts once they are fitted (no training
    of its own)."""

    models: list[str] = param(["node2vec", "cbow"], "Models blended (each must be in "
                                                   "train.models).",
                              choices=("node2vec", "cbow", "mf", "edlae"),
                              nonempty=True)
    weights: list[float] = param([0.75, 0.25], "Weight of each model's cosine, in the order "
                                              "of `models` (normalised to sum 1). Chosen "
                                              "on ml-100k's temporal validation cut.",
                                 gt=0.0, nonempty=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if len(self.weights) != len(self.models):
            raise ConfigError(f"weights has {len(self.weights)} value(s) for "
                              f"{len(self.models)} model(s)")
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"models = {self.models}: a model is named twice")


@dataclass
class BPMFConfig:
    """mf with method = bpmf: Bayesian biased MF by Gibbs sampling (prediction = posterior
    average)."""

    dim: int = param(20, "Latent factors (each side also carries a bias coordinate).", ge=1)
    burn_in: int = param(20, "Gibbs sweeps discarded before averaging.", ge=0)
    samples: int = param(80, "Gibbs sweeps averaged after burn-in (each one pass over the "
                             "training ratings; on ml-100k 80 gives within 0.003 of 150's "
                             "test RMSE in half the time).", ge=1)
    beta0: float = param(2.0, "Normal-Wishart: prior precision scale of the hyper-mean.",
                         gt=0.0)
    alpha: float | None = param(None, "Fixed rating noise precision; unset = sampled with a "
                                      "Gamma(a0, b0) prior.", gt=0.0)
    a0: float = param(1.0, "Shape of the Gamma prior on alpha when it is sampled.", gt=0.0)
    b0: float = param(1.0, "Rate of the Gamma prior on alpha when it is sampled.", gt=0.0)
    init_std: float = param(0.1, "Standard deviation of the initial states.", ge=0.0)
    chunk: int = param(1 << 20, "Ratings per scatter chunk (bounds memory at chunk * k * k "
                                "numbers).", ge=1)
    noise: str = param(
        "global", "Rating noise precision: one (global), scaled per user (user) or per user "
                  "and movie (user_movie, robust BPMF).",
        choices=("global", "user", "user_movie"))
    noise_shape: float = param(2.0, "Shape = rate of the Gamma prior of the per-user / "
                                    "per-movie noise scales.", gt=0.0)
    side: str = param(
        "both", "Implicit feedback as side information: a user's prior mean from the movies "
                "they rated (users), also a movie's from who rated it (both), or none.",
        choices=("none", "users", "both"))
    side_reg: float = param(1.0, "Ridge weight (lambda) of the side-information link.",
                            gt=0.0)
    seed: int = option(0, SEED_DOC)
    dtype: str = option("float64", "float64 or float32 tensors; the train stage uses float64 "
                                   "on CPU, float32 on CUDA.")
    keep_samples: bool = option(True, "Keep every averaged sample (on the CPU) for "
                                      "interaction_vectors.")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.dtype not in ("float64", "float32"):
            raise ConfigError(f"dtype = {self.dtype!r}: must be one of float64, float32")


@dataclass
class MFConfig:
    """mf with method = adam: biased MF by mini-batch Adam with L2 (penalised least
    squares; checkpoints, early stopping, DDP)."""

    dim: int = param(128, "Latent factors.", ge=1)
    reg_factors: float = param(0.1, "L2 weight on the factors p_u, q_i per observed rating.",
                               ge=0.0)
    reg_bias: float = param(0.01, "L2 weight on the biases b_u, b_i per observed rating.",
                            ge=0.0)
    lr: float = param(0.005, "Learning rate.", gt=0.0)
    epochs: int = param(16, "Passes over the training ratings.", ge=1)
    batch_size: int | None = param(1024, "Ratings per step (distributed: over all "
                                         "processes); unset = full batch.", ge=1)
    optimizer: str = param("adam", "Optimiser.", choices=("adam", "sgd"))
    init_std: float = param(0.01, "Standard deviation of the initial factors.", ge=0.0)
    seed: int = option(0, SEED_DOC)
    implicit: bool = option(False, "Library only: SVD++'s implicit-feedback term in the user "
                                   "vectors (the written vectors cannot hold it).")
    reg_implicit: float | None = option(
        None, "Library only: L2 weight on the y_j of each rating's movie (None: 1.0).")
    day_bias: bool = option(False, "Library only: a bias per (user, day) seen in training; "
                                   "train_mf then needs the days.")
    reg_day_bias: float = option(0.1, "Library only: L2 weight on the (user, day) bias.")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.reg_implicit is not None and self.reg_implicit < 0:
            raise ConfigError("reg_implicit must be >= 0")
        if self.reg_day_bias < 0:
            raise ConfigError("reg_day_bias must be >= 0")


@dataclass
class ALSConfig:
    """mf with method = als: biased MF by alternating least squares (adam's penalised least
    squares, each half-sweep solved exactly per user / per movie by a compiled kernel on the
    CPU threads; checkpoints and early stopping as adam)."""

    dim: int = param(64, "Latent factors (a sweep costs ratings x (dim + 1)^2 multiply-adds).",
                     ge=1)
    reg_factors: float = param(0.1, "L2 weight on the factors p_u, q_i per observed rating.",
                               gt=0.0)
    reg_bias: float = param(0.1, "L2 weight on the biases b_u, b_i per observed rating.",
                            gt=0.0)
    iterations: int = param(10, "Sweeps: all users solved given the movies, then all movies "
                                "given the users.", ge=1)
    init_std: float = param(0.1, "Standard deviation of the initial factors.", ge=0.0)
    seed: int = option(0, SEED_DOC)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class MFSettings:
    """mf: biased matrix factorisation on the train part of the rating split."""

    method: str = param(
        "bpmf", "How the model is fitted: bpmf (Bayesian, Gibbs sampling; prediction = "
                "posterior average; [train.mf.bpmf]), adam (penalised least squares, "
                "mini-batch Adam; [train.mf.adam]) or als (the same objective by alternating "
                "least squares, a compiled per-entity solve on the CPU; [train.mf.als]).",
        choices=("bpmf", "adam", "als"))
    biases: str = param(
        "full", "Biases in the written vectors: drop (factors only), append (movie [q, b_i, "
                "1], user [p, 1, b_u], so user.movie = prediction - global mean) or full "
                "(movie [q, b_i, 1, mu], user [p, 1, b_u, 1], so user.movie = prediction).",
        choices=("drop", "append", "full"))
    write_rank: int = param(64, "bpmf: columns of the written factor block (truncated SVD of "
                                "the posterior-mean interaction); 0 = exact (up to min(users, "
                                "movies, samples x dim) columns).", ge=0)
    patience: int = param(0, "adam, als: stop after this many epochs without a better validation "
                             "RMSE (a validation cut of the train part is then held out) and "
                             "keep the best epoch; 0 = off.", ge=0)
    bpmf: BPMFConfig = field(default_factory=BPMFConfig)
    adam: MFConfig = field(default_factory=MFConfig)
    als: ALSConfig = field(default_factory=ALSConfig)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class SoftmaxConfig:
    """softmax: retrieval model (user tower over the user's train movies, softmax over
    movies) on the ranking split's train part."""

    dim: int = param(64, "Size of the user (tower output) and movie (output embedding) "
                         "vectors; one bias column is appended.", ge=1)
    input_dim: int = param(128, "Size of the input movie embeddings pooled into the tower.",
                           ge=1)
    hidden: tuple[int, ...] = param((256,), "Widths of the tower's hidden layers (ReLU).",
                                    ge=1)
    dropout: float = param(0.3, "Dropout on the tower's input and hidden layers.", ge=0.0,
                           lt=1.0)
    holdout: float = param(0.3, "Probability that a train movie is hidden from the tower in "
                                "an epoch.", gt=0.0, lt=1.0)
    target: str = param("held_out", "Predict only the hidden movies (held_out) or all of "
                                    "them (all).", choices=("held_out", "all"))
    loss: str = param("full", "Full softmax or sampled softmax.", choices=("full", "sampled"))
    num_sampled: int = param(512, "Negatives per batch for loss = sampled.", ge=1)
    lr: float = param(2e-3, "AdamW learning rate.", gt=0.0)
    weight_decay: float = param(1e-4, "AdamW weight decay.", ge=0.0)
    epochs: int = param(20, "Passes over the users.", ge=1)
    batch_size: int = param(128, "Users per step.", ge=1)
    features: bool = param(True, "Pool genre and release-decade features of the user's "
                                 "movies into the user tower (reads `movies`).")
    hide: str = option("random", "Library only: random (each movie independently) or recent "
                                 "(a time cut; needs the rating times).")
    seed: int = option(0, SEED_DOC)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.hide not in ("random", "recent"):
            raise ConfigError(f"hide must be 'random' or 'recent', got {self.hide!r}")
        if self.hide == "recent" and self.holdout > 0.5:
            raise ConfigError("hide='recent' needs holdout <= 0.5")


@dataclass
class EDLAEConfig:
    """edlae: low-rank emphasized-denoising linear autoencoder in closed form (Steck 2020);
    movie vectors V, user vectors x_u W."""

    dim: int = param(64, "Rank of B = W V^T = size of the movie and user vectors (capped at "
                         "the number of movies).", ge=1)
    dropout: float = param(0.33, "Emphasized-dropout probability p (sets p/(1-p) diag(G)).",
                           ge=0.0, lt=1.0)
    lam: float = param(100.0, "Ridge added to every diagonal entry.", ge=0.0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.lam == 0 and self.dropout == 0:
            raise ConfigError("edlae: lam must be > 0 when dropout is 0")


#: Item priors a shipped scorer can add: none, log(1 + train users of the movie), or
#: log(1 + users whose last 20% of train ratings by time hold it).
PRIORS = ("none", "popularity", "recent")


@dataclass
class ScorerConfig:
    """A model's shipped scorer: fitted by ``train`` on train data, persisted in
    ``scorers``, applied by ``similar`` (:mod:`moviegraph.train.shipped`)."""

    list_metric: str = param("cosine", "Similarity of the shipped neighbour lists "
                                       "(`similar.metric = model`).",
                             choices=("cosine", "dot"))
    list_prior: str = param("none", "Item prior added to the list scores.", choices=PRIORS)
    list_beta: float = param(0.0, "Weight of the list prior.", ge=0.0)
    list_corate: float = param(0.0, "Weight of the co-rating term added to the list scores: "
                                    "the two movies' co-rating cosine (raters of both over "
                                    "the geometric mean of their raters, ItemKNN's "
                                    "similarity) in the ratings of `similar.ratings`; 0 = "
                                    "none.", ge=0.0)
    tune_lists: bool = param(False, "Train picks list_beta and list_corate from small "
                                    "grids by the neighbour hit rate on the temporal "
                                    "validation cut of train (each user's last 20% of "
                                    "train ratings), replacing the two values above.")
    recommend_by: str = param("profile", "profile: recency-weighted mean of the user's liked "
                                         "movies' unit vectors, cosine; user_vectors: the "
                                         "model's user vectors, dot.",
                              choices=("profile", "user_vectors"))
    half_life: float = param(0.0, "Recency half-life of the profile, in number of later "
                                  "ratings (0 = all profile movies weigh the same); edlae "
                                  "weights its input row x_u the same way before x_u W.",
                             ge=0.0)
    recommend_prior: str = param("none", "Item prior added to the recommendation scores.",
                                 choices=PRIORS)
    recommend_beta: float = param(0.0, "Weight of the recommendation prior.", ge=0.0)
    fold_in: bool = param(True, "Item-only models: a train movie without a vector (outside "
                                "the walks' vocabulary) gets the normalised sum over its "
                                "raters of their profiles (mean unit vector of their liked "
                                "movies), so every train movie has a list.")

    def __post_init__(self) -> None:
        check_fields(self)


def _scorer(**kw: Any) -> Any:
    return field(default_factory=lambda: ScorerConfig(**kw))


@dataclass
class ScorersConfig:
    """Each model's shipped ranking of its tables, ``[train.scorers.<model>]``; defaults
    chosen on ml-100k's temporal validation cut (each user's last 20% of train)."""

    node2vec: ScorerConfig = _scorer(list_prior="recent", list_beta=0.2, list_corate=2.0,
                                     half_life=3.0, recommend_prior="recent",
                                     recommend_beta=0.075)
    cbow: ScorerConfig = _scorer(list_prior="popularity", list_beta=0.25, half_life=5.0,
                                 recommend_prior="recent", recommend_beta=0.2)
    mf: ScorerConfig = _scorer(list_prior="recent", list_beta=0.2, list_corate=4.0,
                               half_life=10.0,
                               recommend_prior="recent", recommend_beta=0.05, fold_in=False)
    softmax: ScorerConfig = _scorer(list_metric="dot", recommend_by="user_vectors",
                                    fold_in=False)
    edlae: ScorerConfig = _scorer(list_prior="recent", list_beta=0.2, list_corate=2.0,
                                  recommend_by="user_vectors", half_life=10.0,
                                  fold_in=False)
    # Weights and list settings: the best mean validation HR@20 over seeds 42-46
    # (CHANGELOG.md); the recommendation settings are node2vec's, the main part's.
    # dot, not cosine: equal for a movie every part knows (its row is unit length), while a
    # movie missing from a part keeps that part's zero share instead of being rescaled.
    blend: ScorerConfig = _scorer(list_metric="dot", list_prior="recent", list_beta=0.25,
                                  list_corate=0.5,
                                  half_life=3.0, recommend_prior="recent",
                                  recommend_beta=0.075, fold_in=False)
