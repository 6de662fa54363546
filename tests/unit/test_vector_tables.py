"""Vector tables read as Arrow on the driver (evaluate, export) against plain Python."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from moviegraph.errors import InputError
from moviegraph.train.output import latest_runs, vector_table, vectors_from_table


def _table(rows: list[tuple[str, str, int, list[float]]]) -> pa.Table:
    return pa.table({"model": [r[0] for r in rows], "run_id": [r[1] for r in rows],
                     "movie_id": pa.array([r[2] for r in rows], pa.int32()),
                     "vector": pa.array([r[3] for r in rows], pa.list_(pa.float32()))})


def test_latest_runs_picks_each_models_largest_run_id():
    rows = [("mf", "20260101T000000-a", 1, [1.0]), ("mf", "20260102T000000-b", 1, [1.0]),
            ("cbow", "20251231T000000-c", 1, [1.0]), ("mf", "20251201T000000-d", 2, [1.0]),
            ("node2vec", "20251230T000000-e", 1, [1.0])]
    expected: dict[str, str] = {}
    for model, run_id, _, _ in rows:  # plain Python: max run id per model
        expected[model] = max(expected.get(model, run_id), run_id)
    found = latest_runs(_table(rows), [])
    assert found == expected
    # The train stage's order (node2vec first), not the alphabet: every stage lists the
    # models alike.
    assert list(found) == ["node2vec", "cbow", "mf"]
    assert list(latest_runs(_table(rows), ["mf", "node2vec"])) == ["node2vec", "mf"]
    assert latest_runs(_table(rows), ["mf"]) == {"mf": "20260102T000000-b"}
    with pytest.raises(InputError, match="softmax"):
        latest_runs(_table(rows), ["softmax"])


def test_vectors_from_table_splits_a_model_run_ids_ascending():
    rng = np.random.default_rng(1)
    parts, expected = [], {}
    for model in ("mf", "cbow"):
        ids = rng.permutation(50)[:30]
        vec = rng.standard_normal((30, 4)).astype(np.float32)
        parts.append(vector_table(model, "r1", "movie_id", ids, vec))
        expected[model] = sorted(zip(ids.tolist(), vec.tolist(), strict=True))
    table = pa.concat_tables(parts)
    for model, rows in expected.items():
        ids, matrix = vectors_from_table(table, model, "r1", "movie_id")
        assert ids.dtype == np.int64 and matrix.dtype == np.float32
        assert ids.tolist() == [i for i, _ in rows]
        assert matrix.tolist() == [v for _, v in rows]
    ids, matrix = vectors_from_table(table, "mf", "other-run", "movie_id")
    assert ids.size == 0 and matrix.shape[0] == 0


def test_vectors_from_table_rejects_duplicates_and_ragged_vectors():
    dup = _table([("mf", "r", 1, [1.0, 2.0]), ("mf", "r", 1, [3.0, 4.0])])
    with pytest.raises(InputError, match="duplicate"):
        vectors_from_table(dup, "mf", "r", "movie_id")
    ragged = _table([("mf", "r", 1, [1.0, 2.0]), ("mf", "r", 2, [3.0])])
    with pytest.raises(InputError, match="lengths"):
        vectors_from_table(ragged, "mf", "r", "movie_id")
