"""The detector API every caller uses: ``fit`` / ``score`` / ``score_maps`` / ``score_boxes`` / ``stream`` /
``save`` / ``load``.

The API is the one detector users know (scikit-learn, PyOD): ``fit(train_videos)`` returns the
detector, ``score(video)`` returns one float per frame with **higher = more anomalous**, and state
learned by ``fit`` ends in ``_``. Videos are :class:`~vigil.data.video.Video` objects or ``(T, H, W[, 3])``
uint8 arrays.

This base class reads, caches and guards frames for the models: a model declares the input it
wants (:class:`Input`: working size, gray or colour) and receives uint8 arrays, already through the
frame guard (:mod:`vigil.data.guard`), so no model touches a file. A model implements ``_fit``,
``_score`` and, where it has them, ``_score_maps``, ``_score_boxes`` (boxes of its own objects; by
default boxes come from the maps) and a live state (``_live``); and one pair of
hooks for its learned state, ``_state_arrays`` / ``_load_state_arrays`` (arrays + fitted scalars).

A run folder holds ``model.safetensors`` (every learned array) and ``config.json`` (the model name,
its settings and fitted scalars), both written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Sequence

import numpy as np

from vigil import training
from vigil.training import resolve_device  # noqa: F401  (part of the API models use)
from vigil.data.guard import FrameGuard, GuardStream
from vigil.data.video import Video, working_frame
from vigil.errors import VigilError
from vigil.io import atomic_write, write_json
from vigil.regions import boxes_from_map
from vigil.registry import get_detector

FORMAT_VERSION = 1


class Input(NamedTuple):
    """What a model reads: frames resized to ``size`` ``(W, H)`` (``None``: as given), gray or RGB."""
    size: tuple[int, int] | None
    gray: bool


class ExportSpec(NamedTuple):
    """What a model hands to :func:`vigil.export.export_onnx`: the scoring module and how to call it."""
    module: Any                          # the torch.nn.Module the PyTorch path calls, in eval mode
    example: tuple                       # example inputs (torch tensors), batch axis first
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict                   # {name: {axis: label}}: the axes that vary between calls
    #: each row of the batch axis is computed alone (True Sight's frames), so ONNX Runtime may split a
    #: batch across threads, one single-threaded run per part (see :class:`vigil.export.OrtNetwork`)
    rows_independent: bool = False


def as_video(v: Video | np.ndarray, name: str = "video") -> Video:
    return v if isinstance(v, Video) else Video.from_array(name, v)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def machine_info() -> dict:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


class Detector(ABC):
    """Base of every detector. Subclasses set ``name`` and ``Config`` (a frozen dataclass)."""

    name: ClassVar[str]
    Config: ClassVar[type]
    #: frames of history one frame's score needs (1 = the frame alone); bounds live memory
    context_frames: ClassVar[int] = 1
    #: fit() takes checkpoint_dir / resume / checkpoint_every (vigil.training); `vigil train --resume`
    resumable: ClassVar[bool] = False
    #: settings whose default changed: the value a run saved before the setting existed was fitted
    #: and calibrated with, used when its config.json does not name the setting
    legacy_settings: ClassVar[dict] = {}
    #: allowed ranges of numeric settings, ``{name: (low, high)}`` inclusive, ``None`` = unbounded;
    #: checked with every setting's type on construction (:meth:`_check_config_types`)
    ranges: ClassVar[dict[str, tuple]] = {}
    #: why ``vigil export`` refuses this model, or None when it exports (see :meth:`_export_spec`)
    onnx_unsupported: ClassVar[str | None] = "it defines no exportable scoring network"
    #: an ONNX Runtime session standing in for the network (set by ``vigil.export.load_onnx``)
    _runtime: Any = None
    #: the fitted :class:`~vigil.data.guard.FrameGuard`, or None: frames pass unchanged (a run saved
    #: before guards existed loads with none; :meth:`fit_guard` adds one without retraining)
    guard_: FrameGuard | None = None
    #: the model's anomaly maps are on its frame-score scale (a frame's score is its map's peak, as in
    #: hybrid), so ``threshold_`` also cuts a map into boxes (:meth:`box_level`)
    maps_on_score_scale: ClassVar[bool] = False
    #: where maps that are not on the score scale are cut into boxes: such maps are calibrated per
    #: pixel, standard deviations above held-out normal footage (:mod:`vigil.maps`)
    map_box_level: ClassVar[float] = 3.0

    def __init__(self, config: Any = None, *, device: str = "cpu", progress: bool = True, **overrides):
        cfg = config if config is not None else self.Config()
        try:
            self.config = dataclasses.replace(cfg, **overrides)
        except TypeError as e:
            raise VigilError(f"{self.name}: {e}") from None
        self._check_config_types()
        self._check_settings()
        self.device = device
        self.progress = progress
        self.fitted_ = False

    def _check_config_types(self) -> None:
        """Every setting has its default's type (an int may stand for a float; a tuple holds items of
        its default's item type), numbers are finite and inside :attr:`ranges`: one line otherwise."""
        import math

        for f in dataclasses.fields(self.config):
            value, default = getattr(self.config, f.name), f.default
            kind = type(default)
            items = value if isinstance(default, tuple) else (value,)
            if isinstance(default, tuple):
                if not isinstance(value, tuple):
                    raise VigilError(f"{self.name}: setting {f.name}={value!r} must be a list")
                kind = type(default[0]) if default else object
            for v in items:
                ok = (isinstance(v, bool) if kind is bool else
                      isinstance(v, int) and not isinstance(v, bool) if kind is int else
                      isinstance(v, (int, float)) and not isinstance(v, bool) if kind is float else
                      isinstance(v, kind))
                if not ok:
                    what = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
                    raise VigilError(f"{self.name}: setting {f.name}={value!r} must be "
                                     f"{'a list, each item ' if isinstance(default, tuple) else ''}"
                                     f"{what.get(kind, kind.__name__)}")
                if kind is float and not math.isfinite(v):
                    raise VigilError(f"{self.name}: setting {f.name}={value!r} must be a finite number")
            lo, hi = self.ranges.get(f.name, (None, None))
            for v in items:
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    span = (f"at least {lo}" if hi is None else f"at most {hi}" if lo is None
                            else f"between {lo} and {hi}")
                    raise VigilError(f"{self.name}: setting {f.name}={value!r} must be {span}")

    # --- what each model provides -------------------------------------------------------------
    def _check_settings(self) -> None:
        """Raise VigilError, in one line, for settings this model cannot take; called on construction,
        so a bad ``--set`` fails before any data is read."""

    @abstractmethod
    def _input(self, frame_size: tuple[int, int] | None = None) -> Input:
        """The frames this model reads. ``fit`` passes the ``(H, W)`` of the first training video, from
        which a model may fix its working size (a fitted state); afterwards it is called without."""

    @abstractmethod
    def _fit(self, frames: list[np.ndarray], **train) -> None:
        """Learn normality from the training videos' frames (uint8, as :meth:`_input` says)."""

    @abstractmethod
    def _score(self, frames: np.ndarray) -> np.ndarray:
        """``(T,)`` scores of one video's frames (through the guard); higher = more anomalous."""

    def _score_maps(self, frames: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(T,)`` and maps ``(T, H, W)`` float32 at ``frame_size`` ``(H, W)``."""
        raise VigilError(f"{self.name}: this model gives no anomaly maps")

    def _score_boxes(self, frames: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Scores ``(T,)`` and each frame's ``(K, 5)`` float32 boxes ``(x0, y0, x1, y1, score)`` in pixels
        of a frame of ``frame_size`` ``(H, W)``, x1 and y1 exclusive (:mod:`vigil.regions`). A model
        with objects of its own overrides this; by default, the components of each anomaly map above
        :meth:`box_level`, scored by the map's peak inside (:func:`vigil.regions.boxes_from_map`)."""
        scores, maps = self._score_maps(frames, frame_size)
        return scores, self.map_boxes(maps)

    def _live(self, maps: bool):
        """A model's own incremental live state (``update(x, frame_size) -> (score, map or None)`` on
        frames already prepared as :meth:`_input` says, ``reset()``), or None to score a ring buffer
        of the last :meth:`context` frames as a short video (:class:`FrameStream`)."""
        return None

    @abstractmethod
    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Every learned array, by name, for ``model.safetensors``."""

    @abstractmethod
    def _load_state_arrays(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        """Restore what :meth:`_state_arrays` and :meth:`_fitted_meta` saved."""

    def _fitted_meta(self) -> dict:
        """Fitted scalars (JSON) saved in ``config.json``."""
        return {}

    # ONNX export (vigil.export): the network call is one replaceable step
    def _export_spec(self) -> ExportSpec:
        """The scoring module the PyTorch path calls, with example inputs."""
        raise VigilError(f"model '{self.name}' cannot be exported to ONNX: {self.onnx_unsupported}")

    def _calibration_arrays(self) -> dict[str, np.ndarray]:
        """Every fitted array except the network's weights (what an ONNX file carries beside its graph)."""
        raise NotImplementedError

    def _load_calibration(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        """Restore :meth:`_calibration_arrays` and the fitted scalars, without any network."""
        raise NotImplementedError

    # --- the API ------------------------------------------------------------------------------
    def fit(self, videos: Sequence[Video | np.ndarray], **train) -> "Detector":
        """Learn normality from normal videos only; returns ``self``. ``train``: the options of
        :func:`vigil.training.fit_loop` (``checkpoint_dir``, ``resume``, ``checkpoint_every``) for
        models that train by epochs (``resumable``).

        Under torchrun every process joins the process group here; the model shares out its work and
        rank 0's fitted state is given to every process, so ``fit`` returns the same detector everywhere.
        """
        videos = [as_video(v, f"train{i}") for i, v in enumerate(videos)]
        if not videos:
            raise VigilError(f"{self.name}: fit() needs at least one normal training video")
        if train and not self.resumable:
            raise VigilError(f"{self.name}: fit() takes no training options ({', '.join(sorted(train))})")
        seed_everything(getattr(self.config, "seed", 0))
        self.device = training.join(self.device)        # under torchrun: this process's device
        self.guard_ = None
        self._input(videos[0].frame_size())
        frames = [self._read(v) for v in videos]
        self._fit(frames, **train)
        training.share_fitted(self)
        training.leave()
        self.guard_ = FrameGuard.fit(frames)
        self.fitted_ = True
        return self

    def score(self, video: Video | np.ndarray) -> np.ndarray:
        """One score per frame, shape ``(T,)``; higher = more anomalous."""
        self._check_fitted()
        return self._score(self.frames_of(video)[0])

    def score_maps(self, video: Video | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(T,)`` and anomaly maps ``(T, H, W)`` float32 at the frame's own resolution, in the
        orientation the frames were given in (so they overlay the given frames and their masks)."""
        self._check_fitted()
        video = as_video(video)
        frames, flipped = self.frames_of(video)
        scores, maps = self._score_maps(frames, video.frame_size())
        return scores, _as_given(maps, flipped)

    def score_boxes(self, video: Video | np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Scores ``(T,)`` and, per frame, a ``(K, 5)`` float32 array of boxes ``(x0, y0, x1, y1, score)``
        in the frame's own pixels (x1, y1 exclusive; higher score = more anomalous), in the orientation
        the frames were given in, as :meth:`score_maps`' maps are."""
        self._check_fitted()
        video = as_video(video)
        frames, flipped = self.frames_of(video)
        size = video.frame_size()
        scores, boxes = self._score_boxes(frames, size)
        if len(boxes) != len(scores):
            raise VigilError(f"{self.name}: boxes for {len(boxes)} frames but {len(scores)} scores")
        boxes = [np.asarray(b, dtype=np.float32).reshape(-1, 5) for b in boxes]
        return scores, _boxes_as_given(boxes, flipped, size[0])

    def box_level(self) -> float:
        """The map level above which a component becomes a box: ``threshold_`` for maps on the score
        scale (:attr:`maps_on_score_scale`), else :attr:`map_box_level`."""
        if self.maps_on_score_scale and getattr(self, "threshold_", None) is not None:
            return float(self.threshold_)
        return float(self.map_box_level)

    def map_boxes(self, maps: np.ndarray) -> list[np.ndarray]:
        """Each ``(H, W)`` map of ``maps (T, H, W)`` as its ``(K, 5)`` boxes (:meth:`box_level`)."""
        level = self.box_level()
        return [boxes_from_map(m, level) for m in maps]

    def context(self) -> int:
        """Frames of history needed per score (a fitted model may know better than its class)."""
        return self.context_frames

    def stream(self, maps: bool = False) -> "FrameStream | LiveStream":
        """A live scorer: feed frames one at a time (``update(frame) -> (score, map or None)``), get
        each frame's score as it arrives; ``reset()`` starts again from the warm-up, as at a first frame."""
        self._check_fitted()
        live = self._live(maps)
        return FrameStream(self, maps=maps) if live is None else LiveStream(self, live)

    # --- frames -------------------------------------------------------------------------------
    def _read(self, video: Video) -> np.ndarray:
        """uint8 frames exactly as this model reads them, before the guard (decoded once, then cached)."""
        spec = self._input()
        return video.frames(size=spec.size, gray=spec.gray)

    def frames_of(self, video: Video | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """A video's frames as this model reads them, through the frame guard, and which were turned
        upright (``(T,)`` bool, or None when nothing was inspected)."""
        frames = self._read(as_video(video))
        if self.guard_ is None or not getattr(self.config, "guard", True) or len(frames) == 0:
            return frames, None
        return self.guard_.correct(frames)

    def fit_guard(self, videos: Sequence[Video | np.ndarray]) -> "Detector":
        """Fit the frame guard on normal videos as this model reads them; no network is retrained, so an
        older run gains a guard with ``det.fit_guard(ds.train).save(run)``. Returns ``self``."""
        self.guard_ = FrameGuard.fit([self._read(as_video(v, f"train{i}")) for i, v in enumerate(videos)])
        return self

    # --- persistence --------------------------------------------------------------------------
    @classmethod
    def saved_config(cls, raw: dict, where) -> Any:
        """The ``Config`` of settings saved as JSON at ``where`` (a run's config.json, an ONNX file):
        lists back to tuples, :attr:`legacy_settings` for settings the save predates; one clear error
        for a setting this model does not know."""
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls.Config)}
        if unknown:
            raise VigilError(f"{where}: settings {sorted(unknown)} are not known to model '{cls.name}'")
        raw = {**cls.legacy_settings, **raw}
        config = cls.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})
        try:
            cls(config, progress=False)             # the types and ranges every setting must have
        except VigilError as e:
            raise VigilError(f"{where}: {e}") from None
        return config

    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise VigilError(f"{self.name}: call fit() or load() before score()")

    def save(self, path: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write ``path/model.safetensors`` and ``path/config.json`` (each atomically)."""
        from safetensors.numpy import save

        self._check_fitted()
        if self._runtime is not None:
            raise VigilError(f"{path}: this {self.name} model was loaded from an ONNX file and has no PyTorch "
                             f"weights to save; keep the .onnx file, or save from the run it was exported from")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(v) for k, v in self._state_arrays().items()}
        guard_arrays, guard_meta = self.guard_.state() if self.guard_ is not None else ({}, None)
        arrays.update({f"guard.{k}": np.ascontiguousarray(v) for k, v in guard_arrays.items()})
        with atomic_write(path / "model.safetensors", "wb") as f:
            f.write(save(arrays, metadata={"vigil_model": self.name}))
        write_json(path / "config.json", {
            "format": FORMAT_VERSION, "model": self.name, "config": dataclasses.asdict(self.config),
            "fitted": self._fitted_meta(), "guard": guard_meta, **(extra or {}),
        })
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu") -> "Detector":
        """Load a run folder written by :meth:`save`; a clear error for another model or a bad file."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        cfg_file, weights = path / "config.json", path / "model.safetensors"
        if not path.is_dir():
            raise VigilError(f"{path}: no such run folder")
        for f in (cfg_file, weights):
            if not f.is_file():
                raise VigilError(f"{f}: missing (is {path} a folder written by 'vigil train'?)")
        try:
            meta = json.loads(cfg_file.read_text(encoding="utf-8"))
            name, raw = meta["model"], meta["config"]
            if not isinstance(name, str) or not isinstance(raw, dict) or not isinstance(meta.get("fitted", {}), dict):
                raise TypeError("'model' must be a name, 'config' and 'fitted' objects")
        except UnicodeDecodeError as e:
            raise VigilError(f"{cfg_file}: not a UTF-8 text file (byte {e.start}: {e.reason})") from None
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise VigilError(f"{cfg_file}: corrupt run configuration ({e.__class__.__name__}: {e})") from None
        klass = get_detector(name)
        if cls is not Detector and klass is not cls:
            raise VigilError(f"{path}: checkpoint of model '{name}', not '{cls.name}'")
        det = klass(klass.saved_config(raw, cfg_file), device=device)
        try:
            arrays = load_file(str(weights))
        except (SafetensorError, OSError, ValueError) as e:
            raise VigilError(f"{weights}: corrupt weights file ({e})") from None
        try:
            guard = {k[len("guard."):]: v for k, v in arrays.items() if k.startswith("guard.")}
            det._load_state_arrays({k: v for k, v in arrays.items() if not k.startswith("guard.")},
                                   meta.get("fitted", {}))
            if meta.get("guard"):               # runs saved before the frame guard have none
                det.guard_ = FrameGuard.from_state(guard, meta["guard"])
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as e:
            first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:300]
            raise VigilError(f"{weights}: weights do not fit model '{name}' with these settings ({first})") from None
        det.fitted_ = True
        return det


def _as_given(maps: np.ndarray, flipped: np.ndarray | None) -> np.ndarray:
    """Maps ``(T, H, W)`` of frames the guard turned upright, turned back to the orientation given."""
    if flipped is None or len(flipped) != len(maps) or not flipped.any():
        return maps
    maps = maps.copy()
    maps[flipped] = maps[flipped][:, ::-1]
    return maps


def _boxes_as_given(boxes: list[np.ndarray], flipped: np.ndarray | None, height: int) -> list[np.ndarray]:
    """Boxes of frames the guard turned upright (a vertical flip), in the orientation given: rows
    ``y`` become ``height - y``, so ``(y0, y1)`` becomes ``(height - y1, height - y0)``."""
    if flipped is None or len(flipped) != len(boxes) or not flipped.any():
        return boxes
    out = list(boxes)
    for t in np.flatnonzero(flipped):
        b = boxes[t].copy()
        b[:, 1], b[:, 3] = height - boxes[t][:, 3], height - boxes[t][:, 1]
        out[t] = b
    return out


class LiveStream:
    """Live scoring through a model's own incremental state (:meth:`Detector._live`): each frame is
    prepared as the model reads it (resized, gray, through the frame guard's one-frame path) and the
    map comes back in the orientation the frame was given in."""

    def __init__(self, detector: Detector, state):
        self.detector, self.state = detector, state
        det = detector
        self.spec = det._input()
        self.guard = GuardStream(det.guard_) if det.guard_ is not None and getattr(det.config, "guard", True) else None

    def reset(self) -> None:
        """Start again from the warm-up, as at the first frame (after a gap in the stream)."""
        self.state.reset()
        if self.guard is not None:
            self.guard = GuardStream(self.guard.guard)

    def update(self, frame: np.ndarray) -> tuple[float, np.ndarray | None]:
        """``frame (H, W, 3)`` RGB or ``(H, W)`` gray uint8 -> (score, anomaly map ``(H, W)`` or None)."""
        frame = np.asarray(frame, dtype=np.uint8)
        x = working_frame(frame, self.spec.size, self.spec.gray)
        flipped = False
        if self.guard is not None:
            x = self.guard.update(x)
            flipped = self.guard.flipped
        score, m = self.state.update(x, frame.shape[:2])
        if m is not None and flipped:
            m = m[::-1].copy()
        return score, m


class FrameStream:
    """Scores frames as they arrive with bounded memory: a ring buffer of the last ``context()``
    frames is scored as a short video and the newest frame's score is kept.

    ``update`` returns the raw per-frame score; live smoothing (which cannot look ahead) is the
    caller's, see :func:`vigil.watch.watch`.
    """

    def __init__(self, detector: Detector, maps: bool = False):
        self.detector, self.maps = detector, maps
        self.frames = deque(maxlen=max(1, detector.context()))

    def reset(self) -> None:
        """Forget the past frames: the next frame is scored as a first frame."""
        self.frames.clear()

    def update(self, frame: np.ndarray) -> tuple[float, np.ndarray | None]:
        """``frame (H, W, 3)`` uint8 RGB -> (score, anomaly map ``(H, W)`` or None)."""
        self.frames.append(frame)
        clip = Video.from_array("live", np.stack(self.frames))
        if self.maps:
            s, m = self.detector.score_maps(clip)
            return float(s[-1]), m[-1]
        return float(self.detector.score(clip)[-1]), None
