"""Does pooling True Sight's error maps over moving regions make its scores comparable across videos?

    .venv/bin/python benchmarks/bench_truesight_moving.py [--data PATH] [--run RUN] [--seed 0]

Issue 13 asked, for the two designed detectors, whether a change within their design (pooling their
error maps over moving objects rather than the whole frame) makes their frame scores mean the same
in every video. True Sight (defaults, fitted here unless ``--run``) is scored three ways on all test
clips:

* ``design``: its own score (the 7-component score of the design document);
* ``max over moving``: the largest value of its anomaly map over moving pixels (frame difference
  above 15 gray levels after a 5x5 blur, dilated 9x9), smoothed as hybrid's (Gaussian, sigma 3);
* ``moving regions, tail + crowd``: hybrid's rule (``vigil.models.hybrid.detector.RegionTails``):
  each moving region's map maximum as a tail probability among the regions of True Sight's own
  held-out calibration videos, the frame's rarest region corrected for the number of regions, with
  its threshold at 1% of those videos' frames.

Prints micro AUC (all clips, 01-06, 07-12) and, for the last, the shares above its threshold.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA  # noqa: E402


def moving_regions(frames: np.ndarray) -> list[np.ndarray]:
    """``(T, H, W, 3)`` RGB -> per frame, the ``(H, W)`` label grid of its moving regions (0 = still)."""
    g = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float32)
    d = np.abs(np.diff(g, axis=0, prepend=g[:1]))
    if len(d) > 1:
        d[0] = d[1]
    kernel = np.ones((9, 9), np.uint8)
    return [cv2.connectedComponents(cv2.dilate((cv2.GaussianBlur(x, (5, 5), 0) > 15).astype(np.uint8), kernel),
                                    connectivity=8)[1] for x in d]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--run", help="a True Sight run folder (default: fit one with the defaults)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from vigil import load, scoring
    from vigil.data import load_dataset
    from vigil.detector import machine_info
    from vigil.models.hybrid.detector import RegionTails
    from vigil.models.truesight import TrueSight

    ds = load_dataset(args.data)
    det = load(args.run) if args.run else TrueSight(seed=args.seed, progress=False).fit(ds.train)
    held = sorted(scoring.held_out_videos(len(ds.train), det.config.calib_fraction, seed=det.config.seed))

    def pooled(v):
        s, maps = det.score_maps(v)
        labs = moving_regions(v.frames())
        per_region = [np.array([m[lab == k].max() for k in range(1, lab.max() + 1)]) for m, lab in zip(maps, labs)]
        peak = np.array([r.max() if len(r) else 0.0 for r in per_region])
        return s, gaussian_filter1d(peak, 3, mode="nearest", truncate=2.0), per_region

    cal = [pooled(ds.train[i])[2] for i in held]
    tails = RegionTails.fit(np.concatenate([r for v in cal for r in v if len(r)])[:, None], 0.05)

    def crowd(per_region):
        raw = np.array([RegionTails.frame_score(float(tails.log_p(r[:, None]).min()), len(r)) if len(r) else 0.0
                        for r in per_region])
        return gaussian_filter1d(raw, 3, mode="nearest", truncate=2.0)

    thr = scoring.threshold(np.concatenate([crowd(v) for v in cal]), 0.01)
    out = {"design": [], "max over moving": [], "moving regions, tail + crowd": []}
    labels = []
    for v in ds.test:
        s, peak, per_region = pooled(v)
        out["design"].append(s)
        out["max over moving"].append(peak)
        out["moving regions, tail + crowd"].append(crowd(per_region))
        labels.append(v.labels)
    print(f"True Sight (seed {det.config.seed}) on {len(ds.test)} test clips; machine {machine_info()}")
    y = np.concatenate(labels)
    for name, sc in out.items():
        s = np.concatenate(sc)
        line = (f"{name:<30} micro all {roc_auc_score(y, s):.4f}  01-06 "
                f"{roc_auc_score(np.concatenate(labels[:6]), np.concatenate(sc[:6])):.4f}  07-12 "
                f"{roc_auc_score(np.concatenate(labels[6:]), np.concatenate(sc[6:])):.4f}")
        if name.startswith("moving regions"):
            line += f"  normal > threshold {100 * np.mean(s[y == 0] > thr):.1f}%  anomalous {100 * np.mean(s[y == 1] > thr):.1f}%"
        print(line, flush=True)


if __name__ == "__main__":
    main()
