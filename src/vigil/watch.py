"""Live watching: read a camera, stream or file, score frames as they arrive, report events.

An **event** starts when the score stays above the model's calibrated ``threshold_`` for
``min_frames`` frames, and ends when it stays below for ``gap_frames``; it is reported once, when it
ends, as one JSON line: ``{"event": n, "start_frame", "end_frame", "start_time", "end_time",
"peak_frame", "peak_score", "threshold", "source"}`` (frames 1-based, times in seconds from the start
of the source). Memory is bounded: the model keeps a few frames of context, and an event's clip is
capped at ``max_clip_frames``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from vigil.errors import VigilError


@dataclass
class Event:
    event: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    peak_frame: int
    peak_score: float
    threshold: float
    source: str = ""

    def as_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class EventTracker:
    """Hysteresis on a score stream: ``min_frames`` above the threshold opens, ``gap_frames`` below closes."""

    threshold: float
    min_frames: int = 3
    gap_frames: int = 5
    source: str = ""
    count: int = 0
    _above: int = 0
    _below: int = 0
    _open: dict | None = field(default=None, repr=False)
    _first: tuple = field(default=(0, 0.0), repr=False)

    @property
    def active(self) -> bool:
        return self._open is not None

    def update(self, frame: int, t: float, score: float) -> Event | None:
        """Feed one frame (1-based number, time); returns an event when one has just ended."""
        hot = score > self.threshold
        if self._open is None:
            self._above = self._above + 1 if hot else 0
            if self._above == 1:
                self._first = (frame, t)          # the event, if it opens, starts here
            if self._above >= self.min_frames:
                first, t_first = self._first
                self._open = dict(start_frame=first, start_time=t_first, peak_frame=frame, peak_score=score,
                                  end_frame=frame, end_time=t)
                self._below = 0
            return None
        ev = self._open
        if score > ev["peak_score"]:
            ev["peak_frame"], ev["peak_score"] = frame, score
        if hot:
            ev["end_frame"], ev["end_time"], self._below = frame, t, 0
            return None
        self._below += 1
        return self.flush() if self._below >= self.gap_frames else None

    def flush(self) -> Event | None:
        """Close the open event (end of source, Ctrl-C); returns it, or None."""
        if self._open is None:
            return None
        self.count += 1
        ev = Event(event=self.count, threshold=self.threshold, source=self.source, **self._open)
        self._open, self._above, self._below = None, 0, 0
        return ev


def parse_source(source: str) -> int | str:
    if source.isdigit():
        return int(source)
    if "://" in source:
        return source
    if not Path(source).exists():
        raise VigilError(f"{source}: no such video file or folder of frames "
                         f"(or use a camera index or an rtsp:// / http:// URL)")
    return source


def read_frames(source: str, *, realtime: bool = False, max_retries: int = 10, backoff: float = 0.5,
                log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Iterator[tuple[np.ndarray, float]]:
    """Yield ``(frame RGB (H, W, 3), seconds since start)``. Live sources (cameras, URLs) that drop
    are reopened with exponential back-off (``backoff`` doubling up to 10 s, ``max_retries`` times in a
    row); a file ends at its last frame."""
    src = parse_source(source)
    if isinstance(src, str) and Path(src).is_dir():
        yield from _read_folder(Path(src), realtime)
        return
    live = not isinstance(src, str) or "://" in src
    retries, t_start, n, dropped = 0, time.monotonic(), 0, False
    while True:
        cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            cap.release()
            if not live:
                raise VigilError(f"{source}: cannot open video")
            if retries >= max_retries:
                raise VigilError(f"{source}: source unreachable after {max_retries} reconnection attempts")
            wait = min(10.0, backoff * 2 ** retries)
            retries += 1
            log(f"vigil: {source}: cannot open; reconnecting in {wait:.1f}s (attempt {retries}/{max_retries})")
            time.sleep(wait)
            continue
        if retries or dropped:
            log(f"vigil: {source}: reconnected")
        retries, dropped = 0, False
        fps = cap.get(cv2.CAP_PROP_FPS) or 0
        fps = fps if 1 <= fps <= 240 else 10.0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            t = (n / fps) if not live else time.monotonic() - t_start
            if realtime and not live:
                delay = t_start + n / fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            n += 1
            yield cv2.cvtColor(img, cv2.COLOR_BGR2RGB), t
        cap.release()
        if not live:
            if n == 0:
                raise VigilError(f"{source}: video has zero frames")
            return
        log(f"vigil: {source}: source dropped after frame {n}")
        dropped = True


def _read_folder(folder: Path, realtime: bool, fps: float = 10.0) -> Iterator[tuple[np.ndarray, float]]:
    """A folder of frames replayed as a file at ``fps`` (datasets ship as frame folders)."""
    from vigil.data.video import Video, _read_image, list_images

    Video.open(folder)                      # a clear error when it holds no frames
    t0 = time.monotonic()
    for n, p in enumerate(list_images(folder)):
        if realtime:
            delay = t0 + n / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield _read_image(p), n / fps


def post_webhook(url: str, event: Event, log: Callable[[str], None]) -> threading.Thread:
    """POST the event as JSON in the background, so a slow receiver never stalls scoring."""
    def send():
        req = urllib.request.Request(url, data=event.as_json().encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except Exception as e:  # the receiver's problem must not end the watch
            log(f"vigil: webhook {url}: event {event.event} not delivered ({e})")
    th = threading.Thread(target=send, daemon=True)
    th.start()
    return th


class ClipRecorder:
    """Keeps the frames of the open event (capped) and writes ``event_NNNN.avi`` and a map overlay."""

    def __init__(self, folder: Path, fps: float = 10.0, max_clip_frames: int = 600, pre_frames: int = 5):
        from collections import deque

        self.folder, self.fps, self.max = Path(folder), fps, max_clip_frames
        self.pre = deque(maxlen=pre_frames)
        self.frames: list[np.ndarray] = []
        self.peak: tuple[float, np.ndarray, np.ndarray | None] | None = None

    def add(self, frame, score, amap, active: bool) -> None:
        if not active:
            self.pre.append(frame)
            return
        if not self.frames:
            self.frames.extend(self.pre)
        if len(self.frames) < self.max:
            self.frames.append(frame)
        if self.peak is None or score > self.peak[0]:
            self.peak = (score, frame, amap)

    def write(self, ev: Event) -> None:
        from vigil.io import atomic_write
        from vigil.maps import overlay

        self.folder.mkdir(parents=True, exist_ok=True)
        if self.frames:
            h, w = self.frames[0].shape[:2]
            tmp = self.folder / f".event_{ev.event:04d}.avi"
            vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (w, h))
            for f in self.frames:
                vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            vw.release()
            tmp.replace(self.folder / f"event_{ev.event:04d}.avi")
        if self.peak is not None:
            _, frame, amap = self.peak
            img = overlay(frame, amap) if amap is not None else frame
            ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            with atomic_write(self.folder / f"event_{ev.event:04d}_map.png", "wb") as f:
                f.write(buf.tobytes())
        self.frames, self.peak = [], None


def watch(detector, source: str, *, events_out=None, save_dir: str | None = None, webhook: str | None = None,
          realtime: bool = False, min_frames: int = 3, gap_frames: int = 5, max_retries: int = 10,
          backoff: float = 0.5, status: bool = True, max_frames: int | None = None,
          threshold: float | None = None) -> list[Event]:
    """Score ``source`` live; write each finished event as a JSON line to ``events_out``; returns them.

    ``threshold`` defaults to the model's ``threshold_`` (calibrated at its false-alarm rate on
    held-out normal frames); operators may raise or lower it.
    """
    log = lambda m: print(("\n" if status else "") + m, file=sys.stderr)  # noqa: E731
    threshold = threshold if threshold is not None else getattr(detector, "threshold_", None)
    if threshold is None:
        raise VigilError(f"model '{detector.name}' has no calibrated threshold_ (retrain it with this vigil)")
    tracker = EventTracker(float(threshold), min_frames, gap_frames, source=str(source))
    stream = detector.stream(maps=save_dir is not None)
    recorder = ClipRecorder(Path(save_dir)) if save_dir else None
    out = events_out or sys.stdout
    done: list[Event] = []
    senders: list[threading.Thread] = []

    def emit(ev: Event | None) -> None:
        if ev is None:
            return
        out.write(ev.as_json() + "\n")
        out.flush()
        done.append(ev)
        if recorder:
            recorder.write(ev)
        if webhook:
            senders.append(post_webhook(webhook, ev, log))

    n, t0, last_status, score = 0, time.monotonic(), 0.0, float("nan")
    recent: deque[float] = deque(maxlen=3)   # causal median of 3: one frame of delay, no look-ahead
    try:
        for frame, t in read_frames(source, realtime=realtime, max_retries=max_retries, backoff=backoff, log=log):
            n += 1
            raw, amap = stream.update(frame)
            recent.append(raw)
            score = float(np.median(recent))
            ev = tracker.update(n, t, score)
            if recorder:
                recorder.add(frame, score, amap, tracker.active or ev is not None)
            emit(ev)
            now = time.monotonic()
            if status and now - last_status > 0.5:
                fps = n / max(now - t0, 1e-9)
                print(f"\r{fps:6.1f} frames/s | frame {n} | score {score:8.3f} | threshold {threshold:.3f} | "
                      f"events {tracker.count}{' (in progress)' if tracker.active else ''}   ",
                      end="", file=sys.stderr, flush=True)
                last_status = now
            if max_frames and n >= max_frames:
                break
    except KeyboardInterrupt:
        log("vigil: interrupted; writing the open event")
    finally:
        emit(tracker.flush())
        for th in senders:
            th.join(timeout=5)
        if status and n:
            dt = time.monotonic() - t0
            print(f"\nwatched {n} frames in {dt:.1f}s ({n / max(dt, 1e-9):.1f} frames/s), {len(done)} events",
                  file=sys.stderr)
    return done
