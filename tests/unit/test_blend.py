"""The blend model: its dot product is the weighted sum of its parts' cosines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moviegraph.config import Config, ConfigError, load
from moviegraph.train.blend import blend_vectors
from moviegraph.train.loop import FitResult
from moviegraph.train.models import Trained, blend_of


def _cosine(a: list[float], b: list[float]) -> float:
    """Plain-Python cosine (0 when either side is zero)."""
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na and nb else 0.0


def test_blend_dot_is_the_weighted_sum_of_the_parts_cosines():
    rng = np.random.default_rng(3)
    ids_a = np.array([5, 1, 9, 3])
    ids_b = np.array([9, 3, 5, 7])  # 1 has no cbow-like vector, 7 no node2vec-like one
    a = rng.normal(size=(4, 6))
    b = rng.normal(size=(4, 3)) * 10.0  # scale must not matter: cosines
    ids, v = blend_vectors([(ids_a, a), (ids_b, b)], [3.0, 1.0])
    assert ids.tolist() == [1, 3, 5, 7, 9] and v.shape == (5, 9) and v.dtype == np.float32
    va = {int(m): a[i].tolist() for i, m in enumerate(ids_a)}
    vb = {int(m): b[i].tolist() for i, m in enumerate(ids_b)}
    for i, x in enumerate(ids.tolist()):
        for j, y in enumerate(ids.tolist()):
            want = 0.0
            if x in va and y in va:
                want += 0.75 * _cosine(va[x], va[y])
            if x in vb and y in vb:
                want += 0.25 * _cosine(vb[x], vb[y])
            assert float(v[i] @ v[j]) == pytest.approx(want, abs=1e-6)


def test_blend_rows_present_in_every_part_are_unit_length():
    rng = np.random.default_rng(0)
    ids = np.arange(10)
    _, v = blend_vectors([(ids, rng.normal(size=(10, 4))), (ids, rng.normal(size=(10, 2)))],
                         [0.5, 0.2])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("parts, weights, message", [
    ([], [], "no parts"),
    ([(np.arange(2), np.ones((2, 2)))], [1.0, 1.0], "2 weight(s) for 1 part(s)"),
    ([(np.arange(2), np.ones((2, 2)))], [0.0], "weights must be > 0"),
    ([(np.array([1, 1]), np.ones((2, 2)))], [1.0], "one vector per distinct movie id"),
    ([(np.arange(3), np.ones((2, 2)))], [1.0], "one vector per distinct movie id"),
])
def test_blend_rejects_bad_parts(parts, weights, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        blend_vectors(parts, weights)


def test_blend_of_uses_each_parts_list_columns_only():
    """mf's trailing bias columns (vector_layout full: 3) stay out of the blend's cosine."""
    rng = np.random.default_rng(1)
    ids = np.array([2, 4, 6], np.int32)
    n2v = Trained("node2vec", ids, rng.normal(size=(3, 5)).astype(np.float32), FitResult(), 0.0)
    mf = Trained("mf", ids, rng.normal(size=(3, 7)).astype(np.float32), FitResult(), 0.0,
                 notes={"vector_layout": "full"})
    cfg = load([], ["train.models=node2vec,mf,blend", "train.blend.models=mf,node2vec",
                    "train.blend.weights=1,1"])
    b = blend_of([n2v, mf], cfg)
    assert b.model == "blend" and b.vectors.shape == (3, 4 + 5)
    assert b.notes["parts"] == {"mf": 0.5, "node2vec": 0.5}
    want = 0.5 * _cosine(mf.vectors[0, :4].tolist(), mf.vectors[1, :4].tolist()) \
        + 0.5 * _cosine(n2v.vectors[0].tolist(), n2v.vectors[1].tolist())
    assert float(b.vectors[0] @ b.vectors[1]) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("override, message", [
    (["train.models=node2vec,blend"], "models includes blend but not its part(s) cbow"),
    (["train.blend.weights=1"], "[train.blend] weights has 1 value(s) for 2 model(s)"),
    (["train.blend.weights=0.5,0"], "train.blend.weights = 0.0: must be > 0.0"),
    (["train.blend.models=cbow,cbow", "train.blend.weights=1,1"], "a model is named twice"),
    # softmax's trailing bias column would enter the blend's cosine: not a part.
    (["train.blend.models=softmax,cbow"], "train.blend.models = 'softmax': must be one of"),
])
def test_blend_config_errors_name_the_setting(override, message):
    with pytest.raises(ConfigError) as err:
        load([], override)
    assert message in str(err.value)


def test_blend_is_opt_in_and_loads_with_its_parts():
    assert "blend" not in Config().train.models
    cfg = load([], ["train.models=node2vec,cbow,blend"])
    assert set(cfg.train.blend.models) <= set(cfg.train.models)
