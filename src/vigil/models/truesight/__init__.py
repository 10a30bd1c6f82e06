"""True Sight (design document 004): ``network.py`` the networks, ``detector.py`` the detector."""

from vigil.models.truesight.detector import COMPONENTS, TrueSight, TrueSightConfig
from vigil.models.truesight.network import MultiScaleMaps, TrueSightNet

__all__ = ["COMPONENTS", "MultiScaleMaps", "TrueSight", "TrueSightConfig", "TrueSightNet"]
