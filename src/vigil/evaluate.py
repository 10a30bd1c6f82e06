"""Evaluate an ``Id,Predicted`` CSV (and a boxes CSV) against a dataset's test labels and masks.

* frame level (:func:`evaluate_csv`): AUC, AP, EER (:mod:`vigil.metrics`);
* event level at a threshold (:func:`event_figures`): the alert events ``vigil watch`` would raise,
  against the labelled stretches (:mod:`vigil.events`);
* region level (:func:`boxes_rbdc`): RBDC of the boxes against the pixel masks (:mod:`vigil.regions`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from vigil.data import Dataset, load_dataset
from vigil.errors import VigilError
from vigil.events import EventMetrics, event_metrics
from vigil.io import frame_ids, read_boxes_csv, read_scores_csv
from vigil.metrics import FrameMetrics, frame_metrics
from vigil.regions import mask_boxes, no_boxes, rbdc_from_regions

#: the frame rate assumed when neither the dataset nor ``--fps`` says (UCSD Ped1/Ped2 are 10 fps)
DEFAULT_FPS = 10.0


def _labelled(data: str | Path) -> Dataset:
    ds = load_dataset(data)
    if not ds.has_labels:
        raise VigilError(f"{data}: dataset has no test labels ('{ds.layout}' layout); nothing to evaluate against")
    return ds


def scores_by_video(scores_csv: str | Path, data: str | Path) -> tuple[Dataset, list[np.ndarray]]:
    """The labelled test set of ``data`` and each test video's ``(T,)`` scores from ``scores_csv``.
    Every test frame must have exactly one score; Ids of other videos are an error, not ignored."""
    table = read_scores_csv(scores_csv)
    ds = _labelled(data)
    scores, used = [], set()
    for v in ds.test:
        ids = frame_ids(v.name, len(v))
        missing = [i for i in ids if i not in table]
        if missing:
            raise VigilError(f"{scores_csv}: no score for {len(missing)} frames of test video {v.name} "
                             f"(first: Id {missing[0]}); was it scored on {data}?")
        scores.append(np.array([table[i] for i in ids]))
        used.update(ids)
    extra = sorted(set(table) - used)
    if extra:
        raise VigilError(f"{scores_csv}: {len(extra)} Ids match no test frame of {data} (first: {extra[0]})")
    return ds, scores


def evaluate_csv(scores_csv: str | Path, data: str | Path) -> FrameMetrics:
    """Frame-level figures of a score CSV against the test labels of ``data``."""
    ds, scores = scores_by_video(scores_csv, data)
    return frame_metrics(scores, [v.labels for v in ds.test])


def dataset_fps(ds: Dataset) -> float | None:
    """The test videos' frame rate when they say (``Video.fps``, or a video file's header) and agree;
    None otherwise (folders of frames carry no rate)."""
    rates = set()
    for v in ds.test:
        fps = v.fps
        if fps is None and v.source is not None and Path(v.source).is_file():
            import cv2

            cap = cv2.VideoCapture(str(v.source))
            fps = cap.get(cv2.CAP_PROP_FPS) or None
            cap.release()
        if fps is None or not 0 < fps < 1000:
            return None
        rates.add(round(float(fps), 3))
    return rates.pop() if len(rates) == 1 else None


def event_figures(scores_csv: str | Path, data: str | Path, threshold: float, *, fps: float = DEFAULT_FPS,
                  min_frames: int = 3, gap_frames: int = 5) -> EventMetrics:
    """Event figures (:func:`vigil.events.event_metrics`: the rule of ``vigil watch``, causal median of
    3 included) of a score CSV at ``threshold`` against the test labels of ``data``."""
    ds, scores = scores_by_video(scores_csv, data)
    return event_metrics(scores, [v.labels for v in ds.test], threshold, fps=fps, min_frames=min_frames,
                         gap_frames=gap_frames, names=[v.name for v in ds.test])


def run_threshold(run: str | Path) -> float:
    """The calibrated ``threshold_`` a run folder saved (``config.json``'s ``fitted.threshold``), read
    without loading the model."""
    cfg = Path(run) / "config.json"
    if not cfg.is_file():
        raise VigilError(f"{cfg}: missing (is {run} a folder written by 'vigil train'?)")
    try:
        t = json.loads(cfg.read_text(encoding="utf-8")).get("fitted", {}).get("threshold")
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise VigilError(f"{cfg}: corrupt run configuration ({e.__class__.__name__})") from None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise VigilError(f"{cfg}: the run saved no calibrated threshold (retrain it with this vigil, "
                         f"or give --threshold)")
    return float(t)


def boxes_rbdc(boxes_csv: str | Path, data: str | Path, alpha: float = 0.1, *,
               dataset: Dataset | None = None) -> float:
    """RBDC (:mod:`vigil.regions`) of a boxes CSV against the pixel masks of ``data``'s test videos,
    over all their frames (``dataset``: ``data`` already loaded). Boxes with an Id that is no test
    frame of ``data`` are an error."""
    table = read_boxes_csv(boxes_csv)
    ds = dataset if dataset is not None else load_dataset(data)
    boxes, regions, used = [], [], set()
    for v in ds.test:
        mk = v.masks()
        if mk is None:
            raise VigilError(f"{data}: test video {v.name} has no pixel masks; RBDC needs them")
        ids = frame_ids(v.name, len(v))
        for i, k in zip(ids, mk):
            b = table.get(i, no_boxes())
            if len(b) and (b[:, 2].max() > k.shape[1] or b[:, 3].max() > k.shape[0]):
                raise VigilError(f"{boxes_csv}: a box of {i} reaches beyond the {k.shape[1]}x{k.shape[0]} "
                                 f"frame (coordinates are pixels of the original frame)")
            boxes.append(b)
            regions.append(mask_boxes(k))
        used.update(ids)
    extra = sorted(set(table) - used)
    if extra:
        raise VigilError(f"{boxes_csv}: boxes for {len(extra)} Ids that match no test frame of {data} "
                         f"(first: {extra[0]})")
    return rbdc_from_regions(boxes, regions, alpha)


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


def pixel_auc_from_folder(maps_dir: str | Path, data: str | Path, *, dataset: Dataset | None = None) -> float:
    """Pixel AUC of maps saved by ``vigil score --maps DIR`` against the dataset's pixel masks
    (``dataset``: ``data`` already loaded)."""
    ds = dataset if dataset is not None else load_dataset(data)
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
