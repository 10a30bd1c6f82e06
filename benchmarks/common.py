"""Helpers shared by the benchmark scripts: the default data path, peak memory, printing results."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ucsd_ped2"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def report(title: str, results: dict, json_path: str | None) -> None:
    """Print ``results`` as aligned lines and optionally save them as JSON."""
    print(f"\n== {title} ==")
    width = max(len(k) for k in results)
    for k, v in results.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, dict):
            v = json.dumps(v, default=str)
        print(f"{k:<{width}}  {v}")
    if json_path:
        from vigil.io import write_json
        write_json(json_path, results)
        print(f"saved {json_path}", file=sys.stderr)


def auc_or_nan(labels, scores) -> float:
    from vigil.metrics import auc
    return auc(np.asarray(labels), np.asarray(scores))
