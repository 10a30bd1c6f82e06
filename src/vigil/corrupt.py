"""Corrupted footage: a deterministic copy of a dataset whose test frames are flipped, noisy, blurred,
dropped and duplicated (design document 004's test videos turn about 30% of the frames upside down).

``corrupt_dataset(source, out, Corruption(), seed=0)`` reads any layout :func:`load_dataset` reads
and writes the ``frames`` layout under ``out``:

* ``training/frames/NN/``: copied unchanged (the file bytes; video files are decoded to PNG), unless
  ``splits="all"``, when training footage is corrupted too;
* ``testing/frames/NN/NNNN.png``: the corrupted test frames, lossless (a frame that nothing touched
  decodes to exactly the source's pixels);
* ``testing/masks/NN/NNNN.png`` and ``frame_labels_<name>.npy``: masks and labels follow their frames
  (a flipped frame's mask is flipped, a dropped frame's label and mask are dropped, a duplicate
  repeats them);
* ``corruption.json``: per corrupted video and output frame, the source frame it came from and what
  was applied.

Every decision is drawn per *source* frame from a generator seeded by ``(seed, split, video)``, five
uniforms per frame (drop, duplicate, flip, noise, blur), so the same seed gives byte-identical files,
and raising one rate only adds frames to that corruption. A duplicate is an exact repeat of the frame
delivered before it (a frozen stream), corruptions included. Order on a frame: blur (optics), noise
(sensor), flip. The whole dataset is written into a temporary sibling folder and renamed into place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from vigil.errors import VigilError
from vigil.io import atomic_write, write_json

if TYPE_CHECKING:
    from vigil.data.layouts import Dataset
    from vigil.data.video import Video

# OpenCV and the dataset readers load when a corruption runs, not when the CLI builds its parser
# (which reads the defaults of Corruption)
OPS = ("flip", "noise", "blur")
MANIFEST = "corruption.json"
_SPLITS = {"training": 0, "testing": 1}


@dataclass(frozen=True)
class Corruption:
    """Rates are per source frame; sigmas are at the source resolution (gray levels 0-255, pixels)."""

    flip: float = 0.3           # upside down: "about 30%" in design document 004
    noise: float = 0.1          # additive Gaussian sensor noise
    blur: float = 0.1           # Gaussian (defocus-like) blur
    drop: float = 0.05          # frames lost by the stream
    dup: float = 0.05           # frames delivered twice (the second copy is the same picture)
    noise_sigma: float = 15.0   # ~6% of the gray range: clearly grainy, the scene still readable
    blur_sigma: float = 2.0     # at Ped2's 360x240: a walker's limbs merge, the path stays visible

    def check(self) -> None:
        for k in ("flip", "noise", "blur", "drop", "dup"):
            v = getattr(self, k)
            if not 0.0 <= v <= 1.0:
                raise VigilError(f"--{k} {v}: a rate must lie between 0 and 1")
        if self.drop >= 1.0:
            raise VigilError(f"--drop {self.drop}: must be below 1 (a video keeps at least one frame)")
        for k in ("noise_sigma", "blur_sigma"):
            v = getattr(self, k)
            if not (v > 0 and v < float("inf")):          # also refuses NaN
                raise VigilError(f"--{k.replace('_', '-')} {v}: must be a positive, finite number")



class FramePlan(NamedTuple):
    """One output frame: the source frame it shows and what was applied (``duplicate`` marks a repeat)."""

    source: int
    ops: tuple[str, ...]


def plan_video(n: int, spec: Corruption, rng: np.random.Generator) -> list[FramePlan]:
    """The output frames of a video of ``n`` source frames. Never empty: if every frame would be
    dropped, the first is kept."""
    u = rng.random((n, 5))                                   # columns: drop, dup, flip, noise, blur
    keep = u[:, 0] >= spec.drop
    if not keep.any():
        keep[0] = True
    plan = []
    for i in np.flatnonzero(keep):
        ops = tuple(op for op, r, x in zip(OPS, (spec.flip, spec.noise, spec.blur), u[i, 2:]) if x < r)
        plan.append(FramePlan(int(i), ops))
        if u[i, 1] < spec.dup:
            plan.append(FramePlan(int(i), ops + ("duplicate",)))
    return plan


def apply_ops(frame: np.ndarray, ops: tuple[str, ...], spec: Corruption, rng: np.random.Generator) -> np.ndarray:
    """``(H, W, 3)`` or ``(H, W)`` uint8 -> the same with ``ops`` applied: blur, then noise, then flip.

    Noise on gray footage stored as three equal channels is one plane, so the frame stays gray.
    """
    import cv2

    out = frame
    if "blur" in ops:
        out = cv2.GaussianBlur(out, (0, 0), spec.blur_sigma, borderType=cv2.BORDER_REFLECT)
    if "noise" in ops:
        gray = out.ndim == 2 or bool((out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all())
        shape = out.shape[:2] + ((1,) if out.ndim == 3 and gray else out.shape[2:])
        noisy = out.astype(np.float32) + rng.normal(0.0, spec.noise_sigma, shape).astype(np.float32)
        out = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if "flip" in ops:
        out = out[::-1]
    return np.ascontiguousarray(out)


def _write_png(path: Path, img: np.ndarray) -> None:
    """Lossless; gray content (three equal channels) as a one-channel PNG, which decodes to the same pixels."""
    import cv2

    if img.ndim == 3:
        same = (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
        img = img[..., 0] if same else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise VigilError(f"{path}: could not encode the frame as PNG")
    buf.tofile(path)


def _label_name(ds: Dataset) -> str:
    found = sorted(ds.root.glob("frame_labels_*.npy")) if ds.layout == "frames" else []
    if found:
        return found[0].name
    return "frame_labels_" + (re.sub(r"[^A-Za-z0-9]+", "_", ds.root.resolve().name).strip("_").lower() or "data") + ".npy"


def _copy_video(v: Video, dst: Path, bar) -> None:
    """A training video unchanged: image files byte for byte, a video file's frames as PNG."""
    from vigil.data.video import list_images

    dst.mkdir(parents=True)
    if v.source is not None and Path(v.source).is_dir():
        for p in list_images(Path(v.source)):
            shutil.copyfile(p, dst / p.name)
            bar.update(1)
        return
    frames = v.frames()
    width = max(3, len(str(len(frames) - 1)))
    for t, f in enumerate(frames):
        _write_png(dst / f"{t:0{width}d}.png", f)
        bar.update(1)


def _corrupt_video(v: Video, split: str, index: int, root: Path, spec: Corruption, seed: int, bar):
    """Write one corrupted video (and its masks); returns its manifest entry and its output labels."""
    frames = v.frames()
    plan = plan_video(len(frames), spec, np.random.default_rng([seed, _SPLITS[split], index]))
    bar.total += len(plan) - len(frames)                      # the bar counts output frames
    bar.refresh()
    masks = v.masks() if split == "testing" else None
    width = max(3, len(str(len(plan) - 1)))
    fdir = root / split / "frames" / v.name
    fdir.mkdir(parents=True)
    if masks is not None:
        mdir = root / split / "masks" / v.name
        mdir.mkdir(parents=True)
    delivered = None
    for t, (src, ops) in enumerate(plan):
        if "duplicate" not in ops:    # a duplicate repeats the picture delivered before it exactly
            noise_rng = np.random.default_rng([seed, _SPLITS[split], index, src])
            delivered = apply_ops(frames[src], ops, spec, noise_rng)
        _write_png(fdir / f"{t:0{width}d}.png", delivered)
        if masks is not None:
            m = masks[src][::-1] if "flip" in ops else masks[src]
            _write_png(mdir / f"{t:0{width}d}.png", np.where(m, 255, 0).astype(np.uint8))
        bar.update(1)
    src_idx = np.array([p.source for p in plan], dtype=np.int64)
    labels = None if v.labels is None else np.asarray(v.labels, np.int64)[src_idx]
    entry = {
        "split": split, "name": v.name, "source_frames": len(frames), "frames": len(plan),
        "dropped": sorted(set(range(len(frames))) - set(src_idx.tolist())),
        "counts": {op: sum(op in p.ops for p in plan) for op in OPS + ("duplicate",)},
        "plan": [{"frame": t, "source": p.source, "ops": list(p.ops)} for t, p in enumerate(plan)],
    }
    return entry, labels


def _check_out(out: Path, source: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise VigilError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise VigilError(f"{out}: folder exists and is not empty; choose another --out or pass --force to replace it")
    o, s = out.resolve(), source.resolve()
    if o == s or o in s.parents:
        raise VigilError(f"{out}: is (or contains) the source dataset {source}; write the corrupted copy elsewhere")
    if s in o.parents:               # a copy inside the source would make the source no longer load
        raise VigilError(f"{out}: is inside the source dataset {source}; write the corrupted copy elsewhere")


def _publish(tmp: Path, out: Path, force: bool) -> None:
    """Rename the finished ``tmp`` folder to ``out`` (replacing a non-empty ``out`` only with ``force``)."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    elif out.exists():
        if not force:
            raise VigilError(f"{out}: folder appeared while writing and is not empty; nothing was replaced")
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.rename(out, old / out.name)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return
    os.rename(tmp, out)


def corrupt_dataset(source: str | os.PathLike, out: str | os.PathLike, spec: Corruption = Corruption(), *,
                    seed: int = 0, splits: str = "test", force: bool = False, progress: bool = True) -> Path:
    """Write the corrupted copy of ``source`` under ``out`` (the ``frames`` layout); returns ``out``.

    ``splits``: ``"test"`` corrupts the test videos and copies training videos unchanged; ``"all"``
    corrupts both. The same ``seed`` and settings give byte-identical files.
    """
    from vigil.data.layouts import load_dataset

    from tqdm.auto import tqdm

    spec.check()
    if splits not in ("test", "all"):
        raise VigilError(f"--splits {splits!r}: expected 'test' or 'all'")
    if seed < 0:
        raise VigilError(f"--seed {seed}: must be zero or positive")
    source, out = Path(source), Path(out)
    ds = load_dataset(source)
    if not ds.test:
        raise VigilError(f"{source}: dataset has no test videos to corrupt")
    _check_out(out, source, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o777 & ~_umask())    # mkdtemp makes a private folder; a dataset is for sharing
    try:
        total = sum(len(v) for v in ds.train) + sum(len(v) for v in ds.test)
        entries, labels = [], []
        with tqdm(total=total, desc="corrupt", unit="frame", disable=not progress) as bar:
            for i, v in enumerate(ds.train):
                if splits == "all":
                    entries.append(_corrupt_video(v, "training", i, tmp, spec, seed, bar)[0])
                else:
                    _copy_video(v, tmp / "training" / "frames" / v.name, bar)
            for i, v in enumerate(ds.test):
                entry, lab = _corrupt_video(v, "testing", i, tmp, spec, seed, bar)
                entries.append(entry)
                labels.append(lab)
        label_file = None
        if ds.has_labels:
            label_file = _label_name(ds)
            with atomic_write(tmp / label_file, "wb") as f:
                np.save(f, np.concatenate(labels)[None])          # (1, N), as Ped2's file
        write_json(tmp / MANIFEST, {
            "format": 1, "source": str(source.resolve()), "layout": ds.layout, "seed": seed, "splits": splits,
            "settings": dataclasses.asdict(spec), "label_file": label_file, "videos": entries,
        })
        _publish(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_manifest(root: str | os.PathLike) -> dict:
    """``corruption.json`` of a corrupted dataset, checked to be readable."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise VigilError(f"{path}: missing (is {root} a folder written by 'vigil corrupt'?)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VigilError(f"{path}: corrupt manifest ({e})") from None
