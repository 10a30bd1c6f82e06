"""The HTTP side of the service (FastAPI): the JSON API, ``/metrics``, live updates and the page.

Routes: ``GET /api/health``, ``/api/cameras``, ``/api/cameras/{name}/latest.jpg``,
``/api/events?camera=&after=&before=&limit=``, ``/api/events/{id}``, ``.../snapshot.jpg``,
``.../clip.webm``, ``.../clip.mp4``, ``POST /api/events/{id}/review`` (``{"verdict": "false_alarm" |
"confirmed"}``), ``GET /api/stream`` (server-sent events: ``cameras`` every second, ``event`` as they
happen), ``/metrics`` (Prometheus text format), ``/`` (the page) and ``/login``.

**The token.** When ``http.token`` is set (required off loopback), every route but ``/login``
needs it: ``Authorization: Bearer <token>``, or the HttpOnly, SameSite=Strict cookie that the
``/login`` form sets. The review takes JSON only, so another site cannot post it from a form.

``/metrics`` is written by hand: a dozen gauges and counters read from the cameras at scrape time;
prometheus_client's global registry would add a dependency and state shared between services in one
process (the tests run several) for no gain.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.responses import StreamingResponse

from vigil.serve.store import VERDICTS

if TYPE_CHECKING:
    from vigil.serve.service import Service

PAGE = Path(__file__).with_name("page")
COOKIE = "vigil_token"
_OPEN = {"/login"}
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}


def create_app(service: "Service") -> FastAPI:
    app = FastAPI(title="vigil", docs_url=None, redoc_url=None, openapi_url=None)
    token = service.cfg.http.token

    def authorised(request: Request) -> bool:
        if token is None:
            return True
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.cookies.get(COOKIE, "")
        return hmac.compare_digest(given.encode(), token.encode())

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if request.url.path not in _OPEN and not authorised(request):
            if request.url.path == "/" and "text/html" in request.headers.get("accept", ""):
                return RedirectResponse("/login", status_code=303)
            return JSONResponse({"detail": "a token is required (Authorization: Bearer, or log in at /login)"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    # --- the page -------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse((PAGE / "index.html").read_text(encoding="utf-8"),
                            headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                                                "media-src 'self'; style-src 'self'"})

    @app.get("/static/{name}")
    def static(name: str):
        if name not in _STATIC:
            raise HTTPException(404)
        return FileResponse(PAGE / name, media_type=_STATIC[name])

    @app.get("/login", response_class=HTMLResponse)
    def login_form():
        return HTMLResponse((PAGE / "login.html").read_text(encoding="utf-8"))

    @app.post("/login")
    async def login(request: Request):
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0]
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            return HTMLResponse((PAGE / "login.html").read_text(encoding="utf-8").replace(
                "<!--error-->", "<p class=error>Wrong token.</p>"), status_code=401)
        r = RedirectResponse("/", status_code=303)
        r.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                     max_age=30 * 86400)
        return r

    # --- the API --------------------------------------------------------------------------------
    @app.get("/api/health")
    def health():
        return service.health()

    @app.get("/api/cameras")
    def cameras():
        return [c.info() for c in service.cameras.values()]

    @app.get("/api/cameras/{name}/latest.jpg")
    def latest(name: str):
        cam = service.cameras.get(name)
        if cam is None:
            raise HTTPException(404, f"no camera {name!r}")
        data = cam.latest_jpeg()
        if data is None:
            raise HTTPException(404, "no frame yet")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get("/api/events")
    def events(camera: str | None = None, after: float | None = None, before: float | None = None,
               limit: int = Query(50, ge=1, le=1000)):
        return [service.public_event(e) for e in service.store.list(camera=camera, after=after, before=before,
                                                                     limit=limit)]

    def event_or_404(event_id: str) -> dict:
        ev = service.store.get(event_id)
        if ev is None:
            raise HTTPException(404, f"no event {event_id!r}")
        return ev

    @app.get("/api/events/{event_id}")
    def event(event_id: str):
        return service.public_event(event_or_404(event_id))

    @app.get("/api/events/{event_id}/snapshot.jpg")
    def snapshot(event_id: str):
        ev = event_or_404(event_id)
        path = service.media.snapshot(ev["camera"], event_id)
        if not path.is_file():
            raise HTTPException(404, "no snapshot")
        return FileResponse(path, media_type="image/jpeg")

    def clip(event_id: str, fmt: str):
        ev = event_or_404(event_id)
        path = service.media.clip(ev["camera"], event_id, fmt)
        if not path.is_file():
            raise HTTPException(404, f"no {fmt} clip" + (f" ({ev['clip_note']})" if ev.get("clip_note") else ""))
        return FileResponse(path, media_type=f"video/{fmt}")

    @app.get("/api/events/{event_id}/clip.mp4")
    def clip_mp4(event_id: str):
        return clip(event_id, "mp4")

    @app.get("/api/events/{event_id}/clip.webm")
    def clip_webm(event_id: str):
        return clip(event_id, "webm")

    @app.post("/api/events/{event_id}/review")
    async def review(event_id: str, request: Request):
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPException(415, 'send JSON: {"verdict": "false_alarm" | "confirmed"}')
        try:
            verdict = (await request.json())["verdict"]
        except (ValueError, KeyError, TypeError):
            raise HTTPException(422, 'expected {"verdict": "false_alarm" | "confirmed"}') from None
        if verdict not in VERDICTS:
            raise HTTPException(422, f"verdict must be one of {', '.join(VERDICTS)}")
        ev = await asyncio.to_thread(service.review, event_id, verdict)
        if ev is None:
            raise HTTPException(404, f"no event {event_id!r}")
        return service.public_event(ev)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics():
        return PlainTextResponse(prometheus_text(service), media_type="text/plain; version=0.0.4")

    @app.get("/api/stream")
    async def stream(request: Request):
        return StreamingResponse(_updates(service, request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return app


async def _updates(service: "Service", request: Request):
    """Server-sent events: camera states once a second (with the scores since the last), events at once."""
    seq, last_cameras = service.feed_seq(), 0.0
    since = {name: 0.0 for name in service.cameras}     # per camera: the time of the last score sent
    yield "retry: 2000\n\n"
    while not service.stopping.is_set() and not await request.is_disconnected():
        for msg_seq, msg in service.feed_after(seq):
            seq = msg_seq
            yield f"event: event\ndata: {json.dumps(msg)}\n\n"
        now = time.monotonic()
        if now - last_cameras >= 1.0:
            cams = []
            for c in service.cameras.values():
                info = c.info()
                info["scores"] = [s for s in list(c.history) if s[0] > since[c.name]]
                since[c.name] = info["scores"][-1][0] if info["scores"] else since[c.name]
                cams.append(info)
            yield f"event: cameras\ndata: {json.dumps({'cameras': cams, 'health': service.health()})}\n\n"
            last_cameras = now
        await asyncio.sleep(0.25)


def prometheus_text(service: "Service") -> str:
    """The Prometheus exposition format (text 0.0.4), one family at a time with its HELP and TYPE."""
    cams = list(service.cameras.values())
    infos = {c.name: c.info() for c in cams}
    lines: list[str] = []

    def family(name: str, kind: str, help_: str, values) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, v in values:
            lab = ",".join(f'{k}="{_escape(str(x))}"' for k, x in labels.items())
            v = float("nan") if v is None else float(v)
            lines.append(f"{name}{{{lab}}} {_number(v)}" if lab else f"{name} {_number(v)}")

    per = lambda key: [({"camera": n}, i[key]) for n, i in infos.items()]  # noqa: E731
    family("vigil_up", "gauge", "1 while the service runs.", [({}, 1)])
    family("vigil_camera_frames_read_total", "counter", "Frames read from the camera.", per("frames_read"))
    family("vigil_camera_frames_scored_total", "counter", "Frames scored.", per("frames_scored"))
    family("vigil_camera_frames_skipped_total", "counter",
           "Frames not scored because scoring fell behind the camera (at most 3 frames wait; the oldest go).",
           per("frames_skipped"))
    family("vigil_camera_fps", "gauge", "Frames per second read from the camera.", per("fps"))
    family("vigil_camera_scored_fps", "gauge", "Frames per second scored.", per("scored_fps"))
    family("vigil_camera_score", "gauge", "The latest smoothed anomaly score (higher = more anomalous).",
           per("score"))
    family("vigil_camera_threshold", "gauge", "The alert threshold.", per("threshold"))
    family("vigil_camera_anomaly", "gauge", "1 while an event is open.",
           [({"camera": n}, int(i["event"] is not None)) for n, i in infos.items()])
    family("vigil_camera_up", "gauge", "1 while the camera delivers frames.",
           [({"camera": n}, int(i["state"] not in ("no signal", "connecting", "stopped"))) for n, i in infos.items()])
    family("vigil_camera_events_total", "counter", "Events opened since the service started.", per("events"))
    lines.append("# HELP vigil_frame_latency_seconds From a frame's arrival to its score and event decision.")
    lines.append("# TYPE vigil_frame_latency_seconds summary")
    for c in cams:
        lines.append(f'vigil_frame_latency_seconds_sum{{camera="{c.name}"}} {_number(c.latency_sum)}')
        lines.append(f'vigil_frame_latency_seconds_count{{camera="{c.name}"}} {c.latency_count}')
    family("vigil_clips_disabled", "gauge", "1 when clips are not written (a full or read-only disk).",
           [({}, int(service.media.problem is not None))])
    if service.mqtt is not None:
        family("vigil_mqtt_connected", "gauge", "1 while connected to the MQTT broker.",
               [({}, int(service.mqtt.connected.is_set()))])
    return "\n".join(lines) + "\n"


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)
