"""Benchmark of archive scoring (``vigil score --engine local|ray``): what the engine costs, not accuracy.

The archive: the 12 Ped2 test clips (``testing/frames/01..12``, read in place) linked ``--copies``
times into a temporary folder (``copy00/01`` ...; 60 videos, 10,050 frames by default). All videos
are scored with one hybrid run (trained on the Ped2 training videos into ``--run`` first when that
folder holds none) by:

* **pure**: ``det.score(video)`` for each video in one loop in this process: the scoring alone;
* **local**: ``vigil.archive.score_archive`` with the local engine: the same plus parts, manifests, merge;
* **ray 1** / **ray 2**: a local Ray started for the run with 1 or 2 workers (one thread each).

Every variant reads the frames from one frame cache filled beforehand (the copies are links, so
they share cache entries), so decoding is the same for all. Each runs ``--repeats`` times in
alternating order and the fastest run is kept. Figures: frames/s over the scoring phase (and
including Ray's start), seconds per video inside the worker, and the overhead per video: time each
worker slot spends per video outside the scoring function (scheduling, loading the run in each new
worker, sending the scores back, writing the part), and the same against the pure loop (which
also counts workers slowing each other down on shared cores).

    .venv/bin/python benchmarks/bench_archive.py [--data PED2] [--run RUN] [--copies 5] [--repeats 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, report  # noqa: E402


def make_archive(clips: Path, root: Path, copies: int) -> int:
    n = 0
    for k in range(copies):
        d = root / f"copy{k:02d}"
        d.mkdir(parents=True)
        for clip in sorted(p for p in clips.iterdir() if p.is_dir()):
            os.symlink(clip.resolve(), d / clip.name)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="Ped2 in the frames layout (default %(default)s)")
    ap.add_argument("--run", default="/tmp/ped2-hybrid", help="hybrid run; trained here when absent")
    ap.add_argument("--copies", type=int, default=5, help="times the 12 test clips are linked (default 5)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each variant, alternating order; the "
                    "fastest is kept (default 2: the machine may be shared)")
    ap.add_argument("--json", help="also save the figures as JSON")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    os.environ["VIGIL_CACHE"] = str(work / "cache")
    if not (Path(args.run) / "model.safetensors").is_file():
        print(f"training a hybrid run into {args.run} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "vigil", "train", "--model", "hybrid", "--data", args.data,
                        "--out", args.run, "--quiet"], check=True)

    from vigil.engines.ray_engine import check_ray

    ray = check_ray()                              # imported as vigil imports it: a local Ray on 127.0.0.1
    from vigil.archive import discover, score_archive
    from vigil.engines import make_engine
    from vigil.runs import load

    def scored(out, kw):
        kw = dict(kw)
        name = kw.pop("engine")
        return score_archive(args.run, str(archive), str(out), make_engine(name, args.run, **kw), engine_name=name,
                             quiet=True)
    from vigil.data.video import Video

    archive = work / "archive"
    n_videos = make_archive(Path(args.data) / "testing" / "frames", archive, args.copies)
    units = discover(archive)
    assert len(units) == n_videos
    det = load(args.run)
    det.progress = False
    for u in units[:12]:                          # fill the frame cache (the copies share its entries)
        Video.open(u.source).frames()

    res: dict = {"machine": {"cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
                             "python": platform.python_version(), "ray": ray.__version__,
                             "torch": __import__("torch").__version__, "platform": platform.platform(),
                             "load_average_before": [round(x, 2) for x in os.getloadavg()]},
                 "videos": n_videos}

    def pure() -> dict:
        t0 = time.perf_counter()
        n = sum(len(det.score(Video.open(u.source, name=u.name))) for u in units)
        dt = time.perf_counter() - t0
        return {"frames": n, "seconds": dt}

    def engine(label: str, kw: dict, slots: int, rep: int) -> dict:
        out = work / f"{label}-{rep}" / "scores.csv"
        t0 = time.perf_counter()
        s = scored(out, kw)
        wall = time.perf_counter() - t0
        assert not s.failed and s.scored == n_videos, s.failed
        busy = sum(b for _, b in s.workers.values())
        outputs[label] = out.read_bytes()
        return {"seconds": s.seconds, "wall": wall, "fps": s.fps(), "fps_worker": s.fps_per_worker(),
                "busy": busy, "slots": slots, "rows": s.rows, "out": out, "kw": kw}

    variants = [("local", {"engine": "local"}, 1), ("ray_1_worker", {"engine": "ray", "workers": 1}, 1),
                ("ray_2_workers", {"engine": "ray", "workers": 2}, 2)]
    outputs: dict = {}
    runs: dict = {"pure": []} | {v[0]: [] for v in variants}
    # ABBA...: the machine is shared, so each variant runs --repeats times in alternating order; best kept
    for rep in range(args.repeats):
        order = [("pure", None, 1)] + variants
        for label, kw, slots in (order if rep % 2 == 0 else order[::-1]):
            runs[label].append(pure() if label == "pure" else engine(label, kw, slots, rep))
            print(f"  {label} #{rep + 1}: {runs[label][-1]['seconds']:.1f}s", file=sys.stderr)
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    frames = best["pure"]["frames"]
    pure_per_video = best["pure"]["seconds"] / n_videos
    res["frames"] = frames
    res["pure"] = {"frames_per_s": round(frames / best["pure"]["seconds"], 1),
                   "seconds_per_video": round(pure_per_video, 3),
                   "all_seconds": [round(r["seconds"], 1) for r in runs["pure"]]}
    for label, _, slots in variants:
        b = best[label]
        assert b["rows"] == frames
        res[label] = {
            "frames_per_s": round(b["fps"], 1), "frames_per_s_with_start": round(frames / b["wall"], 1),
            "start_seconds": round(b["wall"] - b["seconds"], 2),
            "frames_per_s_per_worker": round(b["fps_worker"], 1),
            "worker_seconds_per_video": round(b["busy"] / n_videos, 3),
            # time each worker slot spends per video outside score_unit (scheduling, loading the run in
            # a new worker, sending the scores back, writing the part): the engine's own cost
            "overhead_seconds_per_video": round((b["seconds"] * slots - b["busy"]) / n_videos, 3),
            # the same against the pure loop: also counts workers slowing each other on shared cores
            "beyond_pure_seconds_per_video": round(b["seconds"] * slots / n_videos - pure_per_video, 3),
            "all_seconds": [round(r["seconds"], 1) for r in runs[label]]}
    b = best["ray_2_workers"]                      # a rerun with every part done: what resuming costs
    t0 = time.perf_counter()
    s2 = scored(b["out"], b["kw"])
    res["rerun_all_done_seconds"] = round(time.perf_counter() - t0, 2)
    assert s2.scored == 0 and s2.reused == n_videos
    res["same_csv_every_engine"] = len(set(outputs.values())) == 1
    res["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(work, ignore_errors=True)
    report(f"archive scoring: {n_videos} videos ({frames} frames), hybrid run {args.run}", res, args.json)


if __name__ == "__main__":
    main()
