"""``vigil.yaml``: the service's configuration, read once at start and checked key by key.

.. code-block:: yaml

    cameras:
      lobby: {source: "rtsp://user:${LOBBY_PASSWORD}@10.0.0.5/stream", run: runs/lobby}
      gate:  {source: 0, run: runs/gate.onnx, threshold: 12.5}
    mqtt:     {host: 127.0.0.1, port: 1883, topic_prefix: vigil}
    database: sqlite:///vigil-data/vigil.db
    http:     {host: 127.0.0.1, port: 8765}
    storage:  {dir: vigil-data, keep_days: 7, pre_seconds: 3}

``${NAME}`` anywhere in a string takes the value of the environment variable ``NAME``. Relative
paths (runs, ``storage.dir``, a ``sqlite:///`` file) are relative to the folder of the config file,
so the service does not depend on the folder it was started from. Every problem (unknown key,
wrong type, missing run, unset variable, an address off loopback without a token) is one
:class:`VigilError` naming the file and the key, e.g. ``vigil.yaml: cameras.gate.threshold: must be
a number (got 'high')``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import VigilError

CAMERA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")   # goes into MQTT topics, URLs and file names
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CLIP_FORMATS = ("webm", "mp4")


@dataclass(frozen=True)
class CameraConfig:
    name: str
    source: int | str                 # anything `vigil watch` takes: camera index, URL, file, folder of frames
    run: Path                         # run folder or .onnx file
    threshold: float | None = None    # None: the run's calibrated threshold_
    min_frames: int = 3               # the watch rule (vigil.watch.EventTracker)
    gap_frames: int = 5

    @property
    def shown_source(self) -> str:
        """The source as logs, the page and the API show it: any password masked."""
        return mask_url(str(self.source))


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int = 1883
    topic_prefix: str = "vigil"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    discovery_prefix: str = "homeassistant"   # Home Assistant's default


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = field(default=None, repr=False)   # set: every page and API call needs it


@dataclass(frozen=True)
class StorageConfig:
    dir: Path = Path("vigil-data")
    keep_days: float = 7.0            # clips and snapshots older than this are removed
    pre_seconds: float = 3.0          # a clip starts this long before its event
    max_event_seconds: float = 300.0  # a clip stops growing here (the event goes on): bounded disk per event
    clip_formats: tuple[str, ...] = CLIP_FORMATS   # webm (VP8: browsers play it), mp4 (MPEG-4 part 2: players)


@dataclass(frozen=True)
class FrigateConfig:
    url: str                          # Frigate's API, e.g. http://127.0.0.1:5000: each event is created there too


@dataclass(frozen=True)
class ServeConfig:
    cameras: tuple[CameraConfig, ...]
    database: str = field(repr=False)  # an SQLAlchemy URL (may hold a password)
    http: HttpConfig = HttpConfig()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig | None = None
    frigate: FrigateConfig | None = None
    path: Path = Path("vigil.yaml")

    def camera(self, name: str) -> CameraConfig:
        return next(c for c in self.cameras if c.name == name)


def mask_url(url: str) -> str:
    """``rtsp://user:secret@host/x`` -> ``rtsp://user:***@host/x``; anything else unchanged."""
    if "://" not in url:
        return url
    try:
        u = urllib.parse.urlsplit(url)
    except ValueError:
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
    if u.password is None:
        return url
    host = u.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(u._replace(netloc=f"{u.username}:***@{host}"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- reading ---------------------------------------------------------------------------------------
class _Reader:
    """Checks one mapping at a time; every message names the file and the dotted key."""

    def __init__(self, path: Path):
        self.path, self.base = path, path.parent

    def fail(self, key: str, message: str):
        raise VigilError(f"{self.path}: {key}: {message}")

    def mapping(self, key: str, value: Any, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping of keys to values (got {_kind(value)})")
        for k in value:
            if not isinstance(k, str) or k not in allowed:
                self.fail(f"{key}.{k}" if key else str(k),
                          f"unknown key (known: {', '.join(sorted(allowed))})")
        for k in sorted(required - set(value)):
            self.fail(f"{key}.{k}" if key else k, "missing (required)")
        return value

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string (got {_kind(value)})")
        return value

    def number(self, key: str, value: Any, least: float = 0.0, strict: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a number (got {_kind(value)})")
        if value < least or (strict and value == least):
            self.fail(key, f"must be {'more than' if strict else 'at least'} {least:g} (got {value:g})")
        return float(value)

    def integer(self, key: str, value: Any, least: int, most: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number (got {_kind(value)})")
        if value < least or (most is not None and value > most):
            self.fail(key, f"must be from {least} to {most} (got {value})" if most else f"must be at least {least}")
        return value

    def local_path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:60]


def _substitute(value: Any, key: str, reader: _Reader) -> Any:
    """``${NAME}`` -> the environment's NAME, in every string of the document."""
    if isinstance(value, dict):
        return {k: _substitute(v, f"{key}.{k}" if key else str(k), reader) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{key}[{i}]", reader) for i, v in enumerate(value)]
    if isinstance(value, str):
        def env(m):
            if m.group(1) not in os.environ:
                reader.fail(key, f"${{{m.group(1)}}}: environment variable not set")
            return os.environ[m.group(1)]
        return _ENV.sub(env, value)
    return value


def load_config(path: str | os.PathLike) -> ServeConfig:
    """Read and check ``path``; one :class:`VigilError` naming the key at the first problem."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VigilError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VigilError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise VigilError(f"{path}: not valid YAML{at} ({getattr(e, 'problem', None) or e})") from None
    r = _Reader(path)
    if doc is None:
        r.fail("cameras", "missing (the file is empty)")
    doc = r.mapping("", doc, {"cameras", "mqtt", "database", "http", "storage", "frigate"}, {"cameras"})
    doc = _substitute(doc, "", r)
    storage = _storage(r, doc.get("storage", {}))
    return ServeConfig(
        cameras=_cameras(r, doc["cameras"]),
        database=_database(r, doc.get("database"), storage),
        http=_http(r, doc.get("http", {})),
        storage=storage,
        mqtt=_mqtt(r, doc["mqtt"]) if doc.get("mqtt") is not None else None,
        frigate=_frigate(r, doc["frigate"]) if doc.get("frigate") is not None else None,
        path=path,
    )


def _cameras(r: _Reader, value: Any) -> tuple[CameraConfig, ...]:
    if not isinstance(value, dict) or not value:
        r.fail("cameras", f"must map camera names to {{source: ..., run: ...}} (got {_kind(value)})")
    out = []
    for name, cam in value.items():
        key = f"cameras.{name}"
        if not isinstance(name, str) or not CAMERA_NAME.match(name):
            r.fail(key, "a camera name is 1-64 letters, digits, '_' or '-' (it goes into MQTT topics and URLs)")
        cam = r.mapping(key, cam, {"source", "run", "threshold", "min_frames", "gap_frames"}, {"source", "run"})
        source = cam["source"]
        if isinstance(source, bool) or not isinstance(source, (int, str)) or source == "":
            r.fail(f"{key}.source", f"must be a camera index, a URL, a video file or a folder of frames "
                                    f"(got {_kind(source)})")
        if isinstance(source, str) and "://" not in source and not source.isdigit():
            p = r.local_path(source)
            if not p.exists():
                r.fail(f"{key}.source", f"{source}: no such video file or folder of frames")
            source = str(p)
        run = r.local_path(r.string(f"{key}.run", cam["run"]))
        if not (run.is_dir() and (run / "config.json").is_file()) and not (run.suffix == ".onnx" and run.is_file()):
            r.fail(f"{key}.run", f"{cam['run']}: no run folder (written by 'vigil train') or .onnx file there")
        threshold = cam.get("threshold")
        if threshold is not None:
            threshold = r.number(f"{key}.threshold", threshold, least=-math.inf)
        out.append(CameraConfig(name, int(source) if isinstance(source, str) and source.isdigit() else source, run,
                                threshold, r.integer(f"{key}.min_frames", cam.get("min_frames", 3), 1),
                                r.integer(f"{key}.gap_frames", cam.get("gap_frames", 5), 1)))
    return tuple(out)


def _mqtt(r: _Reader, value: Any) -> MqttConfig:
    m = r.mapping("mqtt", value, {"host", "port", "topic_prefix", "username", "password", "discovery_prefix"},
                  {"host"})
    prefix = r.string("mqtt.topic_prefix", m.get("topic_prefix", "vigil"))
    discovery = r.string("mqtt.discovery_prefix", m.get("discovery_prefix", "homeassistant"))
    for key, v in (("topic_prefix", prefix), ("discovery_prefix", discovery)):
        if any(c in v for c in "#+ ") or v.startswith("/") or v.endswith("/"):
            r.fail(f"mqtt.{key}", f"{v!r}: an MQTT topic prefix has no '#', '+', spaces or leading/trailing '/'")
    user = m.get("username")
    password = m.get("password")
    return MqttConfig(r.string("mqtt.host", m["host"]), r.integer("mqtt.port", m.get("port", 1883), 1, 65535),
                      prefix, None if user is None else r.string("mqtt.username", user),
                      None if password is None else r.string("mqtt.password", str(password)), discovery)


def _database(r: _Reader, value: Any, storage: StorageConfig) -> str:
    if value is None:
        return f"sqlite:///{storage.dir / 'vigil.db'}"
    url = r.string("database", value)
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme == "sqlite":
        rest = url.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            r.fail("database", "a SQLite URL is sqlite:///path/to/file.db (three slashes)")
        file = rest[1:]
        return f"sqlite:///{r.local_path(file)}" if file != ":memory:" else url
    if scheme in ("postgresql", "postgres"):
        return "postgresql+psycopg://" + url.split("://", 1)[1] if "+" not in url.split("://", 1)[0] else url
    r.fail("database", f"{mask_url(url)}: must be sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB")


def _http(r: _Reader, value: Any) -> HttpConfig:
    h = r.mapping("http", value, {"host", "port", "token"})
    host = r.string("http.host", h.get("host", "127.0.0.1"))
    token = h.get("token")
    if token is not None:
        token = r.string("http.token", str(token))
        if len(token) < 16:
            r.fail("http.token", "must be at least 16 characters (e.g. the output of 'openssl rand -hex 16')")
    if token is None and not is_loopback(host):
        r.fail("http.token", f"required when http.host is {host} (not a loopback address): anyone who can "
                             f"reach it would see the cameras")
    return HttpConfig(host, r.integer("http.port", h.get("port", 8765), 0, 65535), token)


def _storage(r: _Reader, value: Any) -> StorageConfig:
    s = r.mapping("storage", value, {"dir", "keep_days", "pre_seconds", "max_event_seconds", "clip_formats"})
    formats = s.get("clip_formats", list(CLIP_FORMATS))
    if not isinstance(formats, list) or any(f not in CLIP_FORMATS for f in formats):
        r.fail("storage.clip_formats", f"must be a list of {', '.join(CLIP_FORMATS)} (got {_kind(formats)})")
    return StorageConfig(r.local_path(r.string("storage.dir", str(s.get("dir", "vigil-data")))),
                         r.number("storage.keep_days", s.get("keep_days", 7), 0, strict=True),
                         r.number("storage.pre_seconds", s.get("pre_seconds", 3)),
                         r.number("storage.max_event_seconds", s.get("max_event_seconds", 300), 0, strict=True),
                         tuple(dict.fromkeys(formats)))


def _frigate(r: _Reader, value: Any) -> FrigateConfig:
    f = r.mapping("frigate", value, {"url"}, {"url"})
    url = r.string("frigate.url", f["url"])
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        r.fail("frigate.url", f"{mask_url(url)}: must be an http:// or https:// URL")
    return FrigateConfig(url.rstrip("/"))
