"""vigil: unsupervised video anomaly detection for surveillance footage.

Learn normality from normal videos, then score every frame of a new video (higher = more
anomalous)::

    from vigil import load_dataset, get_detector
    ds = load_dataset("../shared/data/ucsd_ped2")
    det = get_detector("truesight")(epochs=5).fit(ds.train)
    scores = det.score(ds.test[0])

The public names are loaded when first used, so ``import vigil`` (and ``vigil --help``) stays fast:
PyTorch, OpenCV and the models load only when a detector or a video is asked for.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "Dataset": "vigil.data.layouts", "load_dataset": "vigil.data.layouts", "open_videos": "vigil.data.layouts",
    "Video": "vigil.data.video", "VigilError": "vigil.errors", "Detector": "vigil.detector",
    "available": "vigil.registry", "get_detector": "vigil.registry", "load": "vigil.runs",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
