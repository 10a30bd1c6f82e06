"""Benchmark of the object-centric ``hybrid`` core (vigil.models.objects) on UCSD Ped2.

    PYTHONPATH=src python benchmarks/bench_objects.py [--select] [--seeds 0 1] [--width 240]

* ``--select``: settings chosen on **pseudo-anomalies made from training footage only**: fit on
  training clips 01-12, then score clips 13-16 (never seen by that fit) unmodified (normal) and with
  pseudo-anomalies (frames skipped to fake speed; objects of other clips pasted at twice their scale;
  objects pasted upside down) and print the pooled AUC per kind and the share of the unmodified
  frames above ``threshold_`` (an honest false-alarm estimate on unseen normal videos).
* default: fit on all 16 training clips, score the 12 test clips: micro AUC (all, 01-06, 07-12),
  per-clip and macro AUC, AP, shares above ``threshold_``, fit time, frames/s (end to end from decoded
  gray frames), peak memory; per seed, and an ablation (each evidence dropped, each alone: the fitted
  banks / autoencoder reused, only the calibration redone).

Frames are read with OpenCV (gray), resized to the working width with INTER_AREA and cached as .npy
under /tmp/hybrid_cache (decoding is not part of the timed scoring).
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import resource
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from vigil.models.objects import EVIDENCE, ObjectConfig, ObjectModel
from vigil.models.objects.model import _cat

DATA = Path(os.environ.get("PED2", "/work/shared/data/ucsd_ped2"))
CACHE = Path("/tmp/hybrid_cache")


def load(split: str, width: int) -> list[np.ndarray]:
    clips = sorted(p.name for p in (DATA / split / "frames").iterdir() if p.is_dir())
    out = []
    for c in clips:
        f = CACHE / f"{split}_{c}_w{width}.npy"
        if not f.exists():
            files = sorted(glob.glob(str(DATA / split / "frames" / c / "*.jpg")))
            g = [cv2.imread(x, cv2.IMREAD_GRAYSCALE) for x in files]
            h = int(round(g[0].shape[0] * width / g[0].shape[1]))
            CACHE.mkdir(exist_ok=True)
            np.save(f, np.stack([cv2.resize(x, (width, h), interpolation=cv2.INTER_AREA) for x in g]))
        out.append(np.load(f))
    return out


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- pseudo-anomalies from normal footage -------------------------------------------------------
def fake_speed(v: np.ndarray, rng, length: int = 30, skip: int = 3):
    """Frames ``a, a+3, a+6, ...`` played in a row: everything in them moves 3x as fast."""
    a = int(rng.integers(0, max(1, len(v) - length * skip)))
    seg = v[a:a + length * skip:skip]
    out = np.concatenate([v[:a], seg, v[a + length * skip:]])
    lab = np.zeros(len(out), int)
    lab[a:a + len(seg)] = 1
    return out, lab


def paste(v: np.ndarray, donors: list[tuple[np.ndarray, np.ndarray]], bg: np.ndarray, feet: np.ndarray, rng,
          scale: float, flip: bool, length: int = 30):
    """An object crop of another clip (its pixels that differ from the background) pasted for ``length``
    frames, at ``scale`` times its size, upside down if ``flip``, walking sideways at 0.5 px/frame
    (ordinary speed) from a foot row where normal objects are."""
    crop, mask = donors[int(rng.integers(len(donors)))]
    ch, cw = crop.shape
    nh, nw = max(4, int(ch * scale)), max(2, int(cw * scale))
    crop = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST).astype(bool)
    if flip:
        crop, mask = crop[::-1], mask[::-1]
    H, W = v.shape[1:]
    foot = int(np.clip(rng.choice(feet) * H, nh, H - 1))
    x = float(rng.integers(0, max(1, W - nw)))
    dx = 0.5 if x < W / 2 else -0.5
    a = int(rng.integers(0, max(1, len(v) - length)))
    out, lab = v.copy(), np.zeros(len(v), int)
    for t in range(a, min(len(v), a + length)):
        xi = int(np.clip(x + dx * (t - a), 0, W - nw))
        y0 = foot - nh
        region = out[t, y0:foot, xi:xi + nw]
        region[mask] = crop[mask]
        lab[t] = 1
    return out, lab


def crowd(a: np.ndarray, b: np.ndarray, bg: np.ndarray, thr: float) -> np.ndarray:
    """Pseudo-normal denser crowd: clip ``b``'s foreground pixels laid over clip ``a`` (frame by frame,
    the shorter length): twice the people, each of them normal."""
    n = min(len(a), len(b))
    out = a[:n].copy()
    fg = np.abs(b[:n].astype(np.float32) - bg) > thr
    out[fg] = b[:n][fg]
    return out


def donor_objects(model: ObjectModel, videos: list[np.ndarray], objs, rng, n: int = 40):
    """Crops (and foreground masks) of ``n`` single-sized objects of ``videos`` (``objs`` their objects)."""
    out = []
    eh = lambda foot: np.exp(model.persp_h_[0] + model.persp_h_[1] * foot)
    while len(out) < n:
        i = int(rng.integers(len(videos)))
        t = int(rng.integers(len(videos[i])))
        o = objs[i][t]
        for x0, y0, x1, y1 in o.boxes.astype(int):
            h = y1 - y0
            if 0.7 < h / eh(y1 / videos[i].shape[1]) < 1.4 and x0 > 0 and x1 < videos[i].shape[2] and h >= 12:
                crop = videos[i][t, y0:y1, x0:x1]
                mask = np.abs(crop.astype(np.float32) - model.bg_[y0:y1, x0:x1]) > model.fg_thr_
                out.append((crop.copy(), mask))
                break
    return out


def select(args) -> None:
    """Pseudo-anomaly selection: fit on training 01-12, judge on 13-16 (normal + pseudo-anomalies)."""
    train = load("training", args.width)
    fit_v, val_v = train[:12], train[12:]
    candidates = {"default": {}}
    for spec in args.candidates:                 # "key=value" or several joined by ";"
        over = {}
        for kv in spec.split(";"):
            k, v = kv.split("=")
            d = getattr(ObjectConfig(), k)
            over[k] = tuple(v.split(",")) if isinstance(d, tuple) else type(d)(v)
        candidates[spec] = over
    rows, prepared = [], {}
    fg_keys = ("fg_k", "fg_floor", "min_area", "crop", "split", "iou", "flow_preset", "flow_scale", "holdout")
    for name, over in candidates.items():
        cfg = replace(ObjectConfig(seed=args.seeds[0]), **over)
        t0 = time.perf_counter()
        m = ObjectModel(cfg)
        key = tuple(getattr(cfg, k) for k in fg_keys)      # settings that change the objects themselves
        if key not in prepared:
            objs = m.prepare(fit_v)
            prepared[key] = (m, objs)
            m.fit(fit_v, objs)
        else:
            m0, objs = prepared[key]
            for a in ("size_", "bg_", "fg_thr_", "persp_h_", "persp_w_"):
                setattr(m, a, getattr(m0, a))
            m.fit(fit_v, objs, ae=m0.ae_ if cfg.ae_steps == m0.cfg.ae_steps else None)
        rng = np.random.default_rng(1234)        # the same pseudo-anomalies for every candidate
        feet = _cat([o for v in objs for o in v], cfg.crop).boxes[:, 3] / fit_v[0].shape[1]
        donors = donor_objects(m, fit_v, objs, rng)
        normal = np.concatenate([m.score(v) for v in val_v])
        res = {"fa_unseen_normal": float((normal > m.threshold_).mean())}
        crowds = [crowd(val_v[i], val_v[(i + 1) % len(val_v)], m.bg_, m.fg_thr_) for i in range(len(val_v))]
        cn = np.concatenate([m.score(v) for v in crowds])
        res["fa_crowd"] = float((cn > m.threshold_).mean())
        res["crowd_vs_normal"] = float(roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(cn))], np.r_[normal, cn]))
        allpos = []
        for kind in ("speed", "big", "flip", "c_speed", "c_big", "c_flip"):
            pos = []
            base, ref = (crowds, cn) if kind.startswith("c_") else (val_v, normal)
            kind = kind[2:] if kind.startswith("c_") else kind
            for v in base:
                if kind == "speed":
                    pv, lab = fake_speed(v, rng)
                else:
                    pv, lab = paste(v, donors, m.bg_, feet, rng, 2.0 if kind == "big" else 1.0, kind == "flip")
                pos.append(m.score(pv)[lab == 1])
            pos = np.concatenate(pos)
            allpos.append(pos)
            key = kind if ref is normal else "c_" + kind
            res[key] = float(roc_auc_score(np.r_[np.zeros(len(ref)), np.ones(len(pos))], np.r_[ref, pos]))
        # pooled over plain and crowded clips: a score must mean the same in both
        neg, pos = np.r_[normal, cn], np.concatenate(allpos)
        res["pooled"] = float(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))
        res["mean"] = float(np.mean([res[k] for k in ("speed", "big", "flip", "c_speed", "c_big", "c_flip")]))
        res["time_s"] = time.perf_counter() - t0
        rows.append((name, res))
        print(f"{name:<28} " + " ".join(f"{k}={v:.4f}" for k, v in res.items()), flush=True)


def metrics(scores: list[np.ndarray], labels: np.ndarray, thr: float) -> dict:
    s = np.concatenate(scores)
    n6 = sum(len(x) for x in scores[:6])
    per, off = [], 0
    for x in scores:
        lab = labels[off:off + len(x)]
        off += len(x)
        per.append(roc_auc_score(lab, x) if 0 < lab.sum() < len(lab) else np.nan)
    return {"auc_all": roc_auc_score(labels, s), "auc_01_06": roc_auc_score(labels[:n6], s[:n6]),
            "auc_07_12": roc_auc_score(labels[n6:], s[n6:]), "macro": float(np.nanmean(per)),
            "ap": average_precision_score(labels, s), "fa_normal": float((s[labels == 0] > thr).mean()),
            "hit_anomalous": float((s[labels == 1] > thr).mean()), "per_clip": [round(float(p), 4) for p in per]}


def fmt(d: dict) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())


def main(args) -> None:
    train, test = load("training", args.width), load("testing", args.width)
    labels = np.load(DATA / "frame_labels_ped2.npy").reshape(-1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"working size {train[0].shape[2]}x{train[0].shape[1]}; load {os.getloadavg()[0]:.1f}")
    for seed in args.seeds:
        cfg = ObjectConfig(seed=seed)
        t0 = time.perf_counter()
        m = ObjectModel(cfg)
        objs = m.prepare(train)
        m.fit(train, objs)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = [m.score(g) for g in test]
        fps = sum(len(g) for g in test) / (time.perf_counter() - t0)
        res = metrics(scores, labels, m.threshold_)
        print(f"\nseed {seed}: {fmt(res)}\n  threshold={m.threshold_:.3f} fit_s={fit_s:.1f} fps={fps:.0f} "
              f"peak_MiB={peak_mib():.0f} load={os.getloadavg()[0]:.1f}", flush=True)
        if not args.ablation or seed != args.seeds[0]:
            continue
        held = [objs[i] for i in m.holdout(len(train))]
        test_objs = [m.extract(g) for g in test]
        full = ObjectModel(replace(cfg, evidence=EVIDENCE))        # banks of all four, the same autoencoder
        for a in ("size_", "bg_", "fg_thr_", "persp_h_", "persp_w_"):
            setattr(full, a, getattr(m, a))
        full.fit(train, objs, ae=m.ae_)
        m = full
        subsets = [tuple(e for e in EVIDENCE if e != d) for d in EVIDENCE] + [(e,) for e in EVIDENCE]
        for sub in subsets:
            m2 = ObjectModel(replace(cfg, evidence=sub))
            for a in ("size_", "bg_", "fg_thr_", "persp_h_", "persp_w_"):
                setattr(m2, a, getattr(m, a))
            m2.banks_ = {e: b for e, b in m.banks_.items() if e in sub}
            m2.ae_ = m.ae_ if "appearance" in sub else None
            m2.calibrate(held)
            r = metrics([m2._video_scores(o)[0] for o in test_objs], labels, m2.threshold_)
            r.pop("per_clip")
            print(f"  ablation {'+'.join(sub):<34} {fmt(r)}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--select", action="store_true", help="pseudo-anomaly selection on training footage only")
    ap.add_argument("--candidates", nargs="*", default=[], help="config overrides to compare, e.g. pos_weight=1.0")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--width", type=int, default=240)
    ap.add_argument("--ablation", action="store_true")
    a = ap.parse_args()
    select(a) if a.select else main(a)
