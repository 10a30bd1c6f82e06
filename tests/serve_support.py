"""Real parts for the ``vigil serve`` tests, each started on a free 127.0.0.1 port, waited for until it
answers, and stopped afterwards: MJPEG cameras (``http.server``), a mosquitto broker, a PostgreSQL
server (Debian's binaries, as an unprivileged user), and small helpers (waiting, HTTP, MQTT)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float = 30.0, what: str = "condition", every: float = 0.05):
    """Poll ``condition()`` until it returns something true; that value, or an AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ask a process the test started to end (SIGTERM); kill it when it has not within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http_get(url: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def http_json(url: str, token: str | None = None, body: dict | None = None):
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), headers=headers,
                                 method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# --- cameras -------------------------------------------------------------------------------------
def encode_jpegs(frames: np.ndarray) -> list[bytes]:
    """RGB frames ``(T, H, W, 3)`` as the JPEGs a camera sends (to share between several cameras)."""
    return [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
            for f in frames]


class MjpegCamera:
    """An MJPEG-over-HTTP camera on 127.0.0.1 looping ``frames`` at ``fps`` for as long as it runs.

    :meth:`stop` closes the server and every connection (the camera is gone); :meth:`start` brings
    it back on the same port. ``sent`` counts frames sent; ``sent_at[i]`` is when frame ``i`` of the
    loop last went out (for latency figures)."""

    def __init__(self, frames: np.ndarray | list[bytes], fps: float = 20.0, port: int | None = None, start: int = 0):
        self.jpegs = frames if isinstance(frames, list) else encode_jpegs(frames)
        self.fps, self.port, self.start_frame = fps, port or free_port(), start
        self.sent, self.connections = 0, 0
        self.sent_at: dict[int, float] = {}
        self.server = None
        self._alive = threading.Event()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cam.mjpg"

    def start(self) -> None:
        cam = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                cam.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i, t0 = cam.start_frame, time.monotonic() - cam.start_frame / cam.fps
                try:
                    while cam._alive.is_set():
                        k = i % len(cam.jpegs)
                        buf = cam.jpegs[k]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(buf) + buf + b"\r\n")
                        self.wfile.flush()
                        cam.sent += 1
                        cam.sent_at[k] = time.time()
                        i += 1
                        delay = t0 + i / cam.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self._alive.set()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._alive.clear()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# --- mosquitto -----------------------------------------------------------------------------------
class Broker:
    """``mosquitto`` on a free 127.0.0.1 port, started and waited for."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        conf = tmp / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_until(lambda: self._answers() or self.proc.poll() is not None, 15, "mosquitto to listen")
        assert self.proc.poll() is None, self.proc.stderr.read().decode()

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.proc)


class Subscriber:
    """A paho client recording every message (topic, payload text, retained) under ``#``."""

    def __init__(self, port: int, topics=("#",)):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{port}-{time.time_ns()}")

        def on_connect(client, userdata, flags, reason, properties):
            for t in topics:
                client.subscribe(t, qos=1)
            self.ready.set()

        def on_message(client, userdata, msg):
            with self.lock:
                self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

        self.client.on_connect, self.client.on_message = on_connect, on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10), "the test's MQTT subscriber did not connect"
        time.sleep(0.2)                      # the SUBACK: retained messages arrive after it

    def on(self, topic: str) -> list[str]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def events(self) -> list[dict]:
        return [json.loads(p) for p in self.on_suffix("/events")]

    def on_suffix(self, suffix: str) -> list[str]:
        with self.lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- PostgreSQL ----------------------------------------------------------------------------------
def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class Postgres:
    """A throw-away PostgreSQL cluster in ``tmp`` on a free port (as user ``nobody`` when run as root)."""

    def __init__(self, tmp: Path):
        import pwd
        import tempfile

        bin_ = postgres_bin()
        self.as_user, self.own = [], None
        if os.geteuid() == 0:           # PostgreSQL refuses root; pytest's folders are closed to others
            self.own = tmp = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
            nobody = pwd.getpwnam("nobody")
            os.chown(tmp, nobody.pw_uid, nobody.pw_gid)
            self.as_user = ["runuser", "-u", "nobody", "--"]
        self.port, self.data = free_port(), tmp / "pgdata"
        tmp.mkdir(parents=True, exist_ok=True)
        self.pg_ctl = str(bin_ / "pg_ctl")
        subprocess.run(self.as_user + [str(bin_ / "initdb"), "-D", str(self.data), "-U", "vigil", "--auth=trust",
                                       "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        subprocess.run(self.as_user + [self.pg_ctl, "-D", str(self.data), "-l", str(tmp / "pg.log"), "-w", "-t", "60",
                                       "-o", f"-p {self.port} -k {tmp} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120)
        self.url = f"postgresql://vigil@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(self.as_user + [self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60)
        if self.own is not None:
            shutil.rmtree(self.own, ignore_errors=True)
