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


def pixel_auc(maps: list[np.ndarray], masks: list[np.ndarray], size: tuple[int, int] = (120, 80)) -> float:
    """Pixel-level ROC AUC: every pixel of every test frame pooled, anomaly map against the mask.

    Maps and masks are resized to ``size`` (W, H) first (area for maps, nearest for masks) to bound
    memory; the figure is pixel-wise, not the UCSD "40% of the anomalous pixels" frame criterion.
    """
    import cv2
    from sklearn.metrics import roc_auc_score

    ys, ss = [], []
    for m, k in zip(maps, masks):
        if len(m) != len(k):
            raise VigilError(f"{len(m)} anomaly maps for {len(k)} masks")
        ss.append(np.stack([cv2.resize(x.astype(np.float32), size, interpolation=cv2.INTER_AREA) for x in m]).ravel())
        ys.append(np.stack([cv2.resize(x.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) for x in k]).ravel())
    y, s = np.concatenate(ys), np.concatenate(ss)
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def pixel_auc_from_folder(maps_dir: str | Path, data: str | Path) -> float:
    """Pixel AUC of maps saved by ``vigil score --maps DIR`` against the dataset's pixel masks."""
    ds = load_dataset(data)
    maps, masks = [], []
    for v in ds.test:
        mk = v.masks()
        if mk is None:
            raise VigilError(f"{data}: test video {v.name} has no pixel masks; pixel AUC needs them")
        f = Path(maps_dir) / v.name / "maps.npz"
        if not f.is_file():
            raise VigilError(f"{f}: missing (score with --maps {maps_dir} first)")
        m = np.load(f)["maps"].astype(np.float32)
        if m.shape != mk.shape:
            raise VigilError(f"{f}: maps of shape {m.shape} but the masks of video {v.name} are {mk.shape}")
        maps.append(m)
        masks.append(mk)
    return pixel_auc(maps, masks)
