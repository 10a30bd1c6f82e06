"""vigil: unsupervised video anomaly detection for surveillance footage.

Learn normality from normal videos, then score every frame of a new video (higher = more
anomalous)::

    from vigil import load_dataset, get_detector
    ds = load_dataset("../shared/data/ucsd_ped2")
    det = get_detector("truesight")(epochs=5).fit(ds.train)
    scores = det.score(ds.test[0])
"""

from vigil.data import Dataset, Video, load_dataset, open_videos
from vigil.errors import VigilError
from vigil.models import Detector, available, get_detector

__version__ = "0.1.0"
__all__ = ["Dataset", "Detector", "Video", "VigilError", "available", "get_detector", "load", "load_dataset",
           "open_videos"]


def load(path, *, device: str = "cpu") -> Detector:
    """A trained detector: a run folder written by ``vigil train``, or a ``.onnx`` file written by ``vigil export``."""
    from pathlib import Path

    if Path(path).suffix.lower() == ".onnx":
        from vigil.export import load_onnx

        return load_onnx(path, device=device)
    return Detector.load(path, device=device)
