"""Reading frames: folders of images and video files, resized, optionally grayscale, cached.

Shapes: ``T`` frames, ``H W`` height and width, ``C`` = 3 colour channels in RGB order.
A :class:`Video` is cheap to create; frames are decoded on first use and kept in a disk cache
keyed by the source files (names, sizes, modification times) and the requested size, so a change
to either decodes again.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vigil.data import cache
from vigil.data.cache import cache_dir
from vigil.errors import VigilError, VigilWarning
from vigil.io import atomic_write

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
VIDEO_EXTS = (".avi", ".mp4", ".mov", ".mkv", ".m4v")
_CACHE_VERSION = 1

cv2.setNumThreads(max(1, os.cpu_count() or 1))
_DECODE_THREADS = max(1, min(8, os.cpu_count() or 1))


def natural_key(p: Path):
    """Sort ``frame_2.jpg`` before ``frame_10.jpg``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def list_images(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file()), key=natural_key)


def _read_image(path: Path, damaged: list | None = None) -> np.ndarray:
    """One frame as ``(H, W, 3)`` uint8 RGB; a clear error for an unreadable or truncated file.
    ``damaged``: a JPEG whose data is damaged but decodes (:func:`jpeg_damage`) is appended to it."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise VigilError(f"{path}: empty image file")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        tail = data[-64:]
        tail = tail[: np.flatnonzero(tail).max() + 1] if tail.any() else tail
        if tail.size < 2 or tail[-2] != 0xFF or tail[-1] != 0xD9:
            raise VigilError(f"{path}: truncated JPEG (no end-of-image marker)")
        if damaged is not None and jpeg_damage(data) is not None:
            damaged.append(path)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise VigilError(f"{path}: unreadable image (not a valid {path.suffix.lstrip('.')} file)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


#: zero bytes in a row that entropy-coded JPEG data does not hold (see :func:`jpeg_damage`)
ZERO_RUN = 16


def jpeg_damage(data: np.ndarray) -> int | None:
    """The byte offset of the first invalid marker in a JPEG's entropy-coded data, or None.

    After the start of scan (``FF DA``) a ``FF`` byte may only be followed by ``00`` (a stuffed
    byte), ``D0``-``D7`` (restart markers), ``FF`` (fill) or, at the end, ``D9``, or by another
    marker of a multi-scan file (``C4``, ``DA``, ``DB``, ``DD``): anything else means the data was
    overwritten, although OpenCV still decodes the frame (greyed or smeared past the damage)."""
    ff = np.flatnonzero(data[:-1] == 0xFF)
    nxt = data[ff + 1]
    sos = ff[nxt == 0xDA]
    if len(sos) == 0:
        return None
    after = ff > sos[0]
    ok = (nxt == 0x00) | ((nxt >= 0xD0) & (nxt <= 0xD7)) | (nxt == 0xFF) | np.isin(nxt, (0xD9, 0xC4, 0xDA, 0xDB, 0xDD))
    bad = ff[after & ~ok]
    if len(bad):
        return int(bad[0])
    # data overwritten with zeros holds no marker, but Huffman-coded data never holds a long run of zero
    # bytes (at most 4 in all 4,560 Ped2 frames, 1 in a flat or black frame): 16 or more is damage
    zero = np.concatenate([[0], (data[sos[0]:] == 0).astype(np.int8), [0]])
    edges = np.diff(zero)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = starts[(ends - starts) >= ZERO_RUN]
    return int(sos[0] + long[0]) if len(long) else None


def _decode_video(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VigilError(f"{path}: cannot open video (missing codec or not a video file)")
    frames = []
    try:
        claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise VigilError(f"{path}: video has zero frames")
    if claimed > len(frames):
        warnings.warn(VigilWarning(f"{path}: its header says {claimed} frames, {len(frames)} decode (frames "
                                   f"{len(frames) + 1}-{claimed} are missing: a file cut short?)"), stacklevel=2)
    return np.stack(frames)


def working_frame(frame: np.ndarray, size: tuple[int, int] | None, gray: bool) -> np.ndarray:
    """One ``(H, W, 3)`` RGB or ``(H, W)`` gray uint8 frame resized to ``size`` ``(W, H)`` (area
    averaging) and, with ``gray``, converted to gray: what a model reads, live or from a file."""
    if size is not None and (frame.shape[1], frame.shape[0]) != tuple(size):
        frame = cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA)
    if gray and frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return frame


def _resize(frames: np.ndarray, size: tuple[int, int] | None, gray: bool) -> np.ndarray:
    return np.stack([working_frame(f, size, gray) for f in frames])


@dataclass
class Video:
    """One video: a folder of frames, a video file, or frames already in memory.

    ``labels`` holds one 0/1 per frame when known (1 = anomalous); ``mask_source`` points at
    pixel ground truth (a folder of masks) when the dataset has it.
    """

    name: str
    source: Path | None = None
    labels: np.ndarray | None = None
    mask_source: Path | None = None
    array: np.ndarray | None = field(default=None, repr=False)
    fps: float | None = None
    _n: int | None = field(default=None, repr=False)

    @classmethod
    def from_array(cls, name: str, frames: np.ndarray, labels=None) -> "Video":
        """Wrap ``(T, H, W, 3)`` or ``(T, H, W)`` uint8 frames."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = np.repeat(frames[..., None], 3, axis=-1)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise VigilError(f"video '{name}': expected frames of shape (T, H, W, 3), got {frames.shape}")
        if len(frames) == 0:
            raise VigilError(f"video '{name}': zero frames")
        if frames.dtype != np.uint8:
            frames = np.clip(frames, 0, 255).astype(np.uint8)
        return cls(name=name, array=frames, labels=None if labels is None else np.asarray(labels))

    @classmethod
    def open(cls, path: str | os.PathLike, name: str | None = None) -> "Video":
        """A video file or a folder of frames, checked to exist and hold frames."""
        path = Path(path)
        if not path.exists():
            raise VigilError(f"{path}: no such file or folder")
        if path.is_dir():
            if not list_images(path):
                raise VigilError(f"{path}: folder holds no frames ({', '.join(IMAGE_EXTS)})")
        elif path.suffix.lower() not in VIDEO_EXTS:
            raise VigilError(f"{path}: not a video file or folder of frames (expected {', '.join(VIDEO_EXTS)})")
        return cls(name=name or path.stem, source=path)

    def __len__(self) -> int:
        if self._n is None:
            if self.array is not None:
                self._n = len(self.array)
            elif self.source.is_dir():
                self._n = len(list_images(self.source))
            else:
                self._n = len(self.frames())
        return self._n

    def frame_size(self) -> tuple[int, int]:
        """``(H, W)`` of the frames at their own resolution, decoding one frame at most (a video
        file's header usually tells without decoding any)."""
        if self.array is not None:
            return tuple(self.array.shape[1:3])
        if self.source.is_dir():
            files = list_images(self.source)
            if not files:
                raise VigilError(f"{self.source}: folder holds no frames")
            return tuple(_read_image(files[0]).shape[:2])
        cap = cv2.VideoCapture(str(self.source))
        try:
            h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        finally:
            cap.release()
        return (h, w) if h > 0 and w > 0 else tuple(self.frames().shape[1:3])

    def _fingerprint(self) -> str:
        h = hashlib.sha1(f"v{_CACHE_VERSION}:{self.source.resolve()}".encode())
        files = list_images(self.source) if self.source.is_dir() else [self.source]
        for p in files:
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()

    def frames(self, size: tuple[int, int] | None = None, gray: bool = False) -> np.ndarray:
        """All frames, ``(T, H, W, 3)`` RGB or ``(T, H, W)`` gray, uint8; ``size`` is ``(W, H)``."""
        if self.array is not None:
            return _resize(self.array, size, gray) if (size or gray) else self.array
        root = cache_dir()
        key = None
        if root is not None:
            key = root / f"{self._fingerprint()}_{size[0] if size else 0}x{size[1] if size else 0}_{'g' if gray else 'c'}.npy"
            if key.is_file():
                try:
                    out = np.load(key)
                    self._n = len(out)
                    cache.touch(key)                 # least recently used entries go first
                    return out
                except (ValueError, OSError):
                    pass  # a damaged cache entry is decoded again and rewritten
        out = self._decode(size, gray)
        self._n = len(out)
        if key is not None:
            try:
                with atomic_write(key, "wb") as f:
                    np.save(f, out)
                cache.prune(root)                    # keep the cache within $VIGIL_CACHE_SIZE
            except (OSError, VigilError):
                pass  # caching is an optimisation; a read-only or full cache must not stop scoring
        return out

    def _decode(self, size, gray) -> np.ndarray:
        if self.source.is_dir():
            files = list_images(self.source)
            if not files:
                raise VigilError(f"{self.source}: folder holds no frames")
            damaged: list[Path] = []                 # list.append is atomic: safe from the pool's threads
            first = _read_image(files[0], damaged)

            def one(p: Path) -> np.ndarray:
                img = first if p is files[0] else _read_image(p, damaged)
                if img.shape != first.shape:
                    raise VigilError(f"{p}: frame size {img.shape[1]}x{img.shape[0]} differs from "
                                     f"{files[0].name} ({first.shape[1]}x{first.shape[0]})")
                return working_frame(img, size, gray)

            # OpenCV's decoders release the GIL, so threads decode frames side by side; map keeps
            # their order and raises the first bad frame's error, as a loop would
            with ThreadPoolExecutor(max_workers=_DECODE_THREADS) as pool:
                out = np.stack(list(pool.map(one, files)))
            if damaged:
                damaged.sort(key=natural_key)
                shown = ", ".join(p.name for p in damaged[:5]) + (" ..." if len(damaged) > 5 else "")
                warnings.warn(VigilWarning(f"{self.source}: {len(damaged)} JPEG frame(s) with damaged data, decoded "
                                           f"as far as they go: {shown}"), stacklevel=2)
            return out
        return _resize(_decode_video(self.source), size, gray)

    def masks(self, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """Pixel ground truth ``(T, H, W)`` bool, or ``None`` when the dataset has none."""
        if self.mask_source is None:
            return None
        if isinstance(self.mask_source, np.ndarray):
            m = self.mask_source
        else:
            files = list_images(Path(self.mask_source))
            m = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in files])
        if len(m) != len(self):
            raise VigilError(f"{self.mask_source}: {len(m)} masks for {len(self)} frames of video '{self.name}'")
        if size is not None:
            m = np.stack([cv2.resize(x.astype(np.uint8), tuple(size), interpolation=cv2.INTER_NEAREST) for x in m])
        return m > 0
