"""The detectors, one folder each (``network.py`` or ``features.py``, and ``detector.py``). Importing
this package imports every model, and each registers itself under its CLI name (:mod:`vigil.registry`)."""

from vigil.models import hybrid, ocrgan_video, truesight  # noqa: F401  (importing registers the models)
