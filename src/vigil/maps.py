"""Saving anomaly maps: the raw numbers for tools, and overlays for people; and boxes from maps.

Maps are calibrated per model (0 = as normal as held-out normal footage), so one fixed colour
scale serves every video: pixels reach full red at ``vmax`` standard deviations above normal.
:func:`boxes_from_map` (written in :mod:`vigil.regions`, below the detector API, which uses it)
turns a map into ``(K, 5)`` boxes: components above a level, scored by their peak.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vigil.data.video import Video
from vigil.io import atomic_write
from vigil.regions import boxes_from_map

__all__ = ["boxes_from_map", "overlay", "save_maps"]


def overlay(frame: np.ndarray, amap: np.ndarray, vmax: float = 6.0, alpha: float = 0.5) -> np.ndarray:
    """RGB ``frame (H, W, 3)`` with ``amap (H, W)`` drawn on it as a heatmap (transparent where 0)."""
    a = np.clip(amap / vmax, 0, 1)
    heat = cv2.cvtColor(cv2.applyColorMap((a * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    w = (alpha * a)[..., None]
    return (frame * (1 - w) + heat * w).astype(np.uint8)


def save_maps(folder: str | Path, video: Video, maps: np.ndarray, *, every: int = 1) -> Path:
    """Write ``maps.npz`` (``(T, H, W)`` float16) and an overlay PNG per frame under ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "maps.npz", "wb") as f:
        np.savez_compressed(f, maps=maps.astype(np.float16))
    frames = video.frames()
    for t in range(0, len(maps), every):
        ok, buf = cv2.imencode(".png", cv2.cvtColor(overlay(frames[t], maps[t]), cv2.COLOR_RGB2BGR))
        with atomic_write(folder / f"{t + 1:05d}.png", "wb") as f:
            f.write(buf.tobytes())
    return folder
