"""True Sight on the UCSD Ped2 development split: accuracy, each component alone, speed, memory.

    .venv/bin/python benchmarks/bench_truesight.py [--data PATH] [--epochs N] [--set KEY=VALUE ...] [--json OUT]

Every setting is the model's default (fixed before looking at test data) unless ``--set`` names it,
as ``vigil train --set`` does (e.g. ``--set scales=[48,64,80,96,112]``); the test labels are used
only to compute the figures printed here.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import DEFAULT_DATA, auc_or_nan, peak_rss_mib, print_test_figures, report, save_json, test_figures, timed  # noqa: E402,E501

from vigil.settings import model_settings  # noqa: E402
from vigil.data import load_dataset  # noqa: E402
from vigil.metrics import frame_metrics  # noqa: E402
from vigil.detector import machine_info  # noqa: E402
from vigil.models.truesight import COMPONENTS, TrueSight  # noqa: E402
from vigil.scoring import adaptive_median  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--epochs", type=int, default=None, help="default: the model's default")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: the model's, 0)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--save", default=None, help="also save the trained run folder here")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="a model setting, as in 'vigil train --set'")
    args = ap.parse_args(argv)

    ds = load_dataset(args.data)
    print(ds.describe())
    for v in ds.train + ds.test:        # decode once, so training time is training alone
        v.frames(size=(96, 96))
    overrides = model_settings(TrueSight, args.set)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    det, fit_s = timed(TrueSight(device=args.device, **overrides).fit, ds.train)
    if args.save:
        det.save(args.save)

    labels = [v.labels for v in ds.test]
    frames = [v.frames(size=(96, 96)) for v in ds.test]
    t0 = time.perf_counter()
    comps = [det.components(v) for v in ds.test]
    scores = [adaptive_median(det._fuse(c), det.config.smooth_min, det.config.smooth_max) for c in comps]
    score_s = time.perf_counter() - t0
    n = sum(len(f) for f in frames)
    m = frame_metrics(scores, labels)
    y = np.concatenate(labels)
    per_comp = {name: auc_or_nan(y, np.concatenate([c[:, i] for c in comps])) for i, name in enumerate(COMPONENTS)}
    fused_raw = auc_or_nan(y, np.concatenate([det._fuse(c) for c in comps]))
    print(m.table())
    results = {
        "date": datetime.date.today().isoformat(),
        "micro_auc": m.micro_auc, "micro_auc_video_norm": m.micro_auc_video_norm, "macro_auc": m.macro_auc,
        "average_precision": m.average_precision, "eer": m.eer,
        "fused_auc_before_smoothing": fused_raw,
        "component_auc": per_comp,
        "epochs": det.config.epochs, "scales": list(det.config.scales), "train_seconds": fit_s,
        "score_fps_5_scales": n / score_s, "peak_rss_mib": peak_rss_mib(),
        "threshold": det.threshold_, "machine": machine_info(), "seed": det.config.seed,
    }
    report("True Sight, UCSD Ped2 test clips", results, None)
    fig = test_figures(ds.test, scores, det.threshold_, fit_seconds=fit_s, score_seconds=score_s)
    print_test_figures(f"True Sight, seed {det.config.seed}, {det.config.epochs} epochs", fig)
    if args.json:
        save_json(args.json, results | {"model": "truesight", "data": args.data, "figures": fig})


if __name__ == "__main__":
    main()
