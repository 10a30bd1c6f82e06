"""Event figures (vigil.events) against hand-computed values on tiny arrays.

Unless a test says otherwise: threshold 0.5, scores 0/1 so the causal median of 3 is easy to follow
by hand, fps 10, min_frames 3, gap_frames 5 (watch's defaults).
"""

import math

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.events import (CausalMedian, EventTracker, alert_events, causal_median, event_metrics,
                          labelled_stretches)


def test_the_causal_median_uses_only_the_past():
    assert causal_median(np.array([0, 9, 0, 0, 9, 9, 0])).tolist() == [0, 4.5, 0, 0, 0, 9, 9]
    m = CausalMedian()
    m.update(5), m.update(7)
    m.reset()
    assert m.update(1) == 1.0


def test_watch_uses_the_same_rule():
    import vigil.watch as w

    assert w.EventTracker is EventTracker
    assert w.CausalMedian is CausalMedian


def test_labelled_stretches_are_maximal_runs_one_based():
    assert labelled_stretches(np.array([1, 1, 0, 0, 1, 0, 1, 1, 1])) == [(1, 2), (5, 5), (7, 9)]
    assert labelled_stretches(np.zeros(4)) == []


def test_an_event_is_raised_at_the_last_of_min_frames_and_ends_at_its_last_hot_frame():
    # raw 1s on frames 3..8; after the median: hot on frames 4..9 (one frame later, one frame longer
    # at the end, since median(1, 1, 0) = 1)
    s = np.zeros(20)
    s[2:8] = 1
    (ev,) = alert_events(s, 0.5)
    assert (ev.start_frame, ev.end_frame, ev.ended) == (4, 9, "gap")
    tr, raised = EventTracker(0.5), None                 # raised_frame = start_frame + min_frames - 1
    for i, v in enumerate(causal_median(s)):
        tr.update(i + 1, i / 10, v)
        if tr.active and raised is None:
            raised = i + 1
    assert raised == ev.start_frame + 3 - 1 == 6


def _two_videos():
    # video a (30 frames): stretches 6..10 and 14..16; raw hot 5..16 -> smoothed hot 6..17: ONE event
    # spanning both stretches, frames 6..17, raised at 8.
    # video b (40 frames, no anomaly): raw hot 20..25 -> event 21..26, a false alarm.
    ya = np.zeros(30, int)
    ya[5:10] = 1
    ya[13:16] = 1
    sa = np.zeros(30)
    sa[4:16] = 1
    yb, sb = np.zeros(40, int), np.zeros(40)
    sb[19:25] = 1
    return [sa, sb], [ya, yb]


def test_one_event_spanning_two_stretches_and_a_false_alarm_in_a_normal_video():
    scores, labels = _two_videos()
    m = event_metrics(scores, labels, 0.5, names=["a", "b"])
    assert (m.n_stretches, m.n_detected) == (2, 2)
    # stretch 6..10: raised at 8 -> delay 2; stretch 14..16: the event was raised at 8 < 14 -> 0
    assert [s["delay_frames"] for s in m.stretches] == [2, 0]
    assert (m.median_delay_frames, m.mean_delay_frames) == (1.0, 1.0)
    assert m.median_delay_seconds == pytest.approx(0.1)
    assert (m.n_events, m.n_false_alarm_events) == (2, 1)
    assert [(e["video"], e["start_frame"], e["end_frame"], e["raised_frame"], e["false_alarm"])
            for e in m.events] == [("a", 6, 17, 8, False), ("b", 21, 26, 23, True)]
    normal = 30 - 8 + 40                                  # 62 normal frames
    assert m.normal_hours == pytest.approx(normal / 10 / 3600)
    assert m.false_alarms_per_hour == pytest.approx(1 / (normal / 36000))
    # frame level, raw scores: normal frames above = a: 5, 11, 12, 13 (4) + b: 20..25 (6) = 10 of 62
    assert m.normal_frames_above_threshold == pytest.approx(10 / 62)
    assert m.anomalous_frames_above_threshold == 1.0
    # inside events: normal a: 11, 12, 13, 17 (4) + b: 21..26 (6) = 10 of 62; anomalous 8 of 8
    assert m.normal_frames_in_events == pytest.approx(10 / 62)
    assert m.anomalous_frames_in_events == 1.0


def test_an_event_open_before_the_stretch_counts_delay_zero():
    y, s = np.zeros(30, int), np.zeros(30)
    y[12:20] = 1                                          # stretch 13..20
    s[2:20] = 1                                           # event 4..21, raised at 6
    m = event_metrics([s], [y], 0.5)
    assert m.stretches[0]["delay_frames"] == 0 and m.n_false_alarm_events == 0


def test_a_stretch_never_detected_and_a_late_one():
    y, s = np.zeros(40, int), np.zeros(40)
    y[2:6] = 1                                            # stretch 3..6: no hot frame at all
    y[20:30] = 1                                          # stretch 21..30
    s[24:30] = 1                                          # smoothed hot 26..31, raised at 28 -> delay 7
    m = event_metrics([s], [y], 0.5, fps=5.0)
    assert [(x["detected"], x["delay_frames"]) for x in m.stretches] == [(False, None), (True, 7)]
    assert (m.n_detected, m.n_stretches) == (1, 2)
    assert m.median_delay_seconds == pytest.approx(7 / 5)


def test_a_short_gap_joins_two_bursts_and_a_long_gap_splits_them():
    s = np.zeros(40)
    s[2:8] = 1                                            # smoothed hot 4..9
    s[12:18] = 1                                          # smoothed hot 14..19: 4 cold frames between
    assert [(e.start_frame, e.end_frame) for e in alert_events(s, 0.5)] == [(4, 19)]
    s2 = np.zeros(40)
    s2[2:8] = 1
    s2[13:19] = 1                                         # smoothed hot 15..20: 5 cold frames -> closed
    assert [(e.start_frame, e.end_frame) for e in alert_events(s2, 0.5)] == [(4, 9), (15, 20)]
    assert [(e.start_frame, e.end_frame) for e in alert_events(s2, 0.5, gap_frames=6)] == [(4, 20)]


def test_a_video_with_no_anomaly_and_no_alert():
    m = event_metrics([np.zeros(36)], [np.zeros(36, int)], 0.5)
    assert (m.n_stretches, m.n_detected, m.n_events, m.false_alarms_per_hour) == (0, 0, 0, 0.0)
    assert math.isnan(m.median_delay_seconds) and math.isnan(m.anomalous_frames_in_events)
    assert "0 / 0" in m.table()


def test_without_smoothing_a_two_frame_spike_is_not_an_event_but_three_are():
    s = np.zeros(20)
    s[5:7] = 1
    assert alert_events(s, 0.5, smooth=False) == []
    s[7] = 1
    (ev,) = alert_events(s, 0.5, smooth=False)
    assert (ev.start_frame, ev.end_frame) == (6, 8)


def test_bad_input_is_one_clear_line():
    with pytest.raises(VigilError, match="video b: 3 scores but 4 labels"):
        event_metrics([np.zeros(3)], [np.zeros(4)], 0.5, names=["b"])
    with pytest.raises(VigilError, match="labels must be 0 or 1"):
        event_metrics([np.zeros(3)], [np.array([0, 2, 0])], 0.5)
    with pytest.raises(VigilError, match="fps"):
        event_metrics([np.zeros(3)], [np.zeros(3)], 0.5, fps=0)
    with pytest.raises(VigilError, match="min-frames"):
        event_metrics([np.zeros(3)], [np.zeros(3)], 0.5, min_frames=0)
    with pytest.raises(VigilError, match="threshold"):
        event_metrics([np.zeros(3)], [np.zeros(3)], float("nan"))


def test_the_benchmarks_test_figures_report_the_events_at_the_threshold(capsys):
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from common import print_test_figures, test_figures

    scores, labels = _two_videos()
    vids = [SimpleNamespace(name="01", labels=labels[0]), SimpleNamespace(name="02", labels=labels[1])]
    fig = test_figures(vids, scores, 0.5, fit_seconds=1.0, score_seconds=1.0)     # fps 10 by default
    ev = fig["events"]
    assert (ev["n_detected"], ev["n_stretches"], ev["n_false_alarm_events"]) == (2, 2, 1)
    assert ev["median_delay_seconds"] == pytest.approx(0.1) and ev["fps"] == 10.0
    assert test_figures(vids, scores, 0.5, fit_seconds=1.0, score_seconds=1.0, fps=5.0)["events"][
        "median_delay_seconds"] == pytest.approx(0.2)
    print_test_figures("t", fig)
    assert "anomalous stretches detected                 2 / 2" in capsys.readouterr().out


def test_normal_frames_far_from_any_anomaly_are_counted_apart():
    """A normal frame within ``near_frames`` of an anomalous one of its video may carry the anomaly's
    smoothed score; the far share counts only the others (hand-computed here)."""
    y = np.zeros(30, int)
    y[10:15] = 1                                   # anomalous frames 10-14: near are 4-9 and 15-20
    s = np.zeros(30)
    s[[8, 16, 25]] = 1.0                           # two near normal frames above, one far one
    ev = event_metrics([s, np.zeros(12)], [y, np.zeros(12, int)], 0.5, near_frames=6)
    assert ev.far_normal_frames == 13 + 12         # 0-3 and 21-29 of the first video, all of the second
    assert ev.far_normal_frames_above_threshold == pytest.approx(1 / 25)
    assert ev.normal_frames_above_threshold == pytest.approx(3 / 37)
    assert event_metrics([s], [y], 0.5, near_frames=0).far_normal_frames == 25
    assert "(of 25;" in ev.table()
