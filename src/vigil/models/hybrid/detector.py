"""``hybrid``: motion-first, object-level anomaly detection from dense optical flow, on a CPU.

Shapes: ``T`` frames, ``H W`` a frame's own height and width, ``Gh Gw`` the cell grid of the working
frame, ``N`` active cells, ``R`` moving regions of a frame, ``E`` evidence kinds. Scores: higher = more
anomalous; a frame's score is a *surprise*, ``-log`` of a probability under normal footage, so it means
the same in every video and every crowd.

Method (descriptors in :mod:`vigil.models.hybrid.features`):

1. **Cells.** Each frame is resized to a working width (240 px, wider where the training footage's moving
   objects would be under ``object_size`` cells tall there: :meth:`Hybrid._object_width`); OpenCV's DIS optical flow from the
   previous frame is computed, the frame's median flow (camera shake) subtracted, and the flow is
   averaged per 8x8 cell and over the last 3 frames. Cells faster than ``tau_`` are active; with
   ``change_factor`` (off by default; selection rounds 17-19) only where their gray levels also changed
   by more than ``gate_`` (smooth flow spreads a walker's motion over the still ground around it).
2. **Evidence** for each active cell, six kinds (``config.evidence`` picks which are used; the
   default, ``motion`` and ``dynamics``, and how it was chosen: README, "How hybrid's settings were
   chosen"):
   ``motion``: distance to the k nearest normal velocities (speed and direction), scene-wide;
   ``location``: negative log-likelihood of the cell's velocity under a Gaussian fitted at that cell
   (shrunk towards the scene-wide Gaussian where few normal samples passed there: a fixed camera);
   ``dynamics``: distance to the k nearest normal (speed, change of velocity; with ``dynamics_size``
   ``region`` also the log size of the cell's region, with ``local`` the moving cells of its 3x3
   neighbourhood; the default since selection round 13, ``none``, has no size);
   ``shape``: distance to the k nearest normal (log height, log width, centre row) of the cell's
   region: an object of another size or shape than the normal objects at that height of the frame;
   ``look``: how badly the principal components of normal regions' crops (gray pixels of the box at
   8 x 16, standardised) reconstruct the crop of the cell's region (:class:`_LookModel`): a linear
   autoencoder of what normal objects look like, learned from the training footage alone;
   ``appearance``: distance to the k nearest normal (gradient-orientation histogram, gradient energy)
   of moving cells.
3. **Calibration on unseen normal videos** (``calibration`` ``crossfit``): the training videos are
   split into 5 interleaved groups; each group is scored by a normality (kNN banks, location model)
   fitted on the other groups, so every training video is calibration footage that its normality did
   not see, and the calibration sees the spread of all of them. (A single held-out fifth, the version
   before, set a threshold that flagged 18% of unseen normal training videos; cross-fitted, 1%:
   ``benchmarks/select_hybrid.py``.) Each evidence becomes a robust z-score (median and MAD of its
   values on those cells). The kept normality is then fitted on every training video. With ``crowds``
   (on by default since selection round 13), each training video's own crowd (:func:`~vigil.models.hybrid.features.self_crowd`:
   its first half with its second half's moving pixels laid over it) is one more normal video, in its
   video's calibration group: walkers passing and hiding one another are normal, and a few sparse
   training videos need not show it. Two settings, off by default (selection rounds 14-16), widen what the
   normality of motion holds without more footage: ``mirror`` (each training velocity also with its
   horizontal part reversed) and ``pace`` (each training cell also sped up and slowed down by that factor);
   each lowers the false alarms of a fit on two videos and blunts a walker going the wrong way. The kNN
   banks' metric (each column's mean and spread) is always the real footage's.
4. **Regions.** A frame's moving regions are its 8-connected groups of active cells; with ``split``,
   neighbouring cells moving in opposite directions are not joined (walkers passing each other are
   two regions). A region's score for one evidence is its most unusual ``neighbourhood`` x
   ``neighbourhood`` window (the mean there, still cells counting as the evidence's floor: an object
   covers several cells while a flow error covers one); with ``track_frames``, that score is averaged
   along the region's track (regions of consecutive frames that share cells; :meth:`Hybrid._track`).
   It becomes a probability ``p`` among the regions of the calibration footage (:class:`RegionTail`),
   and a region is as rare as its rarest evidence, Bonferroni-corrected (:class:`RegionTails`).
   ``perspective`` (off by default) divides speeds by the normal speed of objects at the row of the
   region's centre, a line fitted to the training regions (:meth:`Hybrid._fit_perspective`).
5. **Frame score** = the surprise of the frame's rarest region among its ``n`` regions,
   ``-log(1 - (1 - p)^n)``, so a crowd of normal walkers does not raise it (with ``crowd_count``
   ``objects``, ``n`` counts a region of ``k`` times the median calibration region's area ``unit_`` as
   ``k``: merged walkers are as many chances as apart); 0 when nothing moves;
   smoothed over time by a centred Gaussian (sigma 3 frames, cut at 2 sigma: the batch score of frame t
   waits for frame t+6). ``threshold_`` is the score that a share ``false_alarm_rate`` (1%) of the
   calibration footage's frames exceed. Maps paint each region with its own surprise ``-log p``;
   boxes (:meth:`Hybrid._score_boxes`) are the regions rarer than ``box_p``.

``pooling`` ``cells`` (with ``calibration`` ``holdout`` and ``evidence`` motion and location, what run
folders saved before issue 13 load as) is the cell version: the evidences summed per cell, the frame
score the largest 3x3 neighbourhood mean of that; it rises with the crowd and its threshold does not
hold its rate on unseen normal videos.

Edge cases (each has a test): the first frame has no flow and takes the second frame's score; a
one-frame video and a frame with nothing moving score ``rest_`` (0, as ordinary as footage gets; the
cell version's ``floor_``, the 1st percentile of calibration cell scores); a shaking camera has its
global motion (the frame's median flow) removed before any descriptor is formed, so shake of a couple
of pixels per frame leaves normal footage normal; violent shake still scores finite values but, as the
flow at the frame edges breaks down, rises.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from vigil import scoring, training
from vigil.detector import Detector, Input, as_video
from vigil.errors import VigilError, VigilWarning
from vigil.models.hybrid.features import (APPEARANCE_WIDTH, LOOK_WIDTH, SHAPE_WIDTH, Cells, CellStream, PRESETS, cell_flows,
                                          empty_cells, moving_regions, object_height, region_centres, region_stats,
                                          self_crowd, window_changes, window_speeds, working_size)
from vigil.models.knn import KnnBank
from vigil.registry import register

EVIDENCE = ("motion", "location", "dynamics", "shape", "look", "appearance")
POOLING = ("objects", "cells")
DYNAMICS_SIZES = ("region", "local", "none")
CROWD_COUNTS = ("regions", "objects")
_BANKS = {"motion": "velocity", "dynamics": "dynamics", "shape": "shape", "appearance": "appearance"}  # -> descriptor
FEW_VIDEOS = 5            # fewer training videos than the cross-fitted calibration's groups: fit() warns
PROBE_RUNS, PROBE_FRAMES = 4, 24  # object_size's measure: runs of consecutive frames per training video
MAX_GROWTH = 2            # object_size grows the working width to at most 2x max_width: flow costs ~4x at most
LOOK_VARIANCE = 0.9       # the look subspace keeps the principal components of 90% of normal crops' variance


@dataclass(frozen=True)
class HybridConfig:
    max_width: int = 240          # working width: 360x240 Ped2 -> 240x160; flow cost grows with pixels
    cell: int = 8                 # 8x8 px cells: a Ped2 walker at 240 px is ~2x4 cells
    # the working width grows beyond max_width (up to the source's width, at most 2x max_width) until the
    # training footage's moving objects are this many cells tall on average (features.object_height, measured
    # at max_width): every other setting was chosen at Ped2's scale, where they are 3.0-5.0 cells tall at
    # 240 px (2.96 in its shortest training video: this value, so that no Ped2 footage, alone or in pairs,
    # is worked at another scale), and a camera seeing people smaller would otherwise give them a cell or
    # two; 0: max_width, whatever the objects' size (what runs saved before this setting load as)
    object_size: float = 3.0
    # DIS FAST iterations and variational refinement, at half the working resolution (FAST alone
    # stops at a quarter). Chosen on training clips alone: the ratio of the 99th percentile to the
    # median cell speed (moving vs static) is 6.1 for ULTRAFAST, 6.4 FAST, 15.7 MEDIUM, 16.0 this.
    flow_preset: str = "fast"
    flow_scale: int = 1
    history: int = 3             # frames the cell flow is averaged over (and the change measured across)
    tau_factor: float = 3.0       # moving threshold = 3 x median window speed of training cells (see fit)
    # a moving cell must also change its gray levels: by more, on average over the flow's window, than
    # this x the median window change of training cells (the same principle as tau_factor, on a measure
    # that does not spread, as smooth optical flow does, over the still ground around a walker); 0: off
    change_factor: float = 0.0
    k: int = 5                    # neighbours averaged: robust to a single odd normal sample
    bank_size: int = 20000        # normal descriptors kept per kNN bank (random subsample; bounded memory)
    shrinkage: float = 10.0       # pseudo-count pulling a cell's velocity Gaussian to the scene-wide one
    holdout: float = 0.2          # fraction of training videos held out for calibration
    # what is fused; chosen on training footage (benchmarks/select_hybrid.py), the ablation covers all six
    evidence: tuple = ("motion", "dynamics")
    neighbourhood: int = 3        # cells averaged (3x3) before the max: a walker spans ~2x4 cells
    # motion measured against the normal speed at the cell's row (see Hybrid._fit_perspective): far
    # objects of a ground-plane camera are small and slow in pixels, near ones big and fast
    perspective: bool = False
    # "objects": a frame scores its most unusual moving region, as a tail probability among held-out
    # normal regions, corrected for how many regions the frame holds; "cells": the largest
    # neighbourhood score (the version before issue 13; its score rises with the crowd)
    pooling: str = "objects"
    calibration: str = "crossfit"  # or "holdout": see Hybrid._calibration_groups
    # a region's score is averaged along its track (regions of consecutive frames that share cells),
    # exponentially with this time constant in frames; 0: each frame's region alone (see _track)
    track_frames: float = 0.0
    # neighbouring cells moving in opposite directions are not one region (walkers passing each other)
    split: bool = True
    # the size in the dynamics descriptor: "region" (log area of the cell's region), "local" (log number
    # of moving cells in its 3x3 neighbourhood: bounded, walkers merging do not grow it) or "none" (the
    # default since selection round 13, with crowds; runs saved before this setting load as "region")
    dynamics_size: str = "none"
    # what the crowd correction counts: "regions" (the frame's moving regions) or "objects" (the
    # person-sized objects they hold: a region of k times the median calibration region's area counts k)
    crowd_count: str = "regions"
    # normal crowds made from the training footage: each training video's first half with the moving
    # pixels of its second half laid over it (twice the walkers, each of them normal) is normal footage
    # too, for the normality and its calibration (see Hybrid._fit and features.self_crowd); on since
    # selection round 13 (benchmarks/select_hybrid.py), runs saved before it load as false
    crowds: bool = True
    # a lateral motion seen one way is normal the other way too: the normality of velocities (motion,
    # location) also holds each training velocity with its horizontal part reversed (see _fit_normality)
    mirror: bool = False
    # a pace seen is normal this many times faster and slower too: the normality of motion (velocities,
    # and the speed and change in dynamics) also holds each training cell sped up and slowed down by it
    # (see _fit_normality); 1: only the paces seen
    pace: float = 1.0
    tail: float = 0.05            # exponential tail beyond the 95th percentile of held-out region scores
    box_p: float = 0.1            # boxes returned: regions rarer than 1 in 10 held-out normal regions
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


class _LookModel:
    """The principal subspace of normal region crops; ``score`` is the log mean squared residual of a crop
    outside it (higher = looks less like any normal object). Principal components are the optimal linear
    autoencoder: cheap to fit five times over for the cross-fitted calibration, and a matrix product per
    frame when scoring."""

    def __init__(self, mean: np.ndarray, basis: np.ndarray):
        self.mean, self.basis = mean, basis                      # (D,), (K, D) orthonormal rows

    @classmethod
    def fit(cls, x: np.ndarray, size: int, rng: np.random.Generator, variance: float = LOOK_VARIANCE) -> "_LookModel":
        if len(x) > size:
            x = x[rng.choice(len(x), size, replace=False)]
        mean = x.mean(0)
        _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
        share = np.cumsum(sv ** 2) / max(float(np.sum(sv ** 2)), 1e-12)
        k = int(np.searchsorted(share, variance) + 1)
        return cls(mean.astype(np.float32), vt[:k].astype(np.float32))

    def score(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros(0, np.float32)
        d = x - self.mean
        r = d - (d @ self.basis.T) @ self.basis
        return np.log(np.mean(r * r, 1) + 1e-3).astype(np.float32)


@register
class Hybrid(Detector):
    """Dense-flow cell descriptors, kNN and per-location normality, calibrated and fused."""

    name = "hybrid"
    Config = HybridConfig
    onnx_unsupported = ("it has no neural network (its scores come from OpenCV's DIS optical flow and scikit-learn "
                        "nearest-neighbour search, which ONNX cannot express); score its run folder instead")
    ranges = {"max_width": (16, None), "cell": (1, None), "flow_scale": (0, 4), "history": (1, None),
              "tau_factor": (0.0, None), "change_factor": (0.0, None), "k": (1, None), "bank_size": (1, None),
              "shrinkage": (0.0, None),
              "holdout": (0.0, 1.0), "neighbourhood": (1, None), "smooth_sigma": (0.0, None),
              "false_alarm_rate": (0.0, 1.0), "seed": (0, None), "tail": (1e-3, 0.5), "box_p": (0.0, 1.0),
              "track_frames": (0.0, None), "pace": (1.0, None), "object_size": (0.0, None)}
    #: the cell version's map is on the frame score's scale (its boxes are cut at threshold_)
    maps_on_score_scale = True
    #: run folders saved before these settings existed were fitted with the cell version
    legacy_settings = {"pooling": "cells", "calibration": "holdout", "perspective": False, "track_frames": 0.0,
                       "split": False, "crowds": False, "dynamics_size": "region", "mirror": False,
                       "pace": 1.0, "change_factor": 0.0, "object_size": 0.0}

    # --- fitting ------------------------------------------------------------------------------
    def _check_config(self) -> None:
        cfg = self.config
        bad = [e for e in cfg.evidence if e not in EVIDENCE]
        if bad or not cfg.evidence:
            raise VigilError(f"hybrid: evidence {list(cfg.evidence)} must be a non-empty subset of {list(EVIDENCE)}")
        if cfg.flow_preset not in PRESETS:
            raise VigilError(f"hybrid: flow_preset '{cfg.flow_preset}' is not one of {sorted(PRESETS)}")
        if cfg.calibration not in ("crossfit", "holdout"):
            raise VigilError(f"hybrid: calibration '{cfg.calibration}' is not one of ['crossfit', 'holdout']")
        if cfg.dynamics_size not in DYNAMICS_SIZES:
            raise VigilError(f"hybrid: dynamics_size '{cfg.dynamics_size}' is not one of {list(DYNAMICS_SIZES)}")
        if cfg.crowd_count not in CROWD_COUNTS:
            raise VigilError(f"hybrid: crowd_count '{cfg.crowd_count}' is not one of {list(CROWD_COUNTS)}")
        if cfg.pooling not in POOLING:
            raise VigilError(f"hybrid: pooling '{cfg.pooling}' is not one of {list(POOLING)}")

    def _input(self, frame_size=None) -> Input:
        """Gray frames at the working size, fixed at fit from the training footage's frame size (and, with
        ``object_size``, its objects' size: :meth:`_object_width`)."""
        if frame_size is not None:
            h, w = frame_size
            self.size_ = working_size(w, h, getattr(self, "width_", None) or self.config.max_width, self.config.cell)
        return Input(self.size_, gray=True)

    def fit(self, videos, **train) -> "Hybrid":
        """:meth:`Detector.fit`, the working size first chosen from the footage (:meth:`_object_width`);
        ``fit_notes_`` says what was chosen, for ``vigil train`` to print."""
        self.width_, self.fit_notes_ = None, []
        self._check_config()
        if self.config.object_size > 0 and len(videos):
            videos = [as_video(v, f"train{i}") for i, v in enumerate(videos)]
            self.width_ = self._object_width(videos)
        return super().fit(videos, **train)

    def _object_width(self, videos: list) -> int | None:
        """The working width at which the training footage's moving objects are ``object_size`` cells tall
        on average, when that is wider than ``max_width`` (never wider than the source, nor than
        ``MAX_GROWTH`` x ``max_width``); ``None`` (``max_width``) otherwise. Measured on a few runs of
        consecutive frames of every video, read at ``max_width``."""
        cfg = self.config
        h, w = videos[0].frame_size()
        probe = working_size(w, h, cfg.max_width, cfg.cell)
        if probe[0] + cfg.cell > w:                     # the source is no wider: nothing finer to work at
            return None
        runs = []
        for v in videos:
            g = v.frames(size=probe, gray=True)
            n = min(PROBE_FRAMES, len(g))
            if n >= 2:
                runs += [g[a:a + n] for a in np.unique(np.linspace(0, len(g) - n, PROBE_RUNS).astype(int))]
        height = object_height(runs, cfg.cell, cfg.history, cfg.tau_factor, cfg.flow_preset, cfg.flow_scale)
        if height is None or height >= cfg.object_size:
            return None
        width = int(min(w, MAX_GROWTH * cfg.max_width, probe[0] * cfg.object_size / height))
        now = working_size(w, h, width, cfg.cell)
        self.fit_notes_ = [f"working size {now[0]}x{now[1]}, grown from {probe[0]}x{probe[1]} (max_width): the training "
                           f"footage's moving objects are {height:.1f} cells tall there, under object_size {cfg.object_size:g}"]
        return width

    def _fit(self, grays: list[np.ndarray]) -> None:
        self._check_config()
        cfg = self.config
        groups = self._calibration_groups(len(grays))            # fewer than two videos: said first
        if all(len(g) < 2 for g in grays):
            raise VigilError("hybrid: every training video holds a single frame; motion needs at least two "
                             "consecutive frames in a video")
        if sum(len(g) for g in grays) < 3:
            raise VigilError(f"hybrid: training videos hold {sum(len(g) for g in grays)} frames; need at least 3")
        n_real = len(grays)
        if cfg.crowds:        # a video's crowd is calibrated with it: by a normality that saw neither
            grays = list(grays)
            for i in range(n_real):
                made = self_crowd(grays[i])
                if made is not None:
                    for g in groups:              # (holdout: a video fitting the normality is in none)
                        if i in g:
                            g.add(len(grays))
                    grays.append(made)
        # Pass 1, flow: the moving threshold comes from the training footage itself.
        self.tau_ = 0.0
        # under torchrun each process takes a share of the videos and every process gets all results;
        # each then fits the (cheap, deterministic) banks and calibration from the same features
        flows = training.map_sharded(lambda i: self._cell_flows(grays[i]), len(grays))
        speeds = np.concatenate([window_speeds(f, cfg.history).ravel() for f in flows[:n_real] if f is not None])
        # Most cells of a fixed camera are static, so the median window speed is the flow noise; for
        # 2-D Gaussian noise (Rayleigh speed) 3x the median is exceeded by ~0.2% of static cells.
        self.tau_ = float(max(cfg.tau_factor * np.median(speeds), 1e-3))
        self.gate_ = 0.0
        if cfg.change_factor > 0:          # the gray-level noise of still cells, measured the same way
            changes = np.concatenate([window_changes(g, cfg.cell, cfg.history).ravel() for g in grays[:n_real]
                                      if len(g) > 1])
            self.gate_ = float(max(cfg.change_factor * np.median(changes), 1e-3))
        self.row_scale_ = self._fit_perspective(flows)
        # Pass 2, descriptors; then normality (kNN banks, location model) and its calibration on
        # normal videos that the normality being calibrated never saw.
        cells = training.map_sharded(lambda i: self._describe(grays[i], flows[i]), len(grays))
        rng = np.random.default_rng(cfg.seed)
        unseen: dict[int, np.ndarray] = {}                       # video -> raw evidence of its cells
        for group in groups:
            self._fit_normality([v for i, v in enumerate(cells) if i not in group], rng)
            for i in group:
                unseen[i] = self._evidence(_concat(cells[i]), calibrate=False)
        if cfg.calibration == "crossfit":                         # the kept normality: every video
            self._fit_normality(cells, rng)
        # per-evidence robust z, the fused-score floor, the region tails, the threshold
        raw = np.concatenate([unseen[i] for i in sorted(unseen)])
        med, scale = scoring.robust_stats(raw, axis=0)
        self.calib_ = np.stack([med, scale]).astype(np.float32)              # (2, E)
        fused = ((raw - med) / scale).sum(1)
        self.floor_ = float(np.percentile(fused, 1)) if len(fused) else 0.0
        # each evidence's own floor, for the object version's per-evidence neighbourhoods
        self.floors_ = (np.percentile((raw - med) / scale, 1, axis=0) if len(raw) else np.zeros(len(med))
                        ).astype(np.float32)
        per_video = {i: self._split(cells[i], (unseen[i] - med) / scale) for i in sorted(unseen)}
        regions = {i: self._regions_of(cells[i], zs) for i, zs in per_video.items()}
        self.regions_ = None
        areas = [_areas(r) for v in regions.values() for r in v if r is not None]
        self.unit_ = float(max(1.0, np.median(np.concatenate(areas)))) if areas else 1.0
        if cfg.pooling == "objects":
            per_region = [r.scores for v in regions.values() for r in v if r is not None]
            self.regions_ = RegionTails.fit(np.concatenate(per_region) if per_region
                                            else np.zeros((0, len(cfg.evidence))), cfg.tail)
        held = {i: self._frame_scores(cells[i], zs, regions[i])[0] for i, zs in per_video.items()}
        self.threshold_ = scoring.threshold(np.concatenate(list(held.values())), cfg.false_alarm_rate)
        # each real training video's share of frames above threshold_, judged by a normality that did
        # not see it (None: held out of none, the holdout calibration's fitting videos)
        self.unseen_alarms_ = [float(np.mean(held[i] > self.threshold_)) if i in held else None
                               for i in range(n_real)]
        if n_real < FEW_VIDEOS:
            warnings.warn(VigilWarning(
                f"hybrid: threshold_ is calibrated on {n_real} training videos; with fewer than {FEW_VIDEOS}, new "
                f"normal footage of this camera may exceed it far more often than false_alarm_rate "
                f"{cfg.false_alarm_rate:g} (fitted on two of UCSD Ped2's training videos, it flagged 2-70% of the "
                f"normal test frames): give more normal footage, covering each way and pace people go"
                + ("" if cfg.mirror else ", or set mirror=true if going left or right is equally normal here")))

    def _fit_perspective(self, flows: list[np.ndarray | None]) -> np.ndarray:
        """``(Gh,)`` the normal speed of a moving object centred at each row of cells, relative to the
        whole scene's (1 everywhere when ``perspective`` is off).

        A fixed camera looking down at a ground plane sees an object's size and speed in pixels grow
        linearly with its distance below the horizon in the image. So the training footage's moving
        regions (8-connected active cells, at least two) give, per row of their centre, their median
        speed; a line is fitted through those (least squares, each row weighted by the square root of
        its number of regions; rows with fewer than 20 left out) and clipped to [1/4, 4] x the median
        region speed. A line needs objects at two heights of the frame only, where a model per cell
        needs footage at every cell. Where the camera is not like that the line is flat, and nothing
        changes."""
        gh = self.size_[1] // self.config.cell
        ones = np.ones(gh, np.float32)
        if not self.config.perspective:
            return ones
        rows, speeds = [], []
        for f in flows:
            for s in ([] if f is None else window_speeds(f, self.config.history)):    # (Gh, Gw) each
                centre, speed = _region_stats(s > self.tau_, s)
                rows.append(centre)
                speeds.append(speed)
        rows, speeds = (np.concatenate(x) if x else np.zeros(0) for x in (rows, speeds))
        counts = np.bincount(rows.astype(np.int64), minlength=gh).astype(np.float64)
        ok = np.flatnonzero(counts >= 20)
        if len(ok) < 2:
            return ones
        med = np.array([np.median(speeds[rows == r]) for r in ok])
        b, a = np.polyfit(ok, med, 1, w=np.sqrt(counts[ok]))
        overall = float(np.median(speeds))
        return (np.clip(a + b * np.arange(gh), overall / 4, overall * 4) / overall).astype(np.float32)

    def _calibration_groups(self, n_videos: int) -> list[set[int]]:
        """Which training videos each calibration pass scores with a normality fitted without them.

        ``crossfit`` (the default): every video, in ``round(1 / holdout)`` interleaved groups (5 for
        0.2; at most one group per video), so the calibration sees the spread of all the training
        videos and not only of a few; ``holdout``: one group, a ``holdout`` share of the videos, which
        the kept normality then never sees (the version before issue 13)."""
        if n_videos < 2:
            raise VigilError("hybrid: fit() needs at least two normal training videos "
                             "(the scores are calibrated on videos the normality was not fitted on)")
        if self.config.calibration == "holdout":
            return [scoring.held_out_videos(n_videos, self.config.holdout)]
        k = min(n_videos, max(2, int(round(1 / max(self.config.holdout, 1e-9)))))
        return [set(range(j, n_videos, k)) for j in range(k)]

    def _fit_normality(self, cells: list[list[Cells | None]], rng: np.random.Generator) -> None:
        """kNN banks and the location model from the active cells of ``cells`` (videos of frames)."""
        cfg = self.config
        fit_cells = seen = _concat([c for v in cells for c in v])
        if cfg.mirror:
            fit_cells = _concat([fit_cells, fit_cells._replace(velocity=fit_cells.velocity * np.float32([-1, 1]))])
        if cfg.pace > 1:
            fit_cells = _concat([fit_cells] + [_paced(fit_cells, f) for f in (cfg.pace, 1 / cfg.pace)])
        if len(fit_cells.idx) < cfg.k:
            raise VigilError(f"hybrid: only {len(fit_cells.idx)} moving cells in the training videos "
                             f"(threshold {self.tau_:.3f} px/frame); the training footage shows no motion")
        # the metric (each column's mean and spread) is the footage's own; mirror and pace add samples only
        self.banks_ = {e: KnnBank.fit(self._descriptor(fit_cells, e), cfg.k, cfg.bank_size, rng,
                                      standard=self._descriptor(seen, e)) for e in cfg.evidence if e in _BANKS}
        if "look" in cfg.evidence:
            self.banks_["look"] = _LookModel.fit(fit_cells.look, cfg.bank_size, rng)
        n_cells = (self.size_[0] // cfg.cell) * (self.size_[1] // cfg.cell)
        # the ridge is the flow-noise variance: tau_ is ~3.5 noise standard deviations (see above)
        self.location_ = _LocationModel.fit(fit_cells.idx, fit_cells.velocity.astype(np.float64), n_cells,
                                            cfg.shrinkage, ridge=(self.tau_ / 3.5) ** 2)

    @staticmethod
    def _split(cells: list[Cells | None], z: np.ndarray) -> list[np.ndarray]:
        """The evidence ``(N, E)`` of a video's cells, concatenated, back to one array per frame."""
        sizes = [0 if c is None else len(c.idx) for c in cells]
        return np.split(z, np.cumsum(sizes)[:-1])

    def _describe(self, gray: np.ndarray, flows: np.ndarray | None) -> list[Cells | None]:
        """Per-frame :class:`Cells` of one video (``None`` for frame 0) from precomputed cell flows."""
        stream = self._stream()
        return [None] + ([] if flows is None else [stream.describe(g, f, b) for b, g, f in zip(gray[:-1], gray[1:], flows)])

    def _stream(self) -> CellStream:
        cfg = self.config
        return CellStream(self.size_, cfg.cell, self.tau_, cfg.history, cfg.flow_preset, cfg.flow_scale,
                          appearance="appearance" in cfg.evidence, split=cfg.split, look="look" in cfg.evidence,
                          dynamics_size=cfg.dynamics_size, gate=self.gate_)

    # --- scoring ------------------------------------------------------------------------------
    # Per frame, ``z`` is the ``(N, E)`` calibrated evidence of its active cells (``Cells.idx`` order).
    def _descriptor(self, cells: Cells, evidence: str) -> np.ndarray:
        """The descriptor a kNN evidence compares, with speeds divided by the normal speed of an object
        centred at the row of the cell's region's centre (``row_scale_``) and the region size by its
        square, so that a far walker and a near one are alike and a cyclist twice as fast is not."""
        x = getattr(cells, _BANKS[evidence])
        if evidence in ("appearance", "shape") or not self.config.perspective or len(cells.idx) == 0:
            return x
        s = self.row_scale_[cells.centre][:, None]
        if evidence == "motion":
            return (x / s).astype(np.float32)
        area = x[:, 2:] - 2 * np.log(s) if self.config.dynamics_size == "region" else x[:, 2:]
        return np.column_stack([x[:, :2] / s, area]).astype(np.float32)

    def _evidence(self, cells: Cells, calibrate: bool = True) -> np.ndarray:
        """``(N, E)`` evidence per active cell, in the order of ``config.evidence``."""
        raw = np.stack([self.banks_[e].score(cells.look) if e == "look"
                        else self.banks_[e].score(self._descriptor(cells, e)) if e in _BANKS
                        else self.location_.score(cells.idx, cells.velocity) for e in self.config.evidence], 1)
        return (raw - self.calib_[0]) / self.calib_[1] if calibrate else raw

    def _frame_scores(self, cells: list[Cells | None], per_cell: list[np.ndarray] | None = None,
                      regions: list["Regions | None"] | None = None
                      ) -> tuple[np.ndarray, list[np.ndarray], list["Regions | None"]]:
        """Smoothed frame scores ``(T,)``, each frame's ``z`` (``per_cell``) and its regions
        (:meth:`_regions_of`), each computed here unless given."""
        if per_cell is None:
            good = [c for c in cells if c is not None]
            z = self._evidence(_concat(good)) if good else np.zeros((0, len(self.config.evidence)))
            per_cell = self._split(cells, z)
        if regions is None:
            regions = self._regions_of(cells, per_cell)
        raw = np.array([self._frame_value(c, z, r) for c, z, r in zip(cells, per_cell, regions)], np.float64)
        if len(raw) > 1:
            raw[0] = raw[1]                                          # frame 0 has no flow
        if self.config.smooth_sigma > 0 and len(raw) > 1:
            raw = gaussian_filter1d(raw, self.config.smooth_sigma, mode="nearest", truncate=2.0)
        return raw, per_cell, regions

    @property
    def rest_(self) -> float:
        """The score of a frame where nothing moves (as ordinary as footage gets)."""
        return 0.0 if self.config.pooling == "objects" else self.floor_

    def _regions_of(self, cells: list[Cells | None], per_cell: list[np.ndarray],
                    before: "Regions | None" = None) -> list["Regions | None"]:
        """Each frame's :meth:`_regions`, consecutive frames' regions tracked (:meth:`_track`; ``before``:
        the regions of the frame before the first, for the live stream); all None for the cell version,
        which has none."""
        if self.config.pooling == "cells":
            return [None] * len(cells)
        out = []
        for c, z in zip(cells, per_cell):
            before = self._track(before, self._regions(c, z))
            out.append(before)
        return out

    def _track(self, before: "Regions | None", now: "Regions | None") -> "Regions | None":
        """``now`` with each region's scores averaged along its track: a region that shares cells with
        regions of the frame before continues the most unusual of their tracks (per evidence), ``s <- a x
        + (1 - a) s`` with ``a = 1 / track_frames``; a region sharing none starts a track at its own
        score. An object that stays unusual for a second is rarer than one unusual in one frame, while
        normal walkers, each unusual now and then, average out; merging and splitting walkers keep the
        most unusual history. Unchanged when ``track_frames`` is below 1."""
        if now is None or before is None or self.config.track_frames < 1:
            return now
        a = 1.0 / self.config.track_frames
        cur, prev = now.labels.ravel(), before.labels.ravel()
        both = (cur > 0) & (prev > 0)
        carried = np.full(now.scores.shape, -np.inf)
        np.maximum.at(carried, cur[both] - 1, before.scores[prev[both] - 1])
        scores = np.where(np.isfinite(carried), a * now.scores + (1 - a) * carried, now.scores)
        return now._replace(scores=scores)

    def _regions(self, cells: Cells | None, z: np.ndarray) -> "Regions | None":
        """The frame's moving regions (8-connected active cells), None when nothing moves: ``scores``
        ``(R, E)`` each region's score per evidence (its most unusual neighbourhood: the mean over
        ``neighbourhood`` x ``neighbourhood`` cells, still cells counting as that evidence's floor, so
        that one cell's flow error does not make a region), ``boxes`` ``(R, 4)`` x y w h in working
        pixels, and the ``(Gh, Gw)`` ``labels`` grid (0 = still, r + 1 = region r)."""
        if cells is None or len(cells.idx) == 0:
            return None
        gw, gh = self.size_[0] // self.config.cell, self.size_[1] // self.config.cell
        lab = cells.region                                               # found by CellStream.describe
        labels = np.zeros(gh * gw, np.int32)
        labels[cells.idx] = lab
        labels = labels.reshape(gh, gw)
        n_lab = int(lab.max()) + 1
        stats = region_stats(labels, n_lab)
        n = self.config.neighbourhood
        best = np.full((n_lab, z.shape[1]), -np.inf)
        for e in range(z.shape[1]):
            val = np.full(gh * gw, self.floors_[e], np.float32)
            val[cells.idx] = z[:, e]
            if n > 1:
                val = cv2.blur(val.reshape(gh, gw), (n, n), borderType=cv2.BORDER_REPLICATE).ravel()
            np.maximum.at(best[:, e], lab, val[cells.idx])
        return Regions(best[1:], stats[1:, :4].astype(np.float32) * self.config.cell, labels)

    def _frame_value(self, cells: Cells | None, z: np.ndarray, regions: "Regions | None") -> float:
        """One frame's raw (unsmoothed) score from its active cells' evidence and its regions."""
        if self.config.pooling == "cells":
            return float(self._grid(cells, z.sum(1)).max())
        if regions is None:
            return self.rest_
        n = (len(regions.scores) if self.config.crowd_count == "regions"
             else int(np.maximum(1, np.round(_areas(regions) / self.unit_)).sum()))
        return float(self.regions_.frame_score(self.regions_.log_p(regions.scores).min(), n))

    def _cell_flows(self, gray: np.ndarray) -> np.ndarray | None:
        cfg = self.config
        return cell_flows(gray, cfg.cell, cfg.flow_preset, cfg.flow_scale)

    def _cells(self, gray: np.ndarray) -> list[Cells | None]:
        return self._describe(gray, self._cell_flows(gray))

    def _score(self, gray: np.ndarray) -> np.ndarray:
        """One score per frame ``(T,)``; higher = more anomalous; ``threshold_`` flags 1% of normal frames."""
        return self._frame_scores(self._cells(gray))[0]

    def _score_maps(self, gray: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(T,)`` and maps ``(T, H, W)`` float32 (see :meth:`_map`)."""
        cells = self._cells(gray)
        scores, per_cell, regions = self._frame_scores(cells)
        h, w = frame_size
        maps = np.stack([self._map(c, z, r, (w, h)) for c, z, r in zip(cells, per_cell, regions)])
        return scores, maps

    def _grid(self, cells: Cells | None, fused: np.ndarray) -> np.ndarray:
        """``(Gh, Gw)`` neighbourhood-averaged fused (summed) scores; ``floor_`` where nothing moves."""
        gw, gh = self.size_[0] // self.config.cell, self.size_[1] // self.config.cell
        grid = np.full(gh * gw, self.floor_, np.float32)
        if cells is None or len(cells.idx) == 0:
            return grid.reshape(gh, gw)
        grid[cells.idx] = fused
        n = self.config.neighbourhood
        return cv2.blur(grid.reshape(gh, gw), (n, n), borderType=cv2.BORDER_REPLICATE) if n > 1 else grid.reshape(gh, gw)

    def _map(self, cells: Cells | None, z: np.ndarray, regions: "Regions | None", size: tuple[int, int]
             ) -> np.ndarray:
        """``(H, W)`` at ``size`` ``(W, H)``: the cell version's neighbourhood scores; the object version
        paints each region's cells with the region's own surprise ``-log p`` (0 where nothing moves)."""
        if self.config.pooling == "cells":
            return cv2.resize(self._grid(cells, z.sum(1)), size, interpolation=cv2.INTER_NEAREST)
        if regions is None:
            return np.zeros(size[::-1], np.float32)
        paint = np.concatenate([[0.0], -self.regions_.log_p(regions.scores)]).astype(np.float32)
        return cv2.resize(paint[regions.labels], size, interpolation=cv2.INTER_NEAREST)

    def _score_boxes(self, gray: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Scores ``(T,)`` and, per frame, ``(K, 5)`` boxes ``x0 y0 x1 y1 score`` in the frame's pixels
        (x1, y1 exclusive): the moving regions rarer than ``box_p`` among held-out normal regions, scored
        by their surprise ``-log p``. The cell version has no regions: its boxes are the components of its
        map above ``threshold_`` (its map is on the frame score's scale)."""
        if self.config.pooling == "cells":
            return super()._score_boxes(gray, frame_size)
        scores, _, regions = self._frame_scores(self._cells(gray))
        h, w = frame_size
        sx, sy = w / self.size_[0], h / self.size_[1]
        out = []
        for r in regions:
            if r is None:
                out.append(np.zeros((0, 5), np.float32))
                continue
            surprise = -self.regions_.log_p(r.scores)
            keep = surprise >= -np.log(self.config.box_p)
            x, y, bw, bh = r.boxes[keep].T
            out.append(np.column_stack([x * sx, y * sy, (x + bw) * sx, (y + bh) * sy,
                                        surprise[keep]]).astype(np.float32))
        return scores, out

    def _live(self, maps: bool) -> "HybridStream":
        """Live state keeping only a few past frames (maps are free here, so always given)."""
        return HybridStream(self)

    # --- save / load --------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        out = {"calib": self.calib_, "row_scale": self.row_scale_, "loc_mean": self.location_.mean,
               "loc_icov": self.location_.icov, "loc_logdet": self.location_.logdet}
        for key, bank in self.banks_.items():
            if key == "look":
                out.update({"look_mean": bank.mean, "look_basis": bank.basis})
            else:
                out.update({f"{key}_bank": bank.bank, f"{key}_mean": bank.mean, f"{key}_scale": bank.scale})
        if self.regions_ is not None:
            out["region_scores"] = self.regions_.ref                       # (E, K) sorted held-out scores
            out["floors"] = self.floors_
        return out

    def _fitted_meta(self) -> dict:
        return {"size": list(self.size_), "tau": self.tau_, "floor": self.floor_, "threshold": self.threshold_,
                "unit": self.unit_, "gate": self.gate_}

    def _load_state_arrays(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        self._check_config()
        self.size_ = tuple(int(x) for x in fitted["size"])
        self.tau_, self.floor_, self.threshold_ = (float(fitted[k]) for k in ("tau", "floor", "threshold"))
        if "unit" not in fitted and self.config.crowd_count == "objects":
            raise ValueError("no unit: the run was saved before the crowd_count setting (crowd_count regions)")
        self.unit_ = float(fitted.get("unit", 1.0))
        if "gate" not in fitted and self.config.change_factor > 0:
            raise ValueError("no gate: the run was saved before the change_factor setting (change_factor 0)")
        self.gate_ = float(fitted.get("gate", 0.0))
        self.calib_ = arrays["calib"]
        if self.calib_.shape != (2, len(self.config.evidence)):
            raise ValueError(f"calibration has shape {self.calib_.shape} for evidence {list(self.config.evidence)}")
        n_cells = (self.size_[0] // self.config.cell) * (self.size_[1] // self.config.cell)
        expected = {"loc_mean": (n_cells, 2), "loc_icov": (n_cells, 2, 2), "loc_logdet": (n_cells,)}
        widths = {"velocity": 2, "dynamics": 2 if self.config.dynamics_size == "none" else 3, "shape": SHAPE_WIDTH,
                  "appearance": APPEARANCE_WIDTH}
        for k in self.config.evidence:
            if k in _BANKS:
                d = widths[_BANKS[k]]
                expected.update({f"{k}_bank": (None, d), f"{k}_mean": (d,), f"{k}_scale": (d,)})
        if "look" in self.config.evidence:
            expected.update({"look_mean": (LOOK_WIDTH,), "look_basis": (None, LOOK_WIDTH)})
        for key, shape in expected.items():      # weights of another run (another grid) are refused
            got = arrays[key].shape
            if len(got) != len(shape) or any(w is not None and g != w for g, w in zip(got, shape)):
                raise ValueError(f"{key} has shape {got}, these settings need {shape} (cell {self.config.cell}, "
                                 f"working size {self.size_[0]}x{self.size_[1]})")
        self.location_ = _LocationModel(arrays["loc_mean"], arrays["loc_icov"], arrays["loc_logdet"])
        gh = self.size_[1] // self.config.cell
        self.row_scale_ = np.ones(gh, np.float32)
        if self.config.perspective:
            if "row_scale" not in arrays:
                raise ValueError("no row_scale: the run was saved before the perspective setting (perspective false)")
            self.row_scale_ = arrays["row_scale"]
            if self.row_scale_.shape != (gh,):
                raise ValueError(f"row_scale has shape {self.row_scale_.shape}, these settings need ({gh},)")
        self.banks_ = {k: KnnBank(arrays[f"{k}_bank"], arrays[f"{k}_mean"], arrays[f"{k}_scale"], self.config.k)
                       for k in self.config.evidence if k in _BANKS}
        if "look" in self.config.evidence:
            self.banks_["look"] = _LookModel(arrays["look_mean"], arrays["look_basis"])
        self.regions_ = None
        if self.config.pooling == "objects":
            if "region_scores" not in arrays or "floors" not in arrays:
                raise ValueError("no region_scores: the run was saved by the cell version (pooling 'cells')")
            ref = arrays["region_scores"]
            if ref.ndim != 2 or len(ref) != len(self.config.evidence):
                raise ValueError(f"region_scores has shape {ref.shape}, these settings need "
                                 f"({len(self.config.evidence)}, K) for evidence {list(self.config.evidence)}")
            self.regions_ = RegionTails(ref, self.config.tail)
            self.floors_ = arrays["floors"]
            if self.floors_.shape != (len(self.config.evidence),):
                raise ValueError(f"floors has shape {self.floors_.shape} for evidence {list(self.config.evidence)}")


class HybridStream:
    """Frame-by-frame live state; it is the previous frame and ``history`` cell flows.

    ``update(gray, frame_size)`` takes one gray uint8 frame at the working size (prepared and
    guarded by :class:`~vigil.detector.LiveStream`) and returns its raw (unsmoothed) score and its
    map at ``frame_size`` ``(H, W)``. The first frame has no flow and returns ``rest_``.
    """

    def __init__(self, det: Hybrid):
        self.det, self.cells, self.regions = det, det._stream(), None

    def reset(self) -> None:
        self.cells.reset()
        self.regions = None

    def update(self, small: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, np.ndarray]:
        h, w = frame_size
        cells = self.cells.update(small)
        if cells is None:
            return self.det.rest_, np.full((h, w), self.det.rest_, np.float32)
        z = self.det._evidence(cells) if len(cells.idx) else np.zeros((0, len(self.det.config.evidence)))
        regions = self.regions = self.det._regions_of([cells], [z], self.regions)[0]
        return self.det._frame_value(cells, z, regions), self.det._map(cells, z, regions, (w, h))


class Regions(NamedTuple):
    """The moving regions of one frame (:meth:`Hybrid._regions`)."""

    scores: np.ndarray       # (R, E) each region's score per evidence
    boxes: np.ndarray        # (R, 4) x y w h in working pixels
    labels: np.ndarray       # (Gh, Gw) 0 = still, r + 1 = region r


class RegionTail:
    """How rare a region's score (of one evidence) is among held-out normal regions.

    ``p(x)`` is the share of held-out regions scoring at least ``x`` (empirical, with a +1 so no
    region is impossible); beyond their ``1 - tail`` quantile ``q`` the empirical share runs out of
    samples, so it continues as the exponential tail fitted to the excesses over ``q`` (maximum
    likelihood: the mean excess), which keeps rarer regions ranked above less rare ones.
    """

    def __init__(self, ref: np.ndarray, tail: float):
        self.ref = np.sort(np.asarray(ref, np.float32))
        n = len(self.ref)
        if n < 2:
            raise VigilError("hybrid: fewer than two moving regions in the held-out training videos; "
                             "nothing to calibrate against (more, or longer, normal training videos)")
        self.q = float(np.quantile(self.ref, 1 - tail))
        above = self.ref[self.ref > self.q]
        self.tail = max(len(above), 1) / (n + 1)
        self.beta = float(max(np.mean(above - self.q), 1e-3)) if len(above) else 1.0

    def log_p(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        n = len(self.ref)
        emp = np.log((n - np.searchsorted(self.ref, x, side="left") + 1) / (n + 1))
        return np.where(x > self.q, np.log(self.tail) - (x - self.q) / self.beta, emp)


class RegionTails:
    """One :class:`RegionTail` per evidence, and a frame's score from its rarest region.

    A region is as rare as its rarest evidence, times the number of evidences (Bonferroni: with ``E``
    chances to look unusual, a normal region's smallest ``p`` is about ``E`` times smaller), so an odd
    look is not cancelled by ordinary motion, nor the reverse. ``ref``: ``(E, K)`` held-out region
    scores, each row sorted.

    A frame holding ``n`` regions whose rarest has ``p`` scores ``-log(1 - (1 - p)^n)``: the surprise of
    seeing a region this rare among ``n`` normal ones. A crowd of ``n`` normal walkers holds one with a
    small ``p`` by chance alone; the correction takes exactly that chance out, so the normal score does
    not rise with the crowd.
    """

    def __init__(self, ref: np.ndarray, tail: float):
        self.tails = [RegionTail(r, tail) for r in np.asarray(ref, np.float32)]
        self.ref = np.stack([t.ref for t in self.tails])

    @classmethod
    def fit(cls, scores: np.ndarray, tail: float, keep: int = 4096) -> "RegionTails":
        """From ``(R, E)`` held-out region scores; at most ``keep`` per evidence (evenly spaced quantiles)."""
        s = np.asarray(scores, np.float64)
        if len(s) < 2:
            raise VigilError("hybrid: fewer than two moving regions in the held-out training videos; "
                             "nothing to calibrate against (more, or longer, normal training videos)")
        qs = np.linspace(0, 1, min(keep, len(s)))
        return cls(np.stack([np.quantile(s[:, e], qs) for e in range(s.shape[1])]), tail)

    def log_p(self, scores: np.ndarray) -> np.ndarray:
        """``(R, E)`` region scores -> ``(R,)`` log probabilities (at most 0)."""
        lp = np.stack([t.log_p(scores[:, e]) for e, t in enumerate(self.tails)], 1).min(1)
        return np.minimum(lp + np.log(len(self.tails)), 0.0)

    @staticmethod
    def frame_score(lp: float, n: int) -> float:
        """The surprise of a frame whose rarest of ``n`` regions has log probability ``lp``."""
        if lp >= 0:                                    # no region of normal footage is less unusual
            return 0.0
        if lp < -18:                                   # p^2 negligible: 1 - (1 - p)^n = n p
            return -np.log(n) - lp
        return float(-np.log(-np.expm1(n * np.log1p(-np.exp(lp)))))


def _region_stats(active: np.ndarray, speed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per region of at least two cells of ``active`` ``(Gh, Gw)``: the row of its centre and the median
    ``speed`` of its cells."""
    n, labels, stats = moving_regions(active)
    keep = [r for r in range(1, n) if stats[r, 4] >= 2]
    return (region_centres(stats)[keep].astype(np.float64),
            np.array([np.median(speed[labels == r]) for r in keep], np.float64))


def _paced(cells: Cells, factor: float) -> Cells:
    """``cells`` as if everything moved ``factor`` times as fast: velocities, and the speed and change of
    velocity in ``dynamics`` (its size column, if any, unchanged)."""
    dyn = cells.dynamics.copy()
    dyn[:, :2] *= factor
    return cells._replace(velocity=cells.velocity * np.float32(factor), dynamics=dyn)


def _areas(regions: "Regions") -> np.ndarray:
    """``(R,)`` each region's area in cells."""
    return np.bincount(regions.labels.ravel(), minlength=len(regions.scores) + 1)[1:].astype(np.float64)


def _concat(cells: list[Cells]) -> Cells:
    cells = [c for c in cells if c is not None]
    if not cells:
        return empty_cells()
    return Cells(*(np.concatenate(parts) for parts in zip(*cells)))
