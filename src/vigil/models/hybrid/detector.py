"""``hybrid``: motion-first anomaly detection from dense optical flow, on a CPU.

Shapes: ``T`` frames, ``H W`` a frame's own height and width, ``Gh Gw`` the cell grid of the working
frame, ``N`` active cells, ``E`` evidence kinds. Scores: higher = more anomalous.

Method (descriptors in :mod:`vigil.models.hybrid.features`):

1. **Regions.** Each frame is resized to a working width (240 px); OpenCV's DIS optical flow from the
   previous frame is computed, the frame's median flow (camera shake) subtracted, and the flow is
   averaged per 8x8 cell and over the last 3 frames. Cells faster than ``tau_`` are active.
2. **Evidence** for each active cell, four kinds (``config.evidence`` picks which are fused):
   ``motion``: distance to the k nearest normal velocities (speed and direction), scene-wide;
   ``location``: negative log-likelihood of the cell's velocity under a Gaussian fitted at that cell
   (shrunk towards the scene-wide Gaussian where few normal samples passed there: a fixed camera);
   ``dynamics``: distance to the k nearest normal (speed, change of velocity, region size);
   ``appearance``: distance to the k nearest normal (position, gradient-orientation histogram,
   gradient energy) of moving cells.
3. **Calibration.** A fifth of the training videos is held out of fitting; each evidence becomes a
   robust z-score with the median and MAD of its values on held-out active cells, so the kinds are
   comparable; they are **summed** (independent evidences add, as log-likelihoods do).
4. **Regions, not pixels.** The fused cell scores are averaged over each 3x3-cell neighbourhood
   (inactive cells count as ``floor_``): an object covers several cells while a flow error covers one.
5. **Frame score** = the most anomalous neighbourhood, smoothed over time by a centred Gaussian (sigma
   3 frames, cut at 2 sigma: the batch score of frame t waits for frame t+6).
   ``threshold_`` is the score that a share ``false_alarm_rate`` (1%) of held-out normal frames exceed.

Edge cases (each has a test): the first frame has no flow and takes the second frame's score; a
one-frame video scores ``floor_``; a frame with nothing moving scores ``floor_`` (the 1st percentile
of held-out normal cell scores: as ordinary as normal footage gets) and its map is ``floor_``
everywhere; a shaking camera has its global motion (the frame's median flow) removed before any
descriptor is formed, so shake of a couple of pixels per frame leaves normal footage normal; violent
shake still scores finite values but, as the flow at the frame edges breaks down, rises.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from vigil import scoring, training
from vigil.detector import Detector, Input
from vigil.errors import VigilError
from vigil.models.hybrid.features import (Cells, CellStream, PRESETS, cell_flows, empty_cells, working_size,
                                          window_speeds)
from vigil.models.knn import KnnBank
from vigil.registry import register

EVIDENCE = ("motion", "location", "dynamics", "appearance")
_BANKS = {"motion": "velocity", "dynamics": "dynamics", "appearance": "appearance"}   # evidence -> descriptor


@dataclass(frozen=True)
class HybridConfig:
    max_width: int = 240          # working width: 360x240 Ped2 -> 240x160; flow cost grows with pixels
    cell: int = 8                 # 8x8 px cells: a Ped2 walker at 240 px is ~2x4 cells
    # DIS FAST iterations and variational refinement, at half the working resolution (FAST alone
    # stops at a quarter). Chosen on training clips alone: the ratio of the 99th percentile to the
    # median cell speed (moving vs static) is 6.1 for ULTRAFAST, 6.4 FAST, 15.7 MEDIUM, 16.0 this.
    flow_preset: str = "fast"
    flow_scale: int = 1
    history: int = 3             # frames the cell flow is averaged over (and the change measured across)
    tau_factor: float = 3.0       # moving threshold = 3 x median window speed of training cells (see fit)
    k: int = 5                    # neighbours averaged: robust to a single odd normal sample
    bank_size: int = 20000        # normal descriptors kept per kNN bank (random subsample; bounded memory)
    shrinkage: float = 10.0       # pseudo-count pulling a cell's velocity Gaussian to the scene-wide one
    holdout: float = 0.2          # fraction of training videos held out for calibration
    evidence: tuple = ("motion", "location")   # what is fused; the benchmark's ablation covers all four
    neighbourhood: int = 3        # cells averaged (3x3) before the max: a walker spans ~2x4 cells
    smooth_sigma: float = 3.0     # frames; events of interest last >= 1 s (>= 10 frames)
    false_alarm_rate: float = 0.01  # threshold_ gives this rate on held-out normal frames
    seed: int = 0
    guard: bool = True            # frames turned upright, noisy/blurred ones concealed (vigil.data.guard)


class _LocationModel:
    """A Gaussian over ``(vx, vy)`` at every cell; ``score`` is the negative log-likelihood."""

    def __init__(self, mean: np.ndarray, icov: np.ndarray, logdet: np.ndarray):
        self.mean, self.icov, self.logdet = mean, icov, logdet   # (G, 2), (G, 2, 2), (G,)

    @classmethod
    def fit(cls, idx: np.ndarray, vel: np.ndarray, n_cells: int, n0: float, ridge: float) -> "_LocationModel":
        mu_g, cov_g = vel.mean(0), np.cov(vel.T) + ridge * np.eye(2)
        n = np.bincount(idx, minlength=n_cells).astype(np.float64)[:, None]
        s = np.stack([np.bincount(idx, vel[:, j], n_cells) for j in range(2)], 1)
        mean = (s + n0 * mu_g) / (n + n0)                        # shrunk towards the scene mean
        dev = vel - mean[idx]
        scatter = np.zeros((n_cells, 2, 2))
        np.add.at(scatter, idx, dev[:, :, None] * dev[:, None, :])
        cov = (scatter + n0 * cov_g) / (n + n0)[:, :, None] + ridge * np.eye(2)
        return cls(mean.astype(np.float32), np.linalg.inv(cov).astype(np.float32),
                   np.linalg.slogdet(cov)[1].astype(np.float32))

    def score(self, idx: np.ndarray, vel: np.ndarray) -> np.ndarray:
        d = vel - self.mean[idx]
        maha = np.einsum("ni,nij,nj->n", d, self.icov[idx], d)
        return (0.5 * maha + 0.5 * self.logdet[idx]).astype(np.float32)


@register
class Hybrid(Detector):
    """Dense-flow cell descriptors, kNN and per-location normality, calibrated and fused."""

    name = "hybrid"
    Config = HybridConfig
    onnx_unsupported = ("it has no neural network (its scores come from OpenCV's DIS optical flow and scikit-learn "
                        "nearest-neighbour search, which ONNX cannot express); score its run folder instead")
    ranges = {"max_width": (16, None), "cell": (1, None), "flow_scale": (0, 4), "history": (1, None),
              "tau_factor": (0.0, None), "k": (1, None), "bank_size": (1, None), "shrinkage": (0.0, None),
              "holdout": (0.0, 1.0), "neighbourhood": (1, None), "smooth_sigma": (0.0, None),
              "false_alarm_rate": (0.0, 1.0), "seed": (0, None)}

    # --- fitting ------------------------------------------------------------------------------
    def _check_config(self) -> None:
        cfg = self.config
        bad = [e for e in cfg.evidence if e not in EVIDENCE]
        if bad or not cfg.evidence:
            raise VigilError(f"hybrid: evidence {list(cfg.evidence)} must be a non-empty subset of {list(EVIDENCE)}")
        if cfg.flow_preset not in PRESETS:
            raise VigilError(f"hybrid: flow_preset '{cfg.flow_preset}' is not one of {sorted(PRESETS)}")

    def _input(self, frame_size=None) -> Input:
        """Gray frames at the working size, fixed at fit from the training footage's frame size."""
        if frame_size is not None:
            h, w = frame_size
            self.size_ = working_size(w, h, self.config.max_width, self.config.cell)
        return Input(self.size_, gray=True)

    def _fit(self, grays: list[np.ndarray]) -> None:
        self._check_config()
        cfg = self.config
        held = self._holdout(len(grays))
        if all(len(g) < 2 for g in grays):
            raise VigilError("hybrid: every training video holds a single frame; motion needs at least two "
                             "consecutive frames in a video")
        if sum(len(g) for g in grays) < 3:
            raise VigilError(f"hybrid: training videos hold {sum(len(g) for g in grays)} frames; need at least 3")
        # Pass 1, flow: the moving threshold comes from the training footage itself.
        self.tau_ = 0.0
        # under torchrun each process takes a share of the videos and every process gets all results;
        # each then fits the (cheap, deterministic) banks and calibration from the same features
        flows = training.map_sharded(lambda i: self._cell_flows(grays[i]), len(grays))
        speeds = np.concatenate([window_speeds(f, cfg.history).ravel() for f in flows if f is not None])
        # Most cells of a fixed camera are static, so the median window speed is the flow noise; for
        # 2-D Gaussian noise (Rayleigh speed) 3x the median is exceeded by ~0.2% of static cells.
        self.tau_ = float(max(cfg.tau_factor * np.median(speeds), 1e-3))
        # Pass 2, descriptors, split into fitting and held-out (calibration) videos.
        cells = training.map_sharded(lambda i: self._describe(grays[i], flows[i]), len(grays))
        fit_cells = _concat([c for i, v in enumerate(cells) if i not in held for c in v])
        if len(fit_cells.idx) < cfg.k:
            raise VigilError(f"hybrid: only {len(fit_cells.idx)} moving cells in the training videos "
                             f"(threshold {self.tau_:.3f} px/frame); the training footage shows no motion")
        rng = np.random.default_rng(cfg.seed)
        self.banks_ = {e: KnnBank.fit(getattr(fit_cells, _BANKS[e]), cfg.k, cfg.bank_size, rng)
                       for e in cfg.evidence if e in _BANKS}
        n_cells = (self.size_[0] // cfg.cell) * (self.size_[1] // cfg.cell)
        # the ridge is the flow-noise variance: tau_ is ~3.5 noise standard deviations (see above)
        self.location_ = _LocationModel.fit(fit_cells.idx, fit_cells.velocity.astype(np.float64), n_cells,
                                            cfg.shrinkage, ridge=(self.tau_ / 3.5) ** 2)
        # Calibration on held-out normal videos: per-evidence robust z, then the fused-score floor.
        held_cells = [cells[i] for i in sorted(held)]
        raw = self._evidence(_concat([c for v in held_cells for c in v]), calibrate=False)
        med, scale = scoring.robust_stats(raw, axis=0)
        self.calib_ = np.stack([med, scale]).astype(np.float32)              # (2, E)
        fused = ((raw - med) / scale).sum(1)
        self.floor_ = float(np.percentile(fused, 1)) if len(fused) else 0.0
        held_scores = np.concatenate([self._frame_scores(v)[0] for v in held_cells])
        self.threshold_ = scoring.threshold(held_scores, cfg.false_alarm_rate)

    def _holdout(self, n_videos: int) -> set[int]:
        """Indices of held-out videos: evenly spaced, a ``holdout`` fraction, at least one, never all."""
        if n_videos < 2:
            raise VigilError("hybrid: fit() needs at least two normal training videos "
                             "(one is held out to calibrate the scores)")
        return scoring.held_out_videos(n_videos, self.config.holdout)

    def _describe(self, gray: np.ndarray, flows: np.ndarray | None) -> list[Cells | None]:
        """Per-frame :class:`Cells` of one video (``None`` for frame 0) from precomputed cell flows."""
        stream = self._stream()
        return [None] + ([] if flows is None else [stream.describe(g, f) for g, f in zip(gray[1:], flows)])

    def _stream(self) -> CellStream:
        cfg = self.config
        return CellStream(self.size_, cfg.cell, self.tau_, cfg.history, cfg.flow_preset, cfg.flow_scale,
                          appearance="appearance" in cfg.evidence)

    # --- scoring ------------------------------------------------------------------------------
    def _evidence(self, cells: Cells, calibrate: bool = True) -> np.ndarray:
        """``(N, E)`` evidence per active cell, in the order of ``config.evidence``."""
        raw = np.stack([self.banks_[e].score(getattr(cells, _BANKS[e])) if e in _BANKS
                        else self.location_.score(cells.idx, cells.velocity) for e in self.config.evidence], 1)
        return (raw - self.calib_[0]) / self.calib_[1] if calibrate else raw

    def _frame_scores(self, cells: list[Cells | None]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Smoothed frame scores ``(T,)`` and fused scores of each frame's active cells."""
        good = [c for c in cells if c is not None]
        fused = self._evidence(_concat(good)).sum(1) if good else np.zeros(0)
        split = np.split(fused, np.cumsum([len(c.idx) for c in good])[:-1]) if good else []
        per_cell = [np.zeros(0)] + split if cells and cells[0] is None else split
        raw = np.array([self._grid(c, f).max() for c, f in zip(cells, per_cell)], np.float64)
        if len(raw) > 1:
            raw[0] = raw[1]                                          # frame 0 has no flow
        if self.config.smooth_sigma > 0 and len(raw) > 1:
            raw = gaussian_filter1d(raw, self.config.smooth_sigma, mode="nearest", truncate=2.0)
        return raw, per_cell

    def _cell_flows(self, gray: np.ndarray) -> np.ndarray | None:
        cfg = self.config
        return cell_flows(gray, cfg.cell, cfg.flow_preset, cfg.flow_scale)

    def _cells(self, gray: np.ndarray) -> list[Cells | None]:
        return self._describe(gray, self._cell_flows(gray))

    def _score(self, gray: np.ndarray) -> np.ndarray:
        """One score per frame ``(T,)``; higher = more anomalous; ``threshold_`` flags 1% of normal frames."""
        return self._frame_scores(self._cells(gray))[0]

    def _score_maps(self, gray: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(T,)`` and maps ``(T, H, W)`` float32: neighbourhood-averaged fused cell scores."""
        cells = self._cells(gray)
        scores, per_cell = self._frame_scores(cells)
        h, w = frame_size
        maps = np.stack([self._map(c, s, (w, h)) for c, s in zip(cells, per_cell)])
        return scores, maps

    def _grid(self, cells: Cells | None, fused: np.ndarray) -> np.ndarray:
        """``(Gh, Gw)`` neighbourhood-averaged fused scores; ``floor_`` where nothing moves."""
        gw, gh = self.size_[0] // self.config.cell, self.size_[1] // self.config.cell
        grid = np.full(gh * gw, self.floor_, np.float32)
        if cells is None or len(cells.idx) == 0:
            return grid.reshape(gh, gw)
        grid[cells.idx] = fused
        n = self.config.neighbourhood
        return cv2.blur(grid.reshape(gh, gw), (n, n), borderType=cv2.BORDER_REPLICATE) if n > 1 else grid.reshape(gh, gw)

    def _map(self, cells: Cells | None, fused: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return cv2.resize(self._grid(cells, fused), size, interpolation=cv2.INTER_NEAREST)

    def _live(self, maps: bool) -> "HybridStream":
        """Live state keeping only a few past frames (maps are free here, so always given)."""
        return HybridStream(self)

    # --- save / load --------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = {"calib": self.calib_, "loc_mean": self.location_.mean, "loc_icov": self.location_.icov,
               "loc_logdet": self.location_.logdet}
        for key, bank in self.banks_.items():
            out.update({f"{key}_bank": bank.bank, f"{key}_mean": bank.mean, f"{key}_scale": bank.scale})
        return out

    def _fitted_meta(self) -> dict:
        return {"size": list(self.size_), "tau": self.tau_, "floor": self.floor_, "threshold": self.threshold_}

    def _load_state_arrays(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        self._check_config()
        self.size_ = tuple(int(x) for x in fitted["size"])
        self.tau_, self.floor_, self.threshold_ = (float(fitted[k]) for k in ("tau", "floor", "threshold"))
        self.calib_ = arrays["calib"]
        if self.calib_.shape != (2, len(self.config.evidence)):
            raise ValueError(f"calibration has shape {self.calib_.shape} for evidence {list(self.config.evidence)}")
        n_cells = (self.size_[0] // self.config.cell) * (self.size_[1] // self.config.cell)
        expected = {"loc_mean": (n_cells, 2), "loc_icov": (n_cells, 2, 2), "loc_logdet": (n_cells,)}
        widths = {"velocity": 2, "dynamics": 3, "appearance": 2 + 8}
        for k in self.config.evidence:
            if k in _BANKS:
                d = widths[_BANKS[k]]
                expected.update({f"{k}_bank": (None, d), f"{k}_mean": (d,), f"{k}_scale": (d,)})
        for key, shape in expected.items():      # weights of another run (another grid) are refused
            got = arrays[key].shape
            if len(got) != len(shape) or any(w is not None and g != w for g, w in zip(got, shape)):
                raise ValueError(f"{key} has shape {got}, these settings need {shape} (cell {self.config.cell}, "
                                 f"working size {self.size_[0]}x{self.size_[1]})")
        self.location_ = _LocationModel(arrays["loc_mean"], arrays["loc_icov"], arrays["loc_logdet"])
        self.banks_ = {k: KnnBank(arrays[f"{k}_bank"], arrays[f"{k}_mean"], arrays[f"{k}_scale"], self.config.k)
                       for k in self.config.evidence if k in _BANKS}


class HybridStream:
    """Frame-by-frame live state; it is the previous frame and ``history`` cell flows.

    ``update(gray, frame_size)`` takes one gray uint8 frame at the working size (prepared and
    guarded by :class:`~vigil.detector.LiveStream`) and returns its raw (unsmoothed) score and its
    map at ``frame_size`` ``(H, W)``. The first frame has no flow and returns ``floor_``.
    """

    def __init__(self, det: Hybrid):
        self.det, self.cells = det, det._stream()

    def reset(self) -> None:
        self.cells.reset()

    def update(self, small: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, np.ndarray]:
        h, w = frame_size
        cells = self.cells.update(small)
        fused = self.det._evidence(cells).sum(1) if cells is not None and len(cells.idx) else np.zeros(0)
        grid = self.det._grid(cells, fused)
        return float(grid.max()), cv2.resize(grid, (w, h), interpolation=cv2.INTER_NEAREST)


def _concat(cells: list[Cells]) -> Cells:
    cells = [c for c in cells if c is not None]
    if not cells:
        return empty_cells()
    return Cells(*(np.concatenate(parts) for parts in zip(*cells)))
