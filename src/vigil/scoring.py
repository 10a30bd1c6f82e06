"""The rules every detector scores by, each written once: which normal footage is held out of fitting,
how a score component is calibrated and components fused, temporal smoothing, and the alert threshold.

Calibration turns a raw score component into "how unusual is this for normal footage": the
statistics come from normal frames only (held out of fitting), never from test videos, so a score
means the same thing in every video and can be used live. The alert threshold is the score that
held-out normal frames exceed at the rate the user accepts (``false_alarm_rate``).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter


def held_out_videos(n_videos: int, fraction: float, *, seed: int | None = None, minimum: int = 1) -> set[int]:
    """Indices of the whole training videos held out for calibration: a ``fraction`` of ``n_videos``
    (rounded, at least ``minimum``, never all of them), drawn by a seeded permutation when ``seed`` is
    given, else evenly spaced from the last video back. Fewer than two videos: none (an empty set;
    the caller says what it does then)."""
    if n_videos < 2:
        return set()
    n = max(minimum, int(round(fraction * n_videos)))
    if seed is not None:
        return {int(i) for i in np.random.default_rng(seed).permutation(n_videos)[:n]}
    n = min(n_videos - 1, n)
    return {int(i) for i in np.linspace(n_videos - 1, 0, n, endpoint=False).round()}


def held_out_tail(n_frames: int, fraction: float, keep: int) -> int:
    """Frames held out at the end of one video: the last ``fraction`` of it, when the rest still holds
    ``keep`` frames (one training clip), else none."""
    n_hold = int(np.floor(fraction * n_frames))
    return n_hold if n_frames - int(fraction * n_frames) >= keep else 0


def threshold(normal_scores: np.ndarray, false_alarm_rate: float) -> float:
    """The alert threshold: the score that a share ``false_alarm_rate`` of the held-out normal frames
    exceed (their ``1 - false_alarm_rate`` quantile)."""
    return float(np.quantile(np.asarray(normal_scores, dtype=np.float64), 1 - false_alarm_rate))


def normalise(raw: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(N, E)`` raw components -> robust z-scores with the held-out normal ``center`` and ``scale``."""
    return (raw - center) / scale


def fuse(z: np.ndarray, weights) -> np.ndarray:
    """``(N, E)`` normalised components -> ``(N,)`` their weighted sum."""
    return z @ np.asarray(weights, dtype=np.float64)


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
