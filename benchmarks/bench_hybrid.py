"""Benchmark of the ``hybrid`` detector on a labelled dataset (default: UCSD Ped2, all 12 test clips).

Prints and (with ``--json``) writes: frame metrics (micro AUC raw and per-video normalised, macro AUC,
AP, EER), the test figures every benchmark prints (micro AUC on all clips, 01-06 and 07-12, per clip,
the threshold's share of normal and anomalous frames: ``common.test_figures``), fitting time, scoring
speed and peak memory, the machine, the RBDC of the boxes, and an ablation: the defaults with one
thing changed at a time (each kind of evidence alone, other fusions, no tracking, the neighbourhood,
split, perspective, the calibration, the gray-level gate alone and with other settings), then the
versions before (each fitted and calibrated on its own); ``--only TEXT`` runs only the rows naming TEXT.
The few-video regime (skip with ``--no-few``): the defaults fitted on two training videos alone, four
pairs spread over the training set (:data:`FEW_PAIRS`), each scored on every test clip, as a camera
with two short normal videos would be; ``--few-set KEY=VALUE`` runs it for one variant too, and
``--few-pairs all`` on all eight disjoint consecutive pairs, with the mean and range over them.

Speed is measured two ways, both on one process:

* **in memory**: the test frames are decoded first and handed over as arrays at their own size
  (360x240 for Ped2); the clock covers resizing, flow, descriptors, kNN, fusion and smoothing;
* **end to end**: the same from the dataset's image files with the frame cache off (decode included).

    .venv/bin/python benchmarks/bench_hybrid.py [--data PATH] [--seed S] [--json out.json] [--no-ablation]
        [--no-few] [--few-set KEY=VALUE ...] [--few-pairs spread|all] [--only TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, peak_rss_mib, print_test_figures, test_figures  # noqa: E402

# each evidence alone, the candidates of benchmarks/select_hybrid.py, and the version before issue 13
def ablation() -> list[tuple[str, dict]]:
    """Each variant: the defaults with one thing changed (names say what), then the versions before."""
    from vigil.models.hybrid.detector import HybridConfig

    d = HybridConfig()
    # the versions before: the settings they had, including those added since (no own crowds, the region size)
    was = dict(crowds=False, dynamics_size="region", mirror=False, pace=1.0, change_factor=0.0)
    before = dict(was, evidence=("motion",), track_frames=0.0, neighbourhood=3, split=False, perspective=False)
    return [(f"{e} alone", {"evidence": (e,)}) for e in ("motion", "dynamics", "location", "shape", "look",
                                                           "appearance")] + [
        (f"{'+'.join(d.evidence)}+{e}", {"evidence": tuple(d.evidence) + (e,)})
        for e in ("location", "shape", "look", "appearance") if e not in d.evidence] + [
        ("tracked (track_frames 5)" if not d.track_frames else "not tracked", {"track_frames": 0.0 if d.track_frames else 5.0}),
        (f"neighbourhood {2 if d.neighbourhood == 3 else 3}", {"neighbourhood": 2 if d.neighbourhood == 3 else 3}),
        (f"split {'off' if d.split else 'on'}", {"split": not d.split}),
        (f"perspective {'off' if d.perspective else 'on'}", {"perspective": not d.perspective}),
        *[(f"dynamics size {k}", {"dynamics_size": k}) for k in ("region", "local", "none") if k != d.dynamics_size],
        *[(f"crowd counts {k}", {"crowd_count": k}) for k in ("regions", "objects") if k != d.crowd_count],
        (f"own crowds {'off' if d.crowds else 'on'}", {"crowds": not d.crowds}),
        (f"mirror {'off' if d.mirror else 'on'}", {"mirror": not d.mirror}),
        (f"pace {1.0 if d.pace > 1 else 1.5:g}", {"pace": 1.0 if d.pace > 1 else 1.5}),
        *([("gate 3 (change_factor 3)", {"change_factor": 3.0}),
           ("gate 3, + shape", {"change_factor": 3.0, "evidence": tuple(d.evidence) + ("shape",)}),
           ("gate 3, dynamics size region", {"change_factor": 3.0, "dynamics_size": "region"}),
           ("gate 3, mirror", {"change_factor": 3.0, "mirror": True}),
           ("gate 3, pace 1.5", {"change_factor": 3.0, "pace": 1.5}),
           ("gate 3, mirror, pace 1.5", {"change_factor": 3.0, "mirror": True, "pace": 1.5}),
           ("gate 3, dynamics size region, pace 2", {"change_factor": 3.0, "dynamics_size": "region", "pace": 2.0}),
           ("gate 3, dynamics size region, pace 2, + look", {"change_factor": 3.0, "dynamics_size": "region",
                                                             "pace": 2.0, "evidence": tuple(d.evidence) + ("look",)})]
          if not d.change_factor else [("gate off (change_factor 0)", {"change_factor": 0.0})]),
        ("calibration holdout (one held-out fifth)", {"calibration": "holdout"}),
        ("round 4's pick (tracked, neighbourhood 2; fails the synthetic camera)",
         dict(was, evidence=("motion", "dynamics"), track_frames=5.0, neighbourhood=2, split=True, perspective=False)),
        ("motion+dynamics / split, region size, no own crowds (the default of rounds 5-12)",
         dict(was, evidence=("motion", "dynamics"), split=True)),
        ("motion / objects / 3x3, untracked (the default of the first round)", before),
        ("motion / cells", dict(before, pooling="cells")),
        ("motion+location / cells / holdout (before #13)",
         dict(before, evidence=("motion", "location"), pooling="cells", calibration="holdout")),
    ]


def evaluate(ds, settings: dict | None = None, seed: int = 0) -> dict:
    """Fit on ``ds.train`` with the defaults changed by ``settings``, score ``ds.test``; metrics and timings."""
    from vigil.metrics import frame_metrics
    from vigil.models.hybrid import Hybrid

    det = Hybrid(seed=seed, **(settings or {}))
    for v in ds.train:                                  # decode into the frame cache outside the clock
        v.frames(size=(240, 160), gray=True)            # (Ped2's working size; elsewhere only a warm-up)
    t0 = time.perf_counter()
    det.fit(ds.train)
    fit_s = time.perf_counter() - t0
    arrays = [v.frames() for v in ds.test]              # (T, H, W, 3) RGB at the source size
    n = sum(len(a) for a in arrays)
    t0, c0 = time.perf_counter(), time.process_time()
    scores = [det.score(a) for a in arrays]
    mem_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    m = frame_metrics(scores, [v.labels for v in ds.test])
    fig = test_figures(ds.test, scores, det.threshold_, fit_seconds=fit_s, score_seconds=mem_s)
    return {"evidence": list(det.config.evidence), "pooling": det.config.pooling,
            "calibration": det.config.calibration, "metrics": m.as_dict(), "table": m.table(), "figures": fig,
            "fit_s": fit_s, "frames": n, "fps_in_memory": n / mem_s,
            "frames_per_cpu_second": n / cpu_s, "tau": det.tau_,
            "threshold": det.threshold_, "frame_size": list(arrays[0].shape[1:3][::-1]), "det": det}


#: the few-video regime: pairs of training videos, spread over the training set, each fitted alone (a
#: camera with two short normal videos, as a new user's often is)
FEW_PAIRS = ((0, 1), (4, 5), (8, 9), (12, 13))
#: ``--few-pairs all``: every training video once, in disjoint consecutive pairs (01+02, 03+04, ...)
ALL_PAIRS = tuple((i, i + 1) for i in range(0, 16, 2))


def few_videos(ds, settings: dict | None = None, seed: int = 0, pairs=FEW_PAIRS) -> list[dict]:
    """Per pair of ``pairs`` (those the dataset holds): fit on those two training videos alone and score the
    whole test set; the test figures of each."""
    import dataclasses

    out = []
    for pair in pairs:
        if max(pair) < len(ds.train):
            r = evaluate(dataclasses.replace(ds, train=[ds.train[i] for i in pair]), settings, seed)
            r.pop("det")
            out.append({"train": [ds.train[i].name for i in pair], **r})
    return out


def print_few(name: str, rows: list[dict]) -> None:
    for r in rows:
        f = r["figures"]
        print(f"{name:<40} trained on {'+'.join(r['train']):<8} {f['micro_auc_all']:7.4f} "
              f"{f.get('micro_auc_01-06', float('nan')):7.4f} {f.get('micro_auc_07-12', float('nan')):7.4f} "
              f"{f['macro_auc']:7.4f} {100 * f['normal_frames_above_threshold']:9.1f}% "
              f"{100 * f['far_normal_frames_above_threshold']:7.1f}%", flush=True)
    if len(rows) > 1:
        auc = [r["figures"]["micro_auc_all"] for r in rows]
        flagged = [100 * r["figures"]["normal_frames_above_threshold"] for r in rows]
        print(f"{name:<40} over {len(rows)} pairs: all 12 mean {sum(auc) / len(auc):.4f} (range {min(auc):.4f}-"
              f"{max(auc):.4f}); normal flagged mean {sum(flagged) / len(flagged):.1f}% (range {min(flagged):.1f}-"
              f"{max(flagged):.1f}%)", flush=True)


def boxes_rbdc(det, ds) -> float:
    """RBDC (alpha 0.1, false positives per frame 0..1) of the detector's boxes against the pixel masks."""
    from vigil.regions import rbdc

    boxes, masks = [], []
    for v in ds.test:
        boxes += det.score_boxes(v)[1]
        masks += list(v.masks())
    return rbdc(boxes, masks, alpha=0.1)


def end_to_end_fps(det, ds) -> float:
    from vigil.data.video import Video

    os.environ["VIGIL_CACHE"] = "off"
    try:
        t0 = time.perf_counter()
        n = sum(len(det.score(Video(name=v.name, source=v.source))) for v in ds.test)
        return n / (time.perf_counter() - t0)
    finally:
        os.environ.pop("VIGIL_CACHE")


def main(argv=None) -> int:
    from vigil.data import load_dataset
    from vigil.detector import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="dataset folder (default: %(default)s)")
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--no-ablation", action="store_true", help="skip the per-evidence ablation")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kNN banks' subsample (default %(default)s)")
    ap.add_argument("--no-few", action="store_true", help="skip the few-video regime (fits on two training videos)")
    ap.add_argument("--few-set", action="append", default=[], metavar="KEY=VALUE",
                    help="also run the few-video regime with this setting changed (repeatable; one variant)")
    ap.add_argument("--only", metavar="TEXT",
                    help="run only the ablation rows whose name contains TEXT (the main run and the few-video "
                         "regime as asked)")
    ap.add_argument("--few-pairs", choices=("spread", "all"), default="spread",
                    help="the few-video fits: four pairs spread over the training set (default), or all eight "
                         "disjoint consecutive pairs")
    args = ap.parse_args(argv)
    ds = load_dataset(args.data)
    if not ds.has_labels:
        print(f"{args.data}: test videos have no labels; nothing to evaluate", file=sys.stderr)
        return 2
    print(ds.describe())
    machine = machine_info()
    print("machine:", json.dumps(machine))
    main_run = evaluate(ds, seed=args.seed)
    det = main_run.pop("det")
    main_run["fps_end_to_end"] = end_to_end_fps(det, ds)
    main_run["rbdc"] = boxes_rbdc(det, ds)
    main_run["peak_rss_mib"] = peak_rss_mib()
    print(f"\nhybrid (evidence: {', '.join(main_run['evidence'])}; working size {det.size_[0]}x{det.size_[1]}, "
          f"moving threshold {main_run['tau']:.3f} px/frame, threshold_ {main_run['threshold']:.3f})")
    print(main_run["table"])
    w, h = main_run["frame_size"]
    print(f"fit time                                           {main_run['fit_s']:.1f} s "
          f"({sum(len(v) for v in ds.train)} training frames)")
    print(f"scoring, frames in memory ({w}x{h})               {main_run['fps_in_memory']:.0f} frames/s")
    print(f"scoring, end to end (decode from files, no cache)  {main_run['fps_end_to_end']:.0f} frames/s")
    print(f"scoring CPU cost, frames in memory                 {main_run['frames_per_cpu_second']:.0f} frames "
          f"per CPU-second (all threads; independent of other load)")
    print(f"load average at the end (other processes share the CPU): {os.getloadavg()[0]:.1f}")
    print(f"peak memory (RSS, whole process so far)            {main_run['peak_rss_mib']:.0f} MiB")
    print(f"RBDC of the boxes (alpha 0.1, false positives per frame 0-1) {main_run['rbdc']:.4f}")
    print_test_figures(f"hybrid, seed {args.seed}", main_run["figures"])
    main_run["load_average_1min"] = os.getloadavg()[0]
    results = {"data": str(args.data), "machine": machine, "hybrid": main_run, "ablation": []}
    if not args.no_few:
        print("\nfew videos: fitted on two training videos alone, scored on every test clip "
              "(micro all, 01-06, 07-12, macro, normal>thr, far>thr)")
        pairs = ALL_PAIRS if args.few_pairs == "all" else FEW_PAIRS
        results["few"] = {"defaults": few_videos(ds, seed=args.seed, pairs=pairs)}
        print_few("the defaults", results["few"]["defaults"])
        if args.few_set:
            from vigil.models.hybrid import Hybrid
            from vigil.settings import model_settings
            over = model_settings(Hybrid, args.few_set)
            results["few"][" ".join(args.few_set)] = rows = few_videos(ds, over, seed=args.seed, pairs=pairs)
            print_few(" ".join(args.few_set), rows)
    if not args.no_ablation:
        print("\nablation (each variant fitted and calibrated on its own, same seed; micro = raw scores pooled;"
              " 'normal>thr' = share of normal test frames above the variant's threshold_; 'far>thr' the same"
              " among normal frames more than 6 frames from any anomalous one)")
        print(f"{'the defaults, changed':<66} {'micro':>7} {'01-06':>7} {'07-12':>7} {'macro':>7} "
              f"{'normal>thr':>10} {'far>thr':>8} {'fit s':>6} {'fps':>6}")
        for name, over in [(n, o) for n, o in ablation() if not args.only or args.only in n]:
            r = evaluate(ds, over, seed=args.seed)
            r.pop("det")
            f = r["figures"]
            print(f"{name:<66} {f['micro_auc_all']:7.4f} {f.get('micro_auc_01-06', float('nan')):7.4f} "
                  f"{f.get('micro_auc_07-12', float('nan')):7.4f} {f['macro_auc']:7.4f} "
                  f"{100 * f['normal_frames_above_threshold']:9.1f}% {100 * f['far_normal_frames_above_threshold']:7.1f}% "
                  f"{r['fit_s']:6.1f} {r['fps_in_memory']:6.0f}",
                  flush=True)
            results["ablation"].append({"name": name, **r})
    if args.json:
        from vigil.io import write_json
        write_json(args.json, results)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
