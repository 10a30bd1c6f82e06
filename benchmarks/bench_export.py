"""Scoring speed with PyTorch and with ONNX Runtime, per detector, on the Ped2 development split.

    .venv/bin/python benchmarks/bench_export.py [--data PATH] [--run RUN ...] [--threads 2]
                                                 [--device cpu|cuda] [--videos N] [--decoding] [--json OUT]

For each detector: the run (``--run`` folders; else ``runs/ped2-truesight`` and ``runs/ped2-ocrgan8``
when present; else a 1-epoch training here, because speed does not depend on the weights; hybrid is
fitted here, seconds) is exported with ``vigil export``'s code, then every test video is scored
once through PyTorch and once through ONNX Runtime, each in its own process (so each peak memory is
its own), with ``--threads`` threads for both. Printed per detector and backend: frames per second
(wall clock), frames per CPU-second (all threads; the figure that other load on a shared machine
changes least), peak resident memory, and the largest score difference between the two backends,
absolute and as a share of the PyTorch scores' standard deviation on normal (label 0) test frames.

Decoding is excluded by default: every test video is decoded, resized and cached before the clock
starts (the frame cache, ``VIGIL_CACHE``); the timed part is reading the cached frames,
pre-processing, the network and every post-processing step, i.e. ``det.score(video)``. With
``--decoding`` there is no cache and the timed part starts from the image files (Ped2: 360x240
JPEGs). hybrid has no network to export: its line gives its own speed and says why.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, ROOT, peak_rss_mib, report  # noqa: E402

DEFAULT_RUNS = [ROOT / "runs" / "ped2-truesight", ROOT / "runs" / "ped2-ocrgan8"]


def _child(args) -> None:
    """Score every test video with one backend; write scores (npz) and timings (json)."""
    import torch

    from vigil.data import Video, load_dataset
    from vigil.detector import Detector

    torch.set_num_threads(args.threads)
    if args.model_path.endswith(".onnx"):
        from vigil.export import load_onnx
        det = load_onnx(args.model_path, threads=args.threads)
    else:
        det = Detector.load(args.model_path, device=args.device)
    videos = load_dataset(args.data).test[: args.videos]
    if not args.decoding:
        for v in videos:                                # decode and cache before the clock starts
            det._read(v) if hasattr(det, "_read") else v.frames()
    det.score(Video.from_array("warm", videos[0].frames()[:24]))                 # kernels, allocator
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    scores = {v.name: det.score(v) for v in videos}
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    n = sum(len(s) for s in scores.values())
    np.savez(args.scores_out, **scores)
    Path(args.timing_out).write_text(json.dumps({
        "frames": n, "wall_s": wall, "cpu_s": cpu, "fps": n / wall, "fps_per_cpu_s": n / max(cpu, 1e-9),
        "peak_rss_mib": _peak_mib(), "load_after": os.getloadavg()[0]}))


def _peak_mib() -> float:
    """This process's peak resident memory. ``VmHWM`` rather than ``ru_maxrss``: a child started by
    fork and exec inherits its parent's ``ru_maxrss``, so that would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def _run_child(model_path, backend_dir: Path, args) -> dict:
    scores, timing = backend_dir / "scores.npz", backend_dir / "timing.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OMP_WAIT_POLICY": args.omp_wait_policy}
    if args.decoding:
        env["VIGIL_CACHE"] = "off"                      # every frame decoded from its file, inside the clock
    cmd = [sys.executable, __file__, "--_child", "--model-path", str(model_path), "--data", str(args.data),
           "--threads", str(args.threads), "--device", args.device, "--scores-out", str(scores),
           "--timing-out", str(timing)] + (["--videos", str(args.videos)] if args.videos else []) \
        + (["--decoding"] if args.decoding else [])
    subprocess.run(cmd, check=True, env=env)
    out = json.loads(timing.read_text())
    out["scores"] = dict(np.load(scores))
    return out


def _runs(args, ds, work: Path) -> list[Path]:
    """Run folders to measure: given, the lead's Ped2 runs, or short trainings (speed ignores weights)."""
    from vigil.registry import get_detector

    given = [Path(r) for r in args.run] if args.run else [r for r in DEFAULT_RUNS if (r / "config.json").is_file()]
    names = {json.loads((r / "config.json").read_text())["model"]: r for r in given}
    for name in ("truesight", "ocrgan-video", "hybrid"):
        if name not in names:
            extra = {} if name == "hybrid" else {"epochs": 1}
            print(f"{name}: no run given, fitting one here ({extra or 'its default settings'})", flush=True)
            names[name] = get_detector(name)(progress=False, **extra).fit(ds.train).save(work / f"run-{name}")
    return list(names.values())


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--run", action="append", help="run folder to measure (repeatable); see above for the default")
    ap.add_argument("--threads", type=int, default=2, help="threads for PyTorch and ONNX Runtime (default 2)")
    ap.add_argument("--device", default="cpu", help="PyTorch's device (ONNX Runtime runs on the CPU here)")
    ap.add_argument("--videos", type=int, default=None, help="score only the first N test videos")
    ap.add_argument("--omp-wait-policy", default="PASSIVE", choices=("PASSIVE", "ACTIVE"),
                    help="PyTorch's OpenMP threads sleep (PASSIVE, default) or spin while idle; on a machine "
                         "shared with other work spinning measured 3-4x slower. ONNX Runtime's never spin (vigil.export)")
    ap.add_argument("--decoding", action="store_true",
                    help="time decoding too: no frame cache, every frame read from its file inside the clock")
    ap.add_argument("--json", default=None)
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model-path", help=argparse.SUPPRESS)
    ap.add_argument("--scores-out", help=argparse.SUPPRESS)
    ap.add_argument("--timing-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._child:
        return _child(args)

    import onnxruntime

    from vigil.data import load_dataset
    from vigil.errors import VigilError
    from vigil.export import export_onnx
    from vigil.detector import Detector
    from vigil.detector import machine_info

    ds = load_dataset(args.data)
    print(ds.describe(), flush=True)
    labels = {v.name: v.labels for v in ds.test[: args.videos]}
    results = {"date": datetime.date.today().isoformat(), "threads": args.threads, "device": args.device,
               "omp_wait_policy": args.omp_wait_policy,
               "load_before": os.getloadavg()[0], "onnxruntime": onnxruntime.__version__,
               "decoding": ("included (no frame cache: every frame read from its file)" if args.decoding
                            else "excluded (frames decoded and cached before timing)"),
               "machine": machine_info()}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-export-") as tmp:
        work = Path(tmp)
        for run in _runs(args, ds, work):
            det = Detector.load(run)
            name = det.name
            own = _run_child(run, _mkdir(work / name / "pytorch"), args)
            line = {"run": str(run), "frames": own["frames"]}
            try:
                summary = export_onnx(det, work / f"{name}.onnx")
            except VigilError as e:                     # hybrid: no network, so its own code is all there is
                line.update(native=_public(own), onnxruntime=f"not exported: {e}")
                results[name] = line
                print(f"{name}: {own['fps']:.1f} frames/s (no network: {e})", flush=True)
                continue
            ox = _run_child(work / f"{name}.onnx", _mkdir(work / name / "onnx"), args)
            diff = max(float(np.abs(own["scores"][k] - ox["scores"][k]).max()) for k in own["scores"])
            normal = np.concatenate([own["scores"][k][np.asarray(labels[k]) == 0] for k in own["scores"]
                                     if labels.get(k) is not None])
            spread = float(normal.std()) if len(normal) > 1 else float("nan")
            line.update(pytorch=_public(own), onnxruntime={**_public(ox), "file_mib": summary["bytes"] / 2**20},
                        max_abs_score_diff=diff, normal_score_std=spread, max_diff_over_normal_std=diff / spread)
            results[name] = line
            print(f"{name}: pytorch {own['fps']:.1f} frames/s, onnxruntime {ox['fps']:.1f} frames/s, "
                  f"max |score difference| {diff:.2e} ({diff / spread:.1e} of the normal-frame std)", flush=True)
    results["load_after"] = os.getloadavg()[0]
    _table(results)
    report(f"Scoring speed, PyTorch vs ONNX Runtime, {args.threads} threads ({args.device})", results, args.json)
    return results


def _public(r: dict) -> dict:
    return {k: v for k, v in r.items() if k in ("fps", "fps_per_cpu_s", "peak_rss_mib", "wall_s", "cpu_s")}


def _table(results: dict) -> None:
    print(f"\n{'detector':<14}{'backend':<13}{'frames/s':>9}{'per CPU-s':>10}{'peak MiB':>10}  max |score diff|")
    for name in ("truesight", "ocrgan-video", "hybrid"):
        r = results.get(name)
        if r is None:
            continue
        for backend in ("pytorch", "native", "onnxruntime"):
            b = r.get(backend)
            if isinstance(b, dict):
                diff = (f"  {r['max_abs_score_diff']:.1e} ({r['max_diff_over_normal_std']:.1e} of the normal std)"
                        if backend == "onnxruntime" else "")
                print(f"{name if backend != 'onnxruntime' else '':<14}{backend:<13}{b['fps']:>9.1f}"
                      f"{b['fps_per_cpu_s']:>10.1f}{b['peak_rss_mib']:>10.0f}{diff}")
            elif b is not None:
                print(f"{'':<14}{backend:<13}  {b}")
    print(f"(machine load average {results['load_before']:.1f} before, {results['load_after']:.1f} after; "
          f"decoding {results['decoding']})")


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


if __name__ == "__main__":
    main()
