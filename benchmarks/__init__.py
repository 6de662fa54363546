"""Benchmarks: scripts that print figures, run from the project root as modules, e.g.
``.venv/bin/python -m benchmarks.quality_ml100k --quick``.

Shared pieces live in modules of this package: :mod:`benchmarks.data` (MovieLens 100K
fetched or from a folder, in the protocol's positions) and :mod:`benchmarks.tree_rss`
(peak memory of a process tree).
"""
