"""The ``train`` stage: walks / ratings -> embeddings, user_embeddings, history.

The loop over the model registry (:mod:`moviegraph.train.models`): each chosen model
(``train.models``, in registry order) gets its checkpoint folder, is fitted on the driver
(CUDA when present; ``mf`` with ``train.distributed`` in DDP processes launched by
TorchDistributor), and the vectors of all of them are written at the end
(:mod:`moviegraph.train.output`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moviegraph.config import Config
from moviegraph.runs import StageRun, input_versions
from moviegraph.stages.base import Flag, Stage
from moviegraph.tables import Warehouse

if TYPE_CHECKING:
    import torch
    from pyspark.sql import SparkSession

    from moviegraph.train.checkpoints import CheckpointStore
    from moviegraph.train.models import Model, ModelData, Trained
    from moviegraph.train.shipped import FittedScorer, TrainRatings


def input_tables(cfg: Config) -> tuple[str, ...]:
    """Tables the chosen models read under their settings."""
    from moviegraph.train.models import input_tables as tables

    return tables(cfg.train)


def run_train(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """walks / ratings -> embeddings, user_embeddings, history (see the module docstring)."""
    import torch

    tc = cfg.train
    # The driver process lives on (pipeline, tests): put torch's global settings back.
    threads = torch.get_num_threads()
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    if tc.threads:
        torch.set_num_threads(tc.threads)
    try:
        return _train_all(cfg, wh, run)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


def _train_all(cfg: Config, wh: Warehouse, run: StageRun) -> str:
    from moviegraph.fs import Storage
    from moviegraph.train.checkpoints import CheckpointStore
    from moviegraph.train.device import pick_device, set_deterministic
    from moviegraph.train.models import ModelData, chosen
    from moviegraph.train.output import write_outputs

    tc = cfg.train
    models = chosen(tc)
    device = pick_device(tc.device)
    if tc.deterministic:
        set_deterministic()
    versions = input_versions(wh, *input_tables(cfg))
    run.inputs.update(versions)
    data = ModelData(wh)
    store = CheckpointStore(Storage(wh.spark), wh.output_uri(tc.checkpoint_dir))
    trained: list[Trained] = []
    per_model: dict[str, Any] = {}
    run.notes["models"] = per_model
    lines = [f"train: {len(models)} model(s) on {device.type}"
             + (f", DDP x{tc.num_processes}" if tc.distributed else "")]
    try:
        for model in models:
            if not model.combined:
                lines.append(_fit_one(model, cfg, data, device, store, versions, trained,
                                      per_model))
    finally:
        store.close()
    run.notes["device"] = str(device)
    run.notes["checkpoints"] = store.uri
    scorers = _fit_scorers(cfg, data, trained, per_model)
    blend = next((t for t in trained if t.model == "blend"), None)
    if blend is not None:
        parts = " + ".join(f"{m} {w:g}" for m, w in blend.notes["parts"].items())
        lines.append(f"  {blend.model:<9} {len(blend.movie_ids):>7,} movies x "
                     f"{blend.vectors.shape[1]}, weighted cosine of {parts}, {blend.seconds:.1f}s")
    write_outputs(wh, run, trained, scorers)
    lines.append(f"  wrote embeddings v{run.outputs['embeddings']}"
                 + (f", user_embeddings v{run.outputs['user_embeddings']}"
                    if "user_embeddings" in run.outputs else "")
                 + (f", history v{run.outputs['history']}" if "history" in run.outputs else "")
                 + f", scorers v{run.outputs['scorers']}"
                 + f" (run {run.run_id})")
    return "\n".join(lines)


def _fit_scorers(cfg: Config, data: ModelData, trained: list[Trained],
                 per_model: dict[str, Any]) -> list[FittedScorer]:
    """Each model's shipped scorer (:mod:`moviegraph.train.shipped`), fitted on the ranking
    split's train part; item-only models first get fold-in vectors for the train movies
    outside their vocabulary (``[train.scorers.<model>] fold_in``). The ``blend`` (when
    chosen) is then built from its folded-in parts and appended to ``trained``."""
    from moviegraph.train.models import blend_of
    from moviegraph.train.shipped import TrainRatings

    r = data.ratings
    train = TrainRatings.of(r.user_id, r.movie_id, r.rating, r.ts)
    out = [_fit_scorer(t, cfg, train, per_model) for t in trained]
    if "blend" in cfg.train.models:
        blend = blend_of(trained, cfg)
        trained.append(blend)
        per_model[blend.model] = {"seconds": round(blend.seconds, 3),
                                  "dim": blend.vectors.shape[1],
                                  "movies": len(blend.movie_ids), **blend.notes}
        out.append(_fit_scorer(blend, cfg, train, per_model))
    return out


def _fit_scorer(t: Trained, cfg: Config, train: TrainRatings,
                per_model: dict[str, Any]) -> FittedScorer:
    """The shipped scorer of one fitted model (folding its vectors in first when its
    scorer says so; ``t`` is updated in place)."""
    import dataclasses

    import numpy as np

    from moviegraph.similarity.list_tuning import tune_lists
    from moviegraph.train.shipped import fit_scorer, fold_in

    sc = getattr(cfg.train.scorers, t.model)
    if sc.fold_in and t.user_ids is None:
        ids, vectors, added = fold_in(t.movie_ids, t.vectors, train)
        t.movie_ids, t.vectors = ids.astype(np.int32), vectors
        per_model[t.model]["folded_in"] = added
        per_model[t.model]["movies"] = len(ids)
    list_dims = t.list_dims
    if sc.tune_lists:
        tuned = tune_lists(t.movie_ids, t.vectors[:, :list_dims], sc.list_metric,
                           sc.list_prior, train, cfg.similar.k)
        sc = dataclasses.replace(sc, list_beta=tuned.beta, list_corate=tuned.corate)
        per_model[t.model]["list_tuning"] = {
            "users": tuned.users, "beta": tuned.beta, "corate": tuned.corate,
            "validation_hr": {f"{b:g},{c:g}": round(h, 4)
                              for (b, c), h in tuned.hit_rate.items()}}
    scorer = fit_scorer(t.model, sc, t.movie_ids, train, list_dims)
    per_model[t.model]["scorer"] = scorer.settings
    return scorer


def _fit_one(model: Model, cfg: Config, data: ModelData, device: torch.device,
             store: CheckpointStore, versions: dict[str, int], trained: list[Trained],
             per_model: dict[str, Any]) -> str:
    """Fit one model (its checkpoints mirrored by ``store``); return its summary line."""
    from moviegraph.train.checkpoints import fingerprint, prepare_checkpoints
    from moviegraph.train.loop import CHECKPOINT_SAVED

    tc = cfg.train
    if tc.resume:
        store.fetch(model.name)
    folder = store.folder(model.name)
    resumed = prepare_checkpoints(
        folder, fingerprint(tc, model.name, model.distributed, versions, model.inputs(tc)),
        tc.resume)
    store.sync(model.name)  # meta.json: a resume elsewhere checks the same fingerprint
    note = ""
    if tc.distributed and not model.distributed:
        note = "distributed training not supported yet for this model: one process"
        print(f"[train] {model.name}: {note}", flush=True)
    token = CHECKPOINT_SAVED.set(lambda: store.sync(model.name))
    try:
        t = model.fit(data, cfg, device, folder)
    finally:
        CHECKPOINT_SAVED.reset(token)
    if note:
        t.notes["distributed"] = note
    trained.append(t)
    per_model[model.name] = {
        "seconds": round(t.seconds, 3), "final_loss": t.final_loss,
        "dim": t.vectors.shape[1], "movies": len(t.movie_ids),
        "epochs_run": len(t.fit.history), "best_epoch": t.fit.best_epoch,
        "stopped_early": t.fit.stopped_early, "resumed_from": t.fit.resumed_from,
        **t.metrics, **t.notes}
    return _line(t, resumed)


def _line(t, resumed: bool) -> str:
    """One summary line per model."""
    return (f"  {t.model:<9} {len(t.movie_ids):>7,} movies x {t.vectors.shape[1]}"
            + (f", {len(t.user_ids):,} users" if t.user_ids is not None else "")
            + f", {len(t.fit.history)} epochs, final loss {t.final_loss:.4f}"
            + "".join(f", {k.replace('_', ' ')} {v:.4f}" for k, v in t.metrics.items())
            + f", {t.seconds:.1f}s"
            + (f" (resumed after epoch {t.fit.resumed_from + 1})"
               if resumed and t.fit.resumed_from is not None else "")
            + (" (stopped early)" if t.fit.stopped_early else ""))


STAGE = Stage(
    name="train", summary="PyTorch models on walks and ratings -> embeddings, history",
    reads=("walks", "vocab", "ratings", "movies"),
    writes=("embeddings", "user_embeddings", "history", "scorers"),
    writes_doc="`embeddings(model, run_id, movie_id, vector)`, `user_embeddings(model, "
               "run_id, user_id, vector)`, `history` (one row per epoch), `scorers(model, "
               "run_id, settings, movie_id[], list_term[], recommend_term[])` (each model's "
               "shipped ranking, `[train.scorers.<model>]`); checkpoints under "
               "`train.checkpoint_dir/<model>/` (`--resume`)",
    sections=("train",), run=run_train, input_tables=input_tables,
    flags=(Flag("--resume", "train.resume", "continue each model from its last checkpoint"),))
