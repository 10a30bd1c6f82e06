"""Benchmark OCR-GAN Video on a labelled dataset (default: the UCSD Ped2 development split).

    .venv/bin/python benchmarks/bench_ocrgan_video.py [--data PATH] [--clip-len 8] [--no-attention] [--json OUT]
    .venv/bin/python benchmarks/bench_ocrgan_video.py --run runs/ped2-ocrgan8      # a trained run, no training

Trains on the dataset's normal training videos (settings from the Config defaults, nothing read
from the test set), scores every test frame and prints: micro AUC (raw and per-video normalised),
macro AUC, AP, EER, training time, scoring speed, peak memory, the machine, the AUC of each score
component alone, and the five attention statistics on normal vs anomalous test clips (a clip is
the one that ends at a frame, labelled like that frame): the mean of each, and its AUC as a score.
Last, the ``pooling`` ablation: the same networks recalibrated on the held-out training frames with
each way of pooling the error maps (``published``, the default; ``max``; ``mean``), micro AUC each.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_test_figures, save_json, test_figures  # noqa: E402
from vigil.settings import model_settings  # noqa: E402

from vigil.data import load_dataset  # noqa: E402
from vigil.metrics import auc, frame_metrics  # noqa: E402
from vigil.models.attention import STAT_NAMES  # noqa: E402
from vigil.detector import machine_info  # noqa: E402
from vigil.models.ocrgan_video.detector import COMPONENTS, POOLINGS, OcrGanVideo  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ucsd_ped2")
    ap.add_argument("--clip-len", type=int, default=8)
    ap.add_argument("--no-attention", action="store_true", help="the ablation: no temporal attention module")
    ap.add_argument("--epochs", type=int, default=None, help="override the Config default (for smoke runs)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="a model setting, as in 'vigil train --set'")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: the Config's, 0)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--save", type=Path, default=None, help="also save the trained run folder here")
    ap.add_argument("--run", type=Path, default=None, help="measure this trained run instead of training one")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_dataset(args.data)
    if not ds.has_labels:
        raise SystemExit(f"{args.data}: the benchmark needs test labels")
    print(ds.describe(), flush=True)
    over = {"clip_len": args.clip_len, "attention": not args.no_attention} | model_settings(OcrGanVideo, args.set)
    if args.epochs is not None:
        over["epochs"] = args.epochs
    if args.seed is not None:
        over["seed"] = args.seed
    t0 = time.perf_counter()
    if args.run:
        det = OcrGanVideo.load(args.run)
    else:
        det = OcrGanVideo(progress=not args.quiet, **over)
        det.fit(ds.train)
    train_s = time.perf_counter() - t0 if not args.run else float("nan")   # a loaded run: not trained here
    if args.save:
        det.save(args.save)

    size = (det.config.size, det.config.size)
    for v in ds.test:          # decode into the frame cache first: the speed below is the model's
        v.frames(size=size, gray=True)
    t0 = time.perf_counter()
    comps = [det.score_components(v) for v in ds.test]
    score_s = time.perf_counter() - t0
    n_frames = sum(len(c.combined) for c in comps)

    labels = [np.asarray(v.labels).astype(int) for v in ds.test]
    y = np.concatenate(labels)
    m = frame_metrics([c.combined for c in comps], labels)
    comp_auc = {k: auc(y, np.concatenate([getattr(c, k) for c in comps])) for k in COMPONENTS}
    comp_auc["combined_unsmoothed_rec_feat"] = auc(
        y, np.concatenate([det.config.rec_weight * c.rec + det.config.feat_weight * c.feat for c in comps]))
    stats = None
    if comps[0].stats is not None:
        st = np.concatenate([c.stats.mean(axis=(1, 2)) for c in comps])      # (N, 5) mean over positions
        stats = {name: {"normal_mean": float(st[y == 0, i].mean()), "anomalous_mean": float(st[y == 1, i].mean()),
                        "normal_std": float(st[y == 0, i].std()), "anomalous_std": float(st[y == 1, i].std()),
                        "auc": auc(y, st[:, i])} for i, name in enumerate(STAT_NAMES)}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "model": det.name, "data": str(args.data), "config": det._fitted_meta() | {"attention": det.config.attention,
                                                                                  "epochs": det.config.epochs},
        "metrics": m.as_dict(), "train_seconds": train_s, "score_seconds": score_s,
        "score_fps": n_frames / score_s, "peak_rss_mb": peak_mb, "machine": machine_info(),
        "component_auc": comp_auc, "attention_statistics": stats,
    }

    print(f"\nOCR-GAN Video, clip_len {args.clip_len}, temporal attention {'on' if det.config.attention else 'OFF'}, "
          f"{det.config.epochs} epochs = {det.steps_} steps")
    print(m.table())
    print(f"training time                                      {train_s:.1f} s")
    print(f"scoring speed                                      {n_frames / score_s:.1f} frames/s ({n_frames} frames)")
    print(f"peak memory (RSS)                                  {peak_mb:.0f} MB")
    print(f"machine                                            {json.dumps(machine_info())}")
    print("AUC of each score component alone (micro, raw):")
    for k, v in comp_auc.items():
        print(f"  {k:<30} {v:.4f}")
    fig = test_figures(ds.test, [c.combined for c in comps], det.threshold_, fit_seconds=train_s,
                       score_seconds=score_s)
    result["figures"] = fig
    print_test_figures(f"OCR-GAN Video, clip_len {det.config.clip_len}, seed {det.config.seed}", fig)
    if args.json:                      # saved now too, in case the pooling ablation below is cut short
        save_json(args.json, result)
    if stats:
        print("attention statistics (head-averaged, mean over positions) on normal vs anomalous test clips:")
        print(f"  {'statistic':<22} {'normal':>9} {'anomalous':>10} {'AUC':>7}")
        for name, s in stats.items():
            print(f"  {name:<22} {s['normal_mean']:9.4f} {s['anomalous_mean']:10.4f} {s['auc']:7.4f}")
    # pooling ablation: the same networks, recalibrated on the held-out training frames for each pooling
    saved = det.config
    pooling = {}
    for pool in POOLINGS:
        det.config = dataclasses.replace(saved, pooling=pool)
        det.recalibrate(ds.train)
        pooling[pool] = frame_metrics([det.score(v) for v in ds.test], labels).micro_auc
    det.config = saved
    det.recalibrate(ds.train)
    result["pooling_micro_auc"] = pooling
    print("pooling of the error maps (recalibrated, same networks), micro AUC: "
          + ", ".join(f"{k}{' (default)' if k == OcrGanVideo.Config.pooling else ''} {v:.4f}" for k, v in pooling.items()))
    if args.json:
        save_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
