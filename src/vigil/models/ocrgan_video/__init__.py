"""OCR-GAN Video (design document 000): ``network.py`` the networks, ``detector.py`` the detector."""

from vigil.models.ocrgan_video.detector import OcrGanVideo, OcrGanVideoConfig
from vigil.models.ocrgan_video.network import OcrGanVideoModel

__all__ = ["OcrGanVideo", "OcrGanVideoConfig", "OcrGanVideoModel"]
