"""``hybrid``, vigil's own motion-first detector: ``features.py`` the descriptors, ``detector.py`` the detector."""

from vigil.models.hybrid.detector import Hybrid, HybridConfig

__all__ = ["Hybrid", "HybridConfig"]
