"""The event rule, written once: what ``vigil watch`` alerts on, and how well those alerts match labels.

The rule (used live by :func:`vigil.watch.watch` and offline by :func:`event_metrics`):

1. **Smoothing.** Each frame's score is the median of its own and the two previous frames' scores
   (:class:`CausalMedian`; fewer at the start). It cannot look ahead, so it costs one frame of delay.
2. **Hysteresis** (:class:`EventTracker`). An event opens when the smoothed score has been above
   the threshold for ``min_frames`` frames in a row (default 3); it starts at the first of them and
   is *raised* (known to be an event) at the last of them, ``start_frame + min_frames - 1``. It
   closes after ``gap_frames`` frames in a row at or below the threshold (default 5); its end is its
   last frame above the threshold. Frames are numbered from 1.

Scores are higher = more anomalous, as everywhere in vigil.

Event figures against 0/1 frame labels (:func:`event_metrics`):

* a **labelled stretch** is a maximal run of frames labelled 1 in one video;
* a stretch is **detected** when an event's frames ``start_frame..end_frame`` overlap it;
* its **delay** is from the stretch's first frame to the first frame at which an event overlapping
  it had been raised: ``max(0, raised_frame - first)`` frames (0 when the event was raised before
  the stretch began), divided by ``fps`` for seconds;
* a **false alarm event** is an event whose frames overlap no frame labelled 1; false alarms per
  hour divide their count by the hours of normal footage (frames labelled 0 / ``fps`` / 3600).

Pure NumPy; nothing here reads a file or knows a model.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import binary_dilation

from vigil.errors import VigilError

#: frames in the live smoothing window (:class:`CausalMedian`)
LIVE_MEDIAN = 3


@dataclass
class Event:
    """One alert event: frames 1-based and inclusive, times in seconds from the start of the source."""

    event: int
    start_frame: int
    end_frame: int
    start_time: float
    end_time: float
    peak_frame: int
    peak_score: float
    threshold: float
    source: str = ""
    ended: str = "gap"

    def as_json(self) -> str:
        return json.dumps(asdict(self))


class CausalMedian:
    """Median of the last ``width`` scores fed (fewer at the start); no look-ahead."""

    def __init__(self, width: int = LIVE_MEDIAN):
        self.recent: deque[float] = deque(maxlen=width)

    def reset(self) -> None:
        """Forget the past: the next score is smoothed as a first one."""
        self.recent.clear()

    def update(self, score: float) -> float:
        self.recent.append(float(score))
        return float(np.median(self.recent))


def causal_median(scores: np.ndarray, width: int = LIVE_MEDIAN) -> np.ndarray:
    """``(T,)`` scores smoothed exactly as ``vigil watch`` smooths them live (:class:`CausalMedian`)."""
    m = CausalMedian(width)
    return np.array([m.update(s) for s in np.asarray(scores, dtype=np.float64)], dtype=np.float64)


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
        return self.flush("gap") if self._below >= self.gap_frames else None

    def flush(self, ended: str = "end") -> Event | None:
        """Close the open event (end of source, a signal, a drop); returns it, or None. Either way
        the count of frames above the threshold starts again from zero."""
        if self._open is None:
            self._above = self._below = 0
            return None
        self.count += 1
        ev = Event(event=self.count, threshold=self.threshold, source=self.source, ended=ended, **self._open)
        self._open, self._above, self._below = None, 0, 0
        return ev


def alert_events(scores: np.ndarray, threshold: float, *, min_frames: int = 3, gap_frames: int = 5,
                 fps: float = 10.0, smooth: bool = True, source: str = "") -> list[Event]:
    """The events ``vigil watch`` would report on one video's ``(T,)`` scores, in order (an event open
    at the last frame ends there, ``ended="end"``). ``smooth``: the live causal median first."""
    tracker = EventTracker(float(threshold), min_frames, gap_frames, source=source)
    smoother = CausalMedian() if smooth else None
    events = []
    for i, s in enumerate(np.asarray(scores, dtype=np.float64)):
        s = smoother.update(s) if smoother is not None else float(s)
        ev = tracker.update(i + 1, i / fps, s)
        if ev is not None:
            events.append(ev)
    last = tracker.flush("end")
    return events + ([last] if last is not None else [])


def labelled_stretches(labels: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of 1 in ``(T,)`` 0/1 labels as ``(first, last)`` frame numbers, 1-based inclusive."""
    y = np.concatenate([[0], np.asarray(labels).astype(np.int8) != 0, [0]]).astype(np.int8)
    d = np.diff(y)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)   # 0-based start, exclusive end
    return [(int(a) + 1, int(b)) for a, b in zip(starts, ends)]


@dataclass
class EventMetrics:
    """Event figures of one threshold over labelled videos (definitions: this module's docstring)."""

    threshold: float
    fps: float
    min_frames: int
    gap_frames: int
    smoothing: str                      # "causal median of 3" or "none"
    n_stretches: int
    n_detected: int
    median_delay_frames: float          # over detected stretches; NaN when none is detected
    mean_delay_frames: float
    median_delay_seconds: float
    mean_delay_seconds: float
    n_events: int
    n_false_alarm_events: int
    normal_hours: float                 # frames labelled 0 / fps / 3600
    false_alarms_per_hour: float        # NaN without normal frames
    normal_frames_above_threshold: float     # shares of frames whose score (as given) is above it
    anomalous_frames_above_threshold: float
    normal_frames_in_events: float           # shares of frames inside an event's start..end
    anomalous_frames_in_events: float
    near_frames: int                         # a normal frame this close to an anomalous one is "near"
    far_normal_frames: int                   # normal frames more than near_frames from any anomalous one
    far_normal_frames_above_threshold: float  # ... and the share of them above the threshold
    stretches: list[dict] = field(default_factory=list)  # {video, first, last, detected, delay_frames}
    events: list[dict] = field(default_factory=list)     # {video, start_frame, end_frame, raised_frame, ...}

    def as_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        pct = lambda v: "n/a" if v != v else f"{100 * v:.1f}%"  # noqa: E731
        num = lambda v, f: "n/a" if v != v else format(v, f)    # noqa: E731
        return "\n".join([
            (f"events at threshold {self.threshold:.4g} ({self.smoothing}, open after {self.min_frames} frames "
             f"above, close after {self.gap_frames} below, {self.fps:g} fps)"),
            f"labelled stretches detected                        {self.n_detected} / {self.n_stretches}",
            (f"delay to detect, median (mean)                     {num(self.median_delay_seconds, '.2f')} s "
             f"({num(self.mean_delay_seconds, '.2f')} s); {num(self.median_delay_frames, '.1f')} "
             f"({num(self.mean_delay_frames, '.1f')}) frames"),
            f"alert events (false alarms)                        {self.n_events} ({self.n_false_alarm_events})",
            (f"false alarm events per hour of normal footage      {num(self.false_alarms_per_hour, '.1f')} "
             f"({self.normal_hours * 60:.1f} min normal)"),
            (f"normal frames above threshold / inside events      {pct(self.normal_frames_above_threshold)} / "
             f"{pct(self.normal_frames_in_events)}"),
            (f"anomalous frames above threshold / inside events   {pct(self.anomalous_frames_above_threshold)} / "
             f"{pct(self.anomalous_frames_in_events)}"),
            (f"normal frames > {self.near_frames} frames from any anomalous one    "
             f"{pct(self.far_normal_frames_above_threshold)} above threshold (of {self.far_normal_frames}; "
             f"a centred smoothing carries an anomaly's score to the frames beside it)"),
        ])


def check_rule(threshold: float, fps: float, min_frames: int, gap_frames: int) -> None:
    """One line for a threshold, frame rate or event setting that cannot be used."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) \
            or not math.isfinite(threshold):
        raise VigilError(f"threshold {threshold!r}: must be a finite number")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.floating)) or not 0 < fps < math.inf:
        raise VigilError(f"fps {fps!r}: must be a positive number of frames per second")
    for name, v in (("min-frames", min_frames), ("gap-frames", gap_frames)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise VigilError(f"{name} {v!r}: must be a whole number, at least 1")


def _share(flags: np.ndarray, where: np.ndarray) -> float:
    return float(flags[where].mean()) if where.any() else float("nan")


def event_metrics(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray], threshold: float, *,
                  fps: float = 10.0, min_frames: int = 3, gap_frames: int = 5, smooth: bool = True,
                  names: Sequence[str] | None = None, near_frames: int = 6) -> EventMetrics:
    """Event figures of per-video ``(T,)`` scores against ``(T,)`` 0/1 labels at ``threshold``.

    Events come from :func:`alert_events` (the rule of ``vigil watch``); each video is scored on its
    own (no event crosses from one video into the next). ``names`` label the videos in the
    per-stretch and per-event lists (default ``"0"``, ``"1"``, ...). Normal frames more than
    ``near_frames`` from any anomalous frame of their video are counted apart (``far_normal_*``): a
    threshold's false alarms there cannot come from a smoothing that carries an anomaly's score over
    (6: hybrid's centred Gaussian, sigma 3 cut at 2 sigma).
    """
    check_rule(threshold, fps, min_frames, gap_frames)
    if len(scores) != len(labels):
        raise VigilError(f"{len(scores)} score arrays for {len(labels)} label arrays")
    names = [str(i) for i in range(len(scores))] if names is None else list(names)
    stretches, events, delays = [], [], []
    flags_above, flags_in, ys, fars = [], [], [], []
    for name, s, y in zip(names, scores, labels):
        s, y = np.asarray(s, dtype=np.float64).reshape(-1), np.asarray(y).reshape(-1)
        if len(s) != len(y):
            raise VigilError(f"video {name}: {len(s)} scores but {len(y)} labels")
        if not np.all(np.isfinite(s)):
            raise VigilError(f"video {name}: scores contain NaN or infinity")
        if not np.isin(y, (0, 1)).all():
            raise VigilError(f"video {name}: labels must be 0 or 1")
        y = y.astype(bool)
        evs = alert_events(s, threshold, min_frames=min_frames, gap_frames=gap_frames, fps=fps, smooth=smooth,
                           source=name)
        inside = np.zeros(len(s), dtype=bool)
        for ev in evs:
            inside[ev.start_frame - 1:ev.end_frame] = True
            events.append({"video": name, "start_frame": ev.start_frame, "end_frame": ev.end_frame,
                           "raised_frame": ev.start_frame + min_frames - 1, "peak_frame": ev.peak_frame,
                           "peak_score": ev.peak_score,
                           "false_alarm": not y[ev.start_frame - 1:ev.end_frame].any()})
        for first, last in labelled_stretches(y):
            raised = [ev.start_frame + min_frames - 1 for ev in evs
                      if ev.start_frame <= last and ev.end_frame >= first]
            delay = max(0, min(raised) - first) if raised else None
            if delay is not None:
                delays.append(delay)
            stretches.append({"video": name, "first": first, "last": last, "detected": delay is not None,
                              "delay_frames": delay})
        flags_above.append(s > threshold)
        flags_in.append(inside)
        ys.append(y)
        fars.append(~binary_dilation(y, np.ones(2 * near_frames + 1, bool)))   # normal, and not near
    y = np.concatenate(ys) if ys else np.zeros(0, bool)
    above = np.concatenate(flags_above) if ys else np.zeros(0, bool)
    inside = np.concatenate(flags_in) if ys else np.zeros(0, bool)
    far = np.concatenate(fars) if ys else np.zeros(0, bool)
    n_fa = sum(e["false_alarm"] for e in events)
    hours = float((~y).sum()) / fps / 3600.0
    d = np.asarray(delays, dtype=np.float64)
    nan = float("nan")
    return EventMetrics(
        threshold=float(threshold), fps=float(fps), min_frames=int(min_frames), gap_frames=int(gap_frames),
        smoothing=f"causal median of {LIVE_MEDIAN}" if smooth else "none",
        n_stretches=len(stretches), n_detected=len(delays),
        median_delay_frames=float(np.median(d)) if len(d) else nan,
        mean_delay_frames=float(d.mean()) if len(d) else nan,
        median_delay_seconds=float(np.median(d)) / fps if len(d) else nan,
        mean_delay_seconds=float(d.mean()) / fps if len(d) else nan,
        n_events=len(events), n_false_alarm_events=int(n_fa), normal_hours=hours,
        false_alarms_per_hour=n_fa / hours if hours > 0 else nan,
        normal_frames_above_threshold=_share(above, ~y), anomalous_frames_above_threshold=_share(above, y),
        normal_frames_in_events=_share(inside, ~y), anomalous_frames_in_events=_share(inside, y),
        near_frames=int(near_frames), far_normal_frames=int(far.sum()),
        far_normal_frames_above_threshold=_share(above, far),
        stretches=stretches, events=events,
    )
