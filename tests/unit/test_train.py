"""Trainers: skip-gram pair generation against a plain reference, loss falls on ml-100k,
CPU determinism, checkpoint/resume equals an uninterrupted run, device fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from moviegraph.train import device as dev
from moviegraph.train.loop import LoopConfig, fit
from moviegraph.train.mf import MFConfig, train_mf
from moviegraph.train.skipgram import (
    NegativeSampler,
    SkipGramConfig,
    _sgns_walks_kernel,
    alias_sample,
    alias_table,
    pairs_from_walks,
    sigmoid_tables,
    subsample,
    train_skipgram,
)
from tests.conftest import ml100k_folder


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    r = pd.read_csv(ml100k_folder() / "ml-100k.inter", sep="\t")
    r.columns = ["user_id", "movie_id", "rating", "ts"]
    return r


# ---------------------------------------------------------------- skip-gram pairs


def reference_pairs(walks: list[list[int]], spans: list[list[int]], window: int):
    """Plain word2vec windowing: every centre, every context within its own span."""
    out = []
    for row, sp in zip(walks, spans, strict=True):
        for i, c in enumerate(row):
            if c < 0:
                continue
            for j, o in enumerate(row):
                if j != i and o >= 0 and abs(i - j) <= min(sp[i], window):
                    out.append((c, o))
    return sorted(out)


@pytest.mark.parametrize("window", [1, 3, 5])
def test_pairs_match_reference(window):
    rng = np.random.default_rng(window)
    walks = rng.integers(0, 50, size=(7, 11))
    walks[rng.random(walks.shape) < 0.2] = -1  # padding anywhere, not only at the tail
    walks[3, 4:] = -1
    spans = rng.integers(1, window + 1, size=walks.shape)
    c, o = pairs_from_walks(torch.tensor(walks, dtype=torch.int32), window,
                            spans=torch.tensor(spans))
    got = sorted(zip(c.tolist(), o.tolist(), strict=True))
    assert got == reference_pairs(walks.tolist(), spans.tolist(), window)


def test_pairs_fixed_window_counts():
    walks = torch.arange(10, dtype=torch.int32).reshape(1, 10)
    c, _ = pairs_from_walks(walks, 2, spans=torch.full((1, 10), 2))
    assert len(c) == 2 * (9 + 8)  # offsets 1 and 2, both directions


def test_subsample_drops_and_compacts():
    walks = torch.tensor([[0, 1, 2, 1, 3, -1], [1, 1, 0, 2, -1, -1]], dtype=torch.int32)
    keep_prob = torch.tensor([1.0, 0.0, 1.0, 1.0])  # token 1 always dropped
    out = subsample(walks, keep_prob, torch.Generator().manual_seed(0))
    assert out.tolist() == [[0, 2, 3, -1, -1, -1], [0, 2, -1, -1, -1, -1]]


def test_negative_sampler_distribution():
    counts = np.array([1000, 10, 0, 200, 1])
    s = NegativeSampler(counts, 0.75, torch.device("cpu"))
    draws = s.draw((200_000,), torch.Generator().manual_seed(1)).numpy()
    freq = np.bincount(draws, minlength=5) / len(draws)
    expect = counts**0.75 / (counts**0.75).sum()
    assert freq[2] == 0
    np.testing.assert_allclose(freq, expect, atol=0.005)


# ---------------------------------------------------------------- skip-gram training


def small_walks(seed: int = 0) -> tuple[np.ndarray, int]:
    """Walks on a ring of 4 clusters: tokens of one cluster co-occur."""
    rng = np.random.default_rng(seed)
    n, k = 40, 4
    walks = np.empty((200, 12), dtype=np.int32)
    for w in range(len(walks)):
        cluster = rng.integers(k)
        walks[w] = cluster * (n // k) + rng.integers(0, n // k, size=12)
    walks[::7, 9:] = -1
    return walks, n


def test_skipgram_learns_clusters_and_is_deterministic():
    walks, n = small_walks()
    cfg = SkipGramConfig(dim=16, window=3, negative=3, sample=0, epochs=5, batch_walks=32,
                         alpha=0.05, threads=1, seed=3)
    loop = LoopConfig(epochs=5, progress=False)
    a = train_skipgram(walks, n, cfg, loop=loop, device=torch.device("cpu"))
    b = train_skipgram(walks, n, cfg, loop=loop, device=torch.device("cpu"))
    losses = [h["train_loss"] for h in a.fit.history]
    assert losses[-1] < losses[0]
    np.testing.assert_array_equal(a.vectors, b.vectors)
    v = a.vectors / np.linalg.norm(a.vectors, axis=1, keepdims=True)
    sim = v @ v.T
    same = (np.arange(n)[:, None] // 10) == (np.arange(n)[None, :] // 10)
    assert sim[same].mean() > sim[~same].mean() + 0.3


def test_skipgram_torch_backend_loss_falls():
    walks, n = small_walks(1)
    cfg = SkipGramConfig(dim=16, window=3, negative=3, sample=0, epochs=4, batch_walks=16,
                         alpha=0.05, backend="torch", seed=0)
    res = train_skipgram(walks, n, cfg, loop=LoopConfig(epochs=4, progress=False),
                         device=torch.device("cpu"))
    losses = [h["train_loss"] for h in res.fit.history]
    assert np.isfinite(res.vectors).all() and losses[-1] < losses[0]


# ---------------------------------------------------------------- skip-gram numba kernel


def test_alias_sampler_distribution():
    counts = np.array([1000, 10, 0, 200, 1, 0, 37])
    prob, alias = alias_table(counts, 0.75)
    draws = alias_sample(prob, alias, 400_000, 12345)
    freq = np.bincount(draws, minlength=len(counts)) / len(draws)
    expect = counts**0.75 / (counts**0.75).sum()
    assert freq[2] == 0 and freq[5] == 0
    np.testing.assert_allclose(freq, expect, atol=0.003)


def run_kernel(walks, n, window, negative=1, keep=None, neg_counts=None, alpha=0.025,
               min_alpha=0.025, threads=1, seed=1, dim=8):
    """One call of the walk kernel on fresh tables; returns (w_in0, w_in, w_out, loss, pairs)."""
    rng = np.random.default_rng(0)
    w_in = ((rng.random((n, dim)) - 0.5) / dim).astype(np.float32)
    w_out = np.zeros((n, dim), np.float32)
    w_in0 = w_in.copy()
    walks = np.ascontiguousarray(walks, dtype=np.int32)
    keep = np.ones(n, np.float32) if keep is None else np.asarray(keep, np.float32)
    prob, alias = alias_table(np.ones(n) if neg_counts is None else neg_counts, 0.75)
    sig, logsig = sigmoid_tables()
    states = np.arange(1, threads + 1, dtype=np.uint64) * np.uint64(seed * 7919)
    tokens = int((walks >= 0).sum())
    losses, pairs = _sgns_walks_kernel(
        w_in, w_out, walks, np.arange(len(walks)), keep, prob, alias, sig, logsig, window,
        negative, alpha, min_alpha, 0, tokens, states)
    return w_in0, w_in, w_out, losses.sum(), int(pairs.sum())


def test_kernel_window_one_trains_every_neighbour_pair():
    walks = np.full((50, 9), -1)
    lengths = np.random.default_rng(1).integers(0, 10, size=50)
    for i, m in enumerate(lengths):
        walks[i, :m] = np.arange(m)
    *_, pairs = run_kernel(walks, 10, window=1)
    assert pairs == sum(2 * (m - 1) for m in lengths if m > 1)


def test_kernel_dynamic_window_pair_count():
    # word2vec's window: centre p of a walk of m tokens draws b in 1..w and pairs with
    # min(b, p) tokens on the left and min(b, m - 1 - p) on the right.
    w, m, n_walks = 4, 12, 20_000
    walks = np.tile(np.arange(m), (n_walks, 1))
    expect = n_walks * sum(np.mean([min(b, p) + min(b, m - 1 - p) for b in range(1, w + 1)])
                           for p in range(m))
    *_, pairs = run_kernel(walks, m, window=w)
    assert abs(pairs - expect) < 0.005 * expect


def test_kernel_dropped_tokens_are_never_trained():
    rng = np.random.default_rng(2)
    walks = rng.integers(0, 6, size=(200, 10))
    keep = np.array([1, 1, 1, 1, 1, 0.0])  # token 5 always dropped by subsampling
    counts = np.array([5, 5, 5, 5, 5, 0])  # ... and never drawn as a negative
    w_in0, w_in, w_out, _, _ = run_kernel(walks, 6, window=2, negative=3, keep=keep,
                                          neg_counts=counts)
    np.testing.assert_array_equal(w_in[5], w_in0[5])
    assert not w_out[5].any()
    assert (w_in[:5] != w_in0[:5]).all(axis=1).all() and w_out[:5].any(axis=1).all()


def test_kernel_update_matches_word2vec_formula():
    # One walk [0, 1], window 1, one negative that can only be token 2: the kernel must
    # apply word2vec.c's SGD (context's input row += summed gradient, the centre's and the
    # negative's output rows their own terms) for centre 0 (context 1), then centre 1
    # (context 0). Reference in float64 with the exact sigmoid; the kernel's sigmoid table
    # is exact to ~1e-3, well inside the tolerance.
    lr, dim = 0.5, 8
    rng = np.random.default_rng(3)
    w_in = rng.normal(0, 0.5, (3, dim)).astype(np.float32)
    w_out = rng.normal(0, 0.5, (3, dim)).astype(np.float32)
    a, b = w_in.astype(np.float64), w_out.astype(np.float64)
    prob, alias = alias_table(np.array([0, 0, 1]), 0.75)
    sig_t, logsig_t = sigmoid_tables()
    losses, pairs = _sgns_walks_kernel(
        w_in, w_out, np.array([[0, 1]], np.int32), np.arange(1), np.ones(3, np.float32),
        prob, alias, sig_t, logsig_t, 1, 1, lr, lr, 0, 2, np.array([99], np.uint64))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    ref_loss = 0.0
    for o, c in ((0, 1), (1, 0)):  # (centre: output row, context: input row)
        grad = np.zeros(dim)
        for target, label in ((o, 1.0), (2, 0.0)):
            f = a[c] @ b[target]
            ref_loss -= np.log(sig(f) if label else sig(-f))
            g = (label - sig(f)) * lr
            grad += g * b[target]
            b[target] += g * a[c]
        a[c] += grad
    assert pairs.sum() == 2
    np.testing.assert_allclose(w_in, a, atol=5e-3)
    np.testing.assert_allclose(w_out, b, atol=5e-3)
    assert losses.sum() == pytest.approx(ref_loss, abs=0.02)


def test_skipgram_two_threads_learns_clusters():
    walks, n = small_walks()
    cfg = SkipGramConfig(dim=16, window=3, negative=3, sample=0, epochs=5, alpha=0.05,
                         threads=2, seed=3)
    res = train_skipgram(walks, n, cfg, loop=LoopConfig(epochs=5, progress=False),
                         device=torch.device("cpu"))
    v = res.vectors / np.linalg.norm(res.vectors, axis=1, keepdims=True)
    sim = v @ v.T
    same = (np.arange(n)[:, None] // 10) == (np.arange(n)[None, :] // 10)
    assert sim[same].mean() > sim[~same].mean() + 0.3


def test_skipgram_resume_equals_uninterrupted(tmp_path):
    walks, n = small_walks(4)
    cfg = SkipGramConfig(dim=8, window=3, negative=2, epochs=3, threads=1, seed=7)
    cpu = torch.device("cpu")
    full = train_skipgram(walks, n, cfg, LoopConfig(epochs=3, progress=False), cpu)

    class Crash(Exception):
        pass

    def crash_in_epoch_1(_vectors):
        if crash_in_epoch_1.calls == 1:
            raise Crash
        crash_in_epoch_1.calls += 1
        return {}

    crash_in_epoch_1.calls = 0
    loop = LoopConfig(epochs=3, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(Crash):  # epoch 0 checkpointed, epoch 1 lost
        train_skipgram(walks, n, cfg, loop, cpu, validate=crash_in_epoch_1)
    resumed = train_skipgram(walks, n, cfg, loop, cpu)
    assert resumed.fit.resumed_from == 0
    np.testing.assert_array_equal(resumed.vectors, full.vectors)


# ---------------------------------------------------------------- MF


def rating_split(r: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = (r.user_id * 1000003 + r.movie_id) % 10 == 0
    return r[~test], r[test]


def test_mf_loss_falls_and_beats_biases(ratings):
    tr, te = rating_split(ratings)
    nu, ni = int(ratings.user_id.max()) + 1, int(ratings.movie_id.max()) + 1
    cfg = MFConfig(dim=8, epochs=3, batch_size=8192, lr=0.03)
    res = train_mf(tr.user_id.values, tr.movie_id.values, tr.rating.values, nu, ni, cfg,
                   val=(te.user_id.values, te.movie_id.values, te.rating.values),
                   loop=LoopConfig(epochs=3, progress=False), device=torch.device("cpu"))
    h = res.fit.history
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert h[-1]["val_rmse"] < 0.96  # user+item biases alone: 0.91-0.94; global mean ~1.12


def test_mf_deterministic_and_resume_equals_uninterrupted(ratings, tmp_path):
    r = ratings.iloc[:20000]
    nu, ni = int(ratings.user_id.max()) + 1, int(ratings.movie_id.max()) + 1
    args = (r.user_id.values, r.movie_id.values, r.rating.values, nu, ni)
    cfg = MFConfig(dim=8, batch_size=2048, lr=0.01, seed=5)
    cpu = torch.device("cpu")

    def run(epochs, ckpt=None):
        loop = LoopConfig(epochs=epochs, progress=False, checkpoint_dir=ckpt)
        return train_mf(*args, cfg=cfg, loop=loop, device=cpu)

    full = run(4)
    again = run(4)
    assert torch.equal(full.model.user_factors.weight, again.model.user_factors.weight)
    first = run(2, tmp_path)  # "interrupted" after 2 epochs, checkpoints on disk
    assert first.fit.resumed_from is None
    resumed = run(4, tmp_path)
    assert resumed.fit.resumed_from == 1
    assert [h["epoch"] for h in resumed.fit.history] == [0, 1, 2, 3]
    for name, p in full.model.state_dict().items():
        assert torch.equal(p, resumed.model.state_dict()[name]), name


# ---------------------------------------------------------------- loop and device


def test_loop_early_stopping_restores_best():
    model = torch.nn.Linear(1, 1)
    vals = iter([3.0, 1.0, 2.0, 2.5, 0.5])
    weights = []

    def run_epoch(epoch):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        weights.append(epoch)
        yield 1.0, 1

    cfg = LoopConfig(epochs=5, monitor="val", patience=2, progress=False)
    res = fit(model, run_epoch, cfg, validate=lambda: {"val": next(vals)})
    assert res.stopped_early and res.best_epoch == 1 and len(res.history) == 4
    assert float(model.weight.detach()) == 1.0  # best epoch's weights restored


def test_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert dev.pick_device().type == "cpu"
    assert dev.pick_device("cuda").type == "cpu"
    assert dev.pick_device("cpu").type == "cpu"


# ---------------------------------------------------------------- CBOW


def test_sentences_and_context_windows():
    from moviegraph.train.cbow import context_windows, sentences_from_history

    user = np.array([2, 1, 2, 1, 2, 1])
    item = np.array([5, 7, 3, 9, 4, 8])
    ts = np.array([30, 10, 10, 20, 10, 5])
    s = sentences_from_history(user, item, ts)
    assert s.tolist() == [[8, 7, 9], [3, 4, 5]]  # user 2: ts ties broken by item id
    centre, ctx = context_windows(torch.tensor(s), 1)
    assert ctx[0].tolist() == [[-1, 7], [8, 9], [7, -1]]
    assert torch.equal(centre, torch.tensor(s))


@pytest.mark.parametrize("loss", ["softmax", "negative"])
def test_cbow_loss_falls_on_ml100k(ratings, loss):
    from moviegraph.train.cbow import CBOWConfig, sentences_from_history, train_cbow

    r = ratings[ratings.user_id <= 150]  # a slice keeps the test fast
    s = sentences_from_history(r.user_id.values, r.movie_id.values, r.ts.values, max_len=50)
    cfg = CBOWConfig(dim=8, window=2, loss=loss, epochs=3, batch_sentences=256, lr=0.02)
    res = train_cbow(s, int(ratings.movie_id.max()) + 1, cfg,
                     loop=LoopConfig(epochs=3, progress=False), device=torch.device("cpu"))
    losses = [h["train_loss"] for h in res.fit.history]
    assert losses[-1] < losses[0]
