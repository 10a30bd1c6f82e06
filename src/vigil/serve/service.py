"""``vigil serve``: the cameras, the database, MQTT, the HTTP server, retention, and a clean stop.

:class:`Service` puts the parts together; :func:`serve` runs one until SIGTERM or Ctrl-C, then closes
every open event (its clip written, ``end`` published, ``OFF``), publishes ``offline``, and returns
0. Everything that can be wrong with the configuration is found before anything starts: the config
file (:func:`vigil.serve.config.load_config`), each run (loaded), each source (opened once), the
database (connected, schema created or upgraded), the HTTP address (bound).
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from vigil.errors import VigilError
from vigil.serve.camera import Camera
from vigil.serve.config import ServeConfig, load_config
from vigil.serve.media import Media
from vigil.serve.mqtt import MqttPublisher
from vigil.serve.store import Store

SOURCE_TIMEOUT = 20.0       # seconds to open each source at start


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_source(source, shown: str, timeout: float = SOURCE_TIMEOUT) -> str | None:
    """Open a source once and read its first frame; None when it gives one, else why not."""
    import cv2

    from vigil.watch import is_live, read_frames

    if not is_live(source):                          # a file or a folder: read as its camera will read it
        try:
            first = next(read_frames(str(source), log=lambda _: None), None)
        except VigilError as e:
            return str(e)
        return None if first is not None else f"{shown}: holds no frame"
    result: list = []

    def probe():
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG) if isinstance(source, str) else cv2.VideoCapture(source)
        result.append(cap.isOpened() and cap.read()[0])
        cap.release()

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        return f"{shown}: no frame within {timeout:g}s"
    return None if result[0] else f"{shown}: cannot open or read a frame"


class Service:
    """Every part of one ``vigil serve``; :meth:`start` and :meth:`stop` (idempotent)."""

    def __init__(self, cfg: ServeConfig, *, log: Callable[[str], None] = _log, check_sources: bool = True):
        from vigil.io import check_writable
        from vigil.runs import load

        self.cfg, self.log = cfg, log
        self.stopping = threading.Event()
        self.started_at = time.time()
        check_writable(cfg.storage.dir, folder=True)
        detectors = {}
        for cam in cfg.cameras:
            try:
                detectors[cam.name] = load(cam.run)
            except VigilError as e:
                raise VigilError(f"{cfg.path}: cameras.{cam.name}.run: {e}") from None
            if cam.threshold is None and getattr(detectors[cam.name], "threshold_", None) is None:
                raise VigilError(f"{cfg.path}: cameras.{cam.name}.run: {cam.run} has no calibrated threshold_; "
                                 f"set cameras.{cam.name}.threshold")
        if check_sources:
            with ThreadPoolExecutor(max(1, len(cfg.cameras))) as pool:
                problems = list(pool.map(lambda c: check_source(c.source, c.shown_source), cfg.cameras))
            for cam, problem in zip(cfg.cameras, problems):
                if problem:
                    raise VigilError(f"{cfg.path}: cameras.{cam.name}.source: {problem}")
        self._sock = self._bind()                        # the address is free: nothing else can fail now
        self._server = self._thread = None
        try:
            self.store = Store.open(cfg.database)
        except VigilError:
            self._sock.close()
            raise
        lost = self.store.close_open(time.time())
        if lost:
            log(f"vigil: {lost} events left open by a previous run were closed (ended: lost)")
        self.media = Media(cfg.storage.dir, cfg.storage.clip_formats, cfg.storage.keep_days, log=log)
        self._feed: deque = deque(maxlen=500)
        self._seq = 0
        self._feed_lock = threading.Lock()
        self.mqtt = MqttPublisher(cfg.mqtt, [c.name for c in cfg.cameras], log=log) if cfg.mqtt else None
        self.frigate = None
        if cfg.frigate is not None:
            from vigil.serve.frigate import FrigateSink

            self.frigate = FrigateSink(cfg.frigate.url, log=log)
        self.cameras = {c.name: Camera(c, detectors[c.name], media=self.media, announce=self.announce,
                                       pre_seconds=cfg.storage.pre_seconds,
                                       max_event_seconds=cfg.storage.max_event_seconds, log=log)
                        for c in cfg.cameras}

    def _bind(self) -> socket.socket:
        host, port = self.cfg.http.host, self.cfg.http.port
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(info[0], socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(info[4])
        except OSError as e:
            raise VigilError(f"{self.cfg.path}: http: cannot listen on {host}:{port} ({e.strerror or e})") from None
        sock.listen(128)
        sock.setblocking(False)
        return sock

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://{self.cfg.http.host}:{self.port}"

    # --- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        import uvicorn

        from vigil.serve.http import create_app

        for cam in self.cameras.values():
            cam.start()
        config = uvicorn.Config(create_app(self), log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="vigil-http", daemon=True)
        self._thread.start()
        threading.Thread(target=self._retention_loop, name="vigil-retention", daemon=True).start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise VigilError(f"http: the server on {self.url} did not start")
            time.sleep(0.02)
        self.log(f"vigil: serving {len(self.cameras)} cameras on {self.url}/ "
                 f"({', '.join(f'{c.name}: {c.cfg.shown_source}' for c in self.cameras.values())})")

    def stop(self) -> None:
        """Close every open event (written, published), publish ``offline``, stop the HTTP server."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        for cam in self.cameras.values():
            cam.request_stop()
        for cam in self.cameras.values():
            cam.stop()
        if self.frigate is not None:
            self.frigate.close()
        if self.mqtt is not None:
            self.mqtt.close()
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(10)
        self._sock.close()
        self.store.dispose()

    # --- what the cameras announce ----------------------------------------------------------------
    def announce(self, kind: str, before: dict | None, after: dict) -> None:
        """An event's ``new``/``update``/``end``: database first, then MQTT, the page, Frigate. A failing
        sink is logged and does not stop the others (or the camera)."""
        try:
            if kind == "new":
                self.store.insert(after)
            else:
                self.store.update(after["id"], **{k: v for k, v in after.items() if k != "id"})
        except Exception as e:                          # noqa: BLE001 - the database went away; go on
            self.log(f"vigil: database: event {after['id']} not stored ({e.__class__.__name__}: {e})")
        if self.mqtt is not None:
            if kind == "new":
                self.mqtt.state(after["camera"], True)
            self.mqtt.event(kind, before, after)
            if kind == "end":
                self.mqtt.state(after["camera"], False)
        with self._feed_lock:
            self._seq += 1
            self._feed.append((self._seq, {"type": kind, "event": self.public_event(after)}))
        if self.frigate is not None:
            self.frigate.submit(kind, after)
        if kind == "end":
            clip = "" if after["has_clip"] else f"; no clip ({after['clip_note']})"
            self.log(f"vigil: camera {after['camera']}: event {after['id']} ended ({after['ended']}), "
                     f"top score {after['top_score']:.2f} (threshold {after['threshold']:.2f}){clip}")

    def feed_seq(self) -> int:
        with self._feed_lock:
            return self._seq

    def feed_after(self, seq: int) -> list[tuple[int, dict]]:
        with self._feed_lock:
            return [(s, m) for s, m in self._feed if s > seq]

    def public_event(self, ev: dict) -> dict:
        """An event as the API shows it: the row, with links to its pictures."""
        base = f"/api/events/{ev['id']}"
        out = dict(ev)
        out["snapshot_url"] = f"{base}/snapshot.jpg" if ev["has_snapshot"] else None
        clips = {f: f"{base}/clip.{f}" for f in self.media.formats} if ev["has_clip"] else {}
        out["clip_urls"] = clips
        return out

    def review(self, event_id: str, verdict: str) -> dict | None:
        """Store the verdict; a false alarm's clip becomes normal footage under ``false_alarms/``."""
        ev = self.store.get(event_id)
        if ev is None:
            return None
        if verdict == "false_alarm" and ev["has_clip"]:
            saved = self.media.save_false_alarm(ev["camera"], event_id)
            if saved is not None:
                self.log(f"vigil: event {event_id} reviewed as a false alarm; its frames are in {saved} "
                         f"(vigil refit RUN --normal {saved.parent.parent})")
        elif verdict == "confirmed":
            self.media.drop_false_alarm(ev["camera"], event_id)
        return self.store.review(event_id, verdict)

    def health(self) -> dict:
        return {"status": "ok" if not self.stopping.is_set() else "stopping",
                "uptime_s": round(time.time() - self.started_at, 1), "cameras": len(self.cameras),
                "clips": "on" if self.media.clips_on() else "off", "storage_problem": self.media.problem,
                "mqtt": None if self.mqtt is None else self.mqtt.connected.is_set(),
                "schema_version": self.store.schema_version() if not self.stopping.is_set() else None}

    # --- retention --------------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> int:
        """Remove clips and snapshots of events that ended more than ``keep_days`` ago; how many events."""
        cutoff = (time.time() if now is None else now) - self.cfg.storage.keep_days * 86400
        old = self.store.with_media_before(cutoff)
        for ev in old:
            self.media.remove(ev["camera"], ev["id"])
            self.store.update(ev["id"], has_clip=False, has_snapshot=False,
                              clip_note=f"removed after {self.cfg.storage.keep_days:g} days")
        self.media.sweep_orphans(cutoff)
        if old:
            self.log(f"vigil: retention: removed the clips and snapshots of {len(old)} events older than "
                     f"{self.cfg.storage.keep_days:g} days")
        return len(old)

    def _retention_loop(self) -> None:
        every = min(3600.0, self.cfg.storage.keep_days * 86400 / 4)
        while not self.stopping.is_set():
            try:
                self.sweep()
            except Exception as e:                      # noqa: BLE001
                self.log(f"vigil: retention: {e.__class__.__name__}: {e}")
            self.stopping.wait(every)


def serve(config_path: str, *, log: Callable[[str], None] = _log) -> int:
    """Run the service of ``config_path`` until SIGTERM or Ctrl-C; 0 after a clean stop."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    cfg = load_config(config_path)
    service = Service(cfg, log=log)
    stop = threading.Event()
    why: list[str] = []

    def on_signal(signum, _frame):
        why.append(signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        service.start()
        while not stop.wait(0.5):
            pass
        log(f"vigil: {why[0] if why else 'stop'}; closing open events")
    finally:
        service.stop()
        for s, h in old.items():
            signal.signal(s, h)
    log("vigil: stopped")
    return 0
