"""Object extraction, tracking and descriptors for the object-centric ``hybrid`` core.

Array-only: frames are ``(H, W)`` uint8 gray at the working size. Shapes: ``T`` frames, ``H W``
working height and width, ``h w = H/2 W/2`` the flow grid, ``N`` objects of one frame, ``S`` the
crop side.

* **Foreground** = pixels that differ from the camera's background (per-pixel median of the fitting
  videos) by more than ``fg_k`` robust noise deviations, after removing the frame's global brightness
  offset (median difference) so that a global brightness change moves nothing into the foreground;
  opened (specks) and closed (body parts joined), then 8-connected components are the objects.
* **Motion** = DIS optical flow from the previous frame at half resolution with the frame's median
  flow (camera shake) removed (:func:`vigil.models.hybrid.features.cell_flows` with 2x2 cells),
  averaged over each object's pixels.
* **Tracking**: each object is matched to the previous frame's object of highest box IoU (greedy,
  IoU >= ``iou``); the change of velocity along the track is the object's acceleration.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from scipy import ndimage

from vigil.models.hybrid.features import PRESETS, _cell_flow, cell_flows

FLOW_CELL = 2          # flow grid = working frame / 2 (DIS at finest scale 1 works at half resolution anyway)


class FrameObjects(NamedTuple):
    """The objects of one frame. ``boxes`` are working-frame pixels ``x0 y0 x1 y1`` (x1, y1 exclusive)."""

    boxes: np.ndarray      # (N, 4) float32
    area: np.ndarray       # (N,) float32 foreground pixels
    vel: np.ndarray        # (N, 2) float32 mean flow vx vy over the object, working px / frame
    energy: np.ndarray     # (N,) float32 mean flow magnitude over the object (limbs, wheels)
    accel: np.ndarray      # (N,) float32 |v_t - v_(t-1)| of its track (0 for a new object)
    peak: np.ndarray       # (N,) float32 largest flow magnitude over the object (its fastest part)
    crops: np.ndarray      # (N, S, S) uint8 gray crop of the box (10% margin), resized


def empty_objects(crop: int) -> FrameObjects:
    z = np.zeros(0, np.float32)
    return FrameObjects(z.reshape(0, 4), z, z.reshape(0, 2), z, z, z, np.zeros((0, crop, crop), np.uint8))


def background(videos: list[np.ndarray], max_frames: int = 400) -> np.ndarray:
    """``(H, W)`` float32 per-pixel median of up to ``max_frames`` evenly spaced frames of ``videos``."""
    allf = np.concatenate(videos)
    step = max(1, len(allf) // max_frames)
    return np.median(allf[::step], axis=0).astype(np.float32)


def noise_scale(videos: list[np.ndarray], bg: np.ndarray, max_frames: int = 200) -> float:
    """Robust standard deviation (1.4826 MAD) of the offset-corrected background difference."""
    allf = np.concatenate(videos)
    step = max(1, len(allf) // max_frames)
    d = allf[::step].astype(np.float32) - bg
    d -= np.median(d.reshape(len(d), -1), axis=1)[:, None, None]
    return float(1.4826 * np.median(np.abs(d)))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, 4)``, ``(M, 4)`` boxes -> ``(N, M)`` IoU."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-6)


class ObjectExtractor:
    """Frames (and their flow) -> :class:`FrameObjects`, one frame at a time; keeps only the previous
    frame (for the flow) and the previous frame's objects (for tracking).

    ``bg`` ``(H, W)`` float32 background, ``thr`` gray levels of difference that count as foreground,
    ``persp`` ``(aw, bw, ah, bh)``: one object's expected log width (height) at foot row ``y`` is
    ``aw + bw * y / H`` (``ah + bh * y / H``).
    """

    def __init__(self, bg: np.ndarray, thr: float, min_area: int, crop: int, iou: float,
                 preset: str = "fast", finest_scale: int = 1, persp: tuple[float, float, float, float] | None = None,
                 split: float = 1.8):
        self.bg, self.thr, self.min_area, self.crop, self.iou = bg.astype(np.float32), thr, min_area, crop, iou
        self.persp, self.split = persp, split      # expected log width, height = a + b * foot row / H; split ratio
        self.preset, self.finest_scale = preset, finest_scale
        self.h, self.w = bg.shape
        self.k_open = np.ones((2, 2), np.uint8)
        self.k_close = np.ones((5, 3), np.uint8)    # 5 tall, 3 wide: joins a head, a torso and legs
        self.dis = None
        self.reset()

    def reset(self) -> None:
        self.prev_gray: np.ndarray | None = None
        self.prev: FrameObjects | None = None

    # --- one frame ----------------------------------------------------------------------------
    def flow(self, gray: np.ndarray) -> np.ndarray | None:
        """``(h, w, 2)`` flow from the previous frame given to this method (``None`` for the first)."""
        prev, self.prev_gray = self.prev_gray, gray
        if prev is None:
            return None
        if self.dis is None:
            self.dis = cv2.DISOpticalFlow_create(PRESETS[self.preset])
            self.dis.setFinestScale(self.finest_scale)
        return _cell_flow(self.dis, prev, gray, FLOW_CELL)

    def foreground(self, gray: np.ndarray) -> np.ndarray:
        """``(H, W)`` uint8 0/1 foreground mask."""
        d = gray.astype(np.float32) - self.bg
        d -= np.median(d[::2, ::2])                      # global brightness offset (most pixels are background)
        m = (np.abs(d) > self.thr).astype(np.uint8)
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, self.k_open)
        return cv2.morphologyEx(m, cv2.MORPH_CLOSE, self.k_close)

    def describe(self, gray: np.ndarray, flow: np.ndarray | None) -> FrameObjects:
        """Objects of frame ``gray`` given its flow ``(h, w, 2)`` (``None``: no motion known, velocity 0)."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(self.foreground(gray), connectivity=8)
        keep = np.flatnonzero(stats[1:, 4] >= self.min_area) + 1
        if keep.size == 0:
            self.prev = empty_objects(self.crop)
            return self.prev
        labels = self._split(labels, stats, keep)
        slices = ndimage.find_objects(labels)
        ids = [i for i, sl in enumerate(slices) if sl is not None]
        boxes = np.array([[slices[i][1].start, slices[i][0].start, slices[i][1].stop, slices[i][0].stop] for i in ids],
                         np.float32).reshape(-1, 4)
        m = len(slices) + 1
        area_all = np.bincount(labels.ravel(), minlength=m).astype(np.float32)
        sel = np.array(ids, np.int64) + 1
        area = area_all[sel]
        if flow is None:
            vel = np.zeros((len(sel), 2), np.float32)
            energy = np.zeros(len(sel), np.float32)
            peak = np.zeros(len(sel), np.float32)
        else:
            fh, fw = flow.shape[:2]
            lab = labels[::FLOW_CELL, ::FLOW_CELL][:fh, :fw].ravel()
            cnt = np.maximum(np.bincount(lab, minlength=m), 1).astype(np.float32)
            f = flow.reshape(-1, 2).astype(np.float32)
            vel = np.stack([np.bincount(lab, f[:, j], m) for j in range(2)], 1)[sel] / cnt[sel, None]
            mag = np.linalg.norm(f, axis=1)
            energy = np.bincount(lab, mag, m)[sel] / cnt[sel]
            peak = np.zeros(m, np.float64)
            np.maximum.at(peak, lab, mag)
            peak = peak[sel]
        accel = np.zeros(len(sel), np.float32)
        if self.prev is not None and len(self.prev.boxes) and flow is not None:
            iou = iou_matrix(boxes, self.prev.boxes)
            used = np.zeros(len(self.prev.boxes), bool)
            for i in np.argsort(-iou.max(1)):            # greedy: best-overlapping objects first
                j = int(np.argmax(np.where(used, -1, iou[i])))
                if iou[i, j] >= self.iou and not used[j]:
                    used[j] = True
                    accel[i] = np.linalg.norm(vel[i] - self.prev.vel[j])
        out = FrameObjects(boxes, area, vel.astype(np.float32), energy.astype(np.float32), accel,
                           peak.astype(np.float32), self.crops(gray, boxes))
        self.prev = out
        return out

    def _split(self, labels: np.ndarray, stats: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Labels ``(H, W)`` int32 of the kept components (others 0); a component much wider or taller
        than one object at its foot row (perspective ``persp``) is cut into a grid of about one object
        per cell: the walkers of a crowd (side by side or one behind the other) become one object
        each, so a rider among them keeps its own velocity, size and crop."""
        remap = np.zeros(len(stats), np.int32)
        remap[keep] = np.arange(1, keep.size + 1)
        out = remap[labels]
        if self.persp is None:
            return out
        nxt = keep.size + 1
        aw, bw, ah, bh = self.persp
        for new_id, c in enumerate(keep, 1):
            x, y, w, h, _ = stats[c]
            foot = (y + h) / self.h
            ew, eh = float(np.exp(aw + bw * foot)), float(np.exp(ah + bh * foot))   # one object there
            kx = int(round(w / ew)) if w >= self.split * ew else 1
            ky = int(round(h / eh)) if h >= self.split * eh else 1
            if kx * ky < 2:
                continue
            sub = out[y:y + h, x:x + w]
            cx = np.minimum(np.arange(w) * kx // w, kx - 1)          # column -> grid column
            cy = np.minimum(np.arange(h) * ky // h, ky - 1)          # row -> grid row
            cell = cy[:, None] * kx + cx[None, :]
            ids = np.where(cell == 0, new_id, nxt + cell - 1)        # cell 0 keeps the old id
            mine = sub == new_id
            sub[mine] = ids[mine]
            nxt += kx * ky - 1
        return out

    def crops(self, gray: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``(N, S, S)`` uint8: each box grown by 10% a side, clipped to the frame, resized to ``S x S``."""
        out = np.empty((len(boxes), self.crop, self.crop), np.uint8)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            mx, my = 0.1 * (x1 - x0) + 1, 0.1 * (y1 - y0) + 1
            a, b = int(max(0, x0 - mx)), int(min(self.w, x1 + mx))
            c, d = int(max(0, y0 - my)), int(min(self.h, y1 + my))
            out[i] = cv2.resize(gray[c:d, a:b], (self.crop, self.crop), interpolation=cv2.INTER_AREA)
        return out

    def update(self, gray: np.ndarray) -> FrameObjects:
        """Live path: the flow from the previous frame, then :meth:`describe`."""
        return self.describe(gray, self.flow(gray))

    # --- a whole video ------------------------------------------------------------------------
    def video(self, gray: np.ndarray) -> list[FrameObjects]:
        """``(T, H, W)`` uint8 -> ``T`` :class:`FrameObjects`; the flows are computed on all cores at once
        (DIS pairs are independent), then the frames are described in order: exactly :meth:`update`
        frame by frame."""
        self.reset()
        flows = cell_flows(gray, FLOW_CELL, self.preset, self.finest_scale) if len(gray) > 1 else None
        out = [self.describe(gray[0], None)]
        for t in range(1, len(gray)):
            out.append(self.describe(gray[t], flows[t - 1]))
        self.prev_gray = gray[-1]
        return out
