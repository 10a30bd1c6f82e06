"""One camera of the service: a reader thread, a scoring thread, the watch rule, its events.

The **reader** pulls frames from the source (:func:`vigil.watch.read_frames`: reconnection with
back-off, the password masked in every message) and hands them over through a short queue (three
frames: slack for frames that arrive in bursts): when scoring falls behind the camera's frame rate,
the oldest frames it had no time for are **skipped and counted** (``frames_skipped``: the page,
``/api/cameras`` and ``/metrics`` show it, the log says so once a minute) instead of queueing without
bound. Memory per camera is bounded: three
frames in the queue, the pre-roll (``pre_seconds`` of frames), the model's few frames of context.

The **scorer** applies exactly ``vigil watch``'s rule (:class:`vigil.watch.LiveScorer`: causal median
of 3, no event during the warm-up; :class:`vigil.events.EventTracker`: ``min_frames`` above the
threshold open, ``gap_frames`` below close). A reconnection, or no frame for ``pause_reset`` seconds,
is a gap: the open event ends there (``ended: drop``) and scoring starts afresh.

An event's life: ``new`` when it opens (row in the database, ``ON``, MQTT ``new``), ``update`` when its
snapshot is written and when its top score rises (at most once a second), ``end`` when it closes
(clip renamed into place, ``OFF``, MQTT ``end``). Every announcement goes through ``announce(kind,
before, after)``, which the service fans out (database first, then MQTT, page and Frigate).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Callable

import numpy as np

from vigil.serve.config import CameraConfig
from vigil.serve.media import ClipWriter, Media, annotated, jpeg
from vigil.watch import LiveEventTracker, LiveScorer, is_live, read_frames


class FrameQueue:
    """The frames from the reader to the scorer: at most ``capacity`` wait (a little slack for frames
    that arrive in bursts); when scoring falls behind, the oldest waiting frame is dropped and counted
    as skipped, so the scorer lags by ``capacity`` frames at most and memory stays bounded."""

    def __init__(self, capacity: int = 3):
        self._cond = threading.Condition()
        self._items: deque = deque()
        self.capacity = capacity
        self._gap = False
        self.skipped = 0

    def put(self, frame: np.ndarray, t: float) -> None:
        with self._cond:
            gap, self._gap = self._gap, False
            if len(self._items) >= self.capacity:
                _, _, dropped_gap = self._items.popleft()
                gap = gap or dropped_gap                  # a gap is never lost with the frame that carried it
                self.skipped += 1
            self._items.append((frame, t, gap))
            self._cond.notify()

    def gap(self) -> None:
        """The source reconnected: the next frame starts afresh."""
        with self._cond:
            self._gap = True

    def take(self, timeout: float) -> tuple[np.ndarray, float, bool] | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None


class Rate:
    """Events per second over the last ``window`` arrivals."""

    def __init__(self, window: int = 30):
        self.times: deque = deque(maxlen=window)

    def tick(self, t: float) -> None:
        self.times.append(t)

    def value(self, now: float) -> float:
        if len(self.times) < 2 or now - self.times[-1] > 2.0:
            return 0.0
        return (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-6)


class Camera:
    """Watches one source; :meth:`start`, :meth:`stop`; :meth:`info` for the API and the page."""

    def __init__(self, cfg: CameraConfig, detector, *, media: Media,
                 announce: Callable[[str, dict | None, dict], None], pause_reset: float = 5.0,
                 pre_seconds: float = 3.0, max_event_seconds: float = 300.0, backoff: float = 0.5,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        self.cfg, self.name, self.detector, self.media = cfg, cfg.name, detector, media
        self.announce, self.log, self.pause_reset, self.backoff = announce, log, pause_reset, backoff
        self.threshold = float(cfg.threshold if cfg.threshold is not None else detector.threshold_)
        self.pre_seconds, self.max_event_seconds = pre_seconds, max_event_seconds
        self.queue = FrameQueue()
        self.tracker = LiveEventTracker(self.threshold, cfg.min_frames, cfg.gap_frames, source=cfg.name)
        self.scorer = LiveScorer(detector, maps=True)
        self.read_rate, self.score_rate = Rate(), Rate()
        self.history: deque = deque(maxlen=300)       # (epoch seconds, score): the page's chart
        self.latest: tuple[int, np.ndarray, np.ndarray | None] | None = None
        self._latest_jpeg: tuple[int, bytes] | None = None
        self.frames_read = self.frames_scored = 0
        self.latency_sum, self.latency_count = 0.0, 0  # frame arrival -> its score and decision (seconds)
        self.score = float("nan")
        self.events_total = 0
        self.last_frame_at = 0.0
        self.ended = False                            # a file source reached its end
        self._stop = threading.Event()
        # (time, frame) of the last pre_seconds (+ the frames between an event's start and its opening),
        # capped as if the camera ran at 60 frames/s
        self._pre: deque = deque(maxlen=int((pre_seconds + 2) * 60) + cfg.min_frames)
        self._event: dict | None = None               # the open event's row
        self._clip: ClipWriter | None = None
        self._writers: list[ClipWriter] = []          # clips still being finished
        self._peak: tuple | None = None               # (score, frame, map, time, frame number) at the peak
        self._peak_dirty, self._last_update = False, 0.0
        self._skip_said = (0.0, 0)
        self._threads = [threading.Thread(target=self._read, name=f"vigil-read-{cfg.name}", daemon=True),
                         threading.Thread(target=self._score_loop, name=f"vigil-score-{cfg.name}", daemon=True)]

    # --- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        for t in self._threads:
            t.start()

    def request_stop(self) -> None:
        """Ask the threads to end (returns at once; :meth:`stop` waits)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """End scoring; the open event, if any, is closed (``ended: stop``) and written."""
        self._stop.set()
        if self._threads[1].is_alive():
            self._threads[1].join(timeout)
        for w in self._writers:                        # the clips of the events just closed
            w.join(timeout)

    @property
    def frames_skipped(self) -> int:
        return self.queue.skipped

    def state(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if self._stop.is_set():
            return "stopped"
        if self.ended:
            return "ended"
        if not self.frames_read:
            return "connecting"
        if now - self.last_frame_at > 2.0:
            return "no signal"
        if self._event is not None:
            return "anomaly"
        if self.scorer.fresh <= self.scorer.warmup:
            return "warming up"
        return "watching"

    def info(self) -> dict:
        now = time.time()
        return {"name": self.name, "source": self.cfg.shown_source, "state": self.state(now),
                "fps": round(self.read_rate.value(now), 2), "scored_fps": round(self.score_rate.value(now), 2),
                "score": None if not np.isfinite(self.score) else round(self.score, 4),
                "threshold": round(self.threshold, 4), "frames_read": self.frames_read,
                "frames_scored": self.frames_scored, "frames_skipped": self.frames_skipped,
                "events": self.events_total, "event": self._event["id"] if self._event else None,
                "latency_ms": round(1000 * self.latency_sum / self.latency_count, 1) if self.latency_count else None}

    def latest_jpeg(self) -> bytes | None:
        """The newest scored frame with its anomaly map (encoded once per frame)."""
        latest = self.latest
        if latest is None:
            return None
        n, frame, amap = latest
        cached = self._latest_jpeg
        if cached is None or cached[0] != n:
            cached = self._latest_jpeg = (n, jpeg(annotated(frame, amap), 80))
        return cached[1]

    # --- the reader -------------------------------------------------------------------------------
    def _read(self) -> None:
        live = is_live(self.cfg.source)
        while not self._stop.is_set():
            try:
                for frame, _ in read_frames(str(self.cfg.source), realtime=not live, max_retries=1_000_000,
                                            backoff=self.backoff, log=self.log, on_reconnect=self.queue.gap,
                                            name=f"camera {self.name} ({self.cfg.shown_source})"):
                    now = time.time()
                    self.frames_read += 1
                    self.last_frame_at = now
                    self.read_rate.tick(now)
                    self.queue.put(frame, now)
                    if self._stop.is_set():
                        return
            except Exception as e:                      # noqa: BLE001 - a reader must not die silently
                self.log(f"vigil: camera {self.name}: {e}")
                self._stop.wait(5.0)
                continue
            if not live:
                self.ended = True
                return

    # --- the scorer -------------------------------------------------------------------------------
    def _score_loop(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.queue.take(timeout=0.25)
                if item is None:
                    if self.scorer.started and time.time() - self.last_frame_at > self.pause_reset:
                        self._gap(f"no frame for {self.pause_reset:g}s")
                    if self.ended:
                        self._close("end")
                    continue
                frame, t, gap = item
                if gap and self.scorer.started:
                    self._gap("reconnected")
                self._frame(frame, t)
                self._say_skips()
        except Exception as e:                          # noqa: BLE001
            import traceback

            self.log(f"vigil: camera {self.name}: scoring stopped: {e.__class__.__name__}: {e}\n"
                     + traceback.format_exc())
        finally:
            self._close("stop")

    def _gap(self, why: str) -> None:
        """Nothing carries over a gap (as in ``vigil watch``)."""
        self._close("drop")
        self.scorer.stream = None
        self._pre.clear()
        self.log(f"vigil: camera {self.name}: {why}; scoring starts afresh "
                 f"(no event opens in the first {self.scorer.warmup} frames)")

    def _frame(self, frame: np.ndarray, t: float) -> None:
        score, amap, warm = self.scorer.update(frame)
        self.frames_scored += 1
        n = self.frames_scored
        self.score = score
        self.latest = (n, frame, amap)
        self.history.append((round(t, 3), round(score, 4)))
        self.score_rate.tick(time.time())
        was_open = self.tracker.active
        ended = self.tracker.update(n, t, score) if warm else None
        if self.tracker.active and not was_open:
            self._open((score, frame, amap, t, n))
        elif self.tracker.active:
            self._during((score, frame, amap, t, n))
        if ended is not None:
            if self._clip is not None:
                self._clip.write(frame)
            self._finish(ended)
        elif not self.tracker.active:
            self._pre.append((t, frame))
            while self._pre and self._pre[0][0] < t - self.pre_seconds - 2.0:
                self._pre.popleft()
        done = time.time()
        self.latency_sum += done - t
        self.latency_count += 1

    def _say_skips(self) -> None:
        now, skipped = time.time(), self.queue.skipped
        said_at, said = self._skip_said
        if skipped > said and now - said_at >= 60:
            self.log(f"vigil: camera {self.name}: scoring falls behind the camera ({skipped - said} frames "
                     f"skipped; scoring {self.score_rate.value(now):.1f} of {self.read_rate.value(now):.1f} frames/s)")
            self._skip_said = (now, skipped)

    # --- events -----------------------------------------------------------------------------------
    def _open(self, peak: tuple) -> None:
        score, frame = peak[:2]
        cur = self.tracker.current
        k = self.tracker.count + 1
        row = {"id": f"{cur['start_time']:.3f}-{self.name}-{k}", "camera": self.name, "label": "anomaly",
               "start_time": round(cur["start_time"], 3), "end_time": None, "score": score, "top_score": score,
               "peak_time": round(cur["end_time"], 3), "peak_frame": cur["peak_frame"], "threshold": self.threshold,
               "ended": None, "has_snapshot": False, "has_clip": False, "clip_note": None}
        self._event, self._peak = row, peak
        self.events_total += 1
        self.announce("new", None, row)
        self._snapshot()
        if self.media.clips_on():
            fps = self.read_rate.value(time.time()) or 10.0
            h, w = frame.shape[:2]
            self._clip = ClipWriter(self.media, self.name, row["id"], fps, (w, h))
            self._clip_limit, self._clip_written = int(self.max_event_seconds * fps), 0
            for t, f in self._pre:
                if t >= row["start_time"] - self.pre_seconds:
                    self._clip.write(f)
            self._clip.write(frame)
        self._pre.clear()

    def _during(self, peak: tuple) -> None:
        score, frame = peak[:2]
        if self._clip is not None and self._clip_written < self._clip_limit:
            self._clip.write(frame)
            self._clip_written += 1
        self._event["score"] = score
        if score > self._peak[0]:
            self._peak, self._peak_dirty = peak, True
        if self._peak_dirty and time.time() - self._last_update >= 1.0:
            self._snapshot()

    def _snapshot(self) -> None:
        """Write the peak frame (with its map) and announce the improved event (``update``)."""
        before = dict(self._event)
        score, frame, amap, t, n = self._peak
        ok = self.media.write_snapshot(self.name, self._event["id"], frame, amap)
        self._event.update(top_score=score, peak_time=round(t, 3), peak_frame=n,
                           has_snapshot=ok or before["has_snapshot"])
        self._peak_dirty, self._last_update = False, time.time()
        self.announce("update", before, dict(self._event))

    def _finish(self, ev) -> None:
        """The tracker closed the event (``ev``: :class:`vigil.watch.Event`): snapshot, clip, ``end``.
        With a clip, ``end`` is announced when the clip's writer has put it in place."""
        if self._event is None:
            return
        if self._peak_dirty:
            self._snapshot()
        before = dict(self._event)
        self._event.update(end_time=round(ev.end_time, 3), ended=ev.ended, top_score=ev.peak_score,
                           peak_frame=ev.peak_frame, has_clip=False,
                           clip_note=f"not written: {self.media.problem}" if self.media.problem else None)
        row, clip = dict(self._event), self._clip
        self._event, self._clip, self._peak = None, None, None
        if clip is None:
            self.announce("end", before, row)
            return

        def done(ok: bool, problem: str | None) -> None:
            note = None if ok else problem
            if ok and clip.dropped:
                note = f"{clip.dropped} frames left out (the encoder fell behind)"
            self.announce("end", before, {**row, "has_clip": ok, "clip_note": note})

        self._writers = [w for w in self._writers if w.running] + [clip]
        clip.finish(done)

    def _close(self, why: str) -> None:
        """End the open event now (a gap, the end of a file, a stop)."""
        ev = self.tracker.flush(why)
        if ev is not None:
            self._finish(ev)
