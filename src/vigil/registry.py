"""The registry: detector names (what ``vigil train --model`` takes) to their classes.

A model registers itself when its module is imported (``@register`` on the class, as timm's
``@register_model``). This module imports no model: :func:`get_detector` and :func:`available` load
the package that holds them, :data:`MODELS`, by name, the way a plugin is loaded, so the registry
stays below the models in the import graph (``docs/architecture.md``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vigil.errors import VigilError

if TYPE_CHECKING:
    from vigil.detector import Detector

#: the package whose import registers every built-in model
MODELS = "vigil.models"
_REGISTRY: dict[str, type["Detector"]] = {}


def register(cls: type["Detector"]) -> type["Detector"]:
    """Class decorator: make ``cls`` reachable as ``vigil train --model <cls.name>``."""
    _REGISTRY[cls.name] = cls
    return cls


def _load_models() -> None:
    importlib.import_module(MODELS)


def available() -> list[str]:
    """Names of every registered detector, sorted."""
    _load_models()
    return sorted(_REGISTRY)


def get_detector(name: str) -> type["Detector"]:
    """The detector class registered as ``name``; one clear error for an unknown name."""
    _load_models()
    if name not in _REGISTRY:
        raise VigilError(f"unknown model '{name}' (available: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]
