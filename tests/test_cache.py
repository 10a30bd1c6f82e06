"""The frame cache: bounded by VIGIL_CACHE_SIZE (least recently used entries go first), shown and
cleared by ``vigil cache``."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from vigil.cli import main
from vigil.data import cache
from vigil.data.video import Video


def _video(tmp_path, name, seed):
    import cv2

    folder = tmp_path / "videos" / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    return Video.open(folder)


def test_the_cache_keeps_within_its_limit_dropping_the_least_recently_used(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("VIGIL_CACHE", str(root))
    a, b, c = (_video(tmp_path, n, i) for i, n in enumerate("abc"))
    a.frames()
    (a_key,) = cache.entries(root)
    one = cache.usage(root)[1]
    monkeypatch.setenv("VIGIL_CACHE_SIZE", str(int(2.5 * one)))      # room for two entries
    old = time.time() - 100
    os.utime(a_key, (old, old))
    b.frames()
    (b_key,) = set(cache.entries(root)) - {a_key}
    os.utime(b_key, (old + 50, old + 50))                              # b used after a ...
    a.frames()                                                         # ... until a cache hit refreshes a
    c.frames()                                                         # a third entry: b, now the oldest, goes
    assert a_key.is_file() and not b_key.is_file() and cache.usage(root)[0] == 2
    np.testing.assert_array_equal(a.frames(), a._decode(None, False))  # a still served, and right


@pytest.mark.parametrize("text, expected", [("500M", 500 * 2**20), ("4G", 4 * 2**30), ("1024", 1024)])
def test_sizes_read_with_their_suffixes(text, expected, monkeypatch):
    monkeypatch.setenv("VIGIL_CACHE_SIZE", text)
    assert cache.size_limit() == expected


def test_vigil_cache_shows_and_clears(tmp_path, monkeypatch, capsys):
    root = tmp_path / "cache"
    monkeypatch.setenv("VIGIL_CACHE", str(root))
    _video(tmp_path, "a", 0).frames()
    assert main(["cache"]) == 0 and "1 videos" in capsys.readouterr().out
    assert main(["cache", "--clear"]) == 0 and "removed 1 cached videos" in capsys.readouterr().out
    assert cache.usage(root) == (0, 0)
