"""Arrow -> numpy conversions of the trainer's data path, against plain Python."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from moviegraph.train.data import Vocab, padded_lists


def test_padded_lists_matches_a_python_loop():
    rng = np.random.default_rng(0)
    rows = [list(rng.integers(0, 100, rng.integers(0, 9))) for _ in range(200)]
    chunked = pa.chunked_array([pa.array(rows[:70], pa.list_(pa.int32())),
                                pa.array(rows[70:], pa.list_(pa.int32()))])
    got = padded_lists(chunked)
    width = max(len(r) for r in rows)
    expected = np.full((len(rows), width), -1, dtype=np.int32)
    for i, r in enumerate(rows):
        expected[i, : len(r)] = r
    assert got.dtype == np.int32 and np.array_equal(got, expected)
    assert np.array_equal(padded_lists(chunked, width=3), expected[:, :3])


def test_padded_lists_of_a_sliced_array_respects_offsets():
    arr = pa.array([[1, 2], [3], [4, 5, 6]], pa.list_(pa.int32())).slice(1)
    assert padded_lists(arr).tolist() == [[3, -1, -1], [4, 5, 6]]


def test_vocab_maps_ids_to_tokens_and_marks_unknown():
    vocab = Vocab(np.array([50, 10, 30], dtype=np.int32))  # token t -> movie id
    assert vocab.size == 3
    assert vocab.tokens(np.array([10, 30, 50, 99, 0])).tolist() == [1, 2, 0, -1, -1]
    assert Vocab(np.array([], dtype=np.int32)).tokens(np.array([1])).tolist() == [-1]
