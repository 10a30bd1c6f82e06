"""Robustness to corrupted footage: each detector's AUC on the clean and on the corrupted Ped2
development split, with the frame guard off and on.

The corrupted split is made by :func:`vigil.corrupt.corrupt_dataset` (default settings: 30% of the
test frames flipped, 10% noisy, 10% blurred, 5% dropped, 5% duplicated; seed 0) into a temporary
folder, or read from ``--corrupted DIR`` (made when missing). Detectors: the runs given with
``--run`` (a run saved before the guard existed gets one fitted on the training videos, without
retraining and without touching the run folder), and ``hybrid`` fitted on the fly (``--hybrid``, the
default when no run is given; about 15 s). ``--ablation`` also scores one corrupted split per kind of
corruption alone (the same rates), to show what each costs.

    .venv/bin/python benchmarks/bench_robustness.py [--run runs/ped2-truesight ...] [--hybrid]
        [--data PATH] [--corrupted DIR] [--seed 0] [--ablation] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, peak_rss_mib  # noqa: E402

KINDS = ("flip", "noise", "blur", "drop", "dup")


def score_split(det, ds, guard: bool) -> dict:
    """Micro (raw) and macro AUC of ``det`` on ``ds.test`` with the guard switched ``guard``."""
    from vigil.metrics import frame_metrics

    saved = det.config
    det.config = dataclasses.replace(saved, guard=guard)
    try:
        t0 = time.perf_counter()
        scores = [det.score(v) for v in ds.test]
        dt = time.perf_counter() - t0
    finally:
        det.config = saved
    m = frame_metrics(scores, [v.labels for v in ds.test])      # raises if a video's scores are misaligned
    n = sum(len(s) for s in scores)
    return {"micro_auc": m.micro_auc, "macro_auc": m.macro_auc, "micro_auc_video_norm": m.micro_auc_video_norm,
            "frames": n, "fps": n / dt, "scores": scores}


def guard_accuracy(det, ds, manifest: dict) -> dict:
    """How the guard's decisions on the corrupted test videos compare with what was done to them."""
    stats = {"flip_right": 0, "frames": 0, "flipped_frames": 0, "flipped_found": 0, "upright_flipped": 0}
    per_kind: dict[str, list[int]] = {}
    for v, entry in zip(ds.test, manifest["videos"]):
        rep = det.guard_.inspect(det._read(v))
        for t, p in enumerate(entry["plan"]):
            flipped = "flip" in p["ops"]
            stats["frames"] += 1
            stats["flip_right"] += int(rep.flipped[t] == flipped)
            stats["flipped_frames"] += int(flipped)
            stats["flipped_found"] += int(flipped and rep.flipped[t])
            stats["upright_flipped"] += int(not flipped and rep.flipped[t])
            kind = "+".join(o for o in p["ops"] if o in ("noise", "blur")) or "clean"
            c = per_kind.setdefault(kind, [0, 0, 0])
            c[0] += 1
            c[1] += int(rep.bad[t])
            c[2] += int(rep.source[t] != t)
    return {"orientation_accuracy": stats["flip_right"] / stats["frames"],
            "flipped_found": stats["flipped_found"] / max(1, stats["flipped_frames"]),
            "upright_turned": stats["upright_flipped"],
            "flagged_out_of_range": {k: c[1] / c[0] for k, c in sorted(per_kind.items())},
            "concealed": {k: c[2] / c[0] for k, c in sorted(per_kind.items())},
            "frames_per_kind": {k: c[0] for k, c in sorted(per_kind.items())}}


def make_corrupted(data: Path, out: Path, seed: int, **rates) -> Path:
    from vigil.corrupt import Corruption, corrupt_dataset, load_manifest

    if (out / "corruption.json").is_file():
        m = load_manifest(out)
        want = dataclasses.asdict(Corruption(**rates))
        if m["seed"] != seed or m["settings"] != want:
            raise SystemExit(f"{out}: made with seed {m['seed']} and {m['settings']}, not seed {seed} and {want}; "
                             f"remove it or choose another --corrupted folder")
        return out
    return corrupt_dataset(data, out, Corruption(**rates), seed=seed, progress=False)


def detectors(args, ds):
    from vigil.detector import Detector
    from vigil.models.hybrid import Hybrid

    for run in args.run:
        det = Detector.load(run)
        det.progress = False
        note = "guard saved with the run"
        if det.guard_ is None:
            t0 = time.perf_counter()
            det.fit_guard(ds.train)
            note = f"guard fitted here on {len(ds.train)} training videos in {time.perf_counter() - t0:.1f} s (run unchanged)"
        yield f"{det.name} ({Path(run).name})", det, note
    if args.hybrid or not args.run:
        t0 = time.perf_counter()
        det = Hybrid(progress=False).fit(ds.train)
        yield "hybrid (fitted here)", det, f"fitted with its guard in {time.perf_counter() - t0:.1f} s"


def main(argv=None) -> int:
    from vigil.corrupt import Corruption, load_manifest
    from vigil.data import load_dataset
    from vigil.detector import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="clean dataset (default: %(default)s)")
    ap.add_argument("--run", action="append", default=[], help="a trained run folder (repeatable)")
    ap.add_argument("--hybrid", action="store_true", help="also fit hybrid here (the default without --run)")
    ap.add_argument("--corrupted", help="corrupted copy to use or make (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=0, help="corruption seed (default %(default)s)")
    ap.add_argument("--ablation", action="store_true", help="also one corrupted split per kind of corruption")
    ap.add_argument("--json", help="write the results here as JSON")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    print(ds.describe())
    tmp = tempfile.TemporaryDirectory(prefix="vigil-robustness-")
    base = Path(args.corrupted) if args.corrupted else Path(tmp.name) / "corrupted"
    spec = Corruption()
    t0 = time.perf_counter()
    corrupted_root = make_corrupted(Path(args.data), base, args.seed)
    manifest = load_manifest(corrupted_root)
    cds = load_dataset(corrupted_root)
    print(f"corrupted split: {corrupted_root} ({time.perf_counter() - t0:.0f} s; seed {args.seed}; {spec})")
    ablation = {}
    if args.ablation:
        zero = {k: 0.0 for k in KINDS}
        for k in KINDS:
            root = make_corrupted(Path(args.data), base.with_name(f"{base.name}_{k}_only"), args.seed,
                                  **{**zero, k: getattr(spec, k)})
            ablation[k] = load_dataset(root)
    results = {"data": args.data, "corrupted": str(corrupted_root), "seed": args.seed,
               "corruption": dataclasses.asdict(spec), "machine": machine_info(), "detectors": {}}
    rows = []
    for label, det, note in detectors(args, ds):
        print(f"\n{label}: {note}", flush=True)
        r = {"note": note, "guard": det.guard_.state()[1] if det.guard_ is not None else None}
        for split_name, split in (("clean", ds), ("corrupted", cds)):
            for on in (False, True):
                res = score_split(det, split, on)
                res.pop("scores")
                r[f"{split_name}_guard_{'on' if on else 'off'}"] = res
                print(f"  {split_name:<9} guard {'on ' if on else 'off'}  micro {res['micro_auc']:.4f}  "
                      f"macro {res['macro_auc']:.4f}  ({res['fps']:.0f} frames/s)", flush=True)
        r["guard_decisions"] = guard_accuracy(det, cds, manifest)
        print("  guard on the corrupted split:", json.dumps(r["guard_decisions"], default=float))
        for k, split in ablation.items():
            for on in (False, True):
                res = score_split(det, split, on)
                res.pop("scores")
                r[f"only_{k}_guard_{'on' if on else 'off'}"] = res
            print(f"  only {k:<5}  micro off {r[f'only_{k}_guard_off']['micro_auc']:.4f} on "
                  f"{r[f'only_{k}_guard_on']['micro_auc']:.4f}   macro off {r[f'only_{k}_guard_off']['macro_auc']:.4f} "
                  f"on {r[f'only_{k}_guard_on']['macro_auc']:.4f}", flush=True)
        results["detectors"][label] = r
        rows.append((label, r))
    print("\nframe-level ROC AUC, micro (raw scores pooled) / macro (mean per video)")
    print(f"{'detector':<34} {'clean':>15} {'clean+guard':>15} {'corrupted':>15} {'corrupted+guard':>15}")
    for label, r in rows:
        cells = [r[k] for k in ("clean_guard_off", "clean_guard_on", "corrupted_guard_off", "corrupted_guard_on")]
        print(f"{label:<34} " + " ".join(f"{c['micro_auc']:.3f} / {c['macro_auc']:.3f}".rjust(15) for c in cells))
    results["peak_rss_mib"] = peak_rss_mib()
    print(f"peak memory (RSS) {results['peak_rss_mib']:.0f} MiB")
    if args.json:
        from vigil.io import write_json
        write_json(args.json, results)
        print(f"wrote {args.json}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
