"""Regions: boxes from anomaly maps and pixel masks, and the region-based detection criterion (RBDC).

A **box** is one row ``(x0, y0, x1, y1, score)`` in pixels of the original frame, ``x1`` and ``y1``
exclusive (a box of one pixel at column 4, row 7 is ``(4, 7, 5, 8)``); a frame's boxes are a
``(K, 5)`` float32 array, ``K`` = 0 when it has none. Higher score = more anomalous.

**RBDC** (Ramachandra and Jones, "Street Scene", WACV 2020), as computed by :func:`rbdc`:

* the ground-truth regions of a frame are the 8-connected components of its pixel mask, each
  taken as its bounding box (:func:`mask_boxes`);
* at a score threshold ``t`` only the boxes scoring at least ``t`` count; a ground-truth region is
  *detected* when one of them has IoU >= ``alpha`` (0.1) with it; a box with IoU < ``alpha`` with
  every ground-truth region of its frame is a *false positive region*;
* region detection rate = detected regions / all ground-truth regions; false positives per frame
  = false positive regions / all frames (frames without ground truth included);
* sweeping ``t`` down over every box score traces the rate against false positives per frame from
  (0, 0), points joined by straight lines; RBDC is the area under that curve for false positives
  per frame from 0 to 1 (the curve is cut at 1, and held at its last rate up to 1 when it stops
  earlier), so it lies in [0, 1].

Pure NumPy and SciPy; nothing here reads a file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from vigil.errors import VigilError

_EIGHT = np.ones((3, 3), dtype=bool)     # 8-connectivity


def no_boxes() -> np.ndarray:
    return np.zeros((0, 5), dtype=np.float32)


def boxes_from_map(amap: np.ndarray, level: float) -> np.ndarray:
    """``(K, 5)`` boxes of an ``(H, W)`` anomaly map: one per 8-connected component of ``amap > level``,
    its bounding box and, as its score, the map's maximum inside the component. Sorted by score,
    highest first."""
    amap = np.asarray(amap, dtype=np.float32)
    if amap.ndim != 2:
        raise VigilError(f"boxes_from_map: expected an (H, W) map, got shape {amap.shape}")
    lab, n = ndimage.label(amap > level, structure=_EIGHT)
    if n == 0:
        return no_boxes()
    peaks = ndimage.maximum(amap, lab, index=np.arange(1, n + 1))
    rows = [(sx.start, sy.start, sx.stop, sy.stop, p)
            for (sy, sx), p in zip(ndimage.find_objects(lab), np.atleast_1d(peaks))]
    out = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    return out[np.argsort(-out[:, 4], kind="stable")]


def mask_boxes(mask: np.ndarray) -> np.ndarray:
    """``(G, 4)`` bounding boxes ``(x0, y0, x1, y1)`` of the 8-connected components of an ``(H, W)``
    bool mask: a frame's ground-truth regions."""
    lab, n = ndimage.label(np.asarray(mask, dtype=bool), structure=_EIGHT)
    if n == 0:
        return np.zeros((0, 4), dtype=np.float32)
    return np.asarray([(sx.start, sy.start, sx.stop, sy.stop) for sy, sx in ndimage.find_objects(lab)],
                      dtype=np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(K, G)`` intersection over union of boxes ``a (K, >=4)`` and ``b (G, >=4)`` (x1, y1 exclusive)."""
    a, b = np.asarray(a, np.float64)[:, None, :4], np.asarray(b, np.float64)[None, :, :4]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def rbdc_curve(boxes_by_frame: Sequence[np.ndarray], regions_by_frame: Sequence[np.ndarray],
               alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """False positives per frame and region detection rate at every box-score threshold, from (0, 0)
    (see the module docstring). ``regions_by_frame``: each frame's ``(G, 4)`` ground-truth boxes."""
    if not 0 < alpha <= 1:
        raise VigilError(f"RBDC: alpha {alpha!r} must be an IoU in (0, 1]")
    if len(boxes_by_frame) != len(regions_by_frame):
        raise VigilError(f"{len(boxes_by_frame)} frames of boxes for {len(regions_by_frame)} frames of ground truth")
    fp_scores, found_at = [], []         # score of each false positive box; best matching score per region
    for boxes, regions in zip(boxes_by_frame, regions_by_frame):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
        regions = np.asarray(regions, np.float64).reshape(-1, 4)
        hit = box_iou(boxes, regions) >= alpha if len(boxes) and len(regions) else np.zeros((len(boxes), len(regions)), bool)
        fp_scores.append(boxes[~hit.any(axis=1), 4])
        best = np.where(hit, boxes[:, 4:5], -np.inf).max(axis=0) if len(boxes) else np.full(len(regions), -np.inf)
        found_at.append(best)
    fp = np.sort(np.concatenate(fp_scores + [np.zeros(0)]))
    found = np.sort(np.concatenate(found_at + [np.zeros(0)]))
    n_frames, n_regions = len(boxes_by_frame), len(found)
    if n_regions == 0:
        raise VigilError("RBDC needs ground-truth regions, and no frame's mask has any")
    thresholds = np.unique(np.concatenate([fp, found[np.isfinite(found)]]))[::-1]
    # at threshold t: the boxes scoring >= t count
    fppf = (len(fp) - np.searchsorted(fp, thresholds, side="left")) / max(n_frames, 1)
    rate = (n_regions - np.searchsorted(found, thresholds, side="left")) / n_regions
    return np.concatenate([[0.0], fppf]), np.concatenate([[0.0], rate])


def rbdc_from_regions(boxes_by_frame: Sequence[np.ndarray], regions_by_frame: Sequence[np.ndarray],
                      alpha: float = 0.1, max_fppf: float = 1.0) -> float:
    """RBDC from each frame's ``(K, 5)`` boxes and ``(G, 4)`` ground-truth boxes."""
    x, y = rbdc_curve(boxes_by_frame, regions_by_frame, alpha)
    past = np.flatnonzero(x > max_fppf)
    if len(past):                         # cut at max_fppf, linearly between the points either side
        j = past[0]
        y_end = y[j - 1] + (y[j] - y[j - 1]) * (max_fppf - x[j - 1]) / (x[j] - x[j - 1])
        x, y = x[:j], y[:j]
    else:                                 # the curve stops before max_fppf: held at its last rate
        y_end = y[-1]
    x, y = np.append(x, max_fppf), np.append(y, y_end)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2) / max_fppf)


def rbdc(boxes_by_frame: Sequence[np.ndarray], masks_by_frame: Sequence[np.ndarray], alpha: float = 0.1) -> float:
    """RBDC of each frame's ``(K, 5)`` boxes against its ``(H, W)`` pixel mask (see the module docstring)."""
    return rbdc_from_regions(boxes_by_frame, [mask_boxes(m) for m in masks_by_frame], alpha)
