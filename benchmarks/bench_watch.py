"""Live watching: latency from a frame's arrival to its score, and sustained frames per second.

    .venv/bin/python benchmarks/bench_watch.py RUN [RUN ...] [--data PATH] [--video 0] [--json OUT]

Each RUN is a run folder of any detector (e.g. written by ``vigil train`` or a benchmark's
``--save``). The frames of one Ped2 test video are (1) fed one at a time to the model's live
scorer, timing each update (latency), and (2) written to an .avi and watched end to end with
``vigil.watch.watch`` (decode, scoring, event tracking: sustained frames per second).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, peak_rss_mib, report  # noqa: E402

from vigil.data import load_dataset  # noqa: E402
from vigil.detector import Detector  # noqa: E402
from vigil.detector import machine_info  # noqa: E402
from vigil.watch import watch  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--video", type=int, default=0, help="index of the test video to replay")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    video = load_dataset(args.data).test[args.video]
    frames = video.frames()
    results = {"video": video.name, "frames": len(frames), "frame_size": f"{frames.shape[2]}x{frames.shape[1]}",
               "machine": machine_info()}
    with tempfile.TemporaryDirectory() as tmp:
        avi = Path(tmp) / "replay.avi"
        vw = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10, frames.shape[2:0:-1])
        for f in frames:
            vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        vw.release()
        for run in args.runs:
            det = Detector.load(run)
            stream = det.stream()
            lat = []
            for f in frames:
                t0 = time.perf_counter()
                stream.update(f)
                lat.append(time.perf_counter() - t0)
            lat_ms = np.array(lat[1:]) * 1000            # the first update pays one-off set-up
            t0 = time.perf_counter()
            events = watch(det, str(avi), events_out=io.StringIO(), status=False)
            dt = time.perf_counter() - t0
            results[det.name] = {"latency_ms_mean": float(lat_ms.mean()), "latency_ms_p95": float(np.percentile(lat_ms, 95)),
                                 "watch_fps": len(frames) / dt, "events": len(events)}
    results["peak_rss_mib"] = peak_rss_mib()
    report("vigil watch: latency and sustained speed", results, args.json)


if __name__ == "__main__":
    main()
