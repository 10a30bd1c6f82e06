"""Synthetic scenes as arrays, for the tests of the object-level scoring: walkers are dark upright ellipses
crossing a noisy gray floor at walking speed, nearer (lower) ones taller; the odd object is a bright box,
wider than tall, moving at walking pace."""

from __future__ import annotations

import numpy as np

H, W = 120, 160


def scene(rng, n_walkers: int, T: int = 60, odd: tuple[int, int] | None = None, offset_from: int | None = None,
          odd_speed: float = 1.0, perspective: bool = False, far_walker: float | None = None,
          direction: float | None = None, pace: float = 1.0):
    """``(T, H, W)`` uint8 and the odd object's box per frame (or None): the odd object is there in frames
    ``odd[0] <= t < odd[1]``, moving ``odd_speed`` px/frame (walkers: 0.8-1.2); from frame ``offset_from`` on,
    the whole frame is 30 gray levels brighter. ``perspective``: a walker's speed grows with its height,
    as its size does (the nearest twice as fast as the farthest); ``far_walker``: one more walker, at the
    far edge of the walkway (feet at row 50), moving that many px/frame; ``direction`` 1 or -1: every walker
    goes right, or left (by default each one either way); ``pace``: the walkers' speeds times this."""
    walkers = [(rng.uniform(0, W), rng.uniform(45, 110),
                (direction or rng.choice([-1.0, 1.0])) * rng.uniform(0.8, 1.2) * pace) for _ in range(n_walkers)]
    if perspective:
        walkers = [(x, foot, v * (1 + (foot - 45) / 65)) for x, foot, v in walkers]
    if far_walker is not None:
        walkers.append((rng.uniform(0, W), 50.0, far_walker))
    frames, boxes = [], []
    base = (120 + rng.normal(0, 2, (H, W))).astype(np.float32)
    for t in range(T):
        f = base + rng.normal(0, 1.5, (H, W))
        for x0, foot, v in walkers:
            x = (x0 + v * t) % (W + 20) - 10
            h = 14 + 10 * (foot - 45) / 65                      # perspective: lower is nearer and taller
            cv2_ellipse(f, (x, foot - h / 2), (h * 0.2, h / 2), 50)
        box = None
        if odd is not None and odd[0] <= t < odd[1]:
            x = 20 + odd_speed * (t - odd[0])
            box = (x, 60, x + 34, 80)                            # a 34 x 20 box: wide, not a walker
            f[60:80, int(x):int(x) + 34] = 200
        if offset_from is not None and t >= offset_from:
            f += 30
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
        boxes.append(box)
    return np.stack(frames), boxes


def cv2_ellipse(f, centre, axes, value):
    yy, xx = np.ogrid[:H, :W]
    m = ((xx - centre[0]) / max(axes[0], 1)) ** 2 + ((yy - centre[1]) / axes[1]) ** 2 <= 1
    f[m] = value
