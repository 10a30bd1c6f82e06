"""Explain OCR-GAN Video scores with the discriminator's temporal attention (``vigil explain``).

For the **first** video that ``data`` names (a video file, a folder of frames, or a dataset, whose
first test video is used), the video is cut into consecutive clips of ``clip_len`` frames (a last
partial clip is replaced by the clip ending at the last frame; a video shorter than one clip gives
one clip front-padded with its first frame, as in scoring). The attention shown is that of the
*input* clip: the discriminator's per-frame features of the real frames, through its temporal
attention. For every clip the output folder gets

* ``clip_NNN_attention.png``: the T x T matrix of each head at the chosen grid position, their
  mean, and the same averaged over all positions (row i = where frame i looks);
* ``clip_NNN_statistics.png``: the five statistics of design document 000 per grid position, as
  maps laid over the clip's last frame;

and ``explanation.json`` holds the numbers: the matrices, the statistics per position and their
means, each frame's top-3 attended frames (from the head- and position-averaged matrix, as frame
numbers of the video, 0-based), and the frame scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.data import open_videos
from vigil.errors import VigilError
from vigil.io import atomic_write, write_json
from vigil.models.attention import STAT_NAMES, attention_statistics, top_attended

STAT_TITLES = ("mean self-attention", "local (|i-j|=1)", "long-range (|i-j|>2)", "entropy", "temporal consistency")


def _save_figure(fig, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=90, bbox_inches="tight")


def _attention_figure(at_pos: np.ndarray, over_pos: np.ndarray, frames: list[int], position, path: Path) -> None:
    from matplotlib.figure import Figure

    nh, T = at_pos.shape[0], at_pos.shape[-1]
    fig = Figure(figsize=(2.6 * (nh + 1), 5.2), layout="constrained")
    ticks = list(range(T))
    labels = [str(f) for f in frames]
    rows = [(at_pos, f"position {position}"), (over_pos, "mean over positions")]
    for r, (mats, where) in enumerate(rows):
        for c in range(nh + 1):
            ax = fig.add_subplot(2, nh + 1, r * (nh + 1) + c + 1)
            m = mats[c] if c < nh else mats.mean(0)
            im = ax.imshow(m, vmin=0, vmax=max(1e-6, float(m.max())), cmap="viridis")
            ax.set_title(f"{'head ' + str(c) if c < nh else 'all heads'}\n{where}", fontsize=7)
            step = max(1, T // 8)
            ax.set_xticks(ticks[::step], labels[::step], fontsize=6)
            ax.set_yticks(ticks[::step], labels[::step], fontsize=6)
            ax.set_xlabel("attended frame", fontsize=6)
            if c == 0:
                ax.set_ylabel("frame", fontsize=6)
            fig.colorbar(im, ax=ax, fraction=0.046).ax.tick_params(labelsize=6)
    _save_figure(fig, path)


def _statistics_figure(stats: np.ndarray, frame: np.ndarray, title: str, path: Path) -> None:
    from matplotlib.figure import Figure

    H, W = frame.shape[:2]
    fig = Figure(figsize=(3.4 * 5, 3.0), layout="constrained")
    for i, name in enumerate(STAT_TITLES):
        ax = fig.add_subplot(1, 5, i + 1)
        ax.imshow(frame, cmap="gray", extent=(0, W, H, 0))
        im = ax.imshow(stats[..., i], cmap="magma", alpha=0.6, extent=(0, W, H, 0), interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
        cb = fig.colorbar(im, ax=ax, fraction=0.046)
        cb.formatter.set_useOffset(False)
        cb.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=9)
    _save_figure(fig, path)


def explain_video(run: Path, data: Path, out: Path, *, position: tuple[int, int] | None = None,
                  device: str = "cpu") -> Path:
    """Write attention pictures and ``explanation.json`` for the first video of ``data``; returns the JSON path.

    ``position`` is ``(row, col)`` on the discriminator's feature grid (8 x 8 at 64 x 64 input);
    by default the grid centre.
    """
    from vigil.detector import Detector

    run, data, out = Path(run), Path(data), Path(out)
    det = Detector.load(run, device=device)
    if not hasattr(det, "clip_attention"):
        raise VigilError(f"{run}: a '{det.name}' run has no temporal attention to explain (use an ocrgan-video run)")
    videos = open_videos(data)
    video = videos[0]
    ranges, att, scores = det.clip_attention(video)        # att: (K, h, w, nh, T, T)
    K, h, w, nh, T = att.shape[:5]
    if position is None:
        position = (h // 2, w // 2)
    ph, pw = position
    if not (0 <= ph < h and 0 <= pw < w):
        raise VigilError(f"--position {ph},{pw}: outside the {h} x {w} attention grid (rows and columns 0..{h - 1})")
    full = video.frames(gray=True)                          # (N, H, W) for the overlays
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for k, (first, last) in enumerate(ranges):
        frames = [max(0, last - T + 1 + j) for j in range(T)]   # padded positions repeat frame 0
        stats = attention_statistics(att[k].mean(axis=-3))      # (h, w, 5) of the head-averaged matrices
        over = att[k].mean(axis=(0, 1))                         # (nh, T, T)
        top = top_attended(over.mean(0), 3)                     # (T, 3) indices within the clip
        a_png, s_png = out / f"clip_{k:03d}_attention.png", out / f"clip_{k:03d}_statistics.png"
        _attention_figure(att[k, ph, pw], over, frames, (ph, pw), a_png)
        _statistics_figure(stats, full[last], f"{video.name}, clip {k}: frames {first}-{last} "
                           f"(statistics per grid position, head-averaged attention)", s_png)
        clips.append({
            "index": k, "first_frame": first, "last_frame": last, "padded_frames": T - (last - first + 1),
            "frames": frames,
            "attention_at_position": att[k, ph, pw].round(5),
            "attention_mean_over_positions": over.round(5),
            "statistics_per_position": {n: stats[..., i].round(5) for i, n in enumerate(STAT_NAMES)},
            "statistics_mean": {n: float(np.nanmean(stats[..., i])) for i, n in enumerate(STAT_NAMES)},
            "statistics_at_position": {n: float(stats[ph, pw, i]) for i, n in enumerate(STAT_NAMES)},
            "top3_attended_frames": {str(frames[i]) if frames.count(frames[i]) == 1 else f"{frames[i]}@{i}":
                                     [frames[j] for j in top[i]] for i in range(T)},
            "pictures": [a_png.name, s_png.name],
        })
    path = out / "explanation.json"
    write_json(path, {
        "run": str(run), "model": det.name, "video": video.name, "source": str(video.source or data),
        "videos_in_data": len(videos), "explained": "first video only", "clip_len": T, "heads": nh,
        "grid": [h, w], "position": [ph, pw], "statistic_names": list(STAT_NAMES),
        "attention_of": "input clip (real frames), discriminator features after the temporal attention's softmax",
        "frame_scores": np.asarray(scores).round(5), "clips": clips,
    })
    return path
