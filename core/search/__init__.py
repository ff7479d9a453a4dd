"""Hyperparameter search, LSTM against GRU against RNN (Optuna), on one machine or many.

- `space.py`: each task's search space, the sampler that gives every cell the same number of
  trials, and the pruner that compares a trial only with its own cell's;
- `storage.py`: where studies live (a SQLite file by default, or PostgreSQL), study names,
  and which task a study was made for;
- `worker.py`: a worker that runs trials of one study (`python -m core.search worker`,
  `__main__.py`); any number of them may share a study;
- `results.py`: a study read back: its trials, the best of each cell, their saved models;
- `local.py`: searches a server runs itself, with worker processes in its training slots.

Imported only by the Search page and the worker command: the app's cold start does not pay for
Optuna.
"""
