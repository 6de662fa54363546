"""moviegraph.graph: co-rating pair counts, PMI edges and graph statistics.

``load_graphframe(spark, wh)`` loads the written graph as a GraphFrame for ad-hoc
analysis (GraphFrames must be on the classpath).
"""

from moviegraph.graph.stats import GraphFramesUnavailable, load_graphframe

__all__ = ["GraphFramesUnavailable", "load_graphframe"]
