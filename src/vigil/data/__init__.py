"""Frames, videos and dataset layouts."""

from vigil.data.layouts import Dataset, load_dataset, open_videos
from vigil.data.video import Video

__all__ = ["Dataset", "Video", "load_dataset", "open_videos"]
