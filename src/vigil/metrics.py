"""Frame-level evaluation: ROC AUC (micro, per-video normalised, macro), average precision, EER.

Conventions, stated because papers mix them up:

* **micro AUC** pools the raw scores of all test frames of all videos. It is the only figure that
  a live system can reach, since it needs no knowledge of a video's future.
* **micro AUC, per-video normalised**: each video's scores are min-max scaled to [0, 1] first, then
  pooled. This is what most published Ped2/Avenue tables report; it uses each whole test video.
* **macro AUC**: the mean of per-video AUCs over the videos that contain both classes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from vigil.errors import VigilError


def minmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(), x.max()
    return np.zeros_like(x) if hi - lo < 1e-12 else (x - lo) / (hi - lo)


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rate where false positives equal false negatives, interpolated along the ROC curve."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    i = int(np.flatnonzero(fnr <= fpr)[0])  # exists: the last ROC point has fpr = 1
    if i == 0:
        return float(fpr[0])
    # linear interpolation between point i-1 (fnr > fpr) and i (fnr <= fpr)
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d0 / (d0 - d1)
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


@dataclass
class FrameMetrics:
    micro_auc: float
    micro_auc_video_norm: float
    macro_auc: float
    average_precision: float
    eer: float
    n_frames: int
    n_anomalous: int
    n_videos: int
    n_videos_in_macro: int

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        nan = lambda v: "n/a" if v != v else f"{v:.4f}"  # noqa: E731
        return "\n".join([
            f"frames: {self.n_frames} ({self.n_anomalous} anomalous) in {self.n_videos} videos",
            f"micro AUC (raw scores pooled over all frames)      {nan(self.micro_auc)}",
            f"micro AUC (each video min-max normalised first)    {nan(self.micro_auc_video_norm)}",
            f"macro AUC (mean over {self.n_videos_in_macro} videos with both classes)   {nan(self.macro_auc)}",
            f"average precision (anomalous = positive)           {nan(self.average_precision)}",
            f"equal error rate                                   {nan(self.eer)}",
        ])


def frame_metrics(scores: list[np.ndarray], labels: list[np.ndarray]) -> FrameMetrics:
    """Metrics over videos given per-video score and 0/1 label arrays (higher score = more anomalous)."""
    if len(scores) != len(labels):
        raise VigilError(f"{len(scores)} score arrays for {len(labels)} label arrays")
    for i, (s, y) in enumerate(zip(scores, labels)):
        if len(s) != len(y):
            raise VigilError(f"video {i}: {len(s)} scores but {len(y)} labels")
        if not np.all(np.isfinite(s)):
            raise VigilError(f"video {i}: scores contain NaN or infinity")
    y = np.concatenate(labels).astype(int)
    s = np.concatenate(scores).astype(np.float64)
    sn = np.concatenate([minmax(x) for x in scores])
    both = y.min() != y.max()
    per_video = [roc_auc_score(yy, ss) for ss, yy in zip(scores, labels) if np.min(yy) != np.max(yy)]
    return FrameMetrics(
        micro_auc=float(roc_auc_score(y, s)) if both else float("nan"),
        micro_auc_video_norm=float(roc_auc_score(y, sn)) if both else float("nan"),
        macro_auc=float(np.mean(per_video)) if per_video else float("nan"),
        average_precision=float(average_precision_score(y, s)) if both else float("nan"),
        eer=equal_error_rate(y, s) if both else float("nan"),
        n_frames=int(len(y)), n_anomalous=int(y.sum()), n_videos=len(scores),
        n_videos_in_macro=len(per_video),
    )


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Plain ROC AUC, NaN when only one class is present."""
    labels = np.asarray(labels)
    return float(roc_auc_score(labels, scores)) if labels.min() != labels.max() else float("nan")
