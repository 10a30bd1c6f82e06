"""Evaluate an ``Id,Predicted`` CSV against a dataset's test labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.data import load_dataset
from vigil.errors import VigilError
from vigil.io import frame_ids, read_scores_csv
from vigil.metrics import FrameMetrics, frame_metrics


def evaluate_csv(scores_csv: str | Path, data: str | Path) -> FrameMetrics:
    """Every test frame must have exactly one score; Ids of other videos are an error, not ignored."""
    table = read_scores_csv(scores_csv)
    ds = load_dataset(data)
    if not ds.has_labels:
        raise VigilError(f"{data}: dataset has no test labels ('{ds.layout}' layout); nothing to evaluate against")
    scores, labels, used = [], [], set()
    for v in ds.test:
        ids = frame_ids(v.name, len(v))
        missing = [i for i in ids if i not in table]
        if missing:
            raise VigilError(f"{scores_csv}: no score for {len(missing)} frames of test video {v.name} "
                             f"(first: Id {missing[0]}); was it scored on {data}?")
        scores.append(np.array([table[i] for i in ids]))
        labels.append(v.labels)
        used.update(ids)
    extra = sorted(set(table) - used)
    if extra:
        raise VigilError(f"{scores_csv}: {len(extra)} Ids match no test frame of {data} (first: {extra[0]})")
    return frame_metrics(scores, labels)
