"""An event's pictures on disk: its snapshot (JPEG), its clip (WebM and/or MP4), retention, a full disk.

Layout under ``storage.dir``: ``snapshots/<camera>/<event-id>.jpg``, ``clips/<camera>/<event-id>.webm``
and ``.mp4``, ``false_alarms/<camera>/<event-id>/NNNNN.jpg`` (the frames of clips reviewed as false
alarms, for ``vigil refit``). Clips are written while the event goes on (bounded memory), under a
temporary name in the same folder, and renamed when the event ends; a snapshot is written atomically.

WebM (VP8) is what the page plays: browsers play it, while OpenCV's only MP4 encoder here writes
MPEG-4 part 2, which Chromium does not decode; the MP4 is kept for players and tools that want one.

A full or read-only disk (``ENOSPC``, ``EROFS``, ...) stops clips: :attr:`Media.problem` says why,
events are still recorded (with ``has_clip`` false and a ``clip_note``), and the page shows it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from vigil.io import DISK_ERRORS, atomic_write, disk_error

FOURCC = {"webm": "VP80", "mp4": "mp4v"}


def annotated(frame: np.ndarray, amap: np.ndarray | None) -> np.ndarray:
    """RGB frame with its anomaly map drawn (:func:`vigil.maps.overlay`), as snapshots and tiles show it."""
    from vigil.maps import overlay

    return overlay(frame, amap) if amap is not None else frame


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def _create(path: Path) -> None:
    """Create the clip's file ourselves first: OpenCV's writer hides the reason when it cannot (a full
    or read-only disk). The tests replace this to fake a full disk."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))


class ClipWriter:
    """One event's clip, encoded on a thread of its own (so scoring never waits for the encoder) into
    temporary files, which :meth:`finish` renames into place.

    At most ``backlog`` frames wait for the encoder; a frame that finds the queue full is left out of
    the clip (``dropped``) rather than slowing scoring down. :meth:`finish` returns at once;
    ``done(ok, problem)`` is called from the writer's thread when the clip is in place (or not).
    """

    def __init__(self, media: "Media", camera: str, event_id: str, fps: float, size: tuple[int, int],
                 backlog: int = 150):
        self.media, self.finals, self.tmps, self.writers = media, [], [], []
        self.frames = self.dropped = 0
        self.failed: str | None = None
        self.folder, self.event_id, self.fps, self.size = media.dir / "clips" / camera, event_id, fps, size
        self._queue: queue.Queue = queue.Queue(maxsize=backlog)
        self._done: Callable[[bool, str | None], None] | None = None
        self._thread = threading.Thread(target=self._run, name=f"vigil-clip-{event_id}", daemon=True)
        self._thread.start()

    # --- the scorer's side ------------------------------------------------------------------------
    def write(self, rgb: np.ndarray) -> None:
        try:
            self._queue.put_nowait(rgb)
        except queue.Full:
            self.dropped += 1

    def finish(self, done: Callable[[bool, str | None], None]) -> None:
        self._done = done
        self._queue.put(None)                           # always room for the end: it blocks at worst briefly

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Still encoding or finishing (the event's ``end`` not yet announced)."""
        return self._thread.is_alive()

    # --- the writer's thread ----------------------------------------------------------------------
    def _run(self) -> None:
        self._open()
        while (rgb := self._queue.get()) is not None:
            self._encode(rgb)
        ok = self._close()
        if self._done is not None:
            self._done(ok, None if ok else self.failed)

    def _open(self) -> None:
        w, h = self.size
        for fmt in self.media.formats:
            final = self.folder / f"{self.event_id}.{fmt}"
            tmp = self.folder / f".{self.event_id}.tmp.{fmt}"     # OpenCV picks the container by extension
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                _create(tmp)
            except OSError as e:
                self._fail(final, e)
                return
            vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC[fmt]), max(1.0, self.fps), (w, h))
            self.finals.append(final)
            self.tmps.append(tmp)
            if not vw.isOpened():
                self.failed = f"{final}: the {FOURCC[fmt]} video writer did not open"
                self.abort()
                return
            self.writers.append(vw)

    def _fail(self, path: Path, e: OSError) -> None:
        self.failed = str(disk_error(path, e) or f"{path}: {e.strerror or e}")
        if e.errno in DISK_ERRORS:
            self.media.disk_problem(self.failed)
        self.abort()

    def _encode(self, rgb: np.ndarray) -> None:
        if self.failed or not self.writers:
            return
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        for vw in self.writers:
            vw.write(bgr)
        self.frames += 1

    def _close(self) -> bool:
        """Close, check and rename; True when the clip is in place under its final name(s)."""
        if self.failed or not self.writers:
            return False
        for vw in self.writers:
            vw.release()
        self.writers = []
        try:
            for tmp, final in zip(self.tmps, self.finals):
                with open(tmp, "rb+") as f:            # a full disk shows itself here at the latest
                    f.flush()
                    os.fsync(f.fileno())
                if tmp.stat().st_size == 0 or self.frames == 0:
                    self._probe(final)
                    if not self.failed:
                        self.failed = f"{final}: the video writer wrote nothing"
                    self.abort()
                    return False
            for tmp, final in zip(self.tmps, self.finals):
                os.replace(tmp, final)
        except OSError as e:
            self._fail(self.finals[0], e)
            return False
        return True

    def _probe(self, path: Path) -> None:
        """OpenCV's writers fail silently: find the disk's reason by writing a little ourselves."""
        try:
            with tempfile.TemporaryFile(dir=path.parent) as f:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            self._fail(path, e)

    def abort(self) -> None:
        for vw in self.writers:
            vw.release()
        self.writers = []
        for tmp in self.tmps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


class Media:
    """Paths, writes and retention for every camera; :attr:`problem` is the disk's latest complaint."""

    def __init__(self, folder: Path, formats: tuple[str, ...], keep_days: float, *,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        self.dir, self.formats, self.keep_days, self.log = Path(folder), tuple(formats), keep_days, log
        self.problem: str | None = None       # set: clips are not written (until the service restarts)
        self._lock = threading.Lock()

    def disk_problem(self, message: str) -> None:
        with self._lock:
            if self.problem is None:
                self.problem = message
                self.log(f"vigil: {message}; clips are no longer written, events are still recorded")

    def clips_on(self) -> bool:
        return self.problem is None and bool(self.formats)

    def clip(self, camera: str, event_id: str, fmt: str) -> Path:
        return self.dir / "clips" / camera / f"{event_id}.{fmt}"

    def snapshot(self, camera: str, event_id: str) -> Path:
        return self.dir / "snapshots" / camera / f"{event_id}.jpg"

    def false_alarm_dir(self, camera: str, event_id: str) -> Path:
        return self.dir / "false_alarms" / camera / event_id

    def write_snapshot(self, camera: str, event_id: str, frame: np.ndarray, amap: np.ndarray | None) -> bool:
        path = self.snapshot(camera, event_id)
        try:
            data = jpeg(annotated(frame, amap))
            with atomic_write(path, "wb") as f:
                f.write(data)
            return True
        except Exception as e:                      # a VigilError from atomic_write names the path and reason
            self.log(f"vigil: snapshot {path}: {e}")
            return False

    def save_false_alarm(self, camera: str, event_id: str) -> Path | None:
        """The event's clip as numbered JPEG frames under ``false_alarms/``: normal footage for
        ``vigil refit``. None when there is no clip to take them from."""
        src = next((self.clip(camera, event_id, f) for f in ("mp4", "webm") if self.clip(camera, event_id, f).is_file()),
                   None)
        if src is None:
            return None
        out = self.false_alarm_dir(camera, event_id)
        tmp = out.with_name(f".{out.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        cap = cv2.VideoCapture(str(src))
        n = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                n += 1
                cv2.imwrite(str(tmp / f"{n:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        finally:
            cap.release()
        if n == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
        return out

    def drop_false_alarm(self, camera: str, event_id: str) -> None:
        shutil.rmtree(self.false_alarm_dir(camera, event_id), ignore_errors=True)

    def remove(self, camera: str, event_id: str) -> None:
        for path in [self.snapshot(camera, event_id)] + [self.clip(camera, event_id, f) for f in FOURCC]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def sweep_orphans(self, older_than: float) -> int:
        """Leftover temporary clips (a crash mid-event) and media files older than ``older_than``."""
        n = 0
        for sub in ("clips", "snapshots"):
            for p in (self.dir / sub).glob("*/*"):
                try:
                    if p.is_file() and (p.name.startswith(".") or p.stat().st_mtime < older_than) \
                            and p.stat().st_mtime < time.time() - 60:
                        p.unlink()
                        n += 1
                except OSError:
                    pass
        return n
