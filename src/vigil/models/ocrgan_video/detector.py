"""The OCR-GAN Video detector: training, calibration on held-out normal frames, scoring, saving.

Scoring, frame by frame (higher = more anomalous): frame ``t`` is scored by the clip that *ends*
at ``t`` (frames ``t-T+1 .. t``); the generator predicts frame ``t`` from the ``T - 1`` before it.
Before the first full clip, and for a video shorter than one clip, the clip is completed by
repeating the video's first frame (so every frame gets a score; the first ``T - 1`` scores rest on
less real context). Three components, each calibrated on normal training frames that training
never saw (the last ``holdout`` of every training video):

* ``rec``: the squared prediction error map (64 x 64);
* ``feat``: the squared distance between the discriminator's (attended) features of the real and
  of the predicted last frame, per grid position;
* ``attention`` (optional, ``attention_weight``, 0 by default): the five attention statistics of
  the real clip per position, z-scored against held-out clips, mean |z| over the five, its maximum.

``pooling`` says how the ``rec`` and ``feat`` maps become numbers. The default, ``"published"``, is
OCR-GAN's published scoring rule, which the design asks for: their plain means. ``"max"`` (the
default until 2026-11-24) and ``"mean"`` first make each map a z-score per location with the
held-out per-location mean and standard deviation (``rec`` also smoothed, Gaussian ``map_sigma``),
then take its maximum or mean. The calibrated ``rec`` map is the anomaly map in every case. The
README gives all three measured, and why the default changed.

Each frame-level component is then normalised with the held-out median and MAD and combined as
``rec_weight x rec + feat_weight x feat + attention_weight x attention`` (the published rule is
0.9 / 0.1), and the curve is smoothed over time (Gaussian, ``score_sigma`` frames).
The clip length is fixed by the checkpoint: the generator's input holds ``clip_len - 1`` frames.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import cv2
import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from vigil import scoring, training
from vigil.detector import Detector, ExportSpec, Input, resolve_device
from vigil.errors import VigilError
from vigil.models.attention import attention_statistics
from vigil.models.ocrgan_video.network import OcrGanVideoModel
from vigil.registry import register

COMPONENTS = ("rec", "feat", "attention")
POOLINGS = ("max", "mean", "published")


@dataclass(frozen=True)
class OcrGanVideoConfig:
    clip_len: int = 8             # frames per clip (8 or 16; any 2..32 works); fixed by the checkpoint
    size: int = 64                # frames are resized to size x size, gray
    blur_sigma: float = 1.0       # low band = Gaussian blur of the frame (pixels at 64 x 64)
    gen_channels: int = 16        # generator width at full resolution (x2 per halving, 3 halvings)
    feat_channels: int = 100      # discriminator feature size C, as in design document 000
    heads: int = 4                # attention heads (4 for C = 100, as in the design document)
    attention: bool = True        # False = the ablation: the discriminator sees the last frame only
    epochs: int = 3               # passes over the training clips; fixed by the CPU budget, see README
    batch_size: int = 8
    lr: float = 2e-4              # Adam, as published
    beta1: float = 0.5
    beta2: float = 0.999
    w_adv: float = 1.0            # published loss weights: adversarial, L1 reconstruction, feature matching
    w_rec: float = 50.0
    w_fm: float = 1.0
    holdout: float = 0.15         # last fraction of every training video: calibration only, never trained on
    rec_weight: float = 0.9       # published scoring rule: 0.9 x reconstruction + 0.1 x feature error
    feat_weight: float = 0.1
    attention_weight: float = 0.0  # extra component from the attention statistics (measured, off by default)
    map_sigma: float = 2.0        # spatial smoothing of calibrated error maps before their max (pixels at 64)
    # how a frame's error maps become its rec and feat numbers: "published", OCR-GAN's rule (the plain
    # mean squared errors), or the "max" or "mean" of the per-location calibrated maps
    pooling: str = "published"
    score_sigma: float = 2.0      # temporal smoothing of the frame scores (frames)
    false_alarm_rate: float = 0.01  # threshold_ gives this rate on held-out normal frames
    seed: int = 0
    guard: bool = True            # frames turned upright, noisy/blurred ones concealed (vigil.data.guard)


class FrameOutputs(NamedTuple):
    """Raw per-frame outputs of the networks for one video of ``N`` frames."""
    rec_map: np.ndarray              # (N, 64, 64) squared prediction error
    feat_map: np.ndarray             # (N, h, w) squared feature distance, real vs predicted last frame
    stats: np.ndarray | None         # (N, h, w, 5) statistics of the real clip's head-averaged attention
    attention: np.ndarray | None     # (N, h, w, nh, T, T) when asked for


class ScoreComponents(NamedTuple):
    rec: np.ndarray        # (N,) each normalised on held-out normal frames
    feat: np.ndarray
    attention: np.ndarray  # NaN-free; zeros when the model has no attention
    combined: np.ndarray   # (N,) the final score, smoothed
    maps: np.ndarray       # (N, 64, 64) calibrated, smoothed reconstruction z-map
    stats: np.ndarray | None


def _to_float(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) / 127.5 - 1.0


def _pad_front(x: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([np.repeat(x[:1], n, axis=0), x]) if n > 0 else x


def _zscore(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    # the floor (median sd) keeps near-constant pixels (static background) from dominating the max
    return (x - mu) / (sd + np.median(sd))


class WindowScorer(torch.nn.Module):
    """Scoring's network pass over a window of consecutive frames, as one module.

    In: ``frames (N, H, W)`` in [-1, 1], ``N >= T``. Out, for the ``B = N - T + 1`` clips that end at
    frames ``T-1 .. N-1`` of the window: ``rec (B, H, W)`` the squared error of the predicted last
    frame, ``feat (B, h, w)`` the squared distance between the discriminator's features of the real
    and of the predicted last frame, and, with temporal attention, ``stats (B, h, w, 5)`` and
    ``attention (B, h, w, nh, T, T)`` of the real clip. Each frame is embedded once per window and
    shared by the clips that contain it. PyTorch scoring calls this module and ``vigil export``
    writes exactly it as the ONNX graph (:mod:`vigil.export`). Clips are cut with constant slice
    bounds (``frames[t : t - T + 1]``), so one graph serves every window length.
    """

    def __init__(self, model: OcrGanVideoModel, clip_len: int):
        super().__init__()
        self.model, self.clip_len = model, clip_len

    def forward(self, frames: torch.Tensor):
        T, D = self.clip_len, self.model.discriminator
        cut = lambda a: torch.stack([a[t:t - T + 1 or None] for t in range(T)], 1)   # noqa: E731  (N, ...) -> (B, T, ...)
        clip = cut(frames)                                                  # (B, T, H, W)
        real_f = cut(D.embed_frames(frames))                                # (B, T, C, h, w)
        out = self.model.predict(clip)
        rec = (out.frame - clip[:, -1]).pow(2)
        fake_f = torch.cat([real_f[:, :-1], D.embed_frames(out.frame)[:, None]], dim=1)
        real, fake = D.from_features(real_f), D.from_features(fake_f)
        feat = (real.features - fake.features).pow(2).mean(1)
        if real.attention is None:
            return rec, feat
        return rec, feat, attention_statistics(real.attention.mean(3)), real.attention


@register
class OcrGanVideo(Detector):
    """OCR-GAN extended to clips, with temporal attention in the discriminator (design document 000).

    ``score(video)`` returns one float per frame, higher = more anomalous.
    """

    name = "ocrgan-video"
    Config = OcrGanVideoConfig
    resumable = True
    onnx_unsupported = None     # exports: WindowScorer is the graph (vigil.export)
    context_frames = 16 + 6   # class-level bound; a fitted model knows its own, see context()
    legacy_settings = {"pooling": "max"}     # runs saved before the setting were calibrated for the max
    ranges = {"size": (8, None), "blur_sigma": (0.0, None), "gen_channels": (1, None),
              "feat_channels": (1, None), "heads": (1, None), "epochs": (1, None), "batch_size": (1, None),
              "lr": (0.0, None), "beta1": (0.0, 1.0), "beta2": (0.0, 1.0), "w_adv": (0.0, None), "w_rec": (0.0, None),
              "w_fm": (0.0, None), "holdout": (0.0, 1.0), "map_sigma": (0.0, None), "score_sigma": (0.0, None),
              "false_alarm_rate": (0.0, 1.0), "seed": (0, None)}

    def context(self) -> int:
        """Live history per score: one full clip for the newest frame, plus the past that the
        temporal smoothing (Gaussian, ``score_sigma``) reaches within 3 sigma."""
        return self.config.clip_len + int(math.ceil(3 * self.config.score_sigma))

    # --- building -------------------------------------------------------------------------------
    def _check_settings(self) -> None:
        cfg = self.config
        if not 2 <= cfg.clip_len <= 32:
            raise VigilError(f"{self.name}: clip_len {cfg.clip_len} is not supported (use 8 or 16; at most 32)")
        if cfg.pooling not in POOLINGS:
            raise VigilError(f"{self.name}: pooling '{cfg.pooling}' is not one of {', '.join(POOLINGS)}")

    def _build(self) -> OcrGanVideoModel:
        self.model_ = OcrGanVideoModel(self.config).to(resolve_device(self.device))
        return self.model_

    def _input(self, frame_size=None) -> Input:
        """``(size, size)`` gray frames (64 x 64 by default)."""
        return Input((self.config.size, self.config.size), gray=True)

    # --- training -------------------------------------------------------------------------------
    def _fit(self, frames: list[np.ndarray], *, checkpoint_dir=None, resume: bool = False,
             checkpoint_every: float | None = 600.0) -> None:
        """Train generator and discriminator on clips of normal videos, calibrate on their held-out
        ends (:func:`vigil.training.fit_loop`: ``checkpoint_dir`` / ``resume`` / ``checkpoint_every``;
        under torchrun the gradients of each network are averaged across processes, rank 0 calibrates)."""
        cfg, T = self.config, self.config.clip_len
        dev = resolve_device(self.device)
        model = self._build()
        train_parts, cal_parts = self._split([_to_float(f) for f in frames])
        index = [(i, s) for i, x in enumerate(train_parts) for s in range(len(x) - T + 1)]
        if not index:
            raise VigilError(f"{self.name}: every training video is shorter than one clip of {T} frames "
                             f"({', '.join(str(len(f)) for f in frames[:5])} frames); use a shorter clip_len or "
                             f"longer videos")
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        rng = np.random.default_rng(cfg.seed)

        def step(chunk, mine):
            # one forward pass (model.losses) feeds both losses: G's, then D's (the loop steps G first)
            if mine is None:
                return None
            clip = torch.from_numpy(np.stack([train_parts[i][s:s + T] for i, s in (index[j] for j in mine)])).to(dev)
            losses, _ = model.losses(clip)                               # clip (B, T, H, W)
            return [losses.g, losses.d], {"g": losses.g.item(), "d": losses.d.item(), "rec": losses.rec.item()}

        objective = training.Objective({"model": model}, {"opt_g": opt_g, "opt_d": opt_d}, step)
        self.train_seconds_ = training.fit_loop(self, objective, samples=len(index), epochs=cfg.epochs,
                                                batch_size=cfg.batch_size, shuffle=rng, drop_last=True,
                                                checkpoint_dir=checkpoint_dir, resume=resume,
                                                checkpoint_every=checkpoint_every)
        self.steps_ = cfg.epochs * max(1, len(index) // cfg.batch_size)
        if training.is_main():                          # the others receive rank 0's calibration
            self._calibrate(cal_parts)

    def _split(self, videos: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[tuple[np.ndarray, int]]]:
        """Each video's frames to train on, and ``(frames, first held-out index)`` for calibration: the
        last ``holdout`` of every video long enough to keep a whole clip for training; when no video is,
        every frame after the first clip's context (calibrating on trained frames: optimistic)."""
        lengths = [len(x) for x in videos]
        train = [x[:n - t] for x, n, t in zip(videos, lengths, self._tails(lengths))]
        return train, [(videos[i], s) for i, s in self.calibration_starts(lengths)]

    def _tails(self, lengths: Sequence[int]) -> list[int]:
        """How many frames at the end of each video of these lengths are held out (0: too short)."""
        return [scoring.held_out_tail(n, self.config.holdout, keep=self.config.clip_len) for n in lengths]

    def calibration_starts(self, lengths: Sequence[int]) -> list[tuple[int, int]]:
        """``(video index, first calibration frame)`` for videos of these lengths (see :meth:`_split`): the
        held-out tail of each video long enough for one; when none is, ``clip_len - 1`` of every video."""
        held = [(i, n - t) for i, (n, t) in enumerate(zip(lengths, self._tails(lengths))) if t]
        return held or [(i, self.config.clip_len - 1) for i in range(len(lengths))]

    def recalibrate(self, videos) -> "OcrGanVideo":
        """Calibrate again on the held-out ends of the training ``videos`` without retraining, e.g. after
        changing ``pooling`` (the networks are unchanged). Returns ``self``."""
        self._check_fitted()
        self._calibrate(self._split([_to_float(self.frames_of(v)[0]) for v in videos])[1])
        return self

    def _calibrate(self, parts: list[tuple[np.ndarray, int]]) -> None:
        """Per-location and per-component statistics from normal frames the networks did not train on."""
        outs = [self._infer(x, start=s) for x, s in parts]
        rec = np.concatenate([o.rec_map for o in outs])
        feat = np.concatenate([o.feat_map for o in outs])
        self.rec_mu_, self.rec_sd_ = rec.mean(0), rec.std(0)
        self.feat_mu_, self.feat_sd_ = feat.mean(0), feat.std(0)
        h, w = feat.shape[1:]
        if outs[0].stats is not None:
            st = np.concatenate([o.stats for o in outs])
            self.att_mu_, self.att_sd_ = st.mean(0), st.std(0)
        else:
            self.att_mu_, self.att_sd_ = np.zeros((h, w, 5), np.float32), np.ones((h, w, 5), np.float32)
        raws = [self._raw_components(o) for o in outs]
        comps = np.stack([np.concatenate([r[k] for r in raws]) for k in COMPONENTS], 1)  # (N, 3)
        self.comp_med_, self.comp_scale_ = scoring.robust_stats(comps, axis=0)
        self.n_calibration_frames_ = int(len(rec))
        held = np.concatenate([self._combine(r, o.stats is not None) for r, o in zip(raws, outs)])
        self.threshold_ = scoring.threshold(held, self.config.false_alarm_rate)

    def _fuse(self, raw: dict[str, np.ndarray], has_stats: bool) -> np.ndarray:
        """Per-frame scores before temporal smoothing: the normalised components, weighted."""
        cfg = self.config
        norm = self._normalise(raw)
        fused = cfg.rec_weight * norm["rec"] + cfg.feat_weight * norm["feat"]
        if cfg.attention_weight and has_stats:
            fused = fused + cfg.attention_weight * norm["attention"]
        return fused

    def _combine(self, raw: dict[str, np.ndarray], has_stats: bool) -> np.ndarray:
        """The final score of a run of frames: :meth:`_fuse`, smoothed over time."""
        return scoring.gaussian_smooth(self._fuse(raw, has_stats), self.config.score_sigma)

    def _normalise(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: (raw[k] - self.comp_med_[i]) / self.comp_scale_[i] for i, k in enumerate(COMPONENTS)}

    # --- inference ------------------------------------------------------------------------------
    def _scoring_network(self):
        """Scoring's one network call, a :class:`WindowScorer` over the model, or, for a detector
        loaded from a ``.onnx`` file, the ONNX Runtime session that stands in for it (:mod:`vigil.export`)."""
        if self._runtime is not None:
            return self._runtime
        return WindowScorer(self.model_, self.config.clip_len).eval()

    @torch.inference_mode()
    def _infer(self, x: np.ndarray, start: int = 0, keep_attention: bool = False, batch: int = 32) -> FrameOutputs:
        """Outputs for frames ``start ..`` of ``x`` (N, H, W) float; earlier frames serve as context only."""
        T = self.config.clip_len
        dev = resolve_device(self.device)
        network = self._scoring_network()
        n_pad = max(0, T - 1 - start)
        xp = torch.from_numpy(_pad_front(x, n_pad)).to(dev)           # (N', H, W)
        first = start + n_pad                                          # index in xp of the first scored frame
        rec, fmap, stats, atts = [], [], [], []
        for b0 in range(first, len(xp), batch):
            out = network(xp[b0 - T + 1:b0 + batch])                   # the clips ending at b0 .. b0 + batch - 1
            rec.append(out[0].cpu().numpy())
            fmap.append(out[1].cpu().numpy())
            if len(out) > 2:
                stats.append(out[2].cpu().numpy())                    # (B, h, w, 5)
                if keep_attention:
                    atts.append(out[3].cpu().numpy())
        return FrameOutputs(np.concatenate(rec), np.concatenate(fmap),
                            np.concatenate(stats) if stats else None,
                            np.concatenate(atts) if atts else None)

    def _export_spec(self) -> ExportSpec:
        """The module ``vigil export`` writes: :class:`WindowScorer`, a window of frames of any length >= T."""
        cfg = self.config
        example = torch.rand(cfg.clip_len + 3, cfg.size, cfg.size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        outputs = ["rec", "feat"] + (["stats", "attention"] if cfg.attention else [])
        module = WindowScorer(copy.deepcopy(self.model_).cpu(), cfg.clip_len).eval()   # a copy: the run stays put
        return ExportSpec(module, (example,), ["frames"], outputs,
                          {"frames": {0: "frames"}, **{n: {0: "clips"} for n in outputs}})

    def _raw_components(self, o: FrameOutputs) -> dict[str, np.ndarray]:
        z = _zscore(o.rec_map, self.rec_mu_, self.rec_sd_)
        s = self.config.map_sigma
        zs = gaussian_filter(z, sigma=(0, s, s), mode="nearest") if s > 0 else z
        fz = _zscore(o.feat_map, self.feat_mu_, self.feat_sd_)
        if o.stats is not None:
            az = np.abs((o.stats - self.att_mu_) / (self.att_sd_ + 1e-6)).mean(-1)    # (N, h, w)
            att = az.reshape(len(az), -1).max(1)
        else:
            att = np.zeros(len(z), np.float32)
        pool = self.config.pooling
        if pool == "published":                   # OCR-GAN's rule: plain mean squared errors
            rec, feat = o.rec_map.reshape(len(z), -1).mean(1), o.feat_map.reshape(len(z), -1).mean(1)
        else:
            reduce = np.max if pool == "max" else np.mean
            rec, feat = reduce(zs.reshape(len(zs), -1), 1), reduce(fz.reshape(len(fz), -1), 1)
        return {"rec": rec, "feat": feat, "attention": att, "_map": zs}

    def score_components(self, video) -> ScoreComponents:
        """Every score component of every frame, normalised, and the combined, smoothed score."""
        self._check_fitted()
        return self._components(self.frames_of(video)[0])

    def _components(self, frames: np.ndarray) -> ScoreComponents:
        o = self._infer(_to_float(frames))
        raw = self._raw_components(o)
        norm = self._normalise(raw)
        combined = self._combine(raw, o.stats is not None)
        return ScoreComponents(norm["rec"], norm["feat"], norm["attention"], combined, raw["_map"], o.stats)

    def _score(self, frames: np.ndarray) -> np.ndarray:
        """One score per frame, ``(T,)``; higher = more anomalous."""
        return self._components(frames).combined.astype(np.float64)

    def _score_maps(self, frames: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(T,)`` and the calibrated prediction-error maps ``(T, H, W)`` at the frame's resolution."""
        c = self._components(frames)
        H, W = frame_size
        maps = np.stack([cv2.resize(m, (W, H), interpolation=cv2.INTER_LINEAR) for m in c.maps]).astype(np.float32)
        return c.combined.astype(np.float64), maps

    def _live(self, maps: bool) -> "OcrGanStream":
        """Live scoring that runs one clip per new frame (:class:`OcrGanStream`)."""
        return OcrGanStream(self, maps=maps)

    def clip_attention(self, video) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
        """Attention of the real (input) clips of a video, cut into consecutive clips of ``clip_len``.

        Returns ``[(first, last)]`` frame ranges (a short video gives one clip, front-padded with its
        first frame, and a last partial clip is replaced by the clip that ends at the last frame),
        the weights ``(K, h, w, nh, T, T)`` and the frame scores ``(N,)``.
        """
        self._check_fitted()
        if not self.config.attention:
            raise VigilError(f"{self.name}: this run was trained without temporal attention (attention=False); "
                             f"there is nothing to explain")
        frames = self.frames_of(video)[0]
        x, T = _to_float(frames), self.config.clip_len
        ends = sorted(set(list(range(T - 1, len(x), T)) + [len(x) - 1]))
        o = self._infer(x, keep_attention=True)
        ranges = [(max(0, e - T + 1), e) for e in ends]
        return ranges, o.attention[ends], self._score(frames)

    # --- saving ---------------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"model.{k}": v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        arrays.update(self._calibration_arrays())
        return arrays

    def _calibration_arrays(self) -> dict[str, np.ndarray]:
        return {f"calib.{k}": np.asarray(getattr(self, k), np.float32) for k in
                ("rec_mu_", "rec_sd_", "feat_mu_", "feat_sd_", "att_mu_", "att_sd_", "comp_med_", "comp_scale_")}

    def _fitted_meta(self) -> dict:
        return {"clip_len": self.config.clip_len, "steps": getattr(self, "steps_", None),
                "train_seconds": getattr(self, "train_seconds_", None),
                "calibration_frames": getattr(self, "n_calibration_frames_", None), "threshold": self.threshold_}

    def _load_state_arrays(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        if fitted.get("clip_len", self.config.clip_len) != self.config.clip_len:
            raise ValueError(f"config says clip_len {self.config.clip_len}, weights were trained with {fitted['clip_len']}")
        model = self._build()
        state = {k[len("model."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("model.")}
        model.load_state_dict(state, strict=True)
        model.eval()
        self._load_calibration(arrays, fitted)

    def _load_calibration(self, arrays: dict[str, np.ndarray], fitted: dict) -> None:
        for k, v in arrays.items():
            if k.startswith("calib."):
                setattr(self, k[len("calib."):], np.array(v))
        for k in ("rec_mu_", "comp_med_", "comp_scale_"):
            if not hasattr(self, k):
                raise KeyError(f"calib.{k}")
        self.steps_, self.train_seconds_ = fitted.get("steps"), fitted.get("train_seconds")
        self.threshold_ = float(fitted["threshold"])

    @classmethod
    def load(cls, path, *, device: str = "cpu", clip_len: int | None = None) -> "OcrGanVideo":
        """Load a run; ``clip_len`` (e.g. from ``--clip-len``) must match the one it was trained with."""
        det = super().load(path, device=device)
        check_clip_len(det, clip_len, path)
        return det


def check_clip_len(det: Detector, clip_len: int | None, path="run") -> None:
    """A clear error when a user asks for another clip length than the checkpoint's (``None`` = no request)."""
    if clip_len is None or getattr(det, "name", None) != OcrGanVideo.name:
        return
    if clip_len != det.config.clip_len:
        raise VigilError(f"{path}: this checkpoint was trained with clip_len {det.config.clip_len}; it cannot "
                         f"score with --clip-len {clip_len} (its generator reads {det.config.clip_len - 1} "
                         f"frames); leave --clip-len out or train a new run with --clip-len {clip_len}")


class OcrGanStream:
    """Live state, one network pass per frame: the clip that ends at the new frame.

    State: the last ``clip_len`` frames (at 64 x 64, prepared and guarded by
    :class:`~vigil.detector.LiveStream`) and the unsmoothed scores of the frames that the temporal
    smoothing reaches (``context() - clip_len + 1``). Before ``clip_len`` frames have arrived the
    first frame stands in for the missing past, as in batch scoring. ``update(x, frame_size)``
    returns the frame's score — the Gaussian smoothing of the batch score, applied to the past alone
    (it cannot look ahead) — and, with ``maps``, the calibrated prediction-error map at ``frame_size``.
    """

    def __init__(self, det: OcrGanVideo, maps: bool = False):
        from collections import deque

        T = det.config.clip_len
        self.det, self.maps = det, maps
        self.frames: deque = deque(maxlen=T)
        self.fused: deque = deque(maxlen=det.context() - T + 1)

    def reset(self) -> None:
        self.frames.clear()
        self.fused.clear()

    def update(self, small: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, np.ndarray | None]:
        det = self.det
        x = _to_float(small)
        if not self.frames:                         # no past yet: the first frame repeated
            self.frames.extend([x] * (self.frames.maxlen - 1))
        self.frames.append(x)
        T = len(self.frames)
        o = det._infer(np.stack(self.frames), start=T - 1)        # the one clip ending at this frame
        raw = det._raw_components(o)
        self.fused.append(float(det._fuse(raw, o.stats is not None)[0]))
        score = float(scoring.gaussian_smooth(np.asarray(self.fused), det.config.score_sigma)[-1])
        if not self.maps:
            return score, None
        H, W = frame_size
        return score, cv2.resize(raw["_map"][0], (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
