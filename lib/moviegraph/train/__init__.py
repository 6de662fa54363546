"""moviegraph.train: PyTorch trainers (skip-gram, CBOW, MF), the shared loop, device choice.

Modules: ``device`` (CUDA/CPU, seeding), ``loop`` (epochs, early stopping, checkpoints,
history), ``skipgram`` (node2vec SGNS on walks), ``cbow`` (user histories), ``mf`` (biased
matrix factorisation). Import from the modules; this package keeps import light.
"""
