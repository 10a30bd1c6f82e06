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


def _first_half(names: list[str]) -> tuple[list[str], list[str]]:
    """Ped2's 12 test clips: 01-06 (the old development split) and 07-12; other data: first / second half."""
    names = sorted(names)
    k = 6 if len(names) == 12 else (len(names) + 1) // 2
    return names[:k], names[k:]


#: the event figures test_figures keeps (vigil.events.EventMetrics fields; its per-stretch lists are left out)
EVENT_KEYS = ("n_stretches", "n_detected", "median_delay_seconds", "mean_delay_seconds", "n_events",
              "n_false_alarm_events", "false_alarms_per_hour", "normal_frames_in_events",
              "anomalous_frames_in_events", "fps", "min_frames", "gap_frames", "smoothing")


def test_figures(videos, scores, threshold: float, *, fit_seconds: float, score_seconds: float,
                 groups: dict[str, list[str]] | None = None, fps: float = 10.0) -> dict:
    """The figures every detector benchmark reports on a labelled test set, as one dict.

    ``videos``: the test videos (``.name``, ``.labels``); ``scores``: each video's final per-frame scores
    (what ``det.score`` returns); ``threshold``: the model's own ``threshold_`` (same scale).
    Micro AUC = raw scores pooled over frames (all clips, and each group of clips, by default Ped2's
    01-06 and 07-12); per-clip AUC, or, for a clip with one class only, its mean score relative to the
    threshold; macro AUC = mean over clips with both classes; AP; the share of normal and of anomalous
    frames above the threshold; the alert events ``vigil watch`` would raise at the threshold
    (:func:`vigil.events.event_metrics`, watch's rule and defaults, ``fps`` frames per second: stretches
    detected, delay, false alarm events per hour of normal footage, frames inside events; under
    ``"events"``); fit time, frames/s, peak RSS, the machine.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score
    from vigil.detector import machine_info
    from vigil.events import event_metrics

    labels = {v.name: np.asarray(v.labels).astype(int) for v in videos}
    sc = {v.name: np.asarray(s, dtype=np.float64) for v, s in zip(videos, scores)}
    for name in labels:
        if len(labels[name]) != len(sc[name]):
            raise ValueError(f"clip {name}: {len(sc[name])} scores for {len(labels[name])} labels")
    names = sorted(labels)
    if groups is None:
        a, b = _first_half(names)
        groups = {f"{a[0]}-{a[-1]}": a, f"{b[0]}-{b[-1]}": b} if b else {}

    def pooled(ns):
        y = np.concatenate([labels[n] for n in ns])
        s = np.concatenate([sc[n] for n in ns])
        return y, s

    def micro(ns):
        y, s = pooled(ns)
        return float(roc_auc_score(y, s)) if y.min() != y.max() else float("nan")

    per_clip = {}
    for n in names:
        y, s = labels[n], sc[n]
        if y.min() != y.max():
            per_clip[n] = {"auc": float(roc_auc_score(y, s)), "frames": int(len(y)), "anomalous": int(y.sum())}
        else:
            per_clip[n] = {"auc": None, "frames": int(len(y)), "anomalous": int(y.sum()),
                           "note": "all anomalous" if y[0] == 1 else "all normal",
                           "mean_score": float(s.mean()), "mean_score_minus_threshold": float(s.mean() - threshold),
                           "share_above_threshold": float((s > threshold).mean())}
    both = [c["auc"] for c in per_clip.values() if c["auc"] is not None]
    y, s = pooled(names)
    n_frames = int(len(y))
    ev = event_metrics([sc[n] for n in names], [labels[n] for n in names], threshold, fps=fps, names=names)
    return {
        "micro_auc_all": micro(names),
        **{f"micro_auc_{g}": micro(ns) for g, ns in groups.items()},
        "macro_auc": float(np.mean(both)) if both else float("nan"),
        "n_clips_in_macro": len(both),
        "average_precision": float(average_precision_score(y, s)) if y.min() != y.max() else float("nan"),
        "threshold": float(threshold),
        "normal_frames_above_threshold": float((s[y == 0] > threshold).mean()) if (y == 0).any() else float("nan"),
        "anomalous_frames_above_threshold": float((s[y == 1] > threshold).mean()) if (y == 1).any() else float("nan"),
        # normal frames more than 6 frames from any anomalous one of their clip: a smoothed score
        # (hybrid's reaches 6 frames each way) cannot have carried a labelled stretch's score there
        "near_frames": ev.near_frames, "far_normal_frames": ev.far_normal_frames,
        "far_normal_frames_above_threshold": ev.far_normal_frames_above_threshold,
        "n_frames": n_frames, "n_anomalous": int(y.sum()), "n_clips": len(names),
        "events": {k: getattr(ev, k) for k in EVENT_KEYS},
        "per_clip": per_clip,
        "fit_seconds": float(fit_seconds), "score_seconds": float(score_seconds),
        "score_fps": n_frames / score_seconds if score_seconds > 0 else float("nan"),
        "peak_rss_mib": peak_rss_mib(), "machine": machine_info(),
    }


def print_test_figures(title: str, fig: dict) -> None:
    """Print :func:`test_figures`' dict as aligned lines, one compact line for the per-clip figures."""
    nan = lambda v: "n/a" if v is None or v != v else f"{v:.4f}"  # noqa: E731
    print(f"\n== {title}: {fig['n_clips']} test clips, {fig['n_frames']} frames ({fig['n_anomalous']} anomalous) ==")
    for k, v in fig.items():
        if k.startswith("micro_auc_"):
            what = "all clips" if k == "micro_auc_all" else f"clips {k[len('micro_auc_'):]}"
            print(f"micro AUC, raw scores pooled, {what:<16} {nan(v)}")
    print(f"macro AUC (mean over {fig['n_clips_in_macro']} clips with both classes) {nan(fig['macro_auc'])}")
    print(f"average precision (anomalous = positive)       {nan(fig['average_precision'])}")
    print(f"threshold_ (the model's own)                   {fig['threshold']:.4f}")
    print(f"normal frames above threshold_                 {100 * fig['normal_frames_above_threshold']:.1f}%")
    print(f"anomalous frames above threshold_              {100 * fig['anomalous_frames_above_threshold']:.1f}%")
    if "far_normal_frames" in fig:
        print(f"normal frames > {fig['near_frames']} frames from any anomalous one: {fig['far_normal_frames']}, above threshold_ "
              f"{100 * fig['far_normal_frames_above_threshold']:.1f}%")
    ev = fig.get("events")
    if ev:
        print(f"events at threshold_ ({ev['smoothing']}, {ev['min_frames']} frames open, {ev['gap_frames']} close, "
              f"{ev['fps']:g} fps):")
        print(f"  anomalous stretches detected                 {ev['n_detected']} / {ev['n_stretches']}")
        num = lambda v, f: "n/a" if v is None or v != v else format(v, f)  # noqa: E731
        print(f"  delay to detect, median (mean)               {num(ev['median_delay_seconds'], '.2f')} s "
              f"({num(ev['mean_delay_seconds'], '.2f')} s)")
        print(f"  false alarm events per hour of normal video  {num(ev['false_alarms_per_hour'], '.1f')} "
              f"({ev['n_false_alarm_events']} of {ev['n_events']} events)")
        print(f"  normal frames inside events                  {num(100 * ev['normal_frames_in_events'], '.1f')}%")
    print("per-clip AUC:")
    for n, c in fig["per_clip"].items():
        if c["auc"] is not None:
            print(f"  {n}  {c['auc']:.4f}  ({c['anomalous']}/{c['frames']} anomalous)")
        else:
            print(f"  {n}  n/a ({c['note']}); mean score {c['mean_score']:.4f} = threshold "
                  f"{c['mean_score_minus_threshold']:+.4f}, {100 * c['share_above_threshold']:.0f}% of frames above")
    print("per-clip (compact): " + " ".join(
        f"{n}:{c['auc']:.3f}" if c["auc"] is not None else f"{n}:n/a({c['mean_score_minus_threshold']:+.2f}thr)"
        for n, c in fig["per_clip"].items()))
    print(f"fit time                                       {fig['fit_seconds']:.1f} s ({fig['fit_seconds'] / 60:.1f} min)")
    print(f"scoring speed                                  {fig['score_fps']:.1f} frames/s")
    print(f"peak memory (RSS, getrusage maxrss)            {fig['peak_rss_mib']:.0f} MiB")
    print(f"machine                                        {json.dumps(fig['machine'])}")


def save_json(path, data: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data, indent=2, default=float) + "\n")
    print(f"saved {p}", file=sys.stderr)
