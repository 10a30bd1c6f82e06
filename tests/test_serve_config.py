"""`vigil serve` at its edges: bad configs in one line, secrets kept out of logs, API, page and
database, the token, SIGTERM in the middle of an event, a full disk, retention, the schema, PostgreSQL,
and `vigil refit` from reviewed false alarms."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from serve_support import (MOSQUITTO, Broker, MjpegCamera, Postgres, Subscriber, free_port, http_get, http_json,
                           postgres_bin, wait_until)
from vigil.errors import VigilError

SRC = Path(__file__).resolve().parents[1] / "src"
TOKEN = "0123456789abcdef-token"


@pytest.fixture(scope="module")
def serve_run(trained_hybrid, synthetic_root, tmp_path_factory):
    return trained_hybrid.save(tmp_path_factory.mktemp("serve-run") / "run", extra={"data": str(synthetic_root)})


@pytest.fixture(scope="module")
def footage(synthetic):
    return np.concatenate([synthetic.train[0].frames(), synthetic.test[0].frames()])


def write(tmp: Path, text: str) -> Path:
    path = tmp / "vigil.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# --- bad configs ---------------------------------------------------------------------------------
BAD = [
    ("cameras: {a: {source: 0, run: RUN, colour: red}}", "cameras.a.colour: unknown key"),
    ("cameras: {a: {source: 0, run: nowhere}}", "cameras.a.run: nowhere: no run folder"),
    ("cameras: {a: {source: 0}}", "cameras.a.run: missing"),
    ("cameras: {a: {source: 0, run: RUN, threshold: high}}", "cameras.a.threshold: must be a number"),
    ("cameras: {a: {source: 0, run: RUN, min_frames: 0}}", "cameras.a.min_frames: must be at least 1"),
    ("cameras: {a: {source: 'rtsp://u:${NOT_SET_ANYWHERE}@h/s', run: RUN}}",
     "cameras.a.source: ${NOT_SET_ANYWHERE}: environment variable not set"),
    ("cameras: {a: {source: missing.mp4, run: RUN}}", "cameras.a.source: missing.mp4: no such video file"),
    ("cameras: {'a b': {source: 0, run: RUN}}", "cameras.a b: a camera name is"),
    ("cameras: {a: {source: 0, run: RUN}}\nhttp: {host: 0.0.0.0}", "http.token: required when http.host is 0.0.0.0"),
    ("cameras: {a: {source: 0, run: RUN}}\nhttp: {port: 99999}", "http.port: must be from 0 to 65535"),
    ("cameras: {a: {source: 0, run: RUN}}\nmqtt: {port: 1883}", "mqtt.host: missing"),
    ("cameras: {a: {source: 0, run: RUN}}\nmqtt: {host: h, topic_prefix: 'a/#'}", "mqtt.topic_prefix"),
    ("cameras: {a: {source: 0, run: RUN}}\ndatabase: mysql://x", "database: mysql://x: must be sqlite"),
    ("cameras: {a: {source: 0, run: RUN}}\nstorage: {keep_days: 0}", "storage.keep_days: must be more than 0"),
    ("cameras: {a: {source: 0, run: RUN}}\nstorage: {clip_formats: [avi]}", "storage.clip_formats"),
    ("cameras: {a: {source: 0, run: RUN}}\nextra: 1", "extra: unknown key"),
    ("cameras: []", "cameras: must map camera names"),
    ("cameras: {a: {source: 0, run: RUN}\n", "not valid YAML at line"),
    ("", "cameras: missing"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_a_bad_config_is_one_line_naming_the_key(text, message, serve_run, tmp_path):
    from vigil.serve.config import load_config

    path = write(tmp_path, text.replace("RUN", str(serve_run)))
    with pytest.raises(VigilError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def _vigil(*argv, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "vigil", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(SRC), **(env or {})})


def test_the_command_says_it_in_one_line_and_exits_2(serve_run, tmp_path):
    path = write(tmp_path, f"cameras: {{a: {{source: 0, run: {serve_run}, treshold: 3}}}}\n")
    r = _vigil("serve", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"vigil: error: {path}: cameras.a.treshold: unknown key "
                                             f"(known: gap_frames, min_frames, run, source, threshold)"]
    # an unreachable source at start is a config error too, and its password is not shown
    port = free_port()
    path = write(tmp_path, f"cameras: {{a: {{source: 'http://u:${{CAM_PW}}@127.0.0.1:{port}/x', run: {serve_run}}}}}\n"
                           f"storage: {{dir: {tmp_path / 'data'}}}\n")
    r = _vigil("serve", path, env={"CAM_PW": "hunter2secret"})
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cameras.a.source: http://u:***@127.0.0.1" in r.stderr and "hunter2secret" not in r.stderr


@pytest.mark.parametrize("content, message", [
    ({}, "folder holds no frames"),                                   # an empty folder of frames
    ({"000.jpg": b"not a picture", "001.jpg": b"\xff\xd8"}, "000.jpg: "),    # an unreadable first frame
])
def test_a_folder_source_that_gives_no_frame_is_one_line_at_start(content, message, serve_run, tmp_path):
    from vigil.serve.config import load_config
    from vigil.serve.service import Service

    folder = tmp_path / "footage"
    folder.mkdir()
    for name, data in content.items():
        (folder / name).write_bytes(data)
    path = write(tmp_path, f"cameras: {{a: {{source: {folder}, run: {serve_run}}}}}\n"
                           f"storage: {{dir: {tmp_path / 'data'}}}\n")
    with pytest.raises(VigilError) as e:
        Service(load_config(path))
    assert str(e.value).startswith(f"{path}: cameras.a.source: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_mask_url():
    from vigil.serve.config import mask_url

    assert mask_url("rtsp://user:pa:ss@10.0.0.5:554/stream") == "rtsp://user:***@10.0.0.5:554/stream"
    assert mask_url("rtsp://10.0.0.5/stream") == "rtsp://10.0.0.5/stream" and mask_url("0") == "0"


# --- secrets, the token, SIGTERM -----------------------------------------------------------------
class Serving:
    """``vigil serve`` in a subprocess; stderr collected; stopped at the end also on failure."""

    def __init__(self, config: Path, env: dict):
        self.p = subprocess.Popen([sys.executable, "-m", "vigil", "serve", str(config)], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "PYTHONPATH": str(SRC), **env})
        self.lines: list[str] = []
        import threading

        self.reader = threading.Thread(target=lambda: [self.lines.append(x) for x in self.p.stdout], daemon=True)
        self.reader.start()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> None:
        wait_until(lambda: "serving" in self.log or self.p.poll() is not None, 90, "vigil serve to start")
        assert self.p.poll() is None, self.log

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(30)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.reader.join(5)


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")
def test_sigterm_in_an_event_ends_it_publishes_offline_and_exits_0(serve_run, footage, tmp_path, request):
    broker = Broker(tmp_path)
    request.addfinalizer(broker.stop)
    sub = Subscriber(broker.port)
    request.addfinalizer(sub.stop)
    cam = MjpegCamera(footage, fps=20)
    request.addfinalizer(cam.stop)
    port = free_port()
    secret = "s3cr3t-Pa55word"
    src = cam.url.replace("http://", "http://viewer:${CAM_PASSWORD}@")
    config = write(tmp_path, f"""
        cameras:
          door: {{source: "{src}", run: {serve_run}}}
        mqtt: {{host: 127.0.0.1, port: {broker.port}, topic_prefix: site}}
        http: {{host: 127.0.0.1, port: {port}, token: {TOKEN}}}
        storage: {{dir: data}}
        """)
    s = Serving(config, {"CAM_PASSWORD": secret})
    request.addfinalizer(s.stop)
    s.wait_ready()
    url = f"http://127.0.0.1:{port}"
    # the token: required on every route but /login
    for path in ("/api/health", "/api/cameras", "/api/events", "/metrics", "/api/cameras/door/latest.jpg"):
        assert http_get(url + path)[0] == 401, path
        assert http_get(url + path, token="wrong" * 5)[0] == 401, path
    assert http_get(url + "/api/health", token=TOKEN)[0] == 200
    assert http_get(url + "/login")[0] == 200
    open_event = wait_until(lambda: [c for c in http_json(url + "/api/cameras", token=TOKEN)[1] if c["event"]],
                            60, "an open event")[0]["event"]
    page = http_get(url + "/", token=TOKEN)[1].decode() + http_get(url + "/static/app.js", token=TOKEN)[1].decode()
    api = b"".join(http_get(url + p, token=TOKEN)[1] for p in ("/api/cameras", "/api/events", "/metrics",
                                                             "/api/health")).decode()
    assert "viewer:***@127.0.0.1" in api
    assert s.stop(signal.SIGTERM) == 0, s.log
    log = s.log
    assert "Traceback" not in log and "closing open events" in log and "stopped" in log
    from vigil.serve.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'vigil.db'}")
    ev = store.get(open_event)
    assert ev["end_time"] is not None and ev["ended"] == "stop" and ev["has_clip"] and ev["has_snapshot"]
    wait_until(lambda: sub.on("site/available")[-1:] == ["offline"], 10, "offline")
    assert [m["type"] for m in sub.events() if m["after"]["id"] == open_event][-1] == "end"
    dump = "\n".join(json.dumps(e) for e in store.list(limit=1000))
    store.dispose()
    for where, text in (("log", log), ("page", page), ("API", api), ("database", dump),
                        ("database file", (tmp_path / "data" / "vigil.db").read_bytes().decode("latin-1"))):
        assert secret not in text, where


def test_the_login_form_sets_an_httponly_cookie(serve_run, synthetic, tmp_path, request):
    from vigil.serve.config import load_config
    from vigil.serve.service import Service

    config = write(tmp_path, f"""
        cameras: {{hall: {{source: {synthetic.train[1].source}, run: {serve_run}}}}}
        http: {{host: 127.0.0.1, port: 0, token: {TOKEN}}}
        storage: {{dir: data}}
        """)
    service = Service(load_config(config), log=lambda m: None)
    request.addfinalizer(service.stop)
    service.start()
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    c.request("GET", "/", headers={"Accept": "text/html"})
    r = c.getresponse()
    r.read()
    assert r.status == 303 and r.getheader("Location") == "/login"
    c.request("POST", "/login", body="token=nope", headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    assert r.status == 401 and b"Wrong token" in r.read()
    c.request("POST", "/login", body=f"token={TOKEN}", headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    cookie = r.getheader("Set-Cookie")
    assert r.status == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie
    c.request("GET", "/api/cameras", headers={"Cookie": cookie.split(";")[0]})
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())[0]["name"] == "hall"


# --- disks, retention, schema --------------------------------------------------------------------
def test_a_full_disk_stops_clips_but_not_events(serve_run, footage, tmp_path, request, monkeypatch):
    from vigil.serve import media
    from vigil.serve.config import load_config
    from vigil.serve.service import Service

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(media, "_create", full)
    cam = MjpegCamera(footage, fps=20)
    request.addfinalizer(cam.stop)
    config = write(tmp_path, f"""
        cameras: {{hall: {{source: "{cam.url}", run: {serve_run}}}}}
        http: {{host: 127.0.0.1, port: 0}}
        storage: {{dir: data}}
        """)
    logs = []
    service = Service(load_config(config), log=logs.append)
    request.addfinalizer(service.stop)
    service.start()
    ev = wait_until(lambda: [e for e in service.store.list() if e["end_time"]], 60, "an ended event")[0]
    assert not ev["has_clip"] and "no space left on device" in ev["clip_note"] and ev["has_snapshot"]
    health = http_json(service.url + "/api/health")[1]
    assert health["clips"] == "off" and "no space left on device" in health["storage_problem"]
    assert sum("clips are no longer written, events are still recorded" in m for m in logs) == 1
    assert "vigil_clips_disabled 1" in http_get(service.url + "/metrics")[1].decode()


def test_retention_removes_old_clips_and_snapshots(serve_run, synthetic, tmp_path, request):
    from vigil.serve.config import load_config
    from vigil.serve.service import Service

    config = write(tmp_path, f"""
        cameras: {{hall: {{source: {synthetic.train[1].source}, run: {serve_run}}}}}
        http: {{host: 127.0.0.1, port: 0}}
        storage: {{dir: data, keep_days: 2}}
        """)
    service = Service(load_config(config), log=lambda m: None)
    request.addfinalizer(service.stop)
    now = time.time()
    for k, age_days in enumerate((3, 1)):
        t = now - age_days * 86400
        row = {"id": f"{t:.3f}-hall-{k}", "camera": "hall", "label": "anomaly", "start_time": t, "end_time": t + 2,
               "score": 1, "top_score": 9, "peak_time": t + 1, "peak_frame": 5, "threshold": 3, "ended": "gap",
               "has_snapshot": True, "has_clip": True}
        service.store.insert(row)
        service.media.write_snapshot("hall", row["id"], np.zeros((8, 8, 3), np.uint8), None)
        clip = service.media.clip("hall", row["id"], "webm")
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.write_bytes(b"x")
    old, new = (e["id"] for e in sorted(service.store.list(), key=lambda e: e["start_time"]))
    assert service.sweep(now) == 1
    assert not service.media.snapshot("hall", old).exists() and not service.media.clip("hall", old, "webm").exists()
    assert service.media.snapshot("hall", new).exists() and service.media.clip("hall", new, "webm").exists()
    gone = service.store.get(old)
    assert not gone["has_clip"] and not gone["has_snapshot"] and "removed after 2 days" in gone["clip_note"]


def _store_round_trip(url: str) -> None:
    from vigil.serve.store import SCHEMA_VERSION, Store

    store = Store.open(url)
    assert store.schema_version() == SCHEMA_VERSION
    row = {"id": "1.000-a-1", "camera": "a", "label": "anomaly", "start_time": 1.0, "end_time": None, "score": 4.0,
           "top_score": 4.0, "peak_time": 1.0, "peak_frame": 3, "threshold": 2.0, "has_snapshot": False,
           "has_clip": False}
    store.insert(row)
    store.insert({**row, "id": "2.000-b-1", "camera": "b", "start_time": 2.0, "end_time": 3.0})
    store.update("1.000-a-1", end_time=1.5, top_score=7.5, has_clip=True, ended="gap")
    assert [e["id"] for e in store.list()] == ["2.000-b-1", "1.000-a-1"]
    assert [e["id"] for e in store.list(camera="a")] == ["1.000-a-1"] and store.list(after=2.5) == []
    assert store.review("1.000-a-1", "false_alarm")["verdict"] == "false_alarm"
    store.dispose()
    again = Store.open(url)                                   # reopened: the schema stays, the data too
    ev = again.get("1.000-a-1")
    assert ev["top_score"] == 7.5 and ev["has_clip"] is True and ev["verdict"] == "false_alarm"
    assert again.close_open(10.0) == 0
    with again.engine.begin() as c:                           # a newer vigil's database is refused
        from vigil.serve.store import meta

        c.execute(meta.update().values(value=str(SCHEMA_VERSION + 1)))
    again.dispose()
    with pytest.raises(VigilError, match="newer vigil"):
        Store.open(url)


def test_sqlite_store(tmp_path):
    _store_round_trip(f"sqlite:///{tmp_path / 'db' / 'vigil.db'}")


@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL's server binaries are not installed "
                                                   "(make test installs them with apt-get when it may)")
def test_postgresql_store(tmp_path, request):
    pg = Postgres(tmp_path / "pg")
    request.addfinalizer(pg.stop)
    from vigil.serve.config import _database, _Reader, StorageConfig

    url = _database(_Reader(tmp_path / "vigil.yaml"), pg.url, StorageConfig())
    assert url.startswith("postgresql+psycopg://")
    _store_round_trip(url)


def test_an_unreachable_database_is_one_line(tmp_path):
    from vigil.serve.store import Store

    with pytest.raises(VigilError, match=r"database postgresql\+psycopg://vigil:\*\*\*@127.0.0.1:\d+/x: ") as e:
        Store.open(f"postgresql+psycopg://vigil:pw@127.0.0.1:{free_port()}/x")
    assert "pw@" not in str(e.value)


# --- learning from false alarms ------------------------------------------------------------------
def test_refit_learns_a_false_alarm_as_normal(serve_run, synthetic, tmp_path):
    """The runner, reviewed as a false alarm, becomes normal: the refitted run scores it lower."""
    from vigil.runs import load, refit

    runner = synthetic.test[0].frames()
    fa = tmp_path / "false_alarms" / "hall" / "1.000-hall-1"
    fa.mkdir(parents=True)
    for i, f in enumerate(runner):
        cv2.imwrite(str(fa / f"{i + 1:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    old = load(serve_run)
    det, out, summary = refit(serve_run, [tmp_path / "false_alarms"], tmp_path / "refit")
    assert summary["normal_clips"] == 1 and summary["videos"] == len(synthetic.train)
    new = load(out)
    assert new.threshold_ == pytest.approx(det.threshold_)
    # the footage it was told is normal now scores lower, relative to each run's threshold
    assert (new.score(runner) / new.threshold_).max() < (old.score(runner) / old.threshold_).max()
    meta = json.loads((out / "config.json").read_text())
    assert meta["refit_from"] == str(Path(serve_run).resolve()) and meta["normal_clips"] == 1
    r = _vigil("refit", serve_run, "--normal", tmp_path / "nothing", "--out", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"vigil: error: {tmp_path / 'nothing'}: no such folder of normal footage"]


# --- a camera that scoring cannot keep up with; the Frigate sink -------------------------------
class _Slow:
    """A stand-in model that needs 0.1 s a frame (a camera at 20 frames/s is twice too fast for it)."""
    name, threshold_ = "slow", 1.0

    def context(self):
        return 1

    def stream(self, maps=False):
        class S:
            def update(self, frame):
                time.sleep(0.1)
                return 0.0, None
        return S()


def test_a_camera_too_fast_for_its_model_skips_frames_and_says_so(footage, tmp_path, request):
    from vigil.serve.camera import Camera
    from vigil.serve.config import CameraConfig
    from vigil.serve.media import Media

    cam_server = MjpegCamera(footage, fps=20)
    request.addfinalizer(cam_server.stop)
    logs = []
    cam = Camera(CameraConfig("busy", cam_server.url, tmp_path), _Slow(), media=Media(tmp_path, ("webm",), 7),
                 announce=lambda *a: None, log=logs.append)
    request.addfinalizer(cam.stop)
    cam.start()
    wait_until(lambda: cam.frames_scored >= 20, 30, "20 scored frames")
    info = cam.info()
    assert info["frames_skipped"] >= 10 and info["frames_read"] >= info["frames_scored"] + info["frames_skipped"]
    assert 5 <= info["scored_fps"] <= 12 and info["fps"] > 15, info
    assert info["latency_ms"] < 600                        # bounded lag: at most three frames wait
    assert any("scoring falls behind the camera" in m and "frames skipped" in m for m in logs), logs


def test_the_frigate_sink_creates_and_ends_frigate_events():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    from vigil.serve.frigate import FrigateSink

    seen = []

    class Frigate(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _answer(self, body: dict):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            seen.append(("POST", self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self._answer({"success": True, "event_id": "1700000000.0-abc123"})

        def do_PUT(self):
            seen.append(("PUT", self.path, None))
            self._answer({"success": True})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Frigate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = FrigateSink(f"http://127.0.0.1:{server.server_address[1]}", log=lambda m: None)
        ev = {"id": "1.000-lobby-1", "camera": "lobby", "top_score": 12.34567}
        sink.submit("new", ev)
        sink.submit("update", ev)                          # not sent: Frigate's event runs until its end
        sink.submit("end", ev)
        sink.close()
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [("POST", "/api/events/lobby/anomaly/create",
                     {"score": 12.3457, "duration": None, "include_recording": True, "sub_label": "vigil"}),
                    ("PUT", "/api/events/1700000000.0-abc123/end", None)]
    assert sink.failed == 0
