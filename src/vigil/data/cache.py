"""The frame cache: decoded, resized frames kept on disk as ``.npy`` files, so a video is decoded once.

Where: ``$VIGIL_CACHE`` (``off`` disables it), else ``~/.cache/vigil``. How large: at most
``$VIGIL_CACHE_SIZE`` (bytes, or with a K/M/G suffix; default 4G); after each new entry the least
recently used entries (by modification time, which a cache hit refreshes) are removed until the
cache fits. ``vigil cache`` shows it and ``vigil cache --clear`` empties it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vigil.errors import VigilError

DEFAULT_LIMIT = 4 * 2**30
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def cache_dir() -> Path | None:
    """``$VIGIL_CACHE`` (``off`` disables caching), else ``~/.cache/vigil``."""
    env = os.environ.get("VIGIL_CACHE")
    if env == "off":
        return None
    return Path(env) if env else Path.home() / ".cache" / "vigil"


def size_limit() -> int:
    """The cache's size limit in bytes (``$VIGIL_CACHE_SIZE``); one clear error for a value that is no size."""
    text = os.environ.get("VIGIL_CACHE_SIZE", "").strip()
    if not text:
        return DEFAULT_LIMIT
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, flags=re.IGNORECASE)
    if not m:
        raise VigilError(f"VIGIL_CACHE_SIZE={text!r}: expected a size such as 500M or 4G")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def entries(root: Path) -> list[Path]:
    return sorted(root.glob("*.npy")) if root.is_dir() else []


def usage(root: Path) -> tuple[int, int]:
    """``(entries, bytes)`` in the cache at ``root``."""
    files = entries(root)
    return len(files), sum(_size(p) for p in files)


def touch(path: Path) -> None:
    """Mark an entry as just used (least recently used entries are removed first)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(root: Path, limit: int | None = None) -> int:
    """Remove least recently used entries until the cache holds at most ``limit`` bytes; returns how
    many were removed. Entries another process removed meanwhile are skipped."""
    limit = size_limit() if limit is None else limit
    files = []
    for p in entries(root):
        try:
            st = p.stat()
        except OSError:
            continue
        files.append((st.st_mtime_ns, st.st_size, p))
    total = sum(s for _, s, _ in files)
    removed = 0
    for _, size, p in sorted(files, key=lambda f: f[0]):
        if total <= limit:
            break
        try:
            p.unlink()
            removed += 1
        except OSError:
            pass
        total -= size
    return removed


def clear(root: Path) -> tuple[int, int]:
    """Remove every entry; returns ``(entries, bytes)`` removed."""
    n, size = usage(root)
    for p in entries(root):
        try:
            p.unlink()
        except OSError:
            pass
    return n, size


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0
