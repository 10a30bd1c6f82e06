"""`vigil serve`: how many 10 fps 360x240 cameras one machine watches with hybrid without skipping frames,
the latency from a frame to its MQTT message, and memory over a long run with camera drops.

    .venv/bin/python benchmarks/bench_serve.py [--run RUN] [--data PATH] [--cameras 1,2,4,6,8,10,12,16]
                                               [--step-seconds 30] [--minutes 10] [--json OUT]

Cameras are MJPEG-over-HTTP streams served from this process on 127.0.0.1, each looping Ped2 test
videos (360x240, anomalies included) at 10 frames/s; the service is the real one (threads, FFmpeg
decoding, scoring with maps, SQLite, clips, MQTT when mosquitto is installed), run in this process.

1. **Capacity.** For each camera count, the service runs ``--step-seconds`` after a warm-up; the
   figure is the share of frames skipped (scoring fell behind) and the frames/s scored per camera.
   The capacity is the largest count with less than 0.5 % skipped.
2. **Latency, frame to MQTT.** For every ``new`` event message: its arrival at a subscriber minus the
   arrival time of the frame that opened the event (``start_time`` + ``(min_frames - 1)`` frame
   intervals); and the service's own frame-arrival-to-decision time (``/metrics``).
3. **Memory.** At the capacity (or 2 cameras), for ``--minutes``, one camera drops for 5 s every 30 s;
   the process's resident memory is sampled every 10 s (before the service started, each minute's
   mean, growth per minute after the first). The cameras live in the same process: their JPEGs are
   in the figure before the service starts.

Without ``--run``, hybrid is fitted on the Ped2 training videos first (a minute or two).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from common import DEFAULT_DATA, report  # noqa: E402
from serve_support import MOSQUITTO, Broker, MjpegCamera, Subscriber, encode_jpegs  # noqa: E402

from vigil.data import load_dataset  # noqa: E402
from vigil.detector import machine_info  # noqa: E402

FPS = 10.0


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_service(tmp: Path, run: Path, cams: list[MjpegCamera], broker: Broker | None):
    from vigil.serve.config import load_config
    from vigil.serve.service import Service

    lines = ["cameras:"] + [f"  cam{i}: {{source: \"{c.url}\", run: {run}}}" for i, c in enumerate(cams)]
    if broker is not None:
        lines.append(f"mqtt: {{host: 127.0.0.1, port: {broker.port}, topic_prefix: bench}}")
    lines += ["http: {host: 127.0.0.1, port: 0}", f"storage: {{dir: {tmp / 'data'}, pre_seconds: 3}}"]
    (tmp / "vigil.yaml").write_text("\n".join(lines) + "\n")
    logs: list[str] = []
    service = Service(load_config(tmp / "vigil.yaml"), log=logs.append)
    service.start()
    return service, logs


def totals(service) -> tuple[int, int]:
    infos = [c.info() for c in service.cameras.values()]
    return sum(i["frames_scored"] for i in infos), sum(i["frames_skipped"] for i in infos)


def capacity(run, footage, counts, seconds, tmp) -> dict:
    steps = {}
    for n in counts:
        cams = [MjpegCamera(footage, fps=FPS, start=37 * i) for i in range(n)]
        service, _ = start_service(Path(tempfile.mkdtemp(dir=tmp)), run, cams, None)
        try:
            time.sleep(8)                                  # connect, warm up
            s0, k0, t0 = *totals(service), time.monotonic()
            time.sleep(seconds)
            s1, k1 = totals(service)
            dt = time.monotonic() - t0
            lat = [c.latency_sum / max(c.latency_count, 1) for c in service.cameras.values()]
        finally:
            service.stop()
            for c in cams:
                c.stop()
        scored, skipped = s1 - s0, k1 - k0
        share = skipped / max(scored + skipped, 1)
        steps[n] = {"scored_fps_per_camera": round(scored / dt / n, 2), "skipped_share": round(share, 4),
                    "mean_frame_to_decision_ms": round(1000 * float(np.mean(lat)), 1),
                    "load_average_1min": round(os.getloadavg()[0], 2)}
        print(f"{n} cameras: {steps[n]}", file=sys.stderr, flush=True)
        if share > 0.05:                                   # far past capacity: more cameras only skip more
            break
    ok = [n for n, s in steps.items() if s["skipped_share"] < 0.005]
    return {"steps": steps, "capacity_cameras": max(ok) if ok else 0}


def long_run(run, footage, n, minutes, tmp) -> dict:
    broker = Broker(Path(tmp)) if MOSQUITTO else None
    sub = Subscriber(broker.port, topics=("bench/events",)) if broker else None
    received: list[tuple[float, dict]] = []
    if sub is not None:
        def on_message(client, userdata, msg):
            received.append((time.time(), json.loads(msg.payload)))
        sub.client.on_message = on_message
    cams = [MjpegCamera(footage, fps=FPS, start=37 * i) for i in range(n)]
    baseline = rss_mib()                                 # this process before the service: data, cameras
    service, logs = start_service(Path(tempfile.mkdtemp(dir=tmp)), run, cams, broker)
    stop = threading.Event()

    def dropper():                                     # camera 0 goes away for 5 s every 30 s
        while not stop.wait(25):
            cams[0].stop()
            if stop.wait(5):
                break
            cams[0].start()

    threading.Thread(target=dropper, daemon=True).start()
    samples = []
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < minutes * 60:
            samples.append((time.monotonic() - t0, rss_mib()))
            time.sleep(10)
        scored, skipped = totals(service)
        events = service.store.count()
        lat = [c.latency_sum / max(c.latency_count, 1) for c in service.cameras.values()]
        min_frames = service.cfg.cameras[0].min_frames
    finally:
        stop.set()
        service.stop()
        for c in cams:
            c.stop()
        if sub is not None:
            sub.stop()
        if broker is not None:
            broker.stop()
    t = np.array([s[0] for s in samples]) / 60
    m = np.array([s[1] for s in samples])
    late = m[t >= t[-1] - 1]
    early = m[(t >= 1) & (t < 2)] if (t >= 2).any() else m[:1]
    out = {"cameras": n, "minutes": minutes, "rss_mib_before_service": round(baseline, 1),
           "rss_mib_per_minute": [round(float(m[(t >= k) & (t < k + 1)].mean()), 1) for k in range(int(t[-1]) + 1)],
           "frames_scored": scored, "frames_skipped": skipped,
           "events": events, "reconnections": sum("scoring starts afresh" in x for x in logs),
           "rss_mib_first_minute_after_warmup": round(float(early.mean()), 1),
           "rss_mib_last_minute": round(float(late.mean()), 1), "rss_mib_max": round(float(m.max()), 1),
           "rss_growth_mib_per_minute_after_1min": round(float(np.polyfit(t[t >= 1], m[t >= 1], 1)[0]), 2)
           if (t >= 1).sum() >= 3 else None,
           "mean_frame_to_decision_ms": round(1000 * float(np.mean(lat)), 1)}
    news = [(at, msg["after"]) for at, msg in received if msg["type"] == "new"]
    if news:
        lat_mqtt = np.array([at - (ev["start_time"] + (min_frames - 1) / FPS) for at, ev in news]) * 1000
        out.update({"mqtt_new_events": len(news), "frame_to_mqtt_ms_median": round(float(np.median(lat_mqtt)), 1),
                    "frame_to_mqtt_ms_p95": round(float(np.percentile(lat_mqtt, 95)), 1)})
    elif broker is None:
        out["mqtt"] = "mosquitto not installed: no MQTT latency"
    return out


def fit_run(data: str, out: Path, videos: int | None) -> Path:
    from vigil.models.hybrid import Hybrid

    ds = load_dataset(data)
    train = ds.train[:videos] if videos else ds.train
    t0 = time.time()
    det = Hybrid(progress=False).fit(train)
    print(f"fitted hybrid on {len(train)} training videos in {time.time() - t0:.0f}s", file=sys.stderr)
    return det.save(out, extra={"data": str(Path(data).resolve())})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a hybrid run folder (default: fit one on --data's training videos)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--train-videos", type=int, help="fit on the first N training videos only (quicker)")
    ap.add_argument("--cameras", default="1,2,4,6,8,10,12,16", help="camera counts to step through")
    ap.add_argument("--step-seconds", type=float, default=30.0)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the run with drops (0: none)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    ds = load_dataset(args.data)
    frames = np.concatenate([v.frames() for v in ds.test[:3]])           # anomalies included
    assert frames.shape[1:3] == (240, 360), frames.shape
    footage = encode_jpegs(frames)                                        # shared by every camera
    del frames
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = Path(args.run) if args.run else fit_run(args.data, tmp / "run", args.train_videos)
        cap = capacity(run, footage, [int(x) for x in args.cameras.split(",")], args.step_seconds, tmp)
        n = max(1, cap["capacity_cameras"] or 1)
        results = {"machine": machine_info(), "cpus": os.cpu_count(), "frame_size": "360x240", "fps": FPS,
                   "step_seconds": args.step_seconds, **{f"{k}_cameras": v for k, v in cap["steps"].items()},
                   "capacity_cameras": cap["capacity_cameras"],
                   "long_run": long_run(run, footage, n, args.minutes, tmp) if args.minutes > 0 else None}
    report("vigil serve: cameras, latency, memory", results, args.json)


if __name__ == "__main__":
    main()
