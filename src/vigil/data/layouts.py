"""Dataset layouts, recognised by their shape on disk.

=========  ==========================================================================
layout     what is on disk
=========  ==========================================================================
frames     ``training/frames/NN/*.jpg``, ``testing/frames/NN/*.jpg``,
           ``frame_labels_<name>.npy`` (0/1 per test frame, videos concatenated),
           optional ``testing/masks/NN/*.png`` (the layout of HF2-VAD, MNAD, ...)
ucsd       the official UCSD release: ``Train/TrainNNN/*.tif``, ``Test/TestNNN/*.tif``,
           labels from ``Test/UCSDpedN.m`` (frame ranges), masks in ``Test/TestNNN_gt/``
avenue     the official CUHK Avenue release: ``training_videos/NN.avi``,
           ``testing_videos/NN.avi``, labels from
           ``ground_truth_demo/testing_label_mask/N_label.mat``
design     True Sight's layout: ``Dataset/training_videos/NN/frame_NNNNN.jpg`` and
           ``Dataset/testing_videos/NN/...``; no labels (scoring only)
=========  ==========================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vigil.data.video import IMAGE_EXTS, VIDEO_EXTS, Video, list_images, natural_key
from vigil.errors import VigilError
from vigil.io import video_number


@dataclass
class Dataset:
    """Normal training videos and test videos (with labels and masks where the layout has them)."""

    root: Path
    layout: str
    train: list[Video] = field(default_factory=list)
    test: list[Video] = field(default_factory=list)

    @property
    def has_labels(self) -> bool:
        return bool(self.test) and all(v.labels is not None for v in self.test)

    def describe(self) -> str:
        n_test = sum(len(v) for v in self.test)
        lab = "with labels" if self.has_labels else "no labels"
        masks = ", pixel masks" if self.test and all(v.mask_source is not None for v in self.test) else ""
        return (f"{self.root}: '{self.layout}' layout, {len(self.train)} training videos, "
                f"{len(self.test)} test videos ({n_test} frames, {lab}{masks})")


def _subdirs(p: Path) -> list[Path]:
    return sorted((d for d in p.iterdir() if d.is_dir()), key=natural_key) if p.is_dir() else []


def _frame_folders(p: Path, exclude_suffix: str | None = None) -> list[Path]:
    return [d for d in _subdirs(p) if not (exclude_suffix and d.name.endswith(exclude_suffix))]


def _videos_from_folders(folders: list[Path]) -> list[Video]:
    out = []
    for d in folders:
        if not list_images(d):
            raise VigilError(f"{d}: folder holds no frames ({', '.join(IMAGE_EXTS)})")
        out.append(Video(name=d.name, source=d))
    return out


def _split_labels(labels: np.ndarray, videos: list[Video], label_file: Path) -> None:
    lengths = [len(v) for v in videos]
    if labels.size != sum(lengths):
        raise VigilError(f"{label_file}: {labels.size} labels but the test videos have {sum(lengths)} frames "
                         f"({', '.join(f'{v.name}: {n}' for v, n in zip(videos, lengths))})")
    if not np.isin(labels, (0, 1)).all():
        raise VigilError(f"{label_file}: labels must be 0 or 1")
    start = 0
    for v, n in zip(videos, lengths):
        v.labels = labels[start:start + n].astype(np.int64)
        start += n


def _load_frames_layout(root: Path) -> Dataset:
    train = _videos_from_folders(_frame_folders(root / "training" / "frames"))
    test = _videos_from_folders(_frame_folders(root / "testing" / "frames"))
    label_files = sorted(root.glob("frame_labels_*.npy"))
    if len(label_files) > 1:
        raise VigilError(f"{root}: several label files ({', '.join(p.name for p in label_files)}); keep one")
    if label_files:
        try:
            labels = np.load(label_files[0]).reshape(-1)
        except (ValueError, OSError) as e:
            raise VigilError(f"{label_files[0]}: unreadable label file ({e})") from None
        _split_labels(labels, test, label_files[0])
    mask_root = root / "testing" / "masks"
    for v in test:
        if (mask_root / v.name).is_dir():
            v.mask_source = mask_root / v.name
    return Dataset(root, "frames", train, test)


def parse_ucsd_m(path: Path) -> list[list[tuple[int, int]]]:
    """Frame ranges (1-based, inclusive) per test video from the official ``UCSDpedN.m`` file."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = re.search(r"gt_frame\s*=\s*\[([^\]]*)\]", line)
        if m:
            ranges = [(int(a), int(b)) for a, b in re.findall(r"(\d+)\s*:\s*(\d+)", m.group(1))]
            out.append(ranges)
    if not out:
        raise VigilError(f"{path}: no 'gt_frame = [a:b]' lines found")
    return out


def _load_ucsd(root: Path) -> Dataset:
    train = _videos_from_folders([d for d in _subdirs(root / "Train") if re.fullmatch(r"Train\d+", d.name)])
    test = _videos_from_folders([d for d in _subdirs(root / "Test") if re.fullmatch(r"Test\d+", d.name)])
    m_files = sorted((root / "Test").glob("UCSDped*.m"))
    if m_files:
        ranges = parse_ucsd_m(m_files[0])
        if len(ranges) != len(test):
            raise VigilError(f"{m_files[0]}: {len(ranges)} label entries for {len(test)} test videos")
        for v, rr in zip(test, ranges):
            lab = np.zeros(len(v), dtype=np.int64)
            for a, b in rr:
                if b > len(v) or a < 1:
                    raise VigilError(f"{m_files[0]}: range {a}:{b} is outside video {v.name} ({len(v)} frames)")
                lab[a - 1:b] = 1
            v.labels = lab
    for v in test:
        gt = root / "Test" / f"{v.name}_gt"
        if gt.is_dir():
            v.mask_source = gt
    return Dataset(root, "ucsd", train, test)


def _video_files(p: Path) -> list[Video]:
    files = sorted((f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTS), key=natural_key) if p.is_dir() else []
    return [Video.open(f) for f in files]


def _load_avenue(root: Path) -> Dataset:
    from scipy.io import loadmat

    train = _video_files(root / "training_videos")
    test = _video_files(root / "testing_videos")
    lab_dir = root / "ground_truth_demo" / "testing_label_mask"
    if lab_dir.is_dir():
        for v in test:
            f = lab_dir / f"{video_number(v.name)}_label.mat"
            if not f.is_file():
                raise VigilError(f"{f}: label file for test video {v.name} is missing")
            try:
                vol = loadmat(str(f))["volLabel"]
            except Exception as e:  # scipy raises several types for damaged .mat files
                raise VigilError(f"{f}: unreadable .mat label file ({e})") from None
            masks = np.stack([np.asarray(m) for m in vol.reshape(-1)])
            if len(masks) != len(v):
                raise VigilError(f"{f}: {len(masks)} label masks but video {v.name} has {len(v)} frames")
            v.labels = (masks.reshape(len(masks), -1) > 0).any(axis=1).astype(np.int64)
            v.mask_source = masks > 0
    return Dataset(root, "avenue", train, test)


def _load_design(root: Path) -> Dataset:
    base = root / "Dataset" if (root / "Dataset").is_dir() else root
    return Dataset(root, "design", _videos_from_folders(_frame_folders(base / "training_videos")),
                   _videos_from_folders(_frame_folders(base / "testing_videos")))


def detect_layout(root: Path) -> str | None:
    if (root / "training" / "frames").is_dir() or (root / "testing" / "frames").is_dir():
        return "frames"
    if (root / "Train").is_dir() or (root / "Test").is_dir():
        return "ucsd"
    if (root / "training_videos").is_dir() or (root / "testing_videos").is_dir():
        has_files = any(f.suffix.lower() in VIDEO_EXTS for d in ("training_videos", "testing_videos")
                        if (root / d).is_dir() for f in (root / d).iterdir())
        return "avenue" if has_files else "design"
    if (root / "Dataset" / "training_videos").is_dir() or (root / "Dataset" / "testing_videos").is_dir():
        return "design"
    return None


_LOADERS = {"frames": _load_frames_layout, "ucsd": _load_ucsd, "avenue": _load_avenue, "design": _load_design}


def load_dataset(path: str | Path) -> Dataset:
    """Recognise the layout of ``path`` and list its videos; one clear error when nothing fits."""
    root = Path(path)
    if not root.exists():
        raise VigilError(f"{root}: no such dataset folder")
    if not root.is_dir():
        raise VigilError(f"{root}: not a folder (a dataset is a folder; use a video file with 'vigil score')")
    layout = detect_layout(root)
    if layout is None:
        raise VigilError(f"{root}: no known dataset layout (expected training/frames + testing/frames, "
                         f"Train + Test (UCSD), training_videos + testing_videos (Avenue), or Dataset/)")
    ds = _LOADERS[layout](root)
    if not ds.train and not ds.test:
        raise VigilError(f"{root}: '{layout}' layout found but it holds no videos")
    return ds


def open_videos(path: str | Path) -> list[Video]:
    """What ``vigil score --data`` accepts: a dataset (its test videos), a video file, or a folder of frames."""
    p = Path(path)
    if not p.exists():
        raise VigilError(f"{p}: no such file or folder")
    if p.is_file():
        return [Video.open(p)]
    if detect_layout(p) is not None:
        ds = load_dataset(p)
        if not ds.test:
            raise VigilError(f"{p}: dataset has no test videos to score")
        return ds.test
    if list_images(p):
        return [Video.open(p)]
    raise VigilError(f"{p}: neither a dataset, a video file nor a folder of frames")
