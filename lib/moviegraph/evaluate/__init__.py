"""moviegraph.evaluate: scoring every model and baseline by EVALUATION.md's protocol.

The protocol itself (splits, metrics, the data in dense positions, the grid search) is
:mod:`moviegraph.protocol`, shared with the trainers; here are the baselines
(:mod:`~moviegraph.evaluate.baselines`), the scoring of models and baselines
(:mod:`~moviegraph.evaluate.scoring`) and the HTML report (``report*``). The stage is
:mod:`moviegraph.stages.evaluate`.
"""
