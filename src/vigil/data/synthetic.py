"""A small synthetic corridor, after the scene of design document 000, for the demo and the tests.

A fixed camera looks down a corridor (walls, a textured floor). In normal footage people walk left
to right at a steady pace, in a steady flow (three in view: who leaves on the right comes back in on
the left). Test videos add one anomaly each, in turn: a person running (several
times the speed, bouncing), a person walking the wrong way (right to left), and an object that
should not be there (a box left on the floor). The generator writes the ``frames`` layout with
frame labels and pixel masks, and is deterministic for a seed. It is not a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vigil.errors import VigilError
from vigil.io import atomic_write

ANOMALIES = ("running", "wrong_way", "object")


@dataclass(frozen=True)
class SceneSpec:
    width: int = 128
    height: int = 96
    n_train: int = 8
    n_test: int = 3
    frames: int = 64
    walkers: int = 3          # people in view at the start of each video (a steady normal density)
    walk_speed: float = 1.6   # pixels per frame
    run_factor: float = 4.0   # running speed = run_factor x walk_speed


def _background(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    h, w = spec.height, spec.width
    img = np.zeros((h, w), np.float32)
    top, bottom = int(h * 0.25), int(h * 0.9)
    img[:top] = np.linspace(70, 100, top)[:, None]                      # upper wall
    img[bottom:] = 60                                                   # lower wall
    floor = 140 + rng.normal(0, 6, (bottom - top, w)).astype(np.float32)
    img[top:bottom] = cv2.GaussianBlur(floor, (5, 5), 0)                # floor texture
    for x in range(0, w, 16):                                           # floor tiles
        img[top:bottom, x] -= 12
    return img


class _Person:
    def __init__(self, x: float, y: float, vx: float, bounce: float, scale: float, shade: float):
        self.x, self.y, self.vx, self.bounce, self.scale, self.shade = x, y, vx, bounce, scale, shade

    def draw(self, img: np.ndarray, mask: np.ndarray | None, t: int) -> None:
        if abs(self.vx) > 3:
            # (only the runner moves this fast)
            # a fast mover smears over the camera's exposure: blur its coverage along the motion,
            # as a real camera shows a runner
            cover = np.zeros_like(img)
            self._draw(cover, None, t, shade=1.0)
            k = int(abs(self.vx)) | 1
            cover = cv2.filter2D(cover, -1, np.full((1, k), 1.0 / k, np.float32))
            img[:] = img * (1 - cover) + self.shade * cover
            if mask is not None:
                mask[cover > 0.05] = 255
            return
        self._draw(img, mask, t, self.shade)

    def _draw(self, img: np.ndarray, mask: np.ndarray | None, t: int, shade: float) -> None:
        s = self.scale
        running = self.bounce > 0
        y = self.y - abs(np.sin(t * 0.9)) * self.bounce
        # running: a long stride (legs far apart) and a forward lean; walking: a short stride
        stride = np.sin(t * (0.5 if not running else 1.2)) * (7 if running else 3) * s
        lean = int(3 * s) if running else 0
        cx, cy = int(round(self.x)), int(round(y))
        shapes = [
            lambda im, c: cv2.ellipse(im, (cx, cy), (int(4 * s), int(9 * s)), 15 if lean else 0, 0, 360, c, -1),
            lambda im, c: cv2.circle(im, (cx + lean, cy - int(12 * s)), int(3.5 * s), c, -1),          # head
            lambda im, c: cv2.line(im, (cx, cy + int(6 * s)), (int(cx + stride), cy + int(15 * s)), c, 2),
            lambda im, c: cv2.line(im, (cx, cy + int(6 * s)), (int(cx - stride), cy + int(15 * s)), c, 2),
        ]
        for draw in shapes:
            draw(img, float(shade))
            if mask is not None:
                draw(mask, 255)

    def step(self, width: int | None = None):
        self.x += self.vx
        if width is not None and self.x > width + 15:   # a normal walker who leaves, re-enters: steady flow
            self.x = -15.0


def _render(spec, bg, people, anomaly, rng, seed_t0=0):
    frames, masks = [], []
    noise_rng = np.random.default_rng(rng.integers(1 << 31))
    for t in range(spec.frames):
        img = bg.copy()
        mask = np.zeros(img.shape, np.uint8)
        for p in people:
            p.draw(img, None, t)
            p.step(spec.width)
        if anomaly is not None:
            anomaly(img, mask, t)
        img += noise_rng.normal(0, 2.0, img.shape).astype(np.float32)   # sensor noise
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        masks.append(mask)
    return np.stack(frames), np.stack(masks)


def _walkers(spec, rng, n):
    top, bottom = spec.height * 0.45, spec.height * 0.75
    return [_Person(x=rng.uniform(-20, spec.width * 0.8), y=rng.uniform(top, bottom),
                    vx=spec.walk_speed * rng.uniform(0.85, 1.15), bounce=0.0,
                    scale=rng.uniform(0.9, 1.1), shade=rng.uniform(30, 60)) for _ in range(n)]


def _anomaly(kind: str, spec: SceneSpec, rng: np.random.Generator):
    start = int(spec.frames * rng.uniform(0.3, 0.45))
    y = rng.uniform(spec.height * 0.5, spec.height * 0.7)
    if kind in ("running", "wrong_way"):
        if kind == "running":
            p = _Person(x=-10, y=y, vx=spec.walk_speed * spec.run_factor, bounce=4.0, scale=1.0, shade=40)
        else:
            p = _Person(x=spec.width + 10, y=y, vx=-spec.walk_speed, bounce=0.0, scale=1.0, shade=40)

        def draw(img, mask, t):
            if t >= start:
                p.draw(img, mask, t)
                p.step()
        return draw
    size = int(rng.integers(12, 18))
    x0 = int(rng.uniform(spec.width * 0.3, spec.width * 0.6))
    y0 = int(y)

    def draw_box(img, mask, t):
        if t >= start:
            cv2.rectangle(img, (x0, y0), (x0 + size, y0 + size), 225.0, -1)
            cv2.rectangle(img, (x0, y0), (x0 + size, y0 + size), 20.0, 1)
            cv2.rectangle(mask, (x0, y0), (x0 + size, y0 + size), 255, -1)
    return draw_box


def _write_image(path: Path, img: np.ndarray, params: list[int] | None = None) -> None:
    """Encode and write one image atomically: a full or read-only disk ends in one error naming the
    file (``cv2.imwrite`` would only return False), and no half-written frame is left."""
    ok, buf = cv2.imencode(path.suffix, img, params or [])
    if not ok:
        raise VigilError(f"{path}: could not encode the frame")
    with atomic_write(path, "wb") as f:
        f.write(buf.tobytes())


def generate(out: str | Path, seed: int = 0, spec: SceneSpec = SceneSpec()) -> Path:
    """Write the synthetic corridor in the ``frames`` layout under ``out``; returns ``out``."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    bg = _background(spec, rng)
    labels = []
    for split, n in (("training", spec.n_train), ("testing", spec.n_test)):
        for i in range(n):
            kind = ANOMALIES[i % len(ANOMALIES)] if split == "testing" else None
            people = _walkers(spec, rng, spec.walkers)
            frames, masks = _render(spec, bg, people, _anomaly(kind, spec, rng) if kind else None, rng)
            vdir = out / split / "frames" / f"{i + 1:02d}"
            vdir.mkdir(parents=True, exist_ok=True)
            for t, f in enumerate(frames):
                _write_image(vdir / f"{t:03d}.jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if split == "testing":
                mdir = out / "testing" / "masks" / f"{i + 1:02d}"
                mdir.mkdir(parents=True, exist_ok=True)
                for t, m in enumerate(masks):
                    _write_image(mdir / f"{t:03d}.png", m)
                labels.append((masks.reshape(len(masks), -1) > 0).any(axis=1).astype(np.int64))
    if labels:
        with atomic_write(out / "frame_labels_synthetic.npy", "wb") as f:
            np.save(f, np.concatenate(labels)[None])
    return out
