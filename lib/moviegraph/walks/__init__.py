"""moviegraph.walks: node2vec walks (numba kernel, exact reference)."""

from moviegraph.walks.csr import CSRGraph
from moviegraph.walks.exact import first_step_probs, second_order_probs, transition_chi_square
from moviegraph.walks.kernel import random_walks, validate_walk_params

__all__ = [
    "CSRGraph",
    "first_step_probs",
    "random_walks",
    "second_order_probs",
    "transition_chi_square",
    "validate_walk_params",
]
