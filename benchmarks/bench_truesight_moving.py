"""Does pooling a designed detector's error maps over moving regions make its scores comparable across videos?

    .venv/bin/python benchmarks/bench_truesight_moving.py [--model truesight|ocrgan-video] [--run RUN]
                                                           [--data PATH] [--seed 0] [--threads N]

(The file keeps its first name, which the README cites; it measures either designed detector.)
Issue 13 asked, for the two designed detectors (True Sight and OCR-GAN Video), whether a change
within their design (pooling their error maps over moving objects rather than the whole frame)
makes their frame scores mean the same in every video. The detector (``--model``, defaults, fitted
here with ``--seed`` unless ``--run`` names a trained run folder, whose own model and seed are then
used) is scored three ways on all test clips, from its anomaly maps (``Detector.score_maps``, at
the frame's own resolution):

* ``design``: its own score (True Sight: the 7-component score of the design document; OCR-GAN
  Video: the published 0.9 x reconstruction + 0.1 x feature error, smoothed);
* ``max over moving``: the largest value of its anomaly map over moving pixels (frame difference
  above 15 gray levels after a 5x5 blur, dilated 9x9), smoothed as hybrid's (Gaussian, sigma 3);
  a frame with no moving pixel scores 0;
* ``moving regions, tail + crowd``: hybrid's rule (``vigil.models.hybrid.detector.RegionTails``):
  each moving region's map maximum as a tail probability among the regions of the detector's own
  held-out calibration frames, the frame's rarest region corrected for the number of regions, with
  its threshold at 1% of those frames.

Calibration frames. True Sight holds out whole training videos (``calib_fraction``, drawn with its
seed) and calibrates on them; those videos are scored whole. OCR-GAN Video has no held-out videos:
it holds out the last ``holdout`` (15%) of every training video, frames it never trains on, and
calibrates on them (``OcrGanVideo._split``). Here the same: each training video is scored whole
(so each held-out frame's clip has its real preceding frames, as in the model's calibration), and
only the held-out tail's maps and moving regions are kept, smoothed over the tail alone. (Were no
video long enough to keep a tail, the model calibrates on its trained frames after the first
clip; this script then does the same and says so.)

Prints micro AUC (all clips, 01-06, 07-12); for the design's score the shares of normal and
anomalous test frames above the model's own ``threshold_``, for the region rule those above its
threshold.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import roc_auc_score

MODELS = ("truesight", "ocrgan-video")


def moving_regions(frames: np.ndarray) -> list[np.ndarray]:
    """``(T, H, W, 3)`` RGB -> per frame, the ``(H, W)`` label grid of its moving regions (0 = still)."""
    g = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)
    d = np.abs(np.diff(g, axis=0, prepend=g[:1]))
    if len(d) > 1:
        d[0] = d[1]
    kernel = np.ones((9, 9), np.uint8)
    return [cv2.connectedComponents(cv2.dilate((cv2.GaussianBlur(x, (5, 5), 0) > 15).astype(np.uint8), kernel),
                                    connectivity=8)[1] for x in d]


def calibration_parts(det, train) -> tuple[list[tuple[object, int]], str]:
    """The detector's own held-out calibration frames: ``[(training video, first calibration frame)]``
    and a line saying what they are."""
    from vigil import scoring

    cfg = det.config
    if det.name == "truesight":
        held = sorted(scoring.held_out_videos(len(train), cfg.calib_fraction, seed=cfg.seed))
        if not held:
            return [(v, 0) for v in train], "every training video (fewer than two: True Sight calibrates on them)"
        return [(train[i], 0) for i in held], f"held-out training videos {held} (calib_fraction {cfg.calib_fraction})"
    if det.name == "ocrgan-video":
        lengths = [len(det.frames_of(v)[0]) for v in train]
        parts = [(train[i], s) for i, s in det.calibration_starts(lengths)]
        if any(det._tails(lengths)):
            return parts, (f"held-out last {cfg.holdout:g} of each of {len(parts)} training videos "
                           f"(no held-out videos in this design)")
        return parts, "trained frames after the first clip (no video long enough for a tail)"
    raise SystemExit(f"{det.name}: not one of {', '.join(MODELS)}")


def main(argv=None) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import DEFAULT_DATA, peak_rss_mib

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=MODELS, default=None,
                    help="the detector to fit (default truesight); with --run, checked against the run's")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--run", help="a trained run folder of that model (default: fit one with the defaults)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the detector fitted here (ignored with --run)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)

    import torch

    from vigil import load, scoring
    from vigil.data import load_dataset
    from vigil.detector import machine_info
    from vigil.models.hybrid.detector import RegionTails
    from vigil.registry import get_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    t0 = time.perf_counter()
    if args.run:
        det = load(args.run)
        if args.model and det.name != args.model:
            raise SystemExit(f"{args.run}: a {det.name} run, not {args.model}")
    else:
        det = get_detector(args.model or "truesight")(seed=args.seed, progress=False).fit(ds.train)
    fit_s = time.perf_counter() - t0
    parts, what = calibration_parts(det, ds.train)

    def pooled(v, start: int = 0):
        s, maps = det.score_maps(v)
        labs = moving_regions(v.frames())
        maps, labs = maps[start:], labs[start:]
        per_region = [np.array([m[lab == k].max() for k in range(1, lab.max() + 1)]) for m, lab in zip(maps, labs)]
        peak = np.array([r.max() if len(r) else 0.0 for r in per_region])
        return s[start:], gaussian_filter1d(peak, 3, mode="nearest", truncate=2.0), per_region

    t1 = time.perf_counter()
    cal = [pooled(v, start)[2] for v, start in parts]
    tails = RegionTails.fit(np.concatenate([r for v in cal for r in v if len(r)])[:, None], 0.05)

    def crowd(per_region):
        raw = np.array([RegionTails.frame_score(float(tails.log_p(r[:, None]).min()), len(r)) if len(r) else 0.0
                        for r in per_region])
        return gaussian_filter1d(raw, 3, mode="nearest", truncate=2.0)

    thr = scoring.threshold(np.concatenate([crowd(v) for v in cal]), 0.01)
    n_cal = sum(len(v) for v in cal)
    n_cal_regions = sum(len(r) for v in cal for r in v)
    out = {"design": [], "max over moving": [], "moving regions, tail + crowd": []}
    labels, still = [], 0
    for v in ds.test:
        s, peak, per_region = pooled(v)
        out["design"].append(s)
        out["max over moving"].append(peak)
        out["moving regions, tail + crowd"].append(crowd(per_region))
        labels.append(np.asarray(v.labels).astype(int))
        still += sum(len(r) == 0 for r in per_region)
    score_s = time.perf_counter() - t1
    title = "True Sight" if det.name == "truesight" else "OCR-GAN Video"
    extra = f", clip_len {det.config.clip_len}" if det.name == "ocrgan-video" else ""
    print(f"{title} (seed {det.config.seed}{extra}{', run ' + args.run if args.run else ''}) on {len(ds.test)} test "
          f"clips; machine {machine_info()}")
    print(f"calibration frames: {what}; {n_cal} frames, {n_cal_regions} moving regions; region-rule threshold "
          f"{thr:.4f}; test frames with no moving pixel: {still}")
    y = np.concatenate(labels)
    for name, sc in out.items():
        s = np.concatenate(sc)
        line = (f"{name:<30} micro all {roc_auc_score(y, s):.4f}  01-06 "
                f"{roc_auc_score(np.concatenate(labels[:6]), np.concatenate(sc[:6])):.4f}  07-12 "
                f"{roc_auc_score(np.concatenate(labels[6:]), np.concatenate(sc[6:])):.4f}")
        level = {"design": det.threshold_, "moving regions, tail + crowd": thr}.get(name)
        if level is not None:
            line += (f"  normal > threshold {100 * np.mean(s[y == 0] > level):.1f}%  "
                     f"anomalous {100 * np.mean(s[y == 1] > level):.1f}%")
        print(line, flush=True)
    print(f"time: fit/load {fit_s:.1f} s, calibration + test maps {score_s:.1f} s; "
          f"peak memory {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
