"""MF extensions (SVD++ implicit term, (user, day) bias) against plain references.
Proposed for tests/unit/ (file not owned by the helper that wrote it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moviegraph.train.loop import LoopConfig
from moviegraph.train.mf import BiasedMF, MFConfig, day_keys, rated_sets, train_mf


def test_rated_sets_plain_reference() -> None:
    users = np.array([2, 0, 2, 2, 1, 0, 2])
    items = np.array([5, 1, 3, 5, 0, 4, 0])  # (2, 5) twice: a set, counted once
    indptr, indices = rated_sets(users, items, 4)
    for u in range(4):
        want = sorted({int(i) for uu, i in zip(users, items, strict=True) if uu == u})
        assert indices[indptr[u]:indptr[u + 1]].tolist() == want


def test_implicit_and_day_bias_forward_plain_reference() -> None:
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 5, 30), rng.integers(0, 7, 30)
    days = rng.integers(0, 3, 30)
    seen = np.unique(day_keys(users[:20], days[:20]))
    model = BiasedMF(5, 7, 4, 3.5, 0.3, rated_sets(users, items, 5), seen)
    with torch.no_grad():
        for prm in model.parameters():
            prm.copy_(torch.randn_like(prm))
    got = model(torch.as_tensor(users), torch.as_tensor(items), torch.as_tensor(days))
    w = {k: v.detach().numpy() for k, v in model.named_parameters()}
    seen_list = seen.tolist()
    for n in range(30):
        u, i, d = users[n], items[n], days[n]
        n_u = sorted(set(items[users == u].tolist()))
        implicit = sum(w["implicit_factors.weight"][j] for j in n_u) / np.sqrt(len(n_u))
        pu = w["user_factors.weight"][u] + implicit
        key = int(u) * 2**32 + int(d)
        bd = w["day_bias.weight"][seen_list.index(key), 0] if key in seen_list else 0.0
        want = (3.5 + w["user_bias.weight"][u, 0] + w["item_bias.weight"][i, 0]
                + pu @ w["item_factors.weight"][i] + bd)
        assert float(got[n]) == pytest.approx(float(want), rel=1e-5, abs=1e-5)


def test_day_bias_needs_days_and_default_model_unchanged() -> None:
    u, i, r = np.array([0, 1, 1]), np.array([0, 1, 2]), np.array([4.0, 3.0, 5.0])
    with pytest.raises(ValueError):
        train_mf(u, i, r, 2, 3, MFConfig(day_bias=True, epochs=1))
    res = train_mf(u, i, r, 2, 3, MFConfig(dim=2, epochs=1),
                   loop=LoopConfig(epochs=1, progress=False), device=torch.device("cpu"))
    assert set(res.model.state_dict()) == {"user_factors.weight", "item_factors.weight",
                                           "user_bias.weight", "item_bias.weight", "global_mean"}


def test_day_bias_fits_a_day_effect() -> None:
    # One user rates 5 on day 0 and 1 on day 1 the same kind of movies: only a day term fits.
    rng = np.random.default_rng(1)
    n = 400
    users = rng.integers(0, 10, n)
    items = rng.integers(0, 20, n)
    days = rng.integers(0, 2, n)
    ratings = np.where(days == 0, 4.5, 2.5) + rng.normal(0, 0.1, n)
    kw = dict(loop=LoopConfig(epochs=30, progress=False), device=torch.device("cpu"))
    plain = train_mf(users, items, ratings, 10, 20, MFConfig(dim=2, epochs=30, lr=0.05), **kw)
    daily = train_mf(users, items, ratings, 10, 20,
                     MFConfig(dim=2, epochs=30, lr=0.05, day_bias=True, reg_day_bias=0.0),
                     days=days, **kw)
    err_plain = np.sqrt(np.mean((plain.predict(users, items) - ratings) ** 2))
    err_daily = np.sqrt(np.mean((daily.predict(users, items, days=days) - ratings) ** 2))
    assert err_daily < 0.5 * err_plain
