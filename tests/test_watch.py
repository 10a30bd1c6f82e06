"""Live watching: events from a video file, a stream served on 127.0.0.1 that drops and returns."""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.watch import EventTracker, read_frames, watch


def test_event_tracker_by_hand():
    tr = EventTracker(threshold=1.0, min_frames=2, gap_frames=2)
    scores = [0, 2, 0, 2, 3, 5, 2, 0, 2, 0, 0, 0, 2, 2]
    events = [e for t, s in enumerate(scores, 1) if (e := tr.update(t, t / 10, s))]
    # frame 2 alone is too short; 4-9 is one event (the dip at 8 is shorter than the gap); 13-14 is cut by flush
    assert [(e.start_frame, e.end_frame, e.peak_frame, e.peak_score) for e in events] == [(4, 9, 6, 5)]
    assert events[0].start_time == pytest.approx(0.4)         # the time of the first frame, not of opening
    last = tr.flush()
    assert (last.start_frame, last.end_frame, last.event) == (13, 14, 2)
    assert tr.flush() is None


def _write_avi(path, frames, fps=10):
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    vw.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)     # a camera's stream, not a thumbnail: little blocking
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def test_watch_file_yields_the_labelled_event(trained_hybrid, synthetic, tmp_path):
    """The runner video through the motion detector, at its own calibrated threshold_."""
    v = synthetic.test[0]
    out = io.StringIO()
    events = watch(trained_hybrid, str(v.source), events_out=out, status=False,     # a folder of frames
                   save_dir=str(tmp_path / "events"))
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == len(events) >= 1
    first, last = np.flatnonzero(v.labels)[[0, -1]] + 1          # labelled anomaly, 1-based frames
    ev = max(lines, key=lambda e: e["end_frame"] - e["start_frame"])
    assert abs(ev["start_frame"] - first) <= 4 and abs(ev["end_frame"] - last) <= 4, (lines, first, last)
    assert ev["peak_score"] > ev["threshold"] == pytest.approx(trained_hybrid.threshold_)
    assert ev["end_time"] > ev["start_time"]
    for other in lines:                     # anything else is a short blip away from the runner
        if other is not ev:
            assert other["end_frame"] - other["start_frame"] <= 5 and not first <= other["start_frame"] <= last
    n = ev["event"]
    assert (tmp_path / "events" / f"event_{n:04d}.avi").is_file()
    assert (tmp_path / "events" / f"event_{n:04d}_map.png").is_file()


class _MJPEG(BaseHTTPRequestHandler):
    frames: list = []
    down = threading.Event()        # set: the server is going away, connections end mid-stream

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for f in self.frames:           # each connection serves the frames once, then closes
            if self.down.is_set():
                return
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(buf)
                             + buf.tobytes() + b"\r\n")
            time.sleep(0.02)


def _serve(port=0):
    srv = ThreadingHTTPServer(("127.0.0.1", port), _MJPEG)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_watch_stream_survives_server_restart(trained_truesight, synthetic):
    _MJPEG.frames = list(synthetic.train[1].frames()[:15])
    srv = _serve()
    port = srv.server_address[1]
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    logs = []

    def restart():
        time.sleep(0.15)                 # mid-way through the first connection's frames
        _MJPEG.down.set()
        srv.shutdown()
        srv.server_close()
        time.sleep(1.0)                  # the source is down for a second
        _MJPEG.down.clear()
        restart.server = _serve(port)
    th = threading.Thread(target=restart)
    th.start()
    got = []
    try:
        for frame, t in read_frames(url, max_retries=8, backoff=0.2, log=logs.append):
            got.append(frame)
            if len(got) >= 25:
                break
    finally:
        th.join()
        restart.server.shutdown()
        restart.server.server_close()
    assert len(got) == 25 and got[0].shape == (96, 128, 3)
    assert any("dropped" in m for m in logs) and any("reconnecting in" in m for m in logs)
    assert any("reconnected" in m for m in logs)


def test_watch_stream_end_to_end_and_gives_up_cleanly(trained_truesight, synthetic):
    _MJPEG.frames = list(synthetic.train[1].frames()[:10])
    srv = _serve()
    url = f"http://127.0.0.1:{srv.server_address[1]}/stream.mjpg"
    out = io.StringIO()
    try:
        events = watch(trained_truesight, url, events_out=out, status=False, max_frames=10, backoff=0.05)
    finally:
        srv.shutdown()
        srv.server_close()
    assert events == [] and out.getvalue() == ""          # normal footage: nothing to report, nothing written
    with pytest.raises(VigilError, match="unreachable after 2 reconnection attempts"):
        list(read_frames(url, max_retries=2, backoff=0.01, log=lambda m: None))


def test_threshold_gives_about_the_chosen_false_alarm_rate(trained_truesight, tmp_path):
    """New normal videos of the same scene, seen neither in training nor in calibration."""
    from vigil.data import load_dataset
    from vigil.data.synthetic import SceneSpec, generate

    # the same seed with more training videos: the first 8 are the fixture's, videos 09-16 are new
    more = load_dataset(generate(tmp_path / "more", seed=0, spec=SceneSpec(n_train=16, n_test=0)))
    fresh = np.concatenate([trained_truesight.score(v) for v in more.train[8:]])
    assert len(fresh) == 8 * 64
    rate = np.mean(fresh > trained_truesight.threshold_)
    assert rate <= 0.06, f"{rate:.1%} of new normal frames alarm at a threshold calibrated for 1%"


def test_missing_file_source():
    with pytest.raises(VigilError, match="no such video file or folder"):
        list(read_frames("/nonexistent/cam.avi"))


def test_webhook_receives_each_event_as_json(trained_hybrid, synthetic):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    out = io.StringIO()
    try:
        events = watch(trained_hybrid, str(synthetic.test[0].source), events_out=out, status=False,
                       webhook=f"http://127.0.0.1:{srv.server_address[1]}/alerts")
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(events) >= 1
    assert sorted(received, key=lambda e: e["event"]) == [json.loads(x) for x in out.getvalue().splitlines()]
