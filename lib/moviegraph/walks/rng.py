"""Counter-based random streams for walks.

Each walk ``(start, round)`` owns a SplitMix64 stream whose initial state depends only on
``(seed, start, round)``.  Walks therefore come out identical however the starts are
batched, ordered, partitioned or retried, and whatever the number of threads.

SplitMix64 (Steele, Lea & Flood 2014) adds a fixed odd constant to the state per draw and
returns a bijective avalanche mix of it; its finaliser is also a good hash, so the three
key parts are folded in by repeated mixing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from moviegraph import numba_cache

numba_cache.install()  # before the @njit(cache=True) kernels below

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
# Distinct odd constants keep (seed, start, round) from colliding with a permutation of
# the same numbers (e.g. start=1, round=2 vs start=2, round=1).
_K_START = np.uint64(0xD1B54A32D192ED03)
_K_ROUND = np.uint64(0x8CB92BA72F3D8DD7)
_INV_2_53 = 1.0 / 9007199254740992.0


@njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijective 64-bit avalanche mix."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def stream_state(seed: int, start: int, round_: int) -> np.uint64:
    """Initial state of the stream of walk ``(start, round_)`` under global ``seed``.

    Depends on those three integers only (each taken modulo 2**64).
    """
    s = mix64(np.uint64(seed) + _GOLDEN)
    s = mix64(s ^ (np.uint64(start) * _K_START + _GOLDEN))
    s = mix64(s ^ (np.uint64(round_) * _K_ROUND + _GOLDEN))
    return s


@njit(cache=True, inline="always")
def next_uniform(state: np.uint64) -> tuple[np.uint64, float]:
    """Advance ``state`` one step; return ``(new_state, u)`` with ``u`` uniform in [0, 1).

    ``u`` has 53 random bits, so it is an exact multiple of 2**-53 and never equals 1.
    """
    state = np.uint64(state) + _GOLDEN  # cast: int64 + uint64 would promote to float64
    z = mix64(state)
    return state, float(z >> _S11) * _INV_2_53


@njit(cache=True)
def stream_uniforms(seed: int, start: int, round_: int, n: int) -> np.ndarray:
    """The first ``n`` uniforms of the stream of walk ``(start, round_)`` (for checks)."""
    state = stream_state(seed, start, round_)
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        state, out[i] = next_uniform(state)
    return out
