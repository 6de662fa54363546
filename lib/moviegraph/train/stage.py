"""The ``train`` stage: walks / ratings -> embeddings, user_embeddings, history.

Models (``train.models``):

- ``node2vec``: skip-gram with negative sampling on the ``walks`` table (token ids from
  ``vocab``); one vector per movie that occurs in the walks.
- ``cbow``: CBOW on each user's time-ordered history, built from the *train* part of
  EVALUATION.md's ranking split; one vector per movie of that train part.
- ``mf``: biased matrix factorisation on the *train* part of the rating split; by default
  Bayesian (``train.mf_method = "bpmf"``: Gibbs sampling, prediction = posterior average),
  else Adam (minus a validation cut when early stopping is on); movie vectors ``q_i`` and
  user vectors ``p_u`` (biases dropped, appended with ``train.mf_biases = "append"``, or
  with the global mean too with ``"full"``, so that ``user . movie`` is the prediction).
- ``softmax``: retrieval model (user tower over the user's train movies, with genre and
  release-decade features, softmax over movies) on the ranking split's train part; movie
  vectors are the output embeddings with the bias as last column, user vectors the tower
  outputs with a constant 1, so ``user . movie`` is the model's score.

Writes, in one Delta transaction per table: ``embeddings`` and ``user_embeddings`` replace
the rows of the models trained now (``replaceWhere model IN (...)``, tagged with this
run's id; other models' rows stay; older runs stay reachable by Delta time travel at the
versions the run records name), and ``history`` gets one appended row per epoch.

Data flow: Delta -> Arrow (delta-rs) -> numpy -> torch -> numpy -> Arrow -> Delta; no
Python loop over rows. Training happens on the driver (CUDA when present), or, for
``mf`` with ``train.distributed``, in DDP processes launched by TorchDistributor.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from pyspark.sql import DataFrame, SparkSession

from moviegraph.config import PROJECT_ROOT, Config, ConfigError, TrainConfig
from moviegraph.evaluate.splits import RATING_SPLIT_PRIME, ranking_split, rating_split
from moviegraph.runs import StageRun, input_versions
from moviegraph.tables import SCHEMAS, Warehouse
from moviegraph.train.data import Ratings, read_arrow, read_ratings, vocab_from_table, walks_matrix
from moviegraph.train.device import pick_device, set_deterministic
from moviegraph.train.loop import FitResult, LoopConfig, last_checkpoint

#: Models this build can train, in training order.
MODELS = ("node2vec", "cbow", "mf", "softmax", "edlae")
#: Models with a data-parallel (DDP) path.
DISTRIBUTED_MODELS = ("mf",)
#: Tables each model reads.
MODEL_INPUTS = {"node2vec": ("walks", "vocab"), "cbow": ("ratings",), "mf": ("ratings",),
                "softmax": ("ratings", "movies"), "edlae": ("ratings",)}


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


def model_list(value: str) -> list[str]:
    """``"mf, node2vec"`` -> models in training order; unknown names raise ConfigError."""
    names = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise ConfigError(f"train.models = {value!r}: unknown model(s) {', '.join(unknown)}; "
                          f"choose from {', '.join(MODELS)}" if unknown else
                          "train.models is empty: name at least one model")
    return [m for m in MODELS if m in names]


# ---------------------------------------------------------------- data preparation (numpy)

def cbow_sentences(r: Ratings, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Train-part histories of the ranking split as ``(sentences, movie_ids)``.

    ``sentences`` holds dense movie positions (``movie_ids[pos]`` is the id), each user's
    train ratings ordered by ``(ts, movie id)``, -1 padded, cut into rows of ``max_len``.
    """
    from moviegraph.train.cbow import sentences_from_history

    train = ~ranking_split(r.user_id, r.movie_id, r.ts)
    movie_ids, pos = np.unique(r.movie_id[train], return_inverse=True)
    sentences = sentences_from_history(r.user_id[train], pos.astype(np.int64), r.ts[train],
                                       max_len)
    return sentences, movie_ids.astype(np.int32)


def validation_rows(user: np.ndarray, movie: np.ndarray) -> np.ndarray:
    """Validation cut of the rating split's train part: ``(u * 1000003 + m) % 10 == 1``.

    Disjoint from the test rows (``% 10 == 0``) by construction, and as deterministic.
    """
    return (user.astype(np.int64) * RATING_SPLIT_PRIME + movie.astype(np.int64)) % 10 == 1


@dataclass
class MFData:
    """The rating split as dense indices: fit rows, optional validation rows, test rows."""

    user_ids: np.ndarray
    movie_ids: np.ndarray
    fit: tuple[np.ndarray, np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    test_user: np.ndarray  # raw ids
    test_movie: np.ndarray
    test_rating: np.ndarray


def mf_data(r: Ratings, hold_out_validation: bool) -> MFData:
    """Index the rating split's train part (minus the validation cut when asked)."""
    test = rating_split(r.user_id, r.movie_id)
    val = validation_rows(r.user_id, r.movie_id) & ~test if hold_out_validation else None
    fit_rows = ~test if val is None else ~test & ~val
    user_ids, u = np.unique(r.user_id[fit_rows], return_inverse=True)
    movie_ids, i = np.unique(r.movie_id[fit_rows], return_inverse=True)
    val_arrays = None
    if val is not None:
        vu = _positions(user_ids, r.user_id[val])
        vi = _positions(movie_ids, r.movie_id[val])
        known = (vu >= 0) & (vi >= 0)
        val_arrays = (vu[known], vi[known], r.rating[val][known])
    return MFData(user_ids.astype(np.int32), movie_ids.astype(np.int32),
                  (u.astype(np.int64), i.astype(np.int64), r.rating[fit_rows]), val_arrays,
                  r.user_id[test], r.movie_id[test], r.rating[test])


def _positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each id in ``sorted_ids``, -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, pos, -1).astype(np.int64)


def mf_predict_ids(state: dict[str, torch.Tensor], user_ids: np.ndarray, movie_ids: np.ndarray,
                   users: np.ndarray, movies: np.ndarray) -> np.ndarray:
    """MF predictions for raw ids, clipped to [1, 5]; unseen users / movies get no factor
    term and no bias of their own (global mean + the known side's bias)."""
    p = state["user_factors.weight"].double().numpy()
    q = state["item_factors.weight"].double().numpy()
    bu = state["user_bias.weight"].double().numpy()[:, 0]
    bi = state["item_bias.weight"].double().numpy()[:, 0]
    u = _positions(user_ids, users)
    i = _positions(movie_ids, movies)
    ku, ki = u >= 0, i >= 0
    pred = np.full(len(users), float(state["global_mean"]), dtype=np.float64)
    pred[ku] += bu[u[ku]]
    pred[ki] += bi[i[ki]]
    both = ku & ki
    pred[both] += np.einsum("nd,nd->n", p[u[both]], q[i[both]])
    return np.clip(pred, 1.0, 5.0)


# ---------------------------------------------------------------- checkpoints

def checkpoint_root(tc: TrainConfig) -> Path:
    """``train.checkpoint_dir`` as a path (relative ones under the project root)."""
    p = Path(tc.checkpoint_dir)
    return p if p.is_absolute() else PROJECT_ROOT / p


def prepare_checkpoints(folder: Path, fingerprint: dict[str, Any], resume: bool) -> bool:
    """Make ``folder`` ready; return True when training resumes from a checkpoint there.

    Without ``resume`` the folder is emptied (a stale higher-numbered checkpoint must never
    be picked up later). With it, the checkpoints must come from the same model settings
    and input versions (``fingerprint``, kept in ``meta.json``), else ConfigError.
    """
    meta = folder / "meta.json"
    wanted = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    if resume and last_checkpoint(folder) is not None:
        found = json.loads(meta.read_text()) if meta.is_file() else None
        if found != wanted:
            raise ConfigError(f"cannot resume from {folder}: its checkpoints were written with "
                              f"other settings or inputs ({found} != {wanted}); rerun without "
                              "--resume")
        return True
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    meta.write_text(json.dumps(wanted, sort_keys=True))
    return False


# ---------------------------------------------------------------- the models

def _loop(cfg: Config, model: str, epochs: int, unit: str, folder: Path,
          monitor: str | None = None) -> LoopConfig:
    tc = cfg.train
    return LoopConfig(epochs=epochs, monitor=monitor, mode="min",
                      patience=tc.patience if monitor and tc.patience > 0 else None,
                      checkpoint_dir=folder, resume=tc.resume, progress=cfg.spark.progress,
                      unit=unit, desc=model)


def train_node2vec(wh: Warehouse, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """Skip-gram on the walks table; one vector per movie occurring in the walks."""
    from moviegraph.train.skipgram import SkipGramConfig, train_skipgram

    tc = cfg.train
    vocab = vocab_from_table(read_arrow(wh, "vocab", ["token", "movie_id", "count"]))
    walks = walks_matrix(wh, vocab)
    sg = SkipGramConfig(dim=tc.node2vec_dim, window=tc.node2vec_window,
                        negative=tc.node2vec_negative, sample=tc.node2vec_sample,
                        alpha=tc.node2vec_lr, min_alpha=min(1e-4, tc.node2vec_lr),
                        epochs=tc.node2vec_epochs, batch_walks=tc.node2vec_batch_walks,
                        seed=tc.seed, threads=1 if tc.deterministic else None)
    t0 = time.perf_counter()
    res = train_skipgram(walks, vocab.size, sg,
                         _loop(cfg, "node2vec", sg.epochs, "tok", folder), device)
    seen = res.counts > 0  # rows of tokens absent from the walks were never trained
    order = np.argsort(vocab.movie_ids[seen], kind="stable")
    return Trained("node2vec", vocab.movie_ids[seen][order], res.vectors[seen][order],
                   res.fit, time.perf_counter() - t0,
                   notes={"walks": int(walks.shape[0]), "walk_tokens": int(res.counts.sum())})


def train_cbow_model(r: Ratings, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """CBOW on the ranking split's train histories; one vector per train movie."""
    from moviegraph.train.cbow import CBOWConfig, train_cbow

    tc = cfg.train
    sentences, movie_ids = cbow_sentences(r, tc.cbow_max_len)
    cc = CBOWConfig(dim=tc.cbow_dim, window=tc.cbow_window, loss=tc.cbow_loss,
                    negative=tc.cbow_negative, lr=tc.cbow_lr, epochs=tc.cbow_epochs,
                    batch_sentences=tc.cbow_batch, seed=tc.seed)
    t0 = time.perf_counter()
    res = train_cbow(sentences, len(movie_ids), cc,
                     _loop(cfg, "cbow", cc.epochs, "tok", folder), device)
    return Trained("cbow", movie_ids, res.vectors, res.fit, time.perf_counter() - t0,
                   notes={"sentences": int(sentences.shape[0])})


def mf_vector_layout(movie_factors: np.ndarray, user_factors: np.ndarray,
                     movie_bias: np.ndarray, user_bias: np.ndarray, global_mean: float,
                     biases: str) -> tuple[np.ndarray, np.ndarray]:
    """Written mf vectors ``(movie, user)`` for ``train.mf_biases``.

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


def _train_bpmf(data: MFData, cfg: Config, device: torch.device
                ) -> tuple[dict[str, torch.Tensor], FitResult, dict[str, Any]]:
    """BPMF on ``data.fit``; the written parts (posterior-mean biases and an exact or
    truncated factorisation of the posterior-mean interaction) as a state dict."""
    from moviegraph.train.bpmf import (
        BPMFConfig,
        interaction_vectors,
        posterior_biases,
        train_bpmf,
    )

    tc = cfg.train
    side, side_note = tc.mf_side, None
    widest = max(len(data.movie_ids), len(data.user_ids) if side == "both" else 0)
    if side != "none" and widest > BPMF_SIDE_MAX_FEATURES:
        # SideLink factorises a dense (features x features) matrix: too big here.
        side, side_note = "none", (f"train.mf_side = {tc.mf_side} skipped: {widest:,} "
                                   f"features > {BPMF_SIDE_MAX_FEATURES:,}")
        print(f"[train] mf: {side_note}", flush=True)
    bc = BPMFConfig(dim=tc.mf_bpmf_dim, burn_in=tc.mf_burn_in, samples=tc.mf_samples,
                    side=side, side_reg=tc.mf_side_reg, noise=tc.mf_noise, seed=tc.seed,
                    dtype="float64" if device.type == "cpu" else "float32")
    u, i, y = data.fit
    tu = _positions(data.user_ids, data.test_user)
    ti = _positions(data.movie_ids, data.test_movie)
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
    g, f, info = interaction_vectors(res, tc.mf_write_rank or None)
    bu, bi = posterior_biases(res)
    state = _mf_state(res.global_mean, g, f, bu, bi)
    # The written parts must reproduce the sampler's own posterior average.
    from_parts = mf_predict_ids(state, data.user_ids, data.movie_ids,
                                data.test_user[known], data.test_movie[known])
    sampler = np.clip(res.eval_predictions[0], 1.0, 5.0)
    sampler_rmse = float(np.sqrt(np.mean((sampler - data.test_rating[known]) ** 2)))
    notes = {"method": "bpmf", "bpmf_dim": bc.dim, "burn_in": bc.burn_in,
             "samples": bc.samples, "side": bc.side, "noise": bc.noise,
             "write_rank": int(info["rank"]),
             "write_dropped_energy": info["dropped_energy"],
             "sampler_test_rmse_known_pairs": sampler_rmse,
             "max_abs_diff_vectors_vs_sampler": float(np.max(np.abs(from_parts - sampler)))
             if known.any() else 0.0}
    if side_note:
        notes["side_skipped"] = side_note
    fit = FitResult(history=history, best_epoch=len(history) - 1)
    return state, fit, notes


def train_mf_model(r: Ratings, cfg: Config, device: torch.device, folder: Path) -> Trained:
    """Biased MF on the rating split's train part; movie and user vectors.

    ``train.mf_method = "bpmf"``: Gibbs sampling (:mod:`moviegraph.train.bpmf`), one
    process, no checkpoints, no early stopping; the written factors are an exact (or
    ``train.mf_write_rank``-truncated) factorisation of the posterior-mean ``<p_u, q_i>``
    and the biases their posterior means, so the vectors reproduce the posterior-average
    prediction. ``"adam"``: :func:`moviegraph.train.mf.train_mf` (DDP when
    ``train.distributed``).
    """
    from moviegraph.train.mf import MFConfig, train_mf

    tc = cfg.train
    t0 = time.perf_counter()
    extra: dict[str, Any]
    if tc.mf_method == "bpmf":
        data = mf_data(r, hold_out_validation=False)
        state, fit, extra = _train_bpmf(data, cfg, device)
        if tc.distributed:
            extra["distributed"] = "not supported for train.mf_method = bpmf: one process"
            print(f"[train] mf: {extra['distributed']}", flush=True)
    else:
        data = mf_data(r, hold_out_validation=tc.patience > 0)
        mc = MFConfig(dim=tc.mf_dim, reg_factors=tc.mf_reg, reg_bias=tc.mf_reg_bias,
                      lr=tc.mf_lr, epochs=tc.mf_epochs, batch_size=tc.mf_batch_size,
                      seed=tc.seed)
        loop = _loop(cfg, "mf", mc.epochs, "rating", folder,
                     monitor="val_rmse" if data.val is not None else None)
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
        fit = res.fit
        extra = {"method": "adam", "distributed": tc.distributed}
    seconds = time.perf_counter() - t0
    pred = mf_predict_ids(state, data.user_ids, data.movie_ids, data.test_user,
                          data.test_movie)
    test_rmse = float(np.sqrt(np.mean((pred - data.test_rating.astype(np.float64)) ** 2)))
    mu = float(state["global_mean"])
    q, p = mf_vector_layout(state["item_factors.weight"].numpy(),
                            state["user_factors.weight"].numpy(),
                            state["item_bias.weight"].numpy(),
                            state["user_bias.weight"].numpy(), mu, tc.mf_biases)
    return Trained("mf", data.movie_ids, q, fit, seconds,
                   user_ids=data.user_ids, user_vectors=p,
                   metrics={"test_rmse": test_rmse},
                   notes={"fit_ratings": len(data.fit[2]), "test_ratings": len(pred),
                          "validation_ratings": 0 if data.val is None else len(data.val[2]),
                          "global_mean": mu, "vector_layout": tc.mf_biases, **extra})


def ranking_train_matrix(r: Ratings):
    """Binary users x movies matrix of the ranking split's train part, with its ids."""
    import scipy.sparse as sp

    train = ~ranking_split(r.user_id, r.movie_id, r.ts)
    user_ids, u = np.unique(r.user_id[train], return_inverse=True)
    movie_ids, i = np.unique(r.movie_id[train], return_inverse=True)
    x = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)),
                      shape=(len(user_ids), len(movie_ids)))
    return x, user_ids, movie_ids


def train_softmax_model(wh: Warehouse, r: Ratings, cfg: Config, device: torch.device,
                        folder: Path) -> Trained:
    """Softmax retrieval model on the ranking split's train part; movie and user vectors."""

    from moviegraph.evaluate.metrics import genre_matrix
    from moviegraph.train.softmax import SoftmaxConfig, item_side_features, train_softmax

    tc = cfg.train
    x, user_ids, movie_ids = ranking_train_matrix(r)
    features = None
    if tc.softmax_features:
        movies = read_arrow(wh, "movies", ["movie_id", "genres", "year"])
        pos = _positions(movie_ids, movies.column("movie_id").to_numpy())
        keep = np.flatnonzero(pos >= 0)
        genres = movies.column("genres").take(pa.array(keep)).to_pylist()  # one list/movie
        member, _ = genre_matrix(genres)
        years = movies.column("year").take(pa.array(keep)).to_numpy(zero_copy_only=False)
        rows = item_side_features(member, np.asarray(years, np.float64))
        features = np.zeros((len(movie_ids), rows.shape[1]), np.float32)
        features[pos[keep]] = rows
    sc = SoftmaxConfig(dim=tc.softmax_dim, lr=tc.softmax_lr, epochs=tc.softmax_epochs,
                       batch_size=tc.softmax_batch, seed=tc.seed)
    t0 = time.perf_counter()
    res = train_softmax(x, sc, features,
                        _loop(cfg, "softmax", sc.epochs, "user", folder), device)
    return Trained("softmax", movie_ids.astype(np.int32),
                   res.item_vectors(with_bias=True).astype(np.float32), res.fit,
                   time.perf_counter() - t0, user_ids=user_ids.astype(np.int32),
                   user_vectors=res.user_vectors().astype(np.float32),
                   notes={"features": 0 if features is None else int(features.shape[1])})


def train_edlae_model(r: Ratings, cfg: Config) -> Trained:
    """Low-rank EDLAE in closed form on the ranking split's train part (no epochs)."""
    x, user_ids, movie_ids = ranking_train_matrix(r)
    return _train_edlae(x, user_ids, movie_ids, cfg.train)


def _train_edlae(x, user_ids: np.ndarray, movie_ids: np.ndarray, tc: TrainConfig) -> Trained:
    """EDLAE on the binary matrix ``x``: movie vectors V, user vectors x_u W."""
    from moviegraph.train.edlae import EDLAEConfig, train_edlae

    ec = EDLAEConfig(dim=min(tc.edlae_dim, x.shape[1]), dropout=tc.edlae_dropout,
                     lam=tc.edlae_lam)
    t0 = time.perf_counter()
    res = train_edlae(x, ec)
    seconds = time.perf_counter() - t0
    fit = FitResult(history=[{"epoch": 0, "train_loss": float("nan"), "items": int(x.nnz),
                              "seconds": seconds, "items_per_s": x.nnz / max(seconds, 1e-9)}],
                    best_epoch=0)
    return Trained("edlae", movie_ids.astype(np.int32),
                   res.item_vectors.astype(np.float32), fit, seconds,
                   user_ids=user_ids.astype(np.int32),
                   user_vectors=res.user_vectors().astype(np.float32),
                   notes={"dim": ec.dim, "dropout": ec.dropout,
                          "lam": ec.lam, "features": 0})


def model_inputs(model: str, tc: TrainConfig) -> tuple[str, ...]:
    """Tables ``model`` reads under these settings."""
    if model == "softmax" and not tc.softmax_features:
        return ("ratings",)
    return MODEL_INPUTS[model]


def _fingerprint(cfg: Config, model: str, versions: dict[str, int]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the model's settings and inputs.

    Epoch counts and patience are left out, so a finished run can be resumed for more
    epochs (for node2vec the learning-rate schedule then differs from a fresh longer run).
    """
    tc = asdict(cfg.train)
    keep = {k: v for k, v in tc.items() if k.startswith(f"{model}_") and not k.endswith("epochs")}
    keep.update(seed=tc["seed"], deterministic=tc["deterministic"])
    if model in DISTRIBUTED_MODELS:
        keep.update(distributed=tc["distributed"],
                    num_processes=tc["num_processes"] if tc["distributed"] else 1)
    return {"model": model, "settings": keep,
            "inputs": {t: versions[t] for t in model_inputs(model, cfg.train)}}


# ---------------------------------------------------------------- Delta output

def vector_table(model: str, run_id: str, id_column: str, ids: np.ndarray,
                 vectors: np.ndarray) -> pa.Table:
    """``(model, run_id, <id_column>, vector)`` as Arrow, vectors as list<float32>."""
    n, d = vectors.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    vec = pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(vectors,
                                                                          np.float32).ravel()))
    return pa.table({"model": pa.array([model] * n, pa.string()),
                     "run_id": pa.array([run_id] * n, pa.string()),
                     id_column: pa.array(np.asarray(ids, np.int32)), "vector": vec})


def replace_models(wh: Warehouse, name: str, df: DataFrame, models: list[str]) -> int:
    """Replace ``models``' rows of table ``name`` by ``df`` in one Delta transaction."""
    if not wh.exists(name):
        return wh.write(name, df, mode="overwrite")
    cond = "model IN (" + ", ".join(f"'{m}'" for m in models) + ")"  # names from MODELS
    (wh.conform(name, df).write.format("delta").mode("overwrite")
     .option("replaceWhere", cond).save(wh.path(name)))
    version = wh.version(name)
    assert version is not None
    return version


def history_rows(run_id: str, t: Trained) -> list[tuple]:
    """One ``history`` row per epoch of ``t``'s fit (resumed epochs included)."""
    rows = []
    for h in t.fit.history:
        metrics = {k: float(v) for k, v in h.items()
                   if k not in ("epoch", "train_loss", "seconds") and v is not None}
        rows.append((run_id, t.model, int(h["epoch"]), float(h["train_loss"]), metrics,
                     float(h["seconds"])))
    return rows


def write_outputs(spark: SparkSession, wh: Warehouse, run: StageRun,
                  trained: list[Trained]) -> None:
    """embeddings, user_embeddings (replace these models' rows), history (append)."""
    models = [t.model for t in trained]
    emb = pa.concat_tables([vector_table(t.model, run.run_id, "movie_id", t.movie_ids,
                                         t.vectors) for t in trained])
    run.outputs["embeddings"] = replace_models(wh, "embeddings", spark.createDataFrame(emb),
                                               models)
    run.rows["embeddings"] = emb.num_rows
    users = [vector_table(t.model, run.run_id, "user_id", t.user_ids, t.user_vectors)
             for t in trained if t.user_vectors is not None]
    if users or wh.exists("user_embeddings"):
        # Written even when empty: stale user rows of these models must go too.
        df = (spark.createDataFrame(pa.concat_tables(users)) if users
              else spark.createDataFrame([], SCHEMAS["user_embeddings"]))
        run.outputs["user_embeddings"] = replace_models(wh, "user_embeddings", df, models)
        run.rows["user_embeddings"] = sum(u.num_rows for u in users)
    hist = [row for t in trained for row in history_rows(run.run_id, t)]
    if hist:
        run.outputs["history"] = wh.write(
            "history", spark.createDataFrame(hist, SCHEMAS["history"]), mode="append")
    run.rows["history"] = len(hist)


# ---------------------------------------------------------------- the stage

def stage_train(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """walks / ratings -> embeddings, user_embeddings, history (see the module docstring)."""
    tc = cfg.train
    model_list(tc.models)  # fail on a bad list before reading anything
    # The driver process lives on (pipeline, tests): put torch's global settings back.
    threads = torch.get_num_threads()
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    if tc.threads:
        torch.set_num_threads(tc.threads)
    try:
        return _train_all(spark, cfg, wh, run)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def _train_all(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    tc = cfg.train
    models = model_list(tc.models)
    device = pick_device(tc.device)
    if tc.deterministic:
        set_deterministic()
    tables = sorted({t for m in models for t in model_inputs(m, tc)})
    versions = input_versions(wh, *tables)
    run.inputs.update(versions)
    ratings = read_ratings(wh) if "ratings" in tables else None
    root = checkpoint_root(tc)
    trained: list[Trained] = []
    lines = [f"train: {len(models)} model(s) on {device.type}"
             + (f", DDP x{tc.num_processes}" if tc.distributed else "")]
    for model in models:
        folder = root / model
        resumed = prepare_checkpoints(folder, _fingerprint(cfg, model, versions), tc.resume)
        note = ""
        if tc.distributed and model not in DISTRIBUTED_MODELS:
            note = "distributed training not supported yet for this model: one process"
            print(f"[train] {model}: {note}", flush=True)
        if model == "node2vec":
            t = train_node2vec(wh, cfg, device, folder)
        elif model == "cbow":
            t = train_cbow_model(ratings, cfg, device, folder)
        elif model == "softmax":
            t = train_softmax_model(wh, ratings, cfg, device, folder)
        elif model == "edlae":
            t = train_edlae_model(ratings, cfg)
        else:
            t = train_mf_model(ratings, cfg, device, folder)
        if note:
            t.notes["distributed"] = note
        trained.append(t)
        dim = t.vectors.shape[1]
        line = (f"  {model:<9} {len(t.movie_ids):>7,} movies x {dim}"
                + (f", {len(t.user_ids):,} users" if t.user_ids is not None else "")
                + f", {len(t.fit.history)} epochs, final loss {t.final_loss:.4f}"
                + "".join(f", {k.replace('_', ' ')} {v:.4f}" for k, v in t.metrics.items())
                + f", {t.seconds:.1f}s"
                + (f" (resumed after epoch {t.fit.resumed_from + 1})"
                   if resumed and t.fit.resumed_from is not None else "")
                + (" (stopped early)" if t.fit.stopped_early else ""))
        lines.append(line)
        run.notes.setdefault("models", {})[model] = {
            "seconds": round(t.seconds, 3), "final_loss": t.final_loss, "dim": dim,
            "movies": len(t.movie_ids), "epochs_run": len(t.fit.history),
            "best_epoch": t.fit.best_epoch, "stopped_early": t.fit.stopped_early,
            "resumed_from": t.fit.resumed_from, **t.metrics, **t.notes}
    run.notes["device"] = str(device)
    run.notes["checkpoints"] = str(root)
    write_outputs(spark, wh, run, trained)
    lines.append(f"  wrote embeddings v{run.outputs['embeddings']}"
                 + (f", user_embeddings v{run.outputs['user_embeddings']}"
                    if "user_embeddings" in run.outputs else "")
                 + (f", history v{run.outputs['history']}" if "history" in run.outputs else "")
                 + f" (run {run.run_id})")
    return "\n".join(lines)
