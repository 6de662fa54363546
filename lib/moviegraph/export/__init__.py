"""moviegraph.export: Embedding Projector files of a model's vectors (``projector``).

The stage is :mod:`moviegraph.stages.export`.
"""
