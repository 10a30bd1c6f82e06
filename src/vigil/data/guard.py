"""The frame guard: frames whose orientation or quality contradicts the normal training footage are
corrected before a detector scores them, so that a corrupted frame is not mistaken for an anomaly.

Shapes: ``T`` frames, ``H W`` the detector's own working size (the guard sees frames exactly as the
detector reads them), ``G`` the side of the orientation thumbnail.

Fitted on normal training frames alone, never on test footage:

* **Orientation.** The reference is the mean of the normal frames as ``G x G`` gray thumbnails, each
  standardised (zero mean, unit spread: brightness and contrast do not matter; noise and blur vanish
  at this size). A frame's evidence is ``m = (d - d_flip) / (d + d_flip)``, where ``d`` and
  ``d_flip`` are the distances of the frame and of its vertically flipped copy to the reference:
  ``m`` near -1 means "upright", near +1 "upside down". Calibration on normal videos held out of the
  reference: their confidence ``-m`` (and, by symmetry, ``+m`` of their flipped copies) says how
  decidable the scene is. A frame is turned back when ``m`` exceeds half the 1% quantile of that
  confidence; when 0.1% or more of the held-out frames would be misjudged (a scene that looks alike
  both ways up) orientation is left alone altogether.
* **Quality.** Noise (after Immerkær: the response to a Laplacian-difference kernel that cancels
  smooth image content, averaged over the quieter half of the pixels so that edges and texture stay
  out, scaled to a standard deviation) and sharpness (the share of gradient energy that a light
  re-blur removes: near 0 for a frame that is already blurred) of every training frame at the
  detector's resolution. A frame is out of range when its noise is above ``q + (q - median)`` (``q``
  the 99.9% quantile of the training frames: twice as far from typical as the most extreme one in a
  thousand), or its sharpness below the mirror limit at the 0.1% quantile. Such a frame is
  concealed by the nearest good frame at most ``max_gap`` frames before it (after it, when none is
  before), as a video decoder conceals a damaged frame. Why not denoise or sharpen it: the
  dense-flow ``hybrid`` sees motion wherever two consecutive frames differ in texture, and a
  repaired frame still does. On Ped2 training frames, the share of cells whose flow from the
  previous frame exceeds hybrid's moving threshold is 36% for a clean frame, 97% for a noisy one
  (sigma 15), still 94% after non-local-means denoising (95% after a Gaussian blur), 64% for a
  blurred one and 65% after unsharp masking. (On the corrupted development test split, for the
  record: with 30% noisy frames hybrid's AUC is 0.83, 0.76 after denoising, 0.98 with concealment.)
  A frame with no good neighbour that close is left as it is (a camera that is noisier all the time
  must not freeze the picture).

Frames the guard does not flag pass unchanged, so calibration (thresholds fitted on clean normal
frames) stays valid. Dropped and duplicated frames are not changed: every frame keeps its score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import cv2
import numpy as np

GRID = 32                 # thumbnail side: the scene's layout, not its detail
REBLUR_SIGMA = 1.0        # pixels at the detector's resolution
MAX_GAP = 3               # frames a concealing frame may lie from the one it replaces (0.3 s at 10 fps)
# mean of the lower half of |N(0, 1)|: 4 (phi(0) - phi(0.6745)); turns that half's mean into a sigma
_HALF_NORMAL_LOWER_MEAN = 0.3247
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)   # responds to noise, not to planes


class GuardReport(NamedTuple):
    """What the guard found in ``T`` frames and what it did."""

    evidence: np.ndarray      # (T,) m in [-1, 1]: > 0 when the flipped frame matches the scene better
    flipped: np.ndarray       # (T,) bool: turned back upright
    noise: np.ndarray         # (T,) estimated noise standard deviation, gray levels
    sharpness: np.ndarray     # (T,) share of gradient energy a light re-blur removes
    bad: np.ndarray           # (T,) bool: noise or sharpness outside the training range
    source: np.ndarray        # (T,) int: the frame whose (upright) pixels are used; itself unless concealed


def to_gray(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` or ``(T, H, W, 3)`` uint8 -> ``(T, H, W)`` uint8."""
    if frames.ndim == 3:
        return frames
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def thumbnails(gray: np.ndarray, grid: int = GRID) -> np.ndarray:
    """``(T, H, W)`` -> ``(T, G, G)`` float32, each standardised (zero mean, unit standard deviation)."""
    x = np.stack([cv2.resize(f, (grid, grid), interpolation=cv2.INTER_AREA) for f in gray]).astype(np.float32)
    x -= x.mean((1, 2), keepdims=True)
    return x / (x.std((1, 2), keepdims=True) + 1e-3)


def flip_evidence(thumbs: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(T, G, G)`` -> ``(T,)`` ``(d - d_flip) / (d + d_flip)``; positive = upside down."""
    d = ((thumbs - reference) ** 2).sum((1, 2))
    d_flip = ((thumbs[:, ::-1] - reference) ** 2).sum((1, 2))
    return (d - d_flip) / np.maximum(d + d_flip, 1e-9)


def noise_level(gray: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` uint8 -> ``(T,)`` noise standard deviation (Immerkær 1996), gray levels."""
    out = np.empty(len(gray))
    for i, f in enumerate(gray):
        r = np.abs(cv2.filter2D(f.astype(np.float32), -1, _KERNEL)[1:-1, 1:-1]).ravel()
        low = np.partition(r, r.size // 2)[: r.size // 2]     # the quieter half: edges and texture left out
        out[i] = low.mean() / (6.0 * _HALF_NORMAL_LOWER_MEAN)  # the kernel's noise gain is 6
    return out


def sharpness(gray: np.ndarray, sigma: float = REBLUR_SIGMA) -> np.ndarray:
    """``(T, H, W)`` uint8 -> ``(T,)``: 1 - gradient energy after a re-blur / before (0 = already blurred)."""
    def grad(x):
        return np.abs(cv2.Sobel(x, cv2.CV_32F, 1, 0)).mean() + np.abs(cv2.Sobel(x, cv2.CV_32F, 0, 1)).mean()
    out = np.empty(len(gray))
    for i, f in enumerate(gray):
        f = f.astype(np.float32)
        g = grad(f)
        out[i] = 1.0 - grad(cv2.GaussianBlur(f, (0, 0), sigma)) / max(g, 1e-6)
    return out


def _held_out(n: int) -> list[int]:
    """Evenly spaced indices of a fifth of ``n`` videos (at least one, never all)."""
    k = min(n - 1, max(1, round(0.2 * n)))
    return sorted({int(i) for i in np.linspace(n - 1, 0, k, endpoint=False).round()})


@dataclass
class FrameGuard:
    """Fitted state of the guard; :meth:`fit` builds it, :meth:`apply` uses it."""

    reference: np.ndarray             # (G, G) float32
    flip_margin: float
    flip_enabled: bool
    noise_limit: float
    sharp_limit: float
    max_gap: int = MAX_GAP
    diagnostics: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, videos: Sequence[np.ndarray], max_gap: int = MAX_GAP) -> "FrameGuard":
        """Fit on normal videos, each ``(T, H, W)`` or ``(T, H, W, 3)`` uint8 as the detector reads them."""
        grays = [to_gray(np.asarray(v)) for v in videos if len(v)]
        if not grays:
            raise ValueError("the frame guard needs at least one normal frame")
        thumbs = [thumbnails(g) for g in grays]
        if len(grays) >= 2:
            held = _held_out(len(grays))
            fit_t = np.concatenate([t for i, t in enumerate(thumbs) if i not in held])
            held_t = np.concatenate([thumbs[i] for i in held])
        else:                                  # one video: its last fifth is held out
            n = len(thumbs[0])
            cut = max(1, int(0.8 * n))
            fit_t, held_t = thumbs[0][:cut], (thumbs[0][cut:] if cut < n else thumbs[0])
        reference = fit_t.mean(0).astype(np.float32)
        upright = -flip_evidence(held_t, reference)                          # confidence, > 0 = right
        flipped = flip_evidence(held_t[:, ::-1], reference)                  # the same frames, upside down
        margin = 0.5 * float(np.quantile(upright, 0.01))
        enabled = bool(np.quantile(upright, 0.001) > 0 and margin > 0)
        gray_all = np.concatenate(grays)
        noise, sharp = noise_level(gray_all), sharpness(gray_all)
        n50, n_hi = np.median(noise), np.quantile(noise, 0.999)
        s50, s_lo = np.median(sharp), np.quantile(sharp, 0.001)
        diagnostics = {
            "frames": int(len(gray_all)), "held_out_frames": int(len(held_t)),
            "held_out_upright_kept": float(np.mean(upright > -margin)) if enabled else None,
            "held_out_flipped_found": float(np.mean(flipped > margin)) if enabled else None,
            "confidence_q001": float(np.quantile(upright, 0.001)), "confidence_median": float(np.median(upright)),
            "noise_median": float(n50), "noise_q999": float(n_hi),
            "sharpness_median": float(s50), "sharpness_q001": float(s_lo),
        }
        return cls(reference, margin if enabled else 1.0, enabled, float(n_hi + (n_hi - n50)),
                   float(s_lo - (s50 - s_lo)), max_gap, diagnostics)

    # --- use ----------------------------------------------------------------------------------
    def inspect(self, frames: np.ndarray) -> GuardReport:
        """Look at ``(T, H, W[, 3])`` uint8 frames; nothing is changed."""
        gray = to_gray(np.asarray(frames))
        evidence = flip_evidence(thumbnails(gray, self.reference.shape[0]), self.reference)
        flipped = (evidence > self.flip_margin) if self.flip_enabled else np.zeros(len(gray), bool)
        noise, sharp = noise_level(gray), sharpness(gray)                   # both blind to a vertical flip
        bad = (noise > self.noise_limit) | (sharp < self.sharp_limit)
        return GuardReport(evidence, flipped, noise, sharp, bad, self._sources(bad))

    def _sources(self, bad: np.ndarray) -> np.ndarray:
        """For each frame, the frame shown: itself, or for a bad one the nearest good frame within
        ``max_gap`` before it (live scoring has no future), else after it, else itself."""
        src = np.arange(len(bad))
        good = np.flatnonzero(~bad)
        for t in np.flatnonzero(bad):
            before = good[(good < t) & (good >= t - self.max_gap)]
            after = good[(good > t) & (good <= t + self.max_gap)]
            if len(before):
                src[t] = before[-1]
            elif len(after):
                src[t] = after[0]
        return src

    def apply(self, frames: np.ndarray, report: GuardReport | None = None) -> np.ndarray:
        """``(T, H, W[, 3])`` uint8 -> the same frames upright, out-of-range ones concealed
        (``report``: what :meth:`inspect` found in these frames, if already known)."""
        frames = np.asarray(frames)
        if len(frames) == 0:
            return frames
        rep = report if report is not None else self.inspect(frames)
        if not rep.flipped.any() and (rep.source == np.arange(len(frames))).all():
            return frames
        out = frames.copy()
        out[rep.flipped] = out[rep.flipped][:, ::-1]
        return np.ascontiguousarray(out[rep.source])

    def correct(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(T, H, W[, 3])`` uint8 -> (the frames upright and concealed as :meth:`apply` makes them,
        which of them were turned ``(T,)`` bool): a detector turns its maps back with the second."""
        report = self.inspect(frames)
        return self.apply(frames, report), report.flipped

    # --- persistence --------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays (for ``model.safetensors``) and JSON scalars (for ``config.json``)."""
        meta = {"grid": int(self.reference.shape[0]), "flip_margin": self.flip_margin,
                "flip_enabled": self.flip_enabled, "noise_limit": self.noise_limit,
                "sharp_limit": self.sharp_limit, "max_gap": self.max_gap, "diagnostics": self.diagnostics}
        return {"reference": np.ascontiguousarray(self.reference, np.float32)}, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict) -> "FrameGuard":
        ref = np.asarray(arrays["reference"], np.float32)
        if ref.shape != (meta["grid"], meta["grid"]):
            raise ValueError(f"guard reference has shape {ref.shape}, expected {meta['grid']}x{meta['grid']}")
        return cls(ref, float(meta["flip_margin"]), bool(meta["flip_enabled"]), float(meta["noise_limit"]),
                   float(meta["sharp_limit"]), int(meta.get("max_gap", MAX_GAP)), dict(meta.get("diagnostics", {})))


class GuardStream:
    """The guard for frames arriving one at a time (live scoring): each frame turned upright; an
    out-of-range one replaced by the last good frame when that came at most ``max_gap`` frames ago
    (as :meth:`FrameGuard.apply` does with the frames before it)."""

    def __init__(self, guard: FrameGuard):
        self.guard, self.last, self.since = guard, None, 0
        self.flipped = False        # whether the last frame given was turned upright

    def update(self, frame: np.ndarray) -> np.ndarray:
        """One ``(H, W[, 3])`` uint8 frame at the detector's working size -> the frame to score."""
        rep = self.guard.inspect(frame[None])
        self.flipped = bool(rep.flipped[0])
        if self.flipped:
            frame = np.ascontiguousarray(frame[::-1])
        if not rep.bad[0]:
            self.last, self.since = frame, 0
            return frame
        self.since += 1
        return self.last if self.last is not None and self.since <= self.guard.max_gap else frame
