"""Detectors. Importing this package registers each one under its CLI name."""

from vigil.models import truesight  # noqa: F401  (registers the model)
from vigil.models.base import Detector, available, get_detector, register

__all__ = ["Detector", "available", "get_detector", "register"]
