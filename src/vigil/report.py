"""A self-contained HTML report of a run on a dataset: metrics, curves, frames, settings.

Every picture is a PNG embedded as a data URI, so the page opens offline from one file. A small
script marks the page ``data-ready`` once every picture has decoded (and records any script
error), which is what the headless-browser test reads.
"""

from __future__ import annotations

import base64
import html
import io
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from vigil.data import load_dataset  # noqa: E402
from vigil.errors import VigilError  # noqa: E402
from vigil.evaluate import pixel_auc  # noqa: E402
from vigil.io import atomic_write  # noqa: E402
from vigil.maps import overlay  # noqa: E402
from vigil.metrics import frame_metrics  # noqa: E402
from vigil.detector import machine_info  # noqa: E402


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return _data_uri(buf.getvalue())


def _png_array(img: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return _data_uri(buf.tobytes())


def _curves(y: np.ndarray, s: np.ndarray) -> tuple[str, str]:
    fpr, tpr, _ = roc_curve(y, s)
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot(fpr, tpr, lw=2)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (raw scores, all frames)")
    roc = _png(fig)
    p, r, _ = precision_recall_curve(y, s)
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot(r, p, lw=2, c="tab:orange")
    ax.axhline(y.mean(), ls="--", c="grey", lw=1)
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall (anomalous = positive)")
    return roc, _png(fig)


def _timeline(name: str, s: np.ndarray, y: np.ndarray | None, threshold: float | None) -> str:
    fig, ax = plt.subplots(figsize=(9, 2.2))
    t = np.arange(1, len(s) + 1)
    if y is not None:
        ax.fill_between(t, 0, 1, where=y.astype(bool), color="tab:red", alpha=0.18,
                        transform=ax.get_xaxis_transform(), step="mid", label="labelled anomalous")
    ax.plot(t, s, lw=1.5, label="score")
    if threshold is not None:
        ax.axhline(threshold, c="k", ls="--", lw=1, label=f"alert threshold {threshold:.2f}")
    ax.set(xlabel="frame", ylabel="score", title=f"video {name}", xlim=(1, max(len(s), 2)))
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _png(fig)


def _explain_images(run: Path, video_source: Path, device: str) -> list[str]:
    try:
        from vigil.explain import explain_video
    except ImportError:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        explain_video(run, video_source, Path(tmp), device=device)
        return [_data_uri(p.read_bytes()) for p in sorted(Path(tmp).rglob("*.png"))[:6]]


def build_report(run: str | Path, data: str | Path, out: str | Path, *, device: str = "cpu",
                 top_frames: int = 6, progress: bool = True) -> Path:
    """Score ``data``'s test videos with the model in ``run`` and write one HTML page to ``out``."""
    from vigil.detector import Detector

    run, out = Path(run), Path(out)
    det = Detector.load(run, device=device)
    ds = load_dataset(data)
    if not ds.test:
        raise VigilError(f"{data}: no test videos to report on")
    scores, maps, labels = [], [], []
    for v in tqdm(ds.test, desc="report", unit="video", disable=not progress):
        s, m = det.score_maps(v)
        scores.append(s)
        maps.append(m)
        labels.append(v.labels)
    threshold = getattr(det, "threshold_", None)
    metrics_rows, curves = [], []
    if ds.has_labels:
        m = frame_metrics(scores, labels)
        metrics_rows = [("micro AUC (raw scores, all frames pooled)", m.micro_auc),
                        ("micro AUC (per-video min-max normalised)", m.micro_auc_video_norm),
                        (f"macro AUC ({m.n_videos_in_macro} videos with both classes)", m.macro_auc),
                        ("average precision", m.average_precision), ("equal error rate", m.eer)]
        masks = [v.masks() for v in ds.test]
        if all(k is not None for k in masks):
            metrics_rows.append(("pixel AUC (every pixel pooled)", pixel_auc(maps, masks)))
        y, s = np.concatenate(labels), np.concatenate(scores)
        if threshold is not None:
            alarm = s > threshold
            metrics_rows += [("alerts on normal frames at threshold_", float(alarm[y == 0].mean())),
                             ("anomalous frames alerted at threshold_", float(alarm[y == 1].mean()))]
        curves = _curves(y, s)
    timelines = [_timeline(v.name, s, v.labels, threshold) for v, s in zip(ds.test, scores)]
    flat = [(s[t], i, t) for i, s in enumerate(scores) for t in range(len(s))]
    tops = []
    for sc, i, t in sorted(flat, reverse=True)[:top_frames]:
        v = ds.test[i]
        tops.append((f"video {v.name}, frame {t + 1}: score {sc:.2f}"
                     + (" (labelled anomalous)" if v.labels is not None and v.labels[t] else ""),
                     _png_array(overlay(v.frames()[t], maps[i][t]))))
    explain = _explain_images(run, ds.test[0].source, device) if det.name == "ocrgan-video" else []
    cfg = json.loads((run / "config.json").read_text())
    page = _html(det.name, run, ds.describe(), metrics_rows, curves, timelines, tops, explain, cfg)
    with atomic_write(out) as f:
        f.write(page)
    return out


def _img(src: str, alt: str, width: str = "100%") -> str:
    return f'<img src="{src}" alt="{html.escape(alt)}" style="max-width:{width}">'


def _html(model, run, dataset, rows, curves, timelines, tops, explain, cfg) -> str:
    e = html.escape
    table = "".join(f"<tr><td>{e(k)}</td><td>{v:.4f}</td></tr>" for k, v in rows)
    parts = [f"<h1>vigil report: {e(model)}</h1>",
             f"<p>run <code>{e(str(run))}</code><br>{e(dataset)}</p>"]
    if rows:
        parts.append(f"<h2>Metrics</h2><table>{table}</table>")
    if curves:
        parts.append("<h2>Curves</h2><div class=row>" + "".join(_img(c, "curve", "48%") for c in curves) + "</div>")
    parts.append("<h2>Scores over time</h2><p>Shaded: frames labelled anomalous. Dashed: the alert threshold "
                 "(calibrated on held-out normal frames).</p>" + "".join(_img(t, "timeline") for t in timelines))
    parts.append("<h2>Most anomalous frames</h2><div class=grid>" + "".join(
        f"<figure>{_img(src, cap)}<figcaption>{e(cap)}</figcaption></figure>" for cap, src in tops) + "</div>")
    if explain:
        parts.append("<h2>Temporal attention (first test video)</h2><div class=grid>"
                     + "".join(f"<figure>{_img(src, 'attention')}</figure>" for src in explain) + "</div>")
    parts.append("<h2>Settings</h2><pre>" + e(json.dumps(cfg.get("config", {}), indent=1, sort_keys=True)) + "</pre>")
    parts.append("<h2>Machine</h2><pre>" + e(json.dumps({"trained on": cfg.get("machine"),
                                                           "report made on": machine_info()}, indent=1)) + "</pre>")
    script = ("<script>window.__errors=[];window.addEventListener('error',function(ev){window.__errors.push("
              "String(ev.message))});window.addEventListener('load',function(){var imgs=document.images,ok=0;"
              "for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0)ok++;}"
              "document.body.setAttribute('data-images',ok+'/'+imgs.length);"
              "document.body.setAttribute('data-errors',String(window.__errors.length));"
              "document.body.setAttribute('data-ready','1');});</script>")
    style = ("<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse}td{border-bottom:1px solid #ddd;padding:4px 12px}"
             ".grid{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}figure{margin:0}"
             "figcaption{font-size:12px;color:#555}pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}"
             ".row img{margin-right:2%}</style>")
    return (f"<!doctype html><html><head><meta charset=utf-8><title>vigil report: {e(model)}</title>{style}"
            f"{script}</head><body>{''.join(parts)}</body></html>\n")
