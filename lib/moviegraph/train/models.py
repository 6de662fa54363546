"""The model registry of the train stage: what each model reads, whether it can run
distributed, and how it is fitted.

Each :class:`Model` entry declares its name (the ``train.models`` value and the
``[train.<name>]`` config section, whose type is the model's own settings dataclass), the
tables it reads under its settings, whether it has a data-parallel (DDP) path, and its
``fit(data, cfg, device, folder) -> Trained``. The stage
(:mod:`moviegraph.stages.train`) is the loop over :data:`MODELS`.

- ``node2vec``: skip-gram with negative sampling on the ``walks`` table (token ids from
  ``vocab``); one vector per movie that occurs in the walks.
- ``cbow``: CBOW on each user's time-ordered history, built from the *train* part of
  EVALUATION.md's ranking split; one vector per movie of that train part.
- ``mf``: biased matrix factorisation on the *train* part of the rating split; Bayesian
  by default (``train.mf.method = "bpmf"``: Gibbs sampling, prediction = posterior
  average), else ALS or Adam (minus a validation cut when early stopping is on); movie vectors
  ``q_i`` and user vectors ``p_u``, by default with the biases and the global mean
  (``train.mf.biases = "full"``: ``user . movie`` is the prediction; ``"append"``: without
  the mean; ``"drop"``: factors only).
- ``softmax``: retrieval model (user tower over the user's train movies, with genre and
  release-decade features, softmax over movies) on the ranking split's train part; movie
  vectors are the output embeddings with the bias as last column, user vectors the tower
  outputs with a constant 1, so ``user . movie`` is the model's score.
- ``edlae``: low-rank EDLAE in closed form on the ranking split's train part; movie
  vectors ``V``, user vectors ``x_u W``.
- ``blend``: no training of its own; the stage puts the ``[train.blend]`` models' unit
  vectors side by side, weighted (:func:`blend_of`), once they are fitted and folded in.

Data flow: Delta -> Arrow (delta-rs) -> numpy -> torch -> numpy; no Python loop over rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from moviegraph.config import Config, TrainConfig
from moviegraph.protocol.metrics import genre_matrix, rmse
from moviegraph.protocol.splits import ranking_split
from moviegraph.tables import Warehouse
from moviegraph.train.data import (
    MFData,
    Ratings,
    cbow_sentences,
    mf_data,
    positions,
    ranking_train_matrix,
    read_ratings,
    vocab_from_table,
    walks_matrix,
)
from moviegraph.train.loop import FitResult, LoopConfig


@dataclass
class Trained:
    """One model's output: movie (and user) vectors plus its training record."""

    model: str
    movie_ids: np.ndarray  # int32, ascending
    vectors: np.ndarray  # float32 (n_movies, dim)
    fit: FitResult
    seconds: float
    user_ids: np.ndarray | None = None
    user_vectors: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        """Training loss of the last epoch run (nan when none ran)."""
        return float(self.fit.history[-1]["train_loss"]) if self.fit.history else float("nan")

    @property
    def list_dims(self) -> int:
        """Leading vector columns that lists compare: mf's trailing bias columns (and the
        global mean) are not part of the taste a cosine should compare."""
        bias_columns = {"append": 2, "full": 3}.get(self.notes.get("vector_layout", ""), 0)
        return int(self.vectors.shape[1] - bias_columns)


@dataclass
class ModelData:
    """What the models read: the warehouse, and the ratings read once for all models."""

    wh: Warehouse | None = None
    loaded: Ratings | None = None

    @property
    def ratings(self) -> Ratings:
        """All ratings (read on first use)."""
        if self.loaded is None:
            if self.wh is None:
                raise ValueError("no warehouse to read the ratings from")
            self.loaded = read_ratings(self.wh)
        return self.loaded

    @property
    def warehouse(self) -> Warehouse:
        """The warehouse (ValueError when the data were given without one)."""
        if self.wh is None:
            raise ValueError("this model reads tables: give ModelData a warehouse")
        return self.wh


FitFn = Callable[[ModelData, Config, torch.device, Path], Trained]


@dataclass(frozen=True)
class Model:
    """One entry of the registry (see the module docstring)."""

    name: str
    inputs: Callable[[TrainConfig], tuple[str, ...]]
    fit: FitFn
    distributed: bool = False
    #: Built by the stage from other models' fitted vectors (:func:`blend_of`), not fitted.
    combined: bool = False


def loop_config(cfg: Config, model: str, epochs: int, unit: str, folder: Path,
                monitor: str | None = None, patience: int = 0) -> LoopConfig:
    """The training loop's settings for ``model`` (checkpoints, resume, progress bars)."""
    tc = cfg.train
    return LoopConfig(epochs=epochs, monitor=monitor, mode="min",
                      patience=patience if monitor and patience > 0 else None,
                      checkpoint_dir=folder, resume=tc.resume, progress=cfg.spark.progress,
                      unit=unit, desc=model)


# ---------------------------------------------------------------- node2vec

def fit_node2vec(data: ModelData, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """Skip-gram on the walks table; one vector per movie occurring in the walks."""
    from moviegraph.train.skipgram import train_skipgram

    tc = cfg.train
    wh = data.warehouse
    vocab = vocab_from_table(wh.read_arrow("vocab", ["token", "movie_id", "count"]))
    walks = walks_matrix(wh, vocab)
    sg = replace(tc.node2vec, seed=tc.seed, threads=1 if tc.deterministic else None)
    t0 = time.perf_counter()
    res = train_skipgram(walks, vocab.size, sg,
                         loop_config(cfg, "node2vec", sg.epochs, "tok", folder), device)
    seen = res.counts > 0  # rows of tokens absent from the walks were never trained
    order = np.argsort(vocab.movie_ids[seen], kind="stable")
    return Trained("node2vec", vocab.movie_ids[seen][order], res.vectors[seen][order],
                   res.fit, time.perf_counter() - t0,
                   notes={"walks": int(walks.shape[0]), "walk_tokens": int(res.counts.sum())})


# ---------------------------------------------------------------- cbow

def fit_cbow(data: ModelData, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """CBOW on the ranking split's train histories; one vector per train movie."""
    from moviegraph.train.cbow import train_cbow

    cc = replace(cfg.train.cbow, seed=cfg.train.seed)
    sentences, movie_ids = cbow_sentences(data.ratings, cc.max_len)
    t0 = time.perf_counter()
    res = train_cbow(sentences, len(movie_ids), cc,
                     loop_config(cfg, "cbow", cc.epochs, "tok", folder), device)
    return Trained("cbow", movie_ids, res.vectors, res.fit, time.perf_counter() - t0,
                   notes={"sentences": int(sentences.shape[0])})


# ---------------------------------------------------------------- mf

def mf_predict_ids(state: dict[str, torch.Tensor], user_ids: np.ndarray, movie_ids: np.ndarray,
                   users: np.ndarray, movies: np.ndarray) -> np.ndarray:
    """MF predictions for raw ids, clipped to [1, 5]; unseen users / movies get no factor
    term and no bias of their own (global mean + the known side's bias)."""
    p = state["user_factors.weight"].double().numpy()
    q = state["item_factors.weight"].double().numpy()
    bu = state["user_bias.weight"].double().numpy()[:, 0]
    bi = state["item_bias.weight"].double().numpy()[:, 0]
    u = positions(user_ids, users)
    i = positions(movie_ids, movies)
    ku, ki = u >= 0, i >= 0
    pred = np.full(len(users), float(state["global_mean"]), dtype=np.float64)
    pred[ku] += bu[u[ku]]
    pred[ki] += bi[i[ki]]
    both = ku & ki
    pred[both] += np.einsum("nd,nd->n", p[u[both]], q[i[both]])
    return np.clip(pred, 1.0, 5.0)


def mf_vector_layout(movie_factors: np.ndarray, user_factors: np.ndarray,
                     movie_bias: np.ndarray, user_bias: np.ndarray, global_mean: float,
                     biases: str) -> tuple[np.ndarray, np.ndarray]:
    """Written mf vectors ``(movie, user)`` for ``train.mf.biases``.

    ``drop``: factors only; ``append``: movie ``[q, b_i, 1]``, user ``[p, 1, b_u]``
    (``user . movie = prediction - mu``); ``full``: movie ``[q, b_i, 1, mu]``, user
    ``[p, 1, b_u, 1]`` (``user . movie = prediction``, unclipped).
    """
    q = np.asarray(movie_factors, np.float64)
    p = np.asarray(user_factors, np.float64)
    if biases == "drop":
        return q.astype(np.float32), p.astype(np.float32)
    bi = np.asarray(movie_bias, np.float64).reshape(-1, 1)
    bu = np.asarray(user_bias, np.float64).reshape(-1, 1)
    q = np.hstack([q, bi, np.ones_like(bi)])
    p = np.hstack([p, np.ones_like(bu), bu])
    if biases == "full":
        q = np.hstack([q, np.full_like(bi, global_mean)])
        p = np.hstack([p, np.ones_like(bu)])
    return q.astype(np.float32), p.astype(np.float32)


def _mf_state(global_mean: float, user_factors: np.ndarray, movie_factors: np.ndarray,
              user_bias: np.ndarray, movie_bias: np.ndarray) -> dict[str, torch.Tensor]:
    """The parts of a BiasedMF state dict that :func:`mf_predict_ids` reads."""
    return {"user_factors.weight": torch.as_tensor(user_factors),
            "item_factors.weight": torch.as_tensor(movie_factors),
            "user_bias.weight": torch.as_tensor(user_bias).reshape(-1, 1),
            "item_bias.weight": torch.as_tensor(movie_bias).reshape(-1, 1),
            "global_mean": torch.tensor(float(global_mean))}


#: Largest feature count (movies for users' side information, users for movies') for
#: which BPMF's side information is used: its link needs a dense features^2 Cholesky.
BPMF_SIDE_MAX_FEATURES = 16384


def _fit_bpmf(data: MFData, cfg: Config, device: torch.device
              ) -> tuple[dict[str, torch.Tensor], FitResult, dict[str, Any]]:
    """BPMF on ``data.fit``; the written parts (posterior-mean biases and an exact or
    truncated factorisation of the posterior-mean interaction) as a state dict."""
    from moviegraph.train.bpmf import interaction_vectors, posterior_biases, train_bpmf

    settings = cfg.train.mf
    side, side_note = settings.bpmf.side, None
    widest = max(len(data.movie_ids), len(data.user_ids) if side == "both" else 0)
    if side != "none" and widest > BPMF_SIDE_MAX_FEATURES:
        # SideLink factorises a dense (features x features) matrix: too big here.
        side, side_note = "none", (f"train.mf.bpmf.side = {settings.bpmf.side} skipped: "
                                   f"{widest:,} features > {BPMF_SIDE_MAX_FEATURES:,}")
        print(f"[train] mf: {side_note}", flush=True)
    bc = replace(settings.bpmf, side=side, seed=cfg.train.seed,
                 dtype="float64" if device.type == "cpu" else "float32")
    u, i, y = data.fit
    tu = positions(data.user_ids, data.test_user)
    ti = positions(data.movie_ids, data.test_movie)
    known = (tu >= 0) & (ti >= 0)
    history: list[dict[str, Any]] = []
    last = [time.perf_counter()]

    def on_sweep(rec: dict[str, float]) -> None:
        now = time.perf_counter()
        seconds, last[0] = now - last[0], now
        history.append({"epoch": int(rec["sweep"]), "train_loss": rec["train_rmse"] ** 2,
                        "items": len(y), "seconds": seconds,
                        "items_per_s": len(y) / max(seconds, 1e-9), "alpha": rec["alpha"]})
        done = int(rec["sweep"]) + 1
        if cfg.spark.progress and (done % 10 == 0 or done == bc.burn_in + bc.samples):
            print(f"[train] mf (bpmf) sweep {done}/"
                  f"{bc.burn_in + bc.samples}: train rmse {rec['train_rmse']:.4f}", flush=True)

    res = train_bpmf(u, i, y, len(data.user_ids), len(data.movie_ids), bc,
                     evaluate=[(tu[known], ti[known])], device=device, on_sweep=on_sweep)
    g, f, info = interaction_vectors(res, settings.write_rank or None)
    bu, bi = posterior_biases(res)
    state = _mf_state(res.global_mean, g, f, bu, bi)
    # The written parts must reproduce the sampler's own posterior average.
    from_parts = mf_predict_ids(state, data.user_ids, data.movie_ids,
                                data.test_user[known], data.test_movie[known])
    sampler = np.clip(res.eval_predictions[0], 1.0, 5.0)
    notes = {"method": "bpmf", "bpmf_dim": bc.dim, "burn_in": bc.burn_in,
             "samples": bc.samples, "side": bc.side, "noise": bc.noise,
             "write_rank": int(info["rank"]),
             "write_dropped_energy": info["dropped_energy"],
             "sampler_test_rmse_known_pairs": rmse(sampler, data.test_rating[known]),
             "max_abs_diff_vectors_vs_sampler": float(np.max(np.abs(from_parts - sampler)))
             if known.any() else 0.0}
    if side_note:
        notes["side_skipped"] = side_note
    fit = FitResult(history=history, best_epoch=len(history) - 1)
    return state, fit, notes


def _mf_loop(cfg: Config, data: MFData, epochs: int, folder: Path) -> LoopConfig:
    """Loop settings of adam / als: early stopping on ``val_rmse`` when a validation cut
    was held out (``train.mf.patience > 0``)."""
    return loop_config(cfg, "mf", epochs, "rating", folder,
                       monitor="val_rmse" if data.val is not None else None,
                       patience=cfg.train.mf.patience)


def _fit_adam(data: MFData, cfg: Config, device: torch.device, folder: Path
              ) -> tuple[dict[str, torch.Tensor], FitResult, dict[str, Any]]:
    """Biased MF by Adam (DDP when ``train.distributed``) on ``data.fit``."""
    from moviegraph.train.mf import train_mf

    tc = cfg.train
    mc = replace(tc.mf.adam, seed=tc.seed)
    loop = _mf_loop(cfg, data, mc.epochs, folder)
    u, i, y = data.fit
    if tc.distributed:
        from moviegraph.train.distributed import train_mf_distributed

        res = train_mf_distributed(u, i, y, len(data.user_ids), len(data.movie_ids), mc,
                                   loop, tc.num_processes, use_gpu=device.type == "cuda",
                                   val=data.val, threads=tc.threads)
    else:
        res = train_mf(u, i, y, len(data.user_ids), len(data.movie_ids), mc,
                       val=data.val, loop=loop, device=device)
    state = {k: v.detach().cpu() for k, v in res.model.state_dict().items()}
    notes: dict[str, Any] = {"method": "adam", "distributed": tc.distributed}
    if tc.distributed:
        from pyspark.sql import SparkSession

        from moviegraph.train.distributed import runs_on_executors

        spark = SparkSession.getActiveSession()
        notes["ddp_processes_on"] = ("executors" if spark is not None
                                     and runs_on_executors(spark) else "driver")
    return state, res.fit, notes


def _fit_als(data: MFData, cfg: Config, folder: Path
             ) -> tuple[dict[str, torch.Tensor], FitResult, dict[str, Any]]:
    """Biased MF by ALS (:mod:`moviegraph.train.als`, compiled, CPU) on ``data.fit``."""
    from moviegraph.train.als import train_als

    ac = replace(cfg.train.mf.als, seed=cfg.train.seed)
    u, i, y = data.fit
    res = train_als(u, i, y, len(data.user_ids), len(data.movie_ids), ac, val=data.val,
                    loop=_mf_loop(cfg, data, ac.iterations, folder))
    state = {k: v.detach().cpu() for k, v in res.model.state_dict().items()}
    return state, res.fit, {"method": "als", "als_dim": ac.dim}


def fit_mf(data: ModelData, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """Biased MF on the rating split's train part; movie and user vectors.

    ``train.mf.method = "bpmf"``: Gibbs sampling (:mod:`moviegraph.train.bpmf`), one
    process, no checkpoints, no early stopping; the written factors are an exact (or
    ``train.mf.write_rank``-truncated) factorisation of the posterior-mean ``<p_u, q_i>``
    and the biases their posterior means, so the vectors reproduce the posterior-average
    prediction. ``"adam"``: :func:`moviegraph.train.mf.train_mf` (DDP when
    ``train.distributed``). ``"als"``: :func:`moviegraph.train.als.train_als` (the same
    objective as Adam solved exactly per user and per movie; compiled, CPU threads, one
    process; checkpoints and early stopping as for Adam).
    """
    settings = cfg.train.mf
    t0 = time.perf_counter()
    extra: dict[str, Any]
    if settings.method == "bpmf":
        mf = mf_data(data.ratings, hold_out_validation=False)
        state, fit, extra = _fit_bpmf(mf, cfg, device)
        if cfg.train.distributed:
            extra["distributed"] = "not supported for train.mf.method = bpmf: one process"
            print(f"[train] mf: {extra['distributed']}", flush=True)
    elif settings.method == "als":
        mf = mf_data(data.ratings, hold_out_validation=settings.patience > 0)
        state, fit, extra = _fit_als(mf, cfg, folder)
        for what, flag in (("distributed", cfg.train.distributed),
                           ("device", device.type != "cpu")):
            if flag:
                extra[what] = "not used by train.mf.method = als: one process on the CPU"
                print(f"[train] mf: {what} {extra[what]}", flush=True)
    else:
        mf = mf_data(data.ratings, hold_out_validation=settings.patience > 0)
        state, fit, extra = _fit_adam(mf, cfg, device, folder)
    seconds = time.perf_counter() - t0
    pred = mf_predict_ids(state, mf.user_ids, mf.movie_ids, mf.test_user, mf.test_movie)
    mu = float(state["global_mean"])
    q, p = mf_vector_layout(state["item_factors.weight"].numpy(),
                            state["user_factors.weight"].numpy(),
                            state["item_bias.weight"].numpy(),
                            state["user_bias.weight"].numpy(), mu, settings.biases)
    return Trained("mf", mf.movie_ids, q, fit, seconds,
                   user_ids=mf.user_ids, user_vectors=p,
                   metrics={"test_rmse": rmse(pred, mf.test_rating)},
                   notes={"fit_ratings": len(mf.fit[2]), "test_ratings": len(pred),
                          "validation_ratings": 0 if mf.val is None else len(mf.val[2]),
                          "global_mean": mu, "vector_layout": settings.biases, **extra})


# ---------------------------------------------------------------- softmax

def fit_softmax(data: ModelData, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """Softmax retrieval model on the ranking split's train part; movie and user vectors."""
    from moviegraph.train.softmax import item_side_features, train_softmax

    sc = replace(cfg.train.softmax, seed=cfg.train.seed)
    x, user_ids, movie_ids = ranking_train_matrix(data.ratings)
    features = None
    if sc.features:
        movies = data.warehouse.read_arrow("movies", ["movie_id", "genres", "year"])
        pos = positions(movie_ids, movies.column("movie_id").to_numpy())
        keep = np.flatnonzero(pos >= 0)
        genres = movies.column("genres").take(pa.array(keep)).to_pylist()  # one list/movie
        member, _ = genre_matrix(genres)
        years = movies.column("year").take(pa.array(keep)).to_numpy(zero_copy_only=False)
        rows = item_side_features(member, np.asarray(years, np.float64))
        features = np.zeros((len(movie_ids), rows.shape[1]), np.float32)
        features[pos[keep]] = rows
    t0 = time.perf_counter()
    res = train_softmax(x, sc, features,
                        loop_config(cfg, "softmax", sc.epochs, "user", folder), device)
    return Trained("softmax", movie_ids.astype(np.int32),
                   res.item_vectors(with_bias=True).astype(np.float32), res.fit,
                   time.perf_counter() - t0, user_ids=user_ids.astype(np.int32),
                   user_vectors=res.user_vectors().astype(np.float32),
                   notes={"features": 0 if features is None else int(features.shape[1])})


# ---------------------------------------------------------------- edlae

def fit_edlae(data: ModelData, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """Low-rank EDLAE in closed form on the ranking split's train part (no epochs).

    The written user vectors are the shipped scorer's (``[train.scorers.edlae]``): with a
    ``half_life``, ``x_u``'s entries are recency weights ``0.5 ** (age / half_life)``
    rather than 1 before ``x_u W`` (recent movies say more about what comes next).
    """
    from moviegraph.train.shipped import profile_matrix, recency_weights

    x, user_ids, movie_ids = ranking_train_matrix(data.ratings)
    half_life = cfg.train.scorers.edlae.half_life
    profile = None
    if half_life > 0:
        r = data.ratings
        train = ~ranking_split(r.user_id, r.movie_id, r.ts)
        u = positions(user_ids, r.user_id[train])
        i = positions(movie_ids, r.movie_id[train])
        w = recency_weights(u, r.movie_id[train], r.ts[train], r.rating[train], half_life,
                            liked_only=False)
        profile = profile_matrix(u, i, w, len(user_ids), len(movie_ids))
    return fit_edlae_matrix(x, user_ids, movie_ids, cfg.train.edlae, profile)


def fit_edlae_matrix(x: Any, user_ids: np.ndarray, movie_ids: np.ndarray,
                     settings: Any, profile: Any = None) -> Trained:
    """EDLAE on the binary matrix ``x``: movie vectors V, user vectors x_u W (the rank is
    capped at the number of movies); ``profile`` (same shape as ``x``) replaces x_u in
    the user vectors when given."""
    from moviegraph.train.edlae import train_edlae

    ec = replace(settings, dim=min(settings.dim, x.shape[1]))
    t0 = time.perf_counter()
    res = train_edlae(x, ec)
    seconds = time.perf_counter() - t0
    fit = FitResult(history=[{"epoch": 0, "train_loss": float("nan"), "items": int(x.nnz),
                              "seconds": seconds, "items_per_s": x.nnz / max(seconds, 1e-9)}],
                    best_epoch=0)
    return Trained("edlae", movie_ids.astype(np.int32),
                   res.item_vectors.astype(np.float32), fit, seconds,
                   user_ids=user_ids.astype(np.int32),
                   user_vectors=(res.user_vectors() if profile is None else
                                 np.asarray(profile @ res.input_factors)).astype(np.float32),
                   notes={"dim": ec.dim, "dropout": ec.dropout,
                          "lam": ec.lam, "features": 0})


# ---------------------------------------------------------------- blend

def blend_of(trained: list[Trained], cfg: Config) -> Trained:
    """The ``blend`` model (:mod:`moviegraph.train.blend`) of its parts in ``trained``
    (fitted, and folded in where their scorer says so); each part contributes its
    :attr:`Trained.list_dims` columns."""
    from moviegraph.train.blend import blend_vectors

    bc = cfg.train.blend
    by_name = {t.model: t for t in trained}
    t0 = time.perf_counter()
    parts = [(by_name[m].movie_ids, by_name[m].vectors[:, :by_name[m].list_dims])
             for m in bc.models]
    movie_ids, vectors = blend_vectors(parts, bc.weights)
    weights = np.asarray(bc.weights, np.float64) / float(np.sum(bc.weights))
    return Trained("blend", movie_ids, vectors, FitResult(), time.perf_counter() - t0,
                   notes={"parts": dict(zip(bc.models, weights.round(6).tolist(),
                                            strict=True))})


def _built_by_the_stage(data: ModelData, cfg: Config, device: torch.device,
                        folder: Path) -> Trained:
    raise RuntimeError("blend is built from its parts' vectors by the train stage "
                       "(moviegraph.train.models.blend_of), not fitted")


#: The registry, in training order (the order of :data:`moviegraph.config.MODELS`).
MODELS: dict[str, Model] = {m.name: m for m in (
    Model("node2vec", lambda tc: ("walks", "vocab"), fit_node2vec),
    Model("cbow", lambda tc: ("ratings",), fit_cbow),
    Model("mf", lambda tc: ("ratings",), fit_mf, distributed=True),
    Model("softmax", lambda tc: ("ratings", "movies") if tc.softmax.features else ("ratings",),
          fit_softmax),
    Model("edlae", lambda tc: ("ratings",), fit_edlae),
    Model("blend", lambda tc: (), _built_by_the_stage, combined=True),
)}


def chosen(tc: TrainConfig) -> list[Model]:
    """The models ``train.models`` names, in registry order."""
    return [m for name, m in MODELS.items() if name in tc.models]


def input_tables(tc: TrainConfig) -> tuple[str, ...]:
    """Tables the chosen models read (sorted)."""
    return tuple(sorted({t for m in chosen(tc) for t in m.inputs(tc)}))
