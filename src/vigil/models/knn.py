"""A nearest-neighbour density over descriptors of normal footage, shared by the motion models.

Shapes: ``N`` descriptors of ``D`` numbers. ``score(X)`` is the log mean distance to the ``k``
nearest normal rows after standardising each column on the normal data (higher = more unusual).
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors


class KnnBank:
    """Standardised kNN bank: ``score(X)`` = log mean distance to the ``k`` nearest normal rows."""

    def __init__(self, bank: np.ndarray, mean: np.ndarray, scale: np.ndarray, k: int):
        self.bank, self.mean, self.scale = bank, mean, scale            # (N, D), (D,), (D,)
        self.nn = NearestNeighbors(n_neighbors=min(k, len(bank)), algorithm="kd_tree").fit(bank)

    @classmethod
    def fit(cls, X: np.ndarray, k: int, size: int, rng: np.random.Generator,
            weights: np.ndarray | None = None, standard: np.ndarray | None = None) -> "KnnBank":
        """Columns standardised (then multiplied by ``weights``, a column's say in the distance) by the mean
        and spread of ``standard`` (default ``X``: rows added to ``X`` by an augmentation need not change
        the metric); at most ``size`` rows kept, a random subsample (bounded memory)."""
        ref = X if standard is None else standard
        mean, scale = ref.mean(0), np.maximum(ref.std(0), 1e-3)
        if weights is not None:
            scale = scale / np.maximum(weights, 1e-6)
        if len(X) > size:
            X = X[rng.choice(len(X), size, replace=False)]
        return cls(((X - mean) / scale).astype(np.float32), mean.astype(np.float32), scale.astype(np.float32), k)

    def score(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, np.float32)
        d, _ = self.nn.kneighbors((X - self.mean) / self.scale)
        return np.log(d.mean(1) + 1e-3).astype(np.float32)
