"""moviegraph.graph: co-rating pair counts, PMI edges and graph statistics.

``load_graphframe(spark, wh)`` loads the written graph as a GraphFrame for ad-hoc
analysis (GraphFrames must be on the classpath).
"""

from typing import Any

__all__ = ["GraphFramesUnavailable", "load_graphframe"]


def __getattr__(name: str) -> Any:
    # Imported on first use: Spark tasks import this package's kernels on executors,
    # whose environment has no Delta Lake client (``moviegraph.graph.stats`` needs it).
    if name in __all__:
        from moviegraph.graph import stats

        return getattr(stats, name)
    raise AttributeError(f"module 'moviegraph.graph' has no attribute {name!r}")
