"""`vigil serve` with real parts: two MJPEG cameras on 127.0.0.1 (one stopped and brought back while
the other goes on), a real mosquitto broker and paho subscriber, SQLite, the HTTP API and /metrics.

One service runs for the whole module (started by the fixture, stopped by its finalizer also on
failure); the tests read it in order, and the last one stops it and checks what a stop publishes.
"""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from serve_support import MOSQUITTO, Broker, MjpegCamera, Subscriber, http_get, http_json, wait_until

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (make test installs it "
                                                          "with apt-get when it may)")


@pytest.fixture(scope="module")
def footage(synthetic):
    """Normal walking, then the runner: one anomaly every 6.4 s at 20 frames/s."""
    return np.concatenate([synthetic.train[0].frames(), synthetic.test[0].frames()])


@pytest.fixture(scope="module")
def serve_run(trained_hybrid, synthetic_root, tmp_path_factory):
    return trained_hybrid.save(tmp_path_factory.mktemp("serve-run") / "run", extra={"data": str(synthetic_root)})


@pytest.fixture(scope="module")
def world(request, footage, serve_run, tmp_path_factory):
    """Broker, subscriber, two cameras and the service; everything stopped at the end."""
    from vigil.serve.config import load_config
    from vigil.serve.service import Service

    tmp = tmp_path_factory.mktemp("serve")
    parts = []
    request.addfinalizer(lambda: [stop() for stop in reversed(parts)])
    broker = Broker(tmp)
    parts.append(broker.stop)
    sub = Subscriber(broker.port)
    parts.append(sub.stop)
    lobby, gate = MjpegCamera(footage, fps=20), MjpegCamera(np.roll(footage, -40, axis=0), fps=20)
    parts += [lobby.stop, gate.stop]
    (tmp / "vigil.yaml").write_text(f"""
cameras:
  lobby: {{source: "{lobby.url}", run: {serve_run}}}
  gate:  {{source: "{gate.url}", run: {serve_run}, min_frames: 3}}
mqtt:    {{host: 127.0.0.1, port: {broker.port}, topic_prefix: vigil}}
http:    {{host: 127.0.0.1, port: 0}}
storage: {{dir: data, keep_days: 7, pre_seconds: 1}}
""")
    logs: list[str] = []
    service = Service(load_config(tmp / "vigil.yaml"), log=logs.append)
    parts.append(service.stop)
    service.start()
    return {"service": service, "sub": sub, "broker": broker, "lobby": lobby, "gate": gate, "logs": logs, "tmp": tmp,
            "url": service.url}


def ended(service, camera=None, after=0.0):
    return [e for e in service.store.list(camera=camera, limit=1000) if e["end_time"] and e["start_time"] > after]


def test_each_camera_makes_events_with_snapshot_and_clip(world):
    service = world["service"]
    wait_until(lambda: ended(service, "lobby") and ended(service, "gate"), 60, "an ended event on each camera")
    for cam in ("lobby", "gate"):
        ev = ended(service, cam)[-1]
        assert ev["label"] == "anomaly" and ev["top_score"] > ev["threshold"] and ev["ended"] == "gap"
        assert ev["start_time"] <= ev["peak_time"] <= ev["end_time"] and re.fullmatch(rf"[\d.]+-{cam}-\d+", ev["id"])
        assert ev["has_snapshot"] and ev["has_clip"], ev
        snap = cv2.imread(str(service.media.snapshot(cam, ev["id"])))
        assert snap is not None and snap.shape == (96, 128, 3)
        for fmt in ("webm", "mp4"):
            cap = cv2.VideoCapture(str(service.media.clip(cam, ev["id"], fmt)))
            n = 0
            while cap.read()[0]:
                n += 1
            cap.release()
            # the clip runs from pre_seconds (1 s = 20 frames) before the start to the end and past it
            assert n >= (ev["end_time"] - ev["start_time"]) * 20 + 10, (fmt, n, ev)
        assert not [p for p in service.media.clip(cam, ev["id"], "webm").parent.iterdir() if ev["id"] in p.name
                    and p.name.startswith(".")]                      # no temporary file left behind
    cams = {c["name"]: c for c in http_json(world["url"] + "/api/cameras")[1]}
    assert set(cams) == {"lobby", "gate"}
    for c in cams.values():
        assert c["fps"] > 10 and c["frames_scored"] > 50 and c["threshold"] > 0 and "frames_skipped" in c
        assert c["state"] in ("watching", "anomaly", "warming up")


def test_mqtt_messages_in_frigate_shapes(world):
    service, sub = world["service"], world["sub"]
    wait_until(lambda: ended(service, "lobby"), 60, "an ended event")
    ev_id = ended(service, "lobby")[-1]["id"]
    msgs = [m for m in sub.events() if m["after"]["id"] == ev_id]
    kinds = [m["type"] for m in msgs]
    assert kinds[0] == "new" and kinds[-1] == "end" and "update" in kinds[1:-1], kinds
    new, end = msgs[0], msgs[-1]
    assert new["after"]["end_time"] is None and not new["after"]["has_snapshot"]
    assert any(m["after"]["has_snapshot"] for m in msgs if m["type"] == "update")
    keys = {"id", "camera", "label", "score", "top_score", "start_time", "end_time", "has_snapshot", "has_clip"}
    assert keys <= set(end["after"]) and keys <= set(end["before"])
    assert end["after"]["end_time"] is not None and end["after"]["has_clip"] and end["before"]["end_time"] is None
    assert end["after"]["camera"] == "lobby" and end["after"]["label"] == "anomaly"
    states = sub.on("vigil/lobby/anomaly")
    assert "ON" in states and states[-1] in ("ON", "OFF") and "OFF" in states[states.index("ON"):]
    assert sub.on("vigil/available")[0] == "online"
    config = json.loads(sub.on("homeassistant/binary_sensor/vigil_lobby/config")[0])
    assert config["state_topic"] == "vigil/lobby/anomaly" and config["availability_topic"] == "vigil/available"
    assert config["payload_on"] == "ON" and config["unique_id"] == "vigil_lobby_anomaly"
    # retained: a client that arrives later gets the discovery config, the availability and the state
    late = Subscriber(world["broker"].port, topics=("homeassistant/#", "vigil/#"))
    try:
        wait_until(lambda: late.on("homeassistant/binary_sensor/vigil_gate/config") and late.on("vigil/available"),
                   10, "retained messages")
        assert late.on("vigil/available") == ["online"] and late.on("vigil/gate/anomaly")
    finally:
        late.stop()


def test_the_api(world):
    service, url = world["service"], world["url"]
    wait_until(lambda: ended(service, "gate"), 60, "an ended event")
    code, health = http_json(url + "/api/health")
    assert code == 200 and health["status"] == "ok" and health["cameras"] == 2 and health["schema_version"] == 1
    code, events = http_json(url + "/api/events?camera=gate&limit=5")
    assert code == 200 and events and all(e["camera"] == "gate" for e in events) and len(events) <= 5
    starts = [e["start_time"] for e in events]
    assert starts == sorted(starts, reverse=True)                     # newest first
    first = ended(service, "gate")[-1]
    code, after = http_json(url + f"/api/events?after={first['start_time']}&limit=1000")
    assert all(e["start_time"] > first["start_time"] for e in after)
    code, one = http_json(url + f"/api/events/{first['id']}")
    assert code == 200 and one["id"] == first["id"] and one["clip_urls"]["webm"].endswith("/clip.webm")
    code, body, headers = http_get(url + one["snapshot_url"])
    assert code == 200 and headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR).shape == (96, 128, 3)
    for fmt, kind in (("mp4", "video/mp4"), ("webm", "video/webm")):
        code, body, headers = http_get(url + f"/api/events/{first['id']}/clip.{fmt}")
        assert code == 200 and headers["content-type"] == kind and len(body) > 1000
    code, body, _ = http_get(url + "/api/cameras/lobby/latest.jpg")
    assert code == 200 and cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
    assert http_get(url + "/api/cameras/nope/latest.jpg")[0] == 404
    assert http_json(url + "/api/events/nope")[0] == 404
    assert http_get(url + "/api/events?limit=0")[0] == 422


def test_review_is_stored_and_a_false_alarm_keeps_its_frames(world):
    service, url = world["service"], world["url"]
    ev = wait_until(lambda: ended(service, "lobby"), 60, "an ended event")[-1]
    code, out = http_json(url + f"/api/events/{ev['id']}/review", body={"verdict": "false_alarm"})
    assert code == 200 and out["verdict"] == "false_alarm"
    assert service.store.get(ev["id"])["verdict"] == "false_alarm" and service.store.get(ev["id"])["reviewed_at"]
    frames = sorted(service.media.false_alarm_dir("lobby", ev["id"]).glob("*.jpg"))
    assert len(frames) >= 20 and cv2.imread(str(frames[0])).shape == (96, 128, 3)
    code, _ = http_json(url + f"/api/events/{ev['id']}/review", body={"verdict": "maybe"})
    assert code == 422 and service.store.get(ev["id"])["verdict"] == "false_alarm"
    code, out = http_json(url + f"/api/events/{ev['id']}/review", body={"verdict": "confirmed"})
    assert code == 200 and not service.media.false_alarm_dir("lobby", ev["id"]).exists()
    assert http_json(url + "/api/events/nope/review", body={"verdict": "confirmed"})[0] == 404


def test_a_camera_that_drops_comes_back_and_the_other_goes_on(world):
    service, gate, logs = world["service"], world["gate"], world["logs"]
    cam = service.cameras["gate"]
    gate.stop()
    t_down = wait_until(lambda: cam.state() == "no signal" and cam.last_frame_at, 15, "gate to lose its signal")
    lobby_before = len(ended(service, "lobby"))
    # while the gate is away, the lobby goes on making events
    wait_until(lambda: len(ended(service, "lobby")) > lobby_before, 30, "a lobby event while the gate is down")
    assert http_json(world["url"] + "/api/cameras")[1][1]["state"] == "no signal"
    gate.start()
    wait_until(lambda: cam.last_frame_at > t_down + 1 and cam.state() in ("warming up", "watching", "anomaly"), 30,
               "gate to reconnect")
    wait_until(lambda: ended(service, "gate", after=t_down), 40, "a gate event after it came back")
    text = "\n".join(logs)
    assert "camera gate" in text and "scoring starts afresh" in text
    assert "reconnect" in text


def test_metrics_in_prometheus_text_format(world):
    code, body, headers = http_get(world["url"] + "/metrics")
    assert code == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) vigil_\w+ .+", line), line
            continue
        m = re.fullmatch(r'(vigil_\w+)(\{camera="(\w+)"\})? (\S+)', line)
        assert m, line
        samples[(m.group(1), m.group(3))] = float(m.group(4))
    assert samples[("vigil_up", None)] == 1 and samples[("vigil_mqtt_connected", None)] == 1
    for cam in ("lobby", "gate"):
        assert samples[("vigil_camera_frames_scored_total", cam)] > 100
        assert samples[("vigil_camera_events_total", cam)] >= 1
        assert samples[("vigil_camera_frames_skipped_total", cam)] >= 0
        assert 0 < samples[("vigil_frame_latency_seconds_sum", cam)] / samples[("vigil_frame_latency_seconds_count", cam)] < 1


def test_stop_closes_the_open_event_and_publishes_offline(world):
    service, sub = world["service"], world["sub"]
    cam = service.cameras["lobby"]
    wait_until(lambda: cam.state() == "anomaly", 30, "an open lobby event")
    open_id = cam.info()["event"]
    service.stop()
    from vigil.serve.store import Store

    store = Store.open(service.cfg.database)
    ev = store.get(open_id)
    assert ev["end_time"] is not None and ev["ended"] == "stop" and ev["has_clip"]
    wait_until(lambda: sub.on("vigil/available")[-1:] == ["offline"], 10, "offline")
    last = [m for m in sub.events() if m["after"]["id"] == open_id][-1]
    assert last["type"] == "end" and last["after"]["end_time"] is not None
    assert sub.on("vigil/lobby/anomaly")[-1] == "OFF"
    store.dispose()
