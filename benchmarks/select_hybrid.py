"""Choose ``hybrid``'s evidence and pooling on training footage alone (no test label is read).

    .venv/bin/python benchmarks/select_hybrid.py [--data PATH] [--folds 4] [--seed 0] [--json out.json]

The training videos are split into ``--folds`` groups. For each group, every candidate is fitted on the
other training videos (hybrid holds out its own calibration videos inside those) and judged on the
group, which that fit never saw:

* ``fa_unseen``: the share of the group's (normal) frames above ``threshold_``, which is set for 1%:
  whether the threshold transfers to new normal footage of the same camera;
* ``fa_crowd``: the same on pseudo-crowds, each group clip with another group clip's moving pixels
  laid over it (twice the walkers, each of them normal);
* ``auc_pooled``: micro AUC, pooled over all the group's clips, plain and crowded, of pseudo-anomalies
  against all their normal frames. Pseudo-anomalies, each a 3-second stretch of each clip, plain and
  crowded: played 2x and 3x fast (frames skipped: odd motion), and its most salient moving thing
  turned upside down in place (``flip``: an odd look at an ordinary speed). Pooled, so that a score
  must mean the same in every clip, as the test's micro AUC demands; ``auc_speed`` and ``auc_flip``
  are the two kinds alone.

The rule, fixed before this script's figures were seen (but after the Ped2 test figures of some of
the candidates had been: see the README): among candidates whose ``fa_unseen`` and ``fa_crowd``
stay under 3x the 1% they are set for, the highest ``auc_pooled`` wins. It is printed at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, save_json  # noqa: E402

CANDIDATES = {
    "motion / objects": dict(evidence=("motion",)),
    "motion+dynamics / objects": dict(evidence=("motion", "dynamics")),
    "motion+appearance / objects": dict(evidence=("motion", "appearance")),
    "motion+dynamics+appearance / objects": dict(evidence=("motion", "dynamics", "appearance")),
    "motion+location / objects": dict(evidence=("motion", "location")),
    "motion / objects / holdout": dict(evidence=("motion",), calibration="holdout"),
    "motion / cells": dict(evidence=("motion",), pooling="cells"),
    "motion+location / cells / holdout (before issue 13)": dict(evidence=("motion", "location"), pooling="cells",
                                                                calibration="holdout"),
}
LIMIT = 0.03


def fake_speed(v: np.ndarray, start: int, length: int, skip: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``start, start+skip, ...`` played in a row for ``length`` frames: ``skip`` x as fast."""
    seg = v[start:start + length * skip:skip]
    out = np.concatenate([v[:start], seg, v[start + length * skip:]])
    lab = np.zeros(len(out), int)
    lab[start:start + len(seg)] = 1
    return out, lab


def crowd(a: np.ndarray, b: np.ndarray, thr: float = 25.0) -> np.ndarray:
    """Clip ``b``'s moving pixels (far from its median frame) laid over clip ``a``: a denser normal crowd."""
    n = min(len(a), len(b))
    bg = np.median(b, axis=0)
    fg = np.abs(b[:n].astype(np.float32) - bg).max(-1) > thr
    out = a[:n].copy()
    out[fg] = b[:n][fg]
    return out


def flip_mover(v: np.ndarray, start: int, length: int, thr: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """For ``length`` frames from ``start``, the box of the largest moving blob (far from the clip's
    median frame, dilated) is turned upside down in place: an odd look at an ordinary speed."""
    import cv2

    bg = np.median(v, axis=0)
    out, lab = v.copy(), np.zeros(len(v), int)
    for t in range(start, min(len(v), start + length)):
        fg = (np.abs(v[t].astype(np.float32) - bg).max(-1) > thr).astype(np.uint8)
        fg = cv2.dilate(fg, np.ones((5, 5), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg)
        if n < 2:
            continue
        x, y, w, h, _ = stats[1 + int(np.argmax(stats[1:, 4]))]
        out[t, y:y + h, x:x + w] = v[t, y:y + h, x:x + w][::-1]
        lab[t] = 1
    return out, lab


def judge(det, group: list[np.ndarray], rng) -> dict:
    from sklearn.metrics import roc_auc_score

    crowds = [crowd(group[i], group[(i + 1) % len(group)]) for i in range(len(group))]
    plain = [det.score(v) for v in group]
    dense = [det.score(v) for v in crowds]
    neg = np.concatenate(plain + dense)
    speed, flip, length = [], [], 30
    for v in group + crowds:
        for skip in (2, 3):
            start = int(rng.integers(0, max(1, len(v) - length * skip)))
            pv, lab = fake_speed(v, start, length, skip)
            speed.append(det.score(pv)[lab == 1])
        pv, lab = flip_mover(v, int(rng.integers(0, max(1, len(v) - length))), length)
        flip.append(det.score(pv)[lab == 1])
    auc = lambda pos: float(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))  # noqa: E731
    speed, flip = np.concatenate(speed), np.concatenate(flip)
    return {"fa_unseen": float((np.concatenate(plain) > det.threshold_).mean()),
            "fa_crowd": float((np.concatenate(dense) > det.threshold_).mean()),
            "auc_pooled": auc(np.r_[speed, flip]), "auc_speed": auc(speed), "auc_flip": auc(flip),
            "normal_frames": int(len(neg)), "pseudo_anomalous_frames": int(len(speed) + len(flip))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    args = ap.parse_args()

    from vigil.data import load_dataset
    from vigil.detector import machine_info
    from vigil.models.hybrid import Hybrid

    ds = load_dataset(args.data)
    train = [v.frames() for v in ds.train]                     # (T, H, W, 3) at the source size
    groups = [list(range(i, len(train), args.folds)) for i in range(args.folds)]   # interleaved
    print(f"{len(train)} training videos, {args.folds} folds: {groups}; machine {machine_info()}", flush=True)
    results = {}
    for name, over in CANDIDATES.items():
        t0, rows = time.perf_counter(), []
        for g in groups:
            det = Hybrid(seed=args.seed, **over).fit([train[i] for i in range(len(train)) if i not in g])
            rows.append(judge(det, [train[i] for i in g], np.random.default_rng(1234)))
        res = {k: float(np.mean([r[k] for r in rows]))
               for k in ("fa_unseen", "fa_crowd", "auc_pooled", "auc_speed", "auc_flip")}
        res["auc_pooled_per_fold"] = [r["auc_pooled"] for r in rows]
        res["seconds"] = time.perf_counter() - t0
        results[name] = res
        print(f"{name:<44} fa_unseen {100 * res['fa_unseen']:5.1f}%  fa_crowd {100 * res['fa_crowd']:5.1f}%  "
              f"auc_pooled {res['auc_pooled']:.4f} (speed {res['auc_speed']:.3f}, flip {res['auc_flip']:.3f}; folds {' '.join(f'{a:.3f}' for a in res['auc_pooled_per_fold'])})"
              f"  {res['seconds']:.0f} s", flush=True)
    ok = {n: r for n, r in results.items() if r["fa_unseen"] <= LIMIT and r["fa_crowd"] <= LIMIT}
    pick = max(ok, key=lambda n: ok[n]["auc_pooled"]) if ok else None
    print(f"\nrule: false alarms <= {100 * LIMIT:.0f}% on unseen and crowded normal clips, then the highest "
          f"pooled pseudo-anomaly AUC -> {pick or 'no candidate passes'}")
    if args.json:
        save_json(args.json, {"results": results, "pick": pick, "machine": machine_info()})


if __name__ == "__main__":
    main()
