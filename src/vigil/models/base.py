"""The detector API shared by every model, and the registry that maps CLI names to classes.

The API is the one detector users know (scikit-learn, PyOD): ``fit(train_videos)`` returns the
detector, ``score(video)`` returns one float per frame with **higher = more anomalous**, and state
learned by ``fit`` ends in ``_``. A run folder holds ``model.safetensors`` (every learned array) and
``config.json`` (the model name, its settings and fitted scalars), both written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from vigil.data.video import Video
from vigil.errors import VigilError
from vigil.io import atomic_write, write_json

FORMAT_VERSION = 1
_REGISTRY: dict[str, type["Detector"]] = {}


def register(cls: type["Detector"]) -> type["Detector"]:
    """Class decorator: make ``cls`` reachable as ``vigil train --model <cls.name>``."""
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    import vigil.models  # noqa: F401  (importing registers every model)
    return sorted(_REGISTRY)


def get_detector(name: str) -> type["Detector"]:
    import vigil.models  # noqa: F401
    if name not in _REGISTRY:
        raise VigilError(f"unknown model '{name}' (available: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def as_video(v: Video | np.ndarray, name: str = "video") -> Video:
    return v if isinstance(v, Video) else Video.from_array(name, v)


def resolve_device(device: str) -> "torch.device":  # noqa: F821
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VigilError(f"--device {device}: CUDA is not available here (torch {torch.__version__}); use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise VigilError(f"--device {device}: not a device name (use cpu, cuda or cuda:N)") from None


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

    def __init__(self, config: Any = None, *, device: str = "cpu", progress: bool = True, **overrides):
        cfg = config if config is not None else self.Config()
        try:
            self.config = dataclasses.replace(cfg, **overrides)
        except TypeError as e:
            raise VigilError(f"{self.name}: {e}") from None
        self._check_settings()
        self.device = device
        self.progress = progress
        self.fitted_ = False

    def _check_settings(self) -> None:
        """Raise VigilError, in one line, for settings this model cannot take; called on construction,
        so a bad ``--set`` fails before any data is read."""

    # --- what each model provides -------------------------------------------------------------
    @abstractmethod
    def fit(self, videos: Sequence[Video | np.ndarray]) -> "Detector":
        """Learn normality from normal videos only; returns ``self``."""

    @abstractmethod
    def score(self, video: Video | np.ndarray) -> np.ndarray:
        """One score per frame, shape ``(T,)``; higher = more anomalous."""

    @abstractmethod
    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Every learned array, by name, for ``model.safetensors``."""

    @abstractmethod
    def _load_state_arrays(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        """Restore what :meth:`_state_arrays` and :meth:`_fitted_meta` saved."""

    def score_maps(self, video: Video | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(T,)`` and anomaly maps ``(T, H, W)`` float32 at the frame's own resolution."""
        raise VigilError(f"{self.name}: this model gives no anomaly maps")

    def context(self) -> int:
        """Frames of history needed per score (a fitted model may know better than its class)."""
        return self.context_frames

    def stream(self, maps: bool = False) -> "FrameStream":
        """A live scorer: feed frames one at a time, get each frame's score as it arrives."""
        self._check_fitted()
        return FrameStream(self, maps=maps)

    def _fitted_meta(self) -> dict:
        """Fitted scalars (JSON) saved in ``config.json``."""
        return {}

    # --- ONNX export (vigil.export): the network call is one replaceable step -----------------
    #: why ``vigil export`` refuses this model, or None when it exports
    onnx_unsupported: ClassVar[str | None] = "it defines no exportable scoring network"
    #: an ONNX Runtime session standing in for the network (set by ``vigil.export.load_onnx``)
    _runtime: Any = None

    def _export_spec(self):
        """The scoring module the PyTorch path calls, with example inputs (:class:`vigil.export.ExportSpec`)."""
        raise VigilError(f"model '{self.name}' cannot be exported to ONNX: {self.onnx_unsupported}")

    def _calibration_arrays(self) -> dict[str, np.ndarray]:
        """Every fitted array except the network's weights (what an ONNX file carries beside its graph)."""
        raise NotImplementedError

    def _load_calibration(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        """Restore :meth:`_calibration_arrays` and the fitted scalars, without any network."""
        raise NotImplementedError

    # --- the frame guard (vigil.data.guard): corrupted frames corrected before scoring ---------
    #: the fitted :class:`~vigil.data.guard.FrameGuard`, or None: frames pass unchanged (a run saved
    #: before guards existed loads with none; ``fit_guard`` adds one without retraining)
    guard_: Any = None

    def _read(self, video: Video) -> np.ndarray:
        """uint8 frames exactly as this model reads them, before the guard (models with a guard override)."""
        raise VigilError(f"{self.name}: this model reads no frames through the frame guard")

    def _guarded(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` turned upright and out-of-range ones concealed by the fitted guard; unchanged when
        there is none or the model's ``guard`` setting is off (the ablation)."""
        self._guard_flipped = None
        if self.guard_ is None or not getattr(self.config, "guard", True) or len(frames) == 0:
            return frames
        report = self.guard_.inspect(frames)
        self._guard_flipped = report.flipped
        return self.guard_.apply(frames, report)

    def _as_given(self, maps: np.ndarray) -> np.ndarray:
        """Anomaly maps ``(T, H, W)`` of the frames last read through the guard, turned back to the
        orientation the frames were given in (so they overlay the given frames and their masks)."""
        flipped = getattr(self, "_guard_flipped", None)
        if flipped is None or len(flipped) != len(maps) or not flipped.any():
            return maps
        maps = maps.copy()
        maps[flipped] = maps[flipped][:, ::-1]
        return maps

    def fit_guard(self, videos: Sequence[Video | np.ndarray]) -> "Detector":
        """Fit the frame guard on normal videos as this model reads them; no network is retrained, so an
        older run gains a guard with ``det.fit_guard(ds.train).save(run)``. Returns ``self``."""
        from vigil.data.guard import FrameGuard

        self.guard_ = FrameGuard.fit([self._read(as_video(v, f"train{i}")) for i, v in enumerate(videos)])
        return self

    @classmethod
    def saved_config(cls, raw: dict, where) -> Any:
        """The ``Config`` of settings saved as JSON at ``where`` (a run's config.json, an ONNX file):
        lists back to tuples, :attr:`legacy_settings` for settings the save predates; one clear error
        for a setting this model does not know."""
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls.Config)}
        if unknown:
            raise VigilError(f"{where}: settings {sorted(unknown)} are not known to model '{cls.name}'")
        raw = {**cls.legacy_settings, **raw}
        return cls.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})

    # --- shared -------------------------------------------------------------------------------
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
            meta = json.loads(cfg_file.read_text())
            name, raw = meta["model"], meta["config"]
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
                from vigil.data.guard import FrameGuard

                det.guard_ = FrameGuard.from_state(guard, meta["guard"])
        except (KeyError, RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0][:300]
            raise VigilError(f"{weights}: weights do not fit model '{name}' with these settings ({first})") from None
        det.fitted_ = True
        return det


class FrameStream:
    """Scores frames as they arrive with bounded memory: a ring buffer of the last ``context()``
    frames is scored as a short video and the newest frame's score is kept.

    Models with a cheaper incremental path override :meth:`Detector.stream`. ``update`` returns the
    raw per-frame score; live smoothing (which cannot look ahead) is the caller's, see
    :func:`vigil.watch.watch`.
    """

    def __init__(self, detector: Detector, maps: bool = False):
        from collections import deque

        self.detector, self.maps = detector, maps
        self.frames = deque(maxlen=max(1, detector.context()))

    def update(self, frame: np.ndarray) -> tuple[float, np.ndarray | None]:
        """``frame (H, W, 3)`` uint8 RGB -> (score, anomaly map ``(H, W)`` or None)."""
        self.frames.append(frame)
        clip = Video.from_array("live", np.stack(self.frames))
        if self.maps:
            s, m = self.detector.score_maps(clip)
            return float(s[-1]), m[-1]
        return float(self.detector.score(clip)[-1]), None
