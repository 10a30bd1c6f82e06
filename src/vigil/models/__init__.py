"""Detectors. Importing this package registers each one under its CLI name."""

from vigil.models import hybrid, ocrgan_video, truesight  # noqa: F401  (importing registers the models)
from vigil.models.base import Detector, available, get_detector, register

__all__ = ["Detector", "available", "get_detector", "register"]
