"""Post-processing shared by every detector: calibration against normal data and temporal smoothing.

Calibration turns a raw score component into "how unusual is this for normal footage": the
statistics come from normal frames only (held out of fitting), never from test videos, so a score
means the same thing in every video and can be used live.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter


def robust_stats(x: np.ndarray, axis=0) -> tuple[np.ndarray, np.ndarray]:
    """Median and a MAD-based scale (consistent with the standard deviation for Gaussian data)."""
    med = np.median(x, axis=axis)
    mad = np.median(np.abs(x - np.expand_dims(med, axis)), axis=axis) * 1.4826
    std = np.std(x, axis=axis)
    scale = np.where(mad > 1e-8, mad, np.where(std > 1e-8, std, 1.0))
    return med.astype(np.float32), scale.astype(np.float32)


def adaptive_median(scores: np.ndarray, min_window: int = 3, max_window: int = 9) -> np.ndarray:
    """Median filter whose window grows with the frame-to-frame noise of the signal.

    The noise level is the median absolute first difference relative to the signal's spread
    (interquartile range): a smooth curve keeps a 3-frame window, a jittery one gets up to
    ``max_window``. Causal-enough for live use: the delay is half a window.
    """
    s = np.asarray(scores, dtype=np.float64)
    if len(s) < 3:
        return s.copy()
    spread = np.subtract(*np.percentile(s, [75, 25]))
    jitter = np.median(np.abs(np.diff(s)))
    ratio = 0.0 if spread < 1e-12 else min(1.0, jitter / spread)
    w = int(round(min_window + ratio * (max_window - min_window)))
    w = min(w | 1, len(s) if len(s) % 2 else len(s) - 1)
    return median_filter(s, size=w, mode="nearest")


def gaussian_smooth(scores: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    s = np.asarray(scores, dtype=np.float64)
    return s.copy() if sigma <= 0 or len(s) < 2 else gaussian_filter1d(s, sigma, mode="nearest")
