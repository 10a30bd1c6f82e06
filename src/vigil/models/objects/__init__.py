"""Object-centric core of the ``hybrid`` detector (issue 13): array-only, wrapped by the Detector class.

``ObjectModel(ObjectConfig()).fit(videos)`` with ``(T, H, W)`` uint8 gray videos at the working size;
``score``, ``score_full``, ``stream``, ``state`` / ``from_state``. See :mod:`.model` for the method.
"""

from vigil.models.objects.features import FrameObjects, ObjectExtractor
from vigil.models.objects.model import EVIDENCE, ObjectConfig, ObjectModel, ObjectStream, smooth

__all__ = ["EVIDENCE", "FrameObjects", "ObjectConfig", "ObjectExtractor", "ObjectModel", "ObjectStream", "smooth"]
