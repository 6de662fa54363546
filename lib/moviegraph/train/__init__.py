"""moviegraph.train: the models and their trainers, the shared loop, device choice.

The model registry is :mod:`~moviegraph.train.models` (each model's inputs, distributed or
not, and ``fit``), fed by :mod:`~moviegraph.train.data` (tables -> numpy, the splits' train
parts) and written by :mod:`~moviegraph.train.output`; :mod:`~moviegraph.train.checkpoints`
keeps their checkpoint folders. The trainers: ``skipgram`` (node2vec SGNS on walks),
``cbow`` (user histories), ``mf`` / ``bpmf`` / ``distributed`` (biased matrix
factorisation by Adam, Gibbs sampling, DDP), ``softmax`` (retrieval model), ``edlae``
(closed form); ``scorers`` / ``tower`` (item-embedding models' own ranking scorers);
``loop`` (epochs, early stopping, checkpoints, history); ``device`` (CUDA/CPU, seeding).
Their settings dataclasses are :mod:`moviegraph.config.models`. Import from the modules;
this package keeps import light.
"""
