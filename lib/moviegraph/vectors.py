"""Vector tables (``embeddings``, ``user_embeddings``) as numpy, from Arrow.

One place for the checks every reader of a vector table makes, whether the rows came from
a Spark DataFrame (:mod:`moviegraph.similarity.joins`) or straight from Delta as Arrow
(``evaluate``, ``export``). Only numpy and pyarrow: it is imported on executors too.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moviegraph.config import MODELS
from moviegraph.errors import InputError


def pick_runs(found: dict[str, str], models: list[str], where: str = "") -> dict[str, str]:
    """``found`` (``{model: run_id}``) restricted to ``models`` when given, in the train
    stage's model order (:data:`moviegraph.config.MODELS`: node2vec, the default model,
    first; a name outside it after them, by name), so every stage's output, summary and
    report lists the models alike.

    Raises:
        InputError: a requested model is not in ``found``; ``where`` says what was asked
        for (e.g. `` with run_id '...'``).
    """
    if models:
        missing = [m for m in models if m not in found]
        if missing:
            raise InputError(f"model(s) {', '.join(missing)} not found in embeddings{where} "
                             f"(available: {', '.join(sorted(found)) or 'none'})")
        found = {m: found[m] for m in models}
    return dict(sorted(found.items(), key=lambda item: (
        MODELS.index(item[0]) if item[0] in MODELS else len(MODELS), item[0])))


def vectors_from_arrow(table: pa.Table, id_col: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ids ascending int64, float32 matrix)`` from a table with ``id_col`` and ``vector``.

    Raises:
        InputError: duplicate ids, null vectors or vectors of different lengths.
    """
    ids = table.column(id_col).to_numpy().astype(np.int64)
    vec = table.column("vector").combine_chunks()
    if vec.null_count:
        raise InputError(f"{vec.null_count} null vector(s) in the embeddings")
    lengths = pc.list_value_length(vec).to_numpy(zero_copy_only=False)
    if ids.size and (lengths.min() != lengths.max() or lengths[0] == 0):
        raise InputError(f"embedding vectors have lengths {lengths.min()}..{lengths.max()}")
    dim = int(lengths[0]) if ids.size else 0
    matrix = vec.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    matrix = matrix.reshape(ids.shape[0], dim)
    order = np.argsort(ids, kind="stable")
    ids, matrix = ids[order], matrix[order]
    if ids.size > 1 and (np.diff(ids) == 0).any():
        raise InputError(f"duplicate {id_col} in the embeddings")
    return ids, np.ascontiguousarray(matrix)
