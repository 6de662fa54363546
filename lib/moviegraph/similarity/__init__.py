"""moviegraph.similarity: exact top-k search (``topk``) and its Spark joins (``joins``).

The stage is :mod:`moviegraph.stages.similar`.
"""
