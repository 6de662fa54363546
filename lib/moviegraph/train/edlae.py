"""Low-rank EDLAE (Steck 2020, "Autoencoders that don't overfit towards the Identity"):
movie and user embeddings in closed form.

A linear autoencoder ``X -> X B`` with ``B = W V^T`` of rank ``dim``, trained with
*emphasized* dropout (input movies dropped with probability ``p``, only dropped ones asked
for), has in expectation the objective

    ||X - X B||_F^2 + ||Lambda^(1/2) B||_F^2,   Lambda = p/(1-p) diag(G) + lam I,  G = X^T X

(the ``lam`` ridge added for conditioning). With ``A = G + Lambda`` it equals, up to a
constant, ``||A^(1/2) B - A^(-1/2) G||_F^2``, so the best rank-``dim`` ``B`` is
``A^(-1/2) C_dim`` with ``C_dim`` the truncated SVD ``U S V^T`` of ``C = A^(-1/2) G``
(Eckart-Young). Hence:

    movie (output) vectors   V                    (n_items, dim)
    input movie factors      W = A^(-1/2) U S      (n_items, dim)
    user vectors             x_u W                (sum of the user's input factors)
    score(u, i)              x_u W . v_i

On ml-100k's ranking split it ranks above EASE (benchmarks/quality_ml100k.py), with EASE's
cost: one ``n_items x n_items`` eigendecomposition and SVD, right for catalogues of up to
~10-20k movies. Its inputs are dense positions in a CSR user x movie matrix; only which
entries are stored matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from moviegraph.config.models import EDLAEConfig
from moviegraph.protocol.metrics import binarize, ranking_metrics
from moviegraph.protocol.tuning import grid_search


@dataclass
class Decomposition:
    """``A^(-1/2)`` and the SVD of ``C = A^(-1/2) G``: every rank from one computation."""

    x: sp.csr_matrix
    a_inv_sqrt: np.ndarray
    u: np.ndarray
    s: np.ndarray
    vt: np.ndarray

    def result(self, dim: int) -> EDLAEResult:
        """The rank-``dim`` model (``dim`` capped at the number of movies)."""
        k = min(dim, len(self.s))
        w = self.a_inv_sqrt @ (self.u[:, :k] * self.s[:k])
        return EDLAEResult(input_factors=w, item_vectors=np.ascontiguousarray(self.vt[:k].T),
                           x=self.x)


def decompose(train: sp.spmatrix, dropout: float, lam: float) -> Decomposition:
    """The rank-independent part of :func:`train_edlae` (float64)."""
    x = binarize(train)
    g = (x.T @ x).toarray()
    a = g + np.diag(dropout / (1 - dropout) * np.diag(g) + lam)
    s, q = np.linalg.eigh(a)  # A is symmetric positive definite: s > 0
    a_inv_sqrt = (q / np.sqrt(s)) @ q.T
    u, sv, vt = np.linalg.svd(a_inv_sqrt @ g)
    return Decomposition(x=x, a_inv_sqrt=a_inv_sqrt, u=u, s=sv, vt=vt)


@dataclass
class EDLAEResult:
    """A fitted low-rank EDLAE: ``score(u, i) = (x_u W) . v_i``."""

    input_factors: np.ndarray  # W (n_items, dim)
    item_vectors: np.ndarray  # V (n_items, dim): the movie embeddings
    x: sp.csr_matrix  # binary train matrix the user vectors come from

    def user_vectors(self, users: np.ndarray | None = None) -> np.ndarray:
        """``x_u W`` for the given user positions (default all)."""
        x = self.x if users is None else self.x[np.asarray(users)]
        return np.asarray(x @ self.input_factors)

    def weights(self) -> np.ndarray:
        """The item-item matrix ``B = W V^T``."""
        return self.input_factors @ self.item_vectors.T

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items): a score function for ``ranking_metrics``."""
        return self.user_vectors(users) @ self.item_vectors.T


def train_edlae(train: sp.spmatrix, cfg: EDLAEConfig | None = None) -> EDLAEResult:
    """Fit low-rank EDLAE in closed form on the stored entries of ``train``."""
    cfg = cfg or EDLAEConfig()
    return decompose(train, cfg.dropout, cfg.lam).result(cfg.dim)


DEFAULT_DIMS: tuple[int, ...] = (64, 128, 256, 512)
DEFAULT_DROPOUTS: tuple[float, ...] = (0.1, 0.33)
DEFAULT_LAMS: tuple[float, ...] = (100.0, 300.0)


@dataclass(frozen=True)
class EDLAETuning:
    """Outcome of :func:`tune_edlae`: best config and validation Recall@k of each."""

    best: EDLAEConfig
    recall: dict[tuple[int, float, float], float]


def tune_edlae(
    fit: sp.spmatrix,
    validation: sp.spmatrix,
    dims: Iterable[int] = DEFAULT_DIMS,
    dropouts: Iterable[float] = DEFAULT_DROPOUTS,
    lams: Iterable[float] = DEFAULT_LAMS,
    k: int = 20,
) -> EDLAETuning:
    """Grid search by validation Recall@k (ties: the smaller dim, then dropout, then lam).

    Args:
        fit: train part minus a validation cut; validation: that cut (relevant >= 4).
    """
    # One decomposition per (dropout, lam) serves every rank: the candidates come ordered
    # so that each is computed once.
    candidates = [(dim, p, lam) for p in sorted(set(dropouts)) for lam in sorted(set(lams))
                  for dim in sorted(set(dims))]
    current: dict[tuple[float, float], Decomposition] = {}

    def recall(c: tuple[int, float, float]) -> float:
        dim, p, lam = c
        if (p, lam) not in current:
            current.clear()
            current[(p, lam)] = decompose(fit, p, lam)
        dec = current[(p, lam)]
        return ranking_metrics(dec.result(dim), dec.x, validation, k=k).recall

    grid = grid_search(candidates, recall)  # one decomposition serves several candidates
    dim, p, lam = grid.best
    return EDLAETuning(best=EDLAEConfig(dim=dim, dropout=p, lam=lam), recall=grid.scores)
