"""Per-frame region descriptors for the ``hybrid`` detector, computed from a bounded window of past frames.

Shapes: ``H W`` the working frame size (pixels), ``c`` the cell size, ``Gh Gw`` = ``H/c W/c`` the cell
grid, ``N`` the active (moving) cells of one frame. A *cell* is a ``c x c`` block of the working
frame; a cell is *active* when its mean flow speed is above the moving threshold ``tau``.

Each active cell gets five descriptors (the last two only when asked for):

* **velocity** ``(N, 2)``: how it moves, ``vx vy`` (speed and direction): the flow averaged over the
  last ``history`` frames at that cell, in working pixels per frame;
* **dynamics** ``(N, 3)``: its speed, how its motion changes (norm of the change of the cell's flow
  across the window, per frame) and how large the moving region it belongs to is (log area in cells
  of its 8-connected component of active cells); with ``dynamics_size`` ``local``, the log number of active
  cells in its 3x3 neighbourhood instead (bounded: walkers who merge into one region do not grow it),
  with ``none`` ``(N, 2)``, no size at all;
* **shape** ``(N, 3)``: what size and shape the moving region it belongs to has, and where: the log
  height and log width (in cells) of the region's box and the row of its centre. A ground-plane camera
  sees the same object smaller the higher it is in the frame, so sizes are compared with the normal
  objects of that row; the column is left out (a few normal videos do not pass every place, and the
  normal size at a row hardly depends on it);
* **look** ``(N, 128)``: what the moving region it belongs to looks like: the gray pixels of the region's
  box, resized to 8 x 16 (width x height: an upright person's proportions) and standardised (mean 0,
  standard deviation 1: a change of light is not a change of look). Computed only when asked for;
* **appearance** ``(N, 9)``: what is there, not where: a histogram of gradient orientations (8
  unsigned bins, magnitude-weighted, over the 2x2-cell neighbourhood, L2-normalised) and the log
  gradient energy of that neighbourhood. Computed only when asked for. (Until issue 13 it held the
  cell's column and row too; normality that depends on position needs training footage at every
  position, which a camera's few normal videos do not give, the same failure as the ``location``
  evidence's.)

Global motion (camera shake, pan) is removed by subtracting the frame's median flow vector before
anything else: with a fixed camera most pixels are static, so the median is ~0 and nothing changes;
with a shaking camera the median is the shake, and only motion relative to the scene remains.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np

N_BINS = 8
APPEARANCE_WIDTH = N_BINS + 1          # orientation histogram, log gradient energy
SHAPE_WIDTH = 3                        # log height, log width, centre row of the cell's region
LOOK_SIZE = (8, 16)                    # width, height of a region's crop for the look descriptor
LOOK_WIDTH = LOOK_SIZE[0] * LOOK_SIZE[1]
PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class Cells(NamedTuple):
    """The active cells of one frame (``idx`` are flat indices into the ``Gh x Gw`` grid)."""

    idx: np.ndarray          # (N,) int64
    velocity: np.ndarray     # (N, 2) float32
    dynamics: np.ndarray     # (N, 3) float32
    appearance: np.ndarray   # (N, APPEARANCE_WIDTH) float32, or (N, 0) when not asked for
    shape: np.ndarray        # (N, SHAPE_WIDTH) float32: log height, log width, centre row of its region
    look: np.ndarray         # (N, LOOK_WIDTH) float32 its region's standardised crop, or (N, 0) when not asked for
    region: np.ndarray       # (N,) int32 the cell's moving region (moving_regions' label, from 1)
    centre: np.ndarray       # (N,) int64 the row of the centre of that region


def moving_regions(active: np.ndarray, v: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """The 8-connected regions of ``active`` ``(Gh, Gw)`` bool, as ``cv2.connectedComponentsWithStats``
    gives them: ``n`` labels (0 = still), the ``(Gh, Gw)`` label grid, ``(n, 5)`` stats x y w h area.

    With the cells' velocities ``v`` ``(Gh, Gw, 2)``, two neighbouring cells moving in opposite
    directions (negative dot product) are not joined: walkers passing each other are two regions, while
    one body, whose parts all move forward, stays whole."""
    if v is None:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(active.astype(np.uint8), connectivity=8)
        return n, labels, stats
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    gh, gw = active.shape
    cell = np.arange(gh * gw).reshape(gh, gw)
    src, dst = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ys, xs = slice(0, gh - dy), slice(max(0, -dx), gw - max(0, dx))
        yt, xt = slice(dy, gh), slice(max(0, dx), gw - max(0, -dx))
        ok = active[ys, xs] & active[yt, xt] & ((v[ys, xs] * v[yt, xt]).sum(-1) > 0)
        src.append(cell[ys, xs][ok])
        dst.append(cell[yt, xt][ok])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(gh * gw, gh * gw))
    _, comp = connected_components(graph, directed=False)
    on = np.flatnonzero(active.ravel())
    _, first, inverse = np.unique(comp[on], return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))                  # labels in raster order of first cell
    labels = np.zeros(gh * gw, np.int32)
    labels[on] = order[inverse] + 1
    n = len(first) + 1
    return n, labels.reshape(gh, gw), region_stats(labels.reshape(gh, gw), n)


def region_stats(labels: np.ndarray, n: int) -> np.ndarray:
    """``(n, 5)`` x y w h area of each label of ``labels`` ``(Gh, Gw)`` (0 = still, 1..n-1 regions), as
    ``cv2.connectedComponentsWithStats`` gives them (row 0: the whole grid and its still cells)."""
    gh, gw = labels.shape
    on = np.flatnonzero(labels.ravel())
    y, x = np.divmod(on, gw)
    lab = labels.ravel()[on]
    x0, y0 = np.full(n, gw), np.full(n, gh)
    x1, y1 = np.full(n, -1), np.full(n, -1)
    np.minimum.at(x0, lab, x)
    np.minimum.at(y0, lab, y)
    np.maximum.at(x1, lab, x)
    np.maximum.at(y1, lab, y)
    stats = np.column_stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1, np.bincount(lab, minlength=n)]).astype(np.int32)
    stats[0] = (0, 0, gw, gh, gh * gw - len(on))
    return stats


def region_centres(stats: np.ndarray) -> np.ndarray:
    """The row of the centre of each region of ``stats`` (:func:`moving_regions`)."""
    return (stats[:, 1] + (stats[:, 3] - 1) // 2).astype(np.int64)


def working_size(width: int, height: int, max_width: int, cell: int) -> tuple[int, int]:
    """``(W, H)`` of the working frame: at most ``max_width`` wide (never upscaled), aspect kept,
    both sides whole multiples of ``cell``."""
    w = min(width, max_width)
    h = height * w / width
    return max(cell, int(w) // cell * cell), max(cell, int(round(h)) // cell * cell)


def cell_mean(x: np.ndarray, c: int) -> np.ndarray:
    """``(H, W, C)`` float32 -> ``(H/c, W/c, C)`` block means (area resampling by a whole factor is
    exactly the block mean, and OpenCV does it several times faster than a NumPy reshape-mean)."""
    h, w = x.shape[:2]
    return cv2.resize(x, (w // c, h // c), interpolation=cv2.INTER_AREA)


def orientation_histograms(gray: np.ndarray, c: int) -> np.ndarray:
    """``(H, W)`` uint8 -> ``(Gh, Gw, 8)`` gradient-orientation histograms per cell, magnitude-weighted."""
    g = gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)                          # ang in [0, 2pi)
    b = (np.mod(ang, np.pi) * (N_BINS / np.pi)).astype(np.int64)
    np.minimum(b, N_BINS - 1, out=b)
    h, w = gray.shape
    gh, gw = h // c, w // c
    cell_of = ((np.arange(h)[:, None] // c) * gw + (np.arange(w)[None, :] // c))   # (H, W)
    hist = np.bincount((cell_of * N_BINS + b).ravel(), weights=mag.ravel(), minlength=gh * gw * N_BINS)
    return hist.reshape(gh, gw, N_BINS).astype(np.float32)


class CellStream:
    """Turns frames, one at a time, into active-cell descriptors; keeps only ``history`` past frames.

    ``update(gray)`` takes a ``(H, W)`` uint8 frame already at the working size and returns the
    :class:`Cells` of that frame, or ``None`` for the first frame of a stream (no flow yet).
    """

    def __init__(self, size: tuple[int, int], cell: int, tau: float, history: int = 3, preset: str = "fast",
                 finest_scale: int = 1, appearance: bool = True, split: bool = False, look: bool = False,
                 dynamics_size: str = "region", gate: float = 0.0):
        self.w, self.h = size
        self.c, self.tau, self.history, self.appearance, self.split = cell, tau, history, appearance, split
        self.look, self.dynamics_size, self.gate = look, dynamics_size, gate
        self.dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.dis.setFinestScale(finest_scale)      # 0 = full working resolution, 1 = half, 2 = quarter
        self.gh, self.gw = self.h // cell, self.w // cell
        self.reset()

    def reset(self) -> None:
        self.prev: np.ndarray | None = None
        self.flows: deque[np.ndarray] = deque(maxlen=self.history)    # per-cell flow, (Gh, Gw, 2) each
        self.changes: deque[np.ndarray] = deque(maxlen=self.history)  # per-cell gray change, (Gh, Gw) each

    def cell_flow(self, gray: np.ndarray) -> np.ndarray | None:
        """Flow from the previous frame, camera motion removed, as ``(Gh, Gw, 2)`` cell means."""
        prev, self.prev = self.prev, gray
        if prev is None:
            return None
        return _cell_flow(self.dis, prev, gray, self.c)

    def update(self, gray: np.ndarray) -> Cells | None:
        before = self.prev
        cf = self.cell_flow(gray)
        return None if cf is None else self.describe(gray, cf, before)

    def describe(self, gray: np.ndarray, cf: np.ndarray, before: np.ndarray | None = None) -> Cells:
        """Descriptors of frame ``gray`` given its cell flow ``cf`` ``(Gh, Gw, 2)`` (from :meth:`cell_flow`)
        and the frame ``before`` it (needed with ``gate``: a cell is active only when its gray levels
        changed, over the window, by more than ``gate`` on average; :func:`cell_change`)."""
        self.flows.append(cf)
        v = np.mean(self.flows, axis=0)                            # (Gh, Gw, 2) averaged over the window
        speed = np.linalg.norm(v, axis=-1)
        active = speed > self.tau                                  # (Gh, Gw)
        if self.gate > 0 and before is not None:
            # optical flow is smooth, so it spreads a walker's motion over the still ground around
            # it; the gray levels of that ground do not change
            self.changes.append(cell_change(before, gray, self.c))
            active &= np.mean(self.changes, axis=0) > self.gate
        idx = np.flatnonzero(active)
        if idx.size == 0:
            return empty_cells(self.appearance, self.look, 2 if self.dynamics_size == "none" else 3)
        change = np.linalg.norm(self.flows[-1] - self.flows[0], axis=-1) / max(1, len(self.flows) - 1)
        _, labels, stats = moving_regions(active, v if self.split else None)
        lab = labels.ravel()[idx].astype(np.int32)
        centre = region_centres(stats)[lab]
        dynamics = [speed.ravel()[idx], change.ravel()[idx]]
        if self.dynamics_size == "region":
            dynamics.append(np.log(stats[lab, 4].astype(np.float32)))
        elif self.dynamics_size == "local":
            near = cv2.boxFilter(active.astype(np.float32), -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
            dynamics.append(np.log(near.ravel()[idx]))
        dynamics = np.column_stack(dynamics).astype(np.float32)
        shape = np.column_stack([np.log(stats[lab, 3]), np.log(stats[lab, 2]), centre]).astype(np.float32)
        vel = v.reshape(-1, 2)[idx].astype(np.float32)
        look = (region_crops(gray, stats[1:, :4] * self.c)[lab - 1] if self.look
                else np.zeros((idx.size, 0), np.float32))
        if not self.appearance:
            return Cells(idx, vel, dynamics, np.zeros((idx.size, 0), np.float32), shape, look, lab, centre)
        hist = orientation_histograms(gray, self.c)
        # 2x2-cell neighbourhood (the cell and its right/lower neighbours): a person is ~2 cells wide
        p = np.pad(hist, ((0, 1), (0, 1), (0, 0)), mode="edge")
        hist = (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]).reshape(-1, N_BINS)[idx]
        energy = hist.sum(axis=1, keepdims=True)
        appearance = np.column_stack([hist / np.maximum(np.linalg.norm(hist, axis=1, keepdims=True), 1e-6),
                                      np.log1p(energy)])
        return Cells(idx, vel, dynamics, appearance.astype(np.float32), shape, look, lab, centre)


def _cell_flow(dis, prev: np.ndarray, gray: np.ndarray, c: int) -> np.ndarray:
    flow = dis.calc(prev, gray, None)                              # (H, W, 2)
    # global motion (see module doc), estimated on every 4th pixel of every 4th row: a median over
    # thousands of vectors, at a sixteenth of the cost; subtracted after the (linear) cell mean
    return cell_mean(flow, c) - np.median(flow[::4, ::4].reshape(-1, 2), axis=0)


def cell_flows(gray: np.ndarray, cell: int, preset: str = "fast", finest_scale: int = 1,
               workers: int | None = None) -> np.ndarray | None:
    """``(T, H, W)`` uint8 frames -> ``(T-1, Gh, Gw, 2)`` cell flows (frame t from t-1), or ``None``
    for fewer than two frames; exactly what :meth:`CellStream.cell_flow` gives frame by frame.

    DIS starts each pair from scratch (no initial flow), so the pairs are independent: contiguous
    chunks go to ``workers`` threads (default: the CPU cores), each with its own DIS instance and
    OpenCV's own threading off meanwhile. On 2 cores that is ~1.4x faster than one DIS call after
    another using OpenCV's internal threads, with identical results.
    """
    if len(gray) < 2:
        return None
    workers = max(1, min(workers or os.cpu_count() or 1, len(gray) - 1))
    edges = np.linspace(0, len(gray) - 1, workers + 1).round().astype(int)   # pair p = (p, p+1)

    def chunk(lo_hi):
        lo, hi = lo_hi
        dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        dis.setFinestScale(finest_scale)
        return [_cell_flow(dis, gray[p], gray[p + 1], cell) for p in range(lo, hi)]

    if workers == 1:
        return np.stack(chunk((0, len(gray) - 1)))
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)                 # one OpenCV thread per worker: no oversubscription
    try:
        with ThreadPoolExecutor(workers) as pool:   # cv2 releases the GIL inside calc()
            parts = list(pool.map(chunk, zip(edges[:-1], edges[1:])))
    finally:
        cv2.setNumThreads(before)
    return np.stack([f for part in parts for f in part])


def empty_cells(appearance: bool = True, look: bool = False, dynamics_width: int = 3) -> Cells:
    z = np.zeros((0,), np.float32)
    return Cells(np.zeros(0, np.int64), z.reshape(0, 2), z.reshape(0, dynamics_width),
                 z.reshape(0, APPEARANCE_WIDTH if appearance else 0), z.reshape(0, SHAPE_WIDTH),
                 z.reshape(0, LOOK_WIDTH if look else 0), np.zeros(0, np.int32), np.zeros(0, np.int64))


def region_crops(gray: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(R, LOOK_WIDTH)`` float32: the pixels of ``gray`` in each box (``(R, 4)`` x y w h, pixels), resized
    to ``LOOK_SIZE`` (area averaging) and standardised per crop (mean 0, standard deviation 1; a flat
    crop stays 0)."""
    g = gray.astype(np.float32)
    crops = np.stack([cv2.resize(g[y:y + h, x:x + w], LOOK_SIZE, interpolation=cv2.INTER_AREA)
                      for x, y, w, h in boxes]).reshape(len(boxes), -1)
    crops -= crops.mean(1, keepdims=True)
    return crops / np.maximum(crops.std(1, keepdims=True), 1.0)


def cell_change(before: np.ndarray, gray: np.ndarray, c: int) -> np.ndarray:
    """``(Gh, Gw)`` float32: the mean absolute gray-level change per ``c x c`` cell from ``before`` to
    ``gray`` (both ``(H, W)`` uint8)."""
    return cell_mean(cv2.absdiff(gray, before).astype(np.float32), c)


def window_means(x: np.ndarray, history: int) -> np.ndarray:
    """``(T, ...)`` per-frame values -> ``(T, ...)``: each frame's mean over the last ``history`` frames (fewer
    at the start), as :class:`CellStream`'s deques of ``history`` frames average them."""
    csum = np.cumsum(np.concatenate([np.zeros_like(x[:1]), x]), axis=0)
    t = np.arange(1, len(x) + 1)
    lo = np.maximum(0, t - history)
    return (csum[t] - csum[lo]) / (t - lo).reshape(-1, *([1] * (x.ndim - 1)))


def window_changes(gray: np.ndarray, c: int, history: int) -> np.ndarray:
    """``(T, H, W)`` uint8 frames -> ``(T-1, Gh, Gw)`` cell changes (:func:`cell_change`) averaged over
    the last ``history`` frames, exactly as :meth:`CellStream.describe` averages them for its gate."""
    return window_means(np.stack([cell_change(a, b, c) for a, b in zip(gray[:-1], gray[1:])]), history)


def window_speeds(cfs: np.ndarray, history: int) -> np.ndarray:
    """``(T, Gh, Gw, 2)`` cell flows -> ``(T, Gh, Gw)`` speeds of the flow averaged over the last
    ``history`` frames, exactly as :meth:`CellStream.describe` averages them."""
    return np.linalg.norm(window_means(cfs, history), axis=-1)


def object_height(grays: list[np.ndarray], cell: int, history: int = 3, factor: float = 3.0,
                  preset: str = "fast", finest_scale: int = 1) -> float | None:
    """How tall, in cells, the moving objects of ``grays`` (videos of ``(T, H, W)`` uint8 frames, all at one
    working size) are: over every moving cell, the mean length of the vertical run of moving cells it lies in
    (its column's unbroken stretch of moving cells), so that an object counts by its area and a stray cell of
    noise hardly at all. A run, unlike a region's box, does not grow when walkers side by side or in a
    diagonal line join into one region. A cell moves when both its window speed and its window gray-level
    change exceed ``factor`` x their medians over all cells, the principle of ``tau_factor`` and
    ``change_factor`` (the gray levels keep the run to the object itself; see :meth:`CellStream.describe`).
    ``None`` when nothing moves."""
    grays = [g for g in grays if len(g) > 1]
    if not grays:
        return None
    speeds = [window_speeds(cell_flows(g, cell, preset, finest_scale), history) for g in grays]
    changes = [window_changes(g, cell, history) for g in grays]
    tau = factor * np.median(np.concatenate([s.ravel() for s in speeds]))
    gate = factor * np.median(np.concatenate([c.ravel() for c in changes]))
    moving = np.concatenate([(s > tau) & (c > gate) for s, c in zip(speeds, changes)])     # (F, Gh, Gw)
    # runs down each column of each frame: pad a still row above and below, find where runs start and end
    edges = np.moveaxis(np.diff(np.pad(moving, ((0, 0), (1, 1), (0, 0))).astype(np.int8), axis=1), 1, 2).ravel()
    lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)      # (frame, column) runs, in order
    return float((lengths ** 2).sum() / lengths.sum()) if lengths.size else None


def self_crowd(gray: np.ndarray, thr: float = 25.0, min_frames: int = 8) -> np.ndarray | None:
    """``(T, H, W)`` uint8 normal frames -> ``(T // 2, H, W)``: the first half with the moving pixels of
    the second half (those further than ``thr`` gray levels from the video's median frame, the still
    scene) laid over it, frame by frame: the same scene with twice the walkers, each of them walking as
    normal walkers do, partly hiding one another. ``None`` for a video under ``2 * min_frames`` frames
    (too short to have a still scene and two halves)."""
    half = len(gray) // 2
    if half < min_frames:
        return None
    still = np.median(gray, axis=0)
    over = gray[half:2 * half]
    moving = np.abs(over.astype(np.float32) - still) > thr
    out = gray[:half].copy()
    out[moving] = over[moving]
    return out
