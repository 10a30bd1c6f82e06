"""Live watching: read a camera, stream or file, score frames as they arrive, report events.

An **event** starts when the score stays above the model's calibrated ``threshold_`` for
``min_frames`` frames, and ends when it stays below for ``gap_frames`` (the rule of
:mod:`vigil.events`, after its causal median of 3, shared with ``vigil evaluate``); it is reported once, when it
ends, as one JSON line: ``{"event": n, "start_frame", "end_frame", "start_time", "end_time",
"peak_frame", "peak_score", "threshold", "source", "ended"}`` (frames 1-based, times in seconds from
the start of the source; ``ended`` says why it ended: ``"gap"`` below the threshold, ``"drop"`` the
source dropped or paused, ``"end"`` of the source, ``"stop"`` a signal). Memory is bounded: the model
keeps a few frames of context, and an event's clip is capped at ``max_clip_frames``.

When things go wrong:

* **Gaps.** After a live source drops and is reopened, or pauses for more than ``pause_reset``
  seconds, nothing carries over the gap: the model's stream state and the smoothing start afresh,
  as at the first frame, and no event opens during the warm-up (the model's context, see
  :func:`warmup_frames`). An event open when the source drops is closed there (``"ended": "drop"``;
  its end is its last frame above the threshold, as at the end of a file).
* **Signals.** SIGINT and SIGTERM end the watch cleanly: the open event is written (JSON line, clip,
  webhook) and :func:`watch` returns (``vigil watch`` exits 0). SIGHUP reopens the events file when
  events go to one (log rotation), else it ends the watch like SIGTERM. A second signal while
  shutting down cuts the webhook drain short.
* **Disks.** A full or read-only disk never ends the watch: the JSON line still goes out (when the
  events file itself cannot be written, the event still goes to the webhook and the returned list),
  clips and maps are written to temporary names and renamed only when complete, and what cannot be
  saved is said once on stderr (path and reason).
* **Webhooks.** See :mod:`vigil.webhooks`: a bounded queue on a background thread, retries with
  back-off, no redirects, a timeout per request, a bounded drain at exit.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from vigil.errors import VigilError
from vigil.events import CausalMedian, Event, EventTracker
from vigil.webhooks import WebhookSender, check_url


class LiveEventTracker(EventTracker):
    """:class:`vigil.events.EventTracker` that also shows the event it has open, for a consumer that
    announces events while they go on (``vigil serve``); the rule itself is the same."""

    @property
    def current(self) -> dict | None:
        """The open event so far (``start_frame, start_time, peak_frame, peak_score, end_frame,
        end_time``; a copy), or None."""
        return dict(self._open) if self._open is not None else None


def parse_source(source: str) -> int | str:
    if source.isdigit():
        return int(source)
    if "://" in source:
        return source
    if not Path(source).exists():
        raise VigilError(f"{source}: no such video file or folder of frames "
                         f"(or use a camera index or an rtsp:// / http:// URL)")
    return source


def is_live(source) -> bool:
    """A camera index or a URL: it can drop and come back; a file or a folder of frames cannot."""
    return isinstance(source, int) or str(source).isdigit() or "://" in str(source)


def read_frames(source: str, *, realtime: bool = False, max_retries: int = 10, backoff: float = 0.5,
                log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
                on_reconnect: Callable[[], None] | None = None,
                name: str | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """Yield ``(frame RGB (H, W, 3), seconds since start)``. Live sources (cameras, URLs) that drop
    are reopened with exponential back-off (``backoff`` doubling up to 10 s, ``max_retries`` times in a
    row); ``on_reconnect()`` is called after such a drop, before the first frame of the new
    connection. A file ends at its last frame. ``name``: how messages call the source (default the
    source itself; ``vigil serve`` passes the URL with its password masked)."""
    src = parse_source(source)
    source = name if name is not None else source
    if isinstance(src, str) and Path(src).is_dir():
        yield from _read_folder(Path(src), realtime)
        return
    live = is_live(src)
    retries, t_start, n, dropped = 0, time.monotonic(), 0, False
    while True:
        # a URL goes straight to FFmpeg: OpenCV's fallback readers would print the URL (and any
        # password in it) in their complaints
        cap = cv2.VideoCapture(src, cv2.CAP_FFMPEG) if isinstance(src, str) and "://" in src else cv2.VideoCapture(src)
        try:
            if not cap.isOpened():
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
            if dropped and on_reconnect is not None:
                on_reconnect()
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
        finally:
            cap.release()                   # also when the consumer stops early or a signal ends the watch
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


class ClipRecorder:
    """Keeps the frames of the open event (capped) and writes ``event_NNNN.avi`` and a map overlay.

    Both are written under temporary names in the same folder and renamed only when complete (the
    clip is checked: the writer opened, the file holds every frame), so a full or read-only disk never
    leaves a half file under a final name. :meth:`write` returns what could not be saved (one line
    each, ``<path>: <reason>``) instead of raising: a disk problem must not end the watch.
    """

    def __init__(self, folder: Path, fps: float = 10.0, max_clip_frames: int = 600, pre_frames: int = 5):
        self.folder, self.fps, self.max = Path(folder), fps, max_clip_frames
        self.pre: deque = deque(maxlen=pre_frames)
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

    def reset(self) -> None:
        """After a gap: frames from before it are not the lead-in of an event after it."""
        self.pre.clear()
        self.frames, self.peak = [], None

    def write(self, ev: Event) -> list[str]:
        from vigil.io import make_dirs

        frames, peak = self.frames, self.peak
        self.frames, self.peak = [], None
        try:
            make_dirs(self.folder)
        except VigilError as e:
            return [str(e)]
        problems = []
        if frames:
            problem = self._write_clip(self.folder / f"event_{ev.event:04d}.avi", frames)
            if problem:
                problems.append(problem)
        if peak is not None:
            from vigil.io import atomic_write
            from vigil.maps import overlay

            _, frame, amap = peak
            img = overlay(frame, amap) if amap is not None else frame
            path = self.folder / f"event_{ev.event:04d}_map.png"
            ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            try:
                if not ok:
                    raise VigilError(f"{path}: could not encode the map as PNG")
                with atomic_write(path, "wb") as f:
                    f.write(buf.tobytes())
            except VigilError as e:
                problems.append(str(e))
            except OSError as e:
                problems.append(f"{path}: {e.strerror or e}")
        return problems

    def _write_clip(self, path: Path, frames: list[np.ndarray]) -> str | None:
        """Write ``frames`` to ``path`` through a checked temporary file; the problem, or None."""
        from vigil.io import _fsync, disk_error

        h, w = frames[0].shape[:2]
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.avi")   # OpenCV picks the container by extension
        try:
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))   # the errno OpenCV hides
            except OSError as e:
                return str(disk_error(path, e) or f"{path}: cannot write here ({e.strerror or e})")
            vw = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (w, h))
            if not vw.isOpened():
                return _why_not_written(path, "the video writer did not open")
            for f in frames:
                vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            vw.release()
            try:
                with open(tmp, "rb+") as f:
                    _fsync(f)
            except OSError as e:
                return str(disk_error(path, e) or f"{path}: {e.strerror or e}")
            size, riff = tmp.stat().st_size, _riff_size(tmp)
            if riff is None or size < riff:               # the writer wrote less than it meant to: a full disk
                return _why_not_written(path, f"the video writer wrote {size} of {riff or '?'} bytes")
            cap = cv2.VideoCapture(str(tmp))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            cap.release()
            if n != len(frames):
                return _why_not_written(path, f"the clip holds {n} of its {len(frames)} frames")
            os.replace(tmp, path)
            return None
        except OSError as e:
            return str(disk_error(path, e) or f"{path}: {e.strerror or e}")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _riff_size(path: Path) -> int | None:
    """The bytes an AVI says it holds (its RIFF chunk, header included), or None if it is no AVI."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    return int.from_bytes(head[4:8], "little") + 8


def _why_not_written(path: Path, fallback: str) -> str:
    """OpenCV's writers fail silently: find the disk's reason by writing a little ourselves."""
    import tempfile

    from vigil.io import _fsync, disk_error

    try:
        with tempfile.TemporaryFile(dir=path.parent) as f:
            f.write(b"\0" * 65536)
            _fsync(f)
    except OSError as e:
        return str(disk_error(path, e) or f"{path}: {e.strerror or e}")
    return f"{path}: {fallback}"


class _EventsOut:
    """Where the JSON lines go: a file object (not closed here) or a path (appended to, reopenable)."""

    def __init__(self, target):
        self.path = None
        if target is None:
            self.f = sys.stdout
        elif isinstance(target, (str, os.PathLike)):
            from vigil.io import disk_error

            self.path = Path(target)
            try:
                self.f = open(self.path, "a", encoding="utf-8")
            except OSError as e:
                raise (disk_error(self.path, e)
                       or VigilError(f"{self.path}: cannot open for appending ({e.strerror or e})")) from None
        else:
            self.f = target

    def write(self, line: str) -> None:
        self.f.write(line)
        self.f.flush()

    def reopen(self) -> None:
        """SIGHUP: the file was moved away (log rotation); append to a new one under the same name."""
        if self.path is None:
            return
        with contextlib.suppress(OSError):
            self.f.close()
        self.f = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.f.close()


def warmup_frames(detector) -> int:
    """Frames a fresh stream needs before its scores mean what they mean on running footage: the
    model's context (``context()``; for the motion model its flow ``history`` plus the first
    frame, which has no flow). No event opens on them, at the start or after a gap."""
    history = getattr(getattr(detector, "config", None), "history", 0)
    history = history if isinstance(history, int) and not isinstance(history, bool) else 0
    return max(1, int(detector.context()), history + 1)


def _at_least(name: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise VigilError(f"--{name} {value}: must be {'at least ' + str(least) if least else 'zero or more'}"
                         + ("" if isinstance(value, (int, np.integer)) else " (a whole number)"))


def check_options(*, events_out=None, save_dir=None, webhook=None, realtime: bool = False, min_frames: int = 3,
                  gap_frames: int = 5, max_retries: int = 10, threshold: float | None = None,
                  backoff: float = 0.5, max_frames: int | None = None, pause_reset: float | None = 5.0) -> None:
    """Refuse impossible settings in one line (``--min-frames 0: must be at least 1``), a webhook
    that is not an http(s) URL, and an events file or clip folder that cannot be written."""
    from vigil.io import check_writable

    _at_least("min-frames", min_frames, 1)
    _at_least("gap-frames", gap_frames, 1)
    _at_least("max-retries", max_retries, 0)
    if max_frames is not None:
        _at_least("max-frames", max_frames, 1)
    if threshold is not None and not (isinstance(threshold, (int, float)) and math.isfinite(threshold)):
        raise VigilError(f"--threshold {threshold}: must be a finite number")
    for name, v in (("backoff", backoff), ("pause-reset", pause_reset)):
        if v is not None and not (isinstance(v, (int, float)) and 0 < v < math.inf):
            raise VigilError(f"--{name} {v}: must be a positive number of seconds")
    if isinstance(webhook, str):
        check_url(webhook)
    if isinstance(events_out, (str, os.PathLike)):
        check_writable(events_out)
    if save_dir is not None:
        check_writable(save_dir, folder=True)


class LiveScorer:
    """Live scoring, written once for ``vigil watch`` and ``vigil serve``: the model's stream, the
    rule's causal median of 3 (:class:`vigil.events.CausalMedian`: one frame of delay), and the warm-up
    after a start or a gap (:func:`warmup_frames`), during which no event may open.

    ``update(frame)`` returns ``(smoothed score, anomaly map or None, warm)``; ``warm`` is False on
    the warm-up frames. :meth:`restart` forgets everything, as after a gap in the source.
    """

    def __init__(self, detector, *, maps: bool = False):
        self.detector, self.maps = detector, maps
        self.warmup = warmup_frames(detector)
        self.stream = None
        self.smoother = CausalMedian()
        self.fresh = 0

    def restart(self) -> None:
        self.stream, self.fresh = self.detector.stream(maps=self.maps), 0
        self.smoother.reset()

    @property
    def started(self) -> bool:
        return self.stream is not None

    def update(self, frame: np.ndarray) -> tuple[float, np.ndarray | None, bool]:
        if self.stream is None:
            self.restart()
        self.fresh += 1
        raw, amap = self.stream.update(frame)
        return self.smoother.update(raw), amap, self.fresh > self.warmup


class _Stop(KeyboardInterrupt):
    """A signal asked the watch to end (raised by the handler, caught like Ctrl-C)."""


def watch(detector, source: str, *, events_out=None, save_dir: str | None = None, webhook=None,
          realtime: bool = False, min_frames: int = 3, gap_frames: int = 5, max_retries: int = 10,
          backoff: float = 0.5, status: bool = True, max_frames: int | None = None,
          threshold: float | None = None, pause_reset: float | None = 5.0,
          handle_signals: bool = True) -> list[Event]:
    """Score ``source`` live; write each finished event as a JSON line to ``events_out``; returns them.

    ``events_out``: a file object, a path (appended to; SIGHUP reopens it) or None (standard output).
    ``webhook``: an http(s) URL or a :class:`vigil.webhooks.WebhookSender`. ``threshold`` defaults to
    the model's ``threshold_`` (calibrated at its false-alarm rate on held-out normal frames);
    operators may raise or lower it. ``pause_reset``: a live source that delivers no frame for this
    many seconds is treated as a gap (None: never). ``handle_signals``: in the main thread, SIGTERM
    and SIGHUP are handled as described in this module's docstring (SIGINT always is).
    """
    check_options(events_out=events_out, save_dir=save_dir, webhook=webhook, min_frames=min_frames,
                  gap_frames=gap_frames, max_retries=max_retries, threshold=threshold, backoff=backoff,
                  max_frames=max_frames, pause_reset=pause_reset)
    log = lambda m: print(("\n" if status else "") + m, file=sys.stderr)  # noqa: E731
    threshold = threshold if threshold is not None else getattr(detector, "threshold_", None)
    if threshold is None:
        raise VigilError(f"model '{detector.name}' has no calibrated threshold_ (retrain it with this vigil)")
    tracker = EventTracker(float(threshold), min_frames, gap_frames, source=str(source))
    parse_source(source)                                  # a missing file: one line, before anything starts
    scorer = LiveScorer(detector, maps=save_dir is not None)
    warmup = scorer.warmup
    recorder = ClipRecorder(Path(save_dir)) if save_dir else None
    out = _EventsOut(events_out)
    sender = WebhookSender(webhook, log=log) if isinstance(webhook, str) else webhook
    live = is_live(source)
    done: list[Event] = []
    said: set[str] = set()                                # what could not be saved, said once each
    unsaved = [0, 0]                                      # events whose line / clip or map could not be written
    state = {"critical": 0, "stop": None, "stopping": False, "hup": False, "gap": False}

    def say_once(key: str, message: str) -> None:
        if key not in said:
            said.add(key)
            log(message)

    def emit(ev: Event | None) -> None:
        if ev is None:
            return
        state["critical"] += 1                            # a signal now waits until the event is out
        try:
            done.append(ev)
            try:
                out.write(ev.as_json() + "\n")
            except OSError as e:
                from vigil.io import disk_error

                unsaved[0] += 1
                where = out.path or "the events output"
                say_once("events", f"vigil: {disk_error(where, e) or f'{where}: {e.strerror or e}'}; events "
                                   f"not written there are still sent to the webhook and returned")
            if sender is not None:
                sender.submit(ev)
            if recorder:
                problems = recorder.write(ev)
                if problems:
                    unsaved[1] += 1
                    say_once("clips", f"vigil: {problems[0]}; events are still reported, but clips and maps "
                                      f"that cannot be written are not saved")
        finally:
            state["critical"] -= 1

    def on_signal(signum, _frame) -> None:
        if signum == getattr(signal, "SIGHUP", None) and out.path is not None and not state["stopping"]:
            state["hup"] = True                           # reopened between frames
            return
        if state["stopping"] or state["stop"] is not None:
            state["hurry"] = True                         # a second signal: do not wait for the webhook
            if sender is not None:
                sender.abort()
            return
        state["stop"] = signal.Signals(signum).name
        if not state["critical"]:
            raise _Stop(state["stop"])

    def on_reconnect() -> None:
        state["gap"] = True

    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        wanted = [signal.SIGINT] + ([signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
                                    if handle_signals else [])
        for sig in wanted:
            if signal.getsignal(sig) is not signal.SIG_IGN:   # nohup, a background job: left as they are
                old_handlers[sig] = signal.signal(sig, on_signal)

    n, t0, last_status, score = 0, time.monotonic(), 0.0, float("nan")
    try:
        frames = read_frames(source, realtime=realtime, max_retries=max_retries, backoff=backoff, log=log,
                             on_reconnect=on_reconnect)
        while True:
            asked = time.monotonic()
            item = next(frames, None)
            if item is None:
                break
            frame, t = item
            if live and pause_reset is not None and n and time.monotonic() - asked > pause_reset:
                if not state["gap"]:
                    log(f"vigil: {source}: no frame for {time.monotonic() - asked:.1f}s")
                state["gap"] = True
            if not scorer.started or state["gap"]:
                if scorer.started:                        # a gap: nothing carries over it
                    emit(tracker.flush("drop"))
                    if recorder:
                        recorder.reset()
                    log(f"vigil: {source}: scoring starts afresh at frame {n + 1} "
                        f"(no event opens in the first {warmup} frames)")
                scorer.restart()
                state["gap"] = False
            n += 1
            score, amap, warm = scorer.update(frame)
            ev = tracker.update(n, t, score) if warm else None
            if recorder:
                recorder.add(frame, score, amap, tracker.active or ev is not None)
            emit(ev)
            if state["stop"] is not None:                 # a signal that came while an event was going out
                raise _Stop(state["stop"])
            if state["hup"]:
                state["hup"] = False
                try:
                    out.reopen()
                    log(f"vigil: {out.path}: reopened (SIGHUP)")
                except OSError as e:
                    log(f"vigil: {out.path}: cannot reopen ({e.strerror or e}); events go to standard output")
                    out.f, out.path = sys.stdout, None
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
        state["stopping"] = True
        why = state["stop"] if state["stop"] and state["stop"] != "SIGINT" else "interrupted"
        log(f"vigil: {why}; writing the open event")
    except VigilError:                                    # the source gave up (unreachable): it dropped
        state["dropped"] = True
        raise
    finally:
        state["stopping"] = True
        try:
            emit(tracker.flush("stop" if state["stop"] else "drop" if state.get("dropped") else "end"))
            if sender is not None:                        # drains for a bounded time, says what was lost
                sender.close(0.0 if state.get("hurry") else None)
            out.close()
            if said:
                log("vigil: not saved: " + ", ".join(
                    f"{k} of {len(done)} {what}" for k, what in zip(unsaved, ("event lines", "events' clips or maps"))
                    if k))
            if status and n:
                dt = time.monotonic() - t0
                print(f"\nwatched {n} frames in {dt:.1f}s ({n / max(dt, 1e-9):.1f} frames/s), {len(done)} events",
                      file=sys.stderr)
        finally:
            for sig, old in old_handlers.items():
                signal.signal(sig, old)
    return done
