"""True Sight, the detector: settings, the training step, calibration and scores (design document 004).

Shapes: ``T`` frames of a video, ``B`` frames in a batch, ``S`` the square input side (96 at the
design scale). The networks are in ``network.py``. Training minimises
``(error * (1 + attention)).mean()`` at a random inference scale per batch. Scoring reconstructs
each frame at five scales (:class:`~vigil.models.truesight.network.MultiScaleMaps`), turns the
error into seven per-frame components, normalises each against normal frames held out of
training, fuses them with the design weights and smooths over time (adaptive median).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vigil import scoring, training
from vigil.detector import Detector, ExportSpec, Input, resolve_device
from vigil.errors import VigilError
from vigil.models.truesight.network import MultiScaleMaps, TrueSightNet, fold_batchnorm
from vigil.registry import register

COMPONENTS = ("l1", "l2", "max", "attention", "std", "frequency", "peak")


@dataclass(frozen=True)
class TrueSightConfig:
    size: int = 96                                  # design input size (square)
    enc_channels: tuple = (32, 64, 128, 128)
    dropout: tuple = (0.45, 0.40, 0.35, 0.35)       # "high dropout: 0.45-0.35"
    bottleneck: int = 32
    heads: int = 3
    # Five inference scales as input sizes: multiples of 16 so the 4 stride-2 stages stay exact. A
    # scale costs its side squared; the default is the largest run of five that holds the design size
    # 96 and keeps scoring at 100 frames/s on 2 CPU cores (48-112 does, ONNX Runtime; 64-128, the
    # default until 2026-11-24, costs 1.4x as much and does not). Chosen for speed, see the README.
    scales: tuple = (48, 64, 80, 96, 112)
    weights: tuple = (0.26, 0.22, 0.21, 0.15, 0.08, 0.06, 0.02)   # order of COMPONENTS
    epochs: int = 25
    batch_size: int = 64
    lr: float = 1e-3
    calib_fraction: float = 0.2     # share of training videos held out to calibrate scores
    smooth_min: int = 3             # adaptive median window bounds (frames)
    smooth_max: int = 9
    false_alarm_rate: float = 0.01  # threshold_ gives this rate on held-out normal frames
    seed: int = 0
    guard: bool = True              # frames turned upright, noisy/blurred ones concealed (vigil.data.guard)


def frame_components(e1, e2, att, freq, mu1, sd1, mu2, sd2) -> np.ndarray:
    """The seven components per frame from error maps calibrated per location.

    ``z = (e - mu) / sd`` uses per-pixel statistics of normal held-out frames: a fixed camera makes
    some places (textured ground, edges) always hard to reconstruct, and calibration stops them
    from looking anomalous. Returns ``(B, 7)`` in the order of ``COMPONENTS``.
    """
    z1 = (e1 - mu1) / sd1
    z2 = (e2 - mu2) / sd2
    local = F.avg_pool2d(z1[:, None], 7, stride=1, padding=3)[:, 0]       # blob-sized peaks
    w = att / att.sum((1, 2), keepdim=True).clamp_min(1e-8)
    comps = [
        z1.mean((1, 2)),                                                  # l1
        z2.mean((1, 2)),                                                  # l2
        local.flatten(1).amax(1),                                         # max
        (w * z1).sum((1, 2)),                                             # attention-weighted error
        z1.flatten(1).std(1),                                             # std (texture of the error)
        freq,                                                             # frequency
        z2.flatten(1).amax(1),                                            # peak (single-pixel spike)
    ]
    return torch.stack(comps, 1).cpu().numpy().astype(np.float64)


def pixel_stats(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and standard deviation of normal error ``(N, S, S)``.

    Not median/MAD: people cover any one pixel less than half the time, so a median describes the
    empty background and every normal walker would look anomalous. Mean and spread include the
    error of normal activity at that place. The spread is floored at its mean over the frame:
    calibration may discount places that are normally hard to reconstruct, but never makes a place
    that the held-out footage happened to leave quiet hypersensitive (a few held-out videos do not
    cover every place where normal people walk).
    """
    # a light spatial blur (sigma 2 px at 96x96): a walker a few pixels off a normal path is normal
    mu = cv2.GaussianBlur(e.mean(0), (0, 0), 2)
    sd = cv2.GaussianBlur(e.std(0), (0, 0), 2)
    return mu.astype(np.float32), np.maximum(sd, sd.mean() + 1e-6).astype(np.float32)


# --- the detector -------------------------------------------------------------------------------

@register
class TrueSight(Detector):
    """Frame autoencoder with multi-head spatial attention. Higher score = more anomalous."""

    name = "truesight"
    Config = TrueSightConfig
    resumable = True
    onnx_unsupported = None     # exports: MultiScaleMaps is the graph (vigil.export)
    ranges = {"enc_channels": (1, None), "dropout": (0.0, 1.0), "bottleneck": (1, None), "heads": (1, 5),
              "epochs": (1, None), "batch_size": (1, None), "lr": (0.0, None), "calib_fraction": (0.0, 1.0),
              "smooth_min": (1, None), "smooth_max": (1, None), "false_alarm_rate": (0.0, 1.0), "seed": (0, None)}

    def _input(self, frame_size=None) -> Input:
        """``(S, S)`` RGB frames; gray footage is detected at fit and read as one channel x3."""
        return Input((self.config.size, self.config.size), gray=False)

    def _frames(self, frames: np.ndarray) -> np.ndarray:
        """``(T, S, S, 3)`` uint8 -> ``(T, 3, S, S)`` float32 in [0, 1]; gray footage (or a gray-trained
        model) uses one channel x3."""
        s = self.config.size
        f = frames
        if self.gray_:
            f = np.repeat(cv2.cvtColor(f.reshape(-1, s, 3), cv2.COLOR_RGB2GRAY).reshape(len(f), s, s, 1), 3, -1)
        return np.ascontiguousarray(f.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0

    def _check_settings(self) -> None:
        """One clear line for settings the network cannot take."""
        cfg = self.config
        scales = cfg.scales if isinstance(cfg.scales, (tuple, list)) else ()
        sides = (cfg.size, *scales)
        if not scales or any(not isinstance(s, int) or s < 16 or s % 16 for s in sides):
            raise VigilError(f"truesight: size {cfg.size} and scales {cfg.scales} must be multiples of 16 "
                             f"(the network halves each side four times), at least 16, and scales not empty")
        if not isinstance(cfg.weights, (tuple, list)) or len(cfg.weights) != len(COMPONENTS):
            raise VigilError(f"truesight: weights {cfg.weights} must be {len(COMPONENTS)} numbers, one per score "
                             f"component ({', '.join(COMPONENTS)})")
        if not 1 <= cfg.heads <= 5:
            raise VigilError(f"truesight: heads {cfg.heads} is not supported (1 to 5; the design uses 3)")

    def _fit(self, frames: list[np.ndarray], *, checkpoint_dir=None, resume: bool = False,
             checkpoint_every: float | None = 600.0) -> None:
        """Train on normal videos, calibrate on held-out ones (:func:`vigil.training.fit_loop`:
        ``checkpoint_dir`` / ``resume`` / ``checkpoint_every``; under torchrun rank 0 calibrates)."""
        cfg = self.config
        dev = resolve_device(self.device)
        sample = frames[0][:8]
        self.gray_ = bool(np.all(sample[..., 0] == sample[..., 1]) and np.all(sample[..., 1] == sample[..., 2]))
        # whole normal videos held out for calibration (one video: calibrated on its own frames, optimistic)
        held = scoring.held_out_videos(len(frames), cfg.calib_fraction, seed=cfg.seed)
        train_v = [f for i, f in enumerate(frames) if i not in held] if held else frames
        cal_v = [frames[i] for i in sorted(held)] if held else frames
        x = torch.from_numpy(np.concatenate([self._frames(v) for v in train_v]))
        self.net_ = TrueSightNet(cfg).to(dev)
        opt = torch.optim.Adam(self.net_.parameters(), lr=cfg.lr)
        steps = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        gen = torch.Generator().manual_seed(cfg.seed)

        def step(chunk, mine):
            # train at every inference scale, so all five reconstruct normal frames well
            s = cfg.scales[int(torch.randint(len(cfg.scales), (1,), generator=gen))]
            if mine is None:
                return None
            xb = x[mine].to(dev)
            if s != cfg.size:
                xb = F.interpolate(xb, size=(s, s), mode="bilinear", align_corners=False)
            out = self.net_(xb)
            # attention-weighted loss; the weight is detached so the attention cannot lower the loss
            # by switching itself off
            loss = ((out.recon - xb).abs() * (1 + out.attention.detach())).mean()
            return [loss], {"loss": loss.item()}

        objective = training.Objective({"net": self.net_}, {"opt": opt}, step, {"sched": sched})
        self.train_seconds_ = training.fit_loop(self, objective, samples=len(x), epochs=cfg.epochs,
                                                batch_size=cfg.batch_size, shuffle=gen, checkpoint_dir=checkpoint_dir,
                                                resume=resume, checkpoint_every=checkpoint_every)
        if training.is_main():                          # the others receive rank 0's calibration
            self._calibrate(train_v, cal_v)

    def _scoring_network(self):
        """Scoring's one network call, ``x (B, 3, S, S) -> e1, e2, att (B, S, S), freq (B,)``: a
        :class:`MultiScaleMaps` over the BatchNorm-folded network, or, for a detector loaded from a
        ``.onnx`` file, the ONNX Runtime session that stands in for it (:mod:`vigil.export`)."""
        if self._runtime is not None:
            return self._runtime
        self.net_.eval()
        return MultiScaleMaps(fold_batchnorm(self.net_), self.config.scales, self.config.size).eval()

    @torch.inference_mode()
    def _maps(self, frames: np.ndarray, batch: int = 64):
        dev = resolve_device(self.device)
        network = self._scoring_network()
        layout = torch.contiguous_format
        if isinstance(network, nn.Module):
            # channels-last weights and frames: oneDNN's fast path for these convolutions (1.5x on CPU)
            layout = torch.channels_last
            network.to(dev, memory_format=layout)
        outs = [[], [], [], []]
        for i in range(0, len(frames), batch):
            xb = torch.from_numpy(frames[i:i + batch]).to(dev).contiguous(memory_format=layout)
            for o, t in zip(outs, network(xb)):
                o.append(t)
        return [torch.cat(o) for o in outs]

    def _export_spec(self) -> ExportSpec:
        """The module ``vigil export`` writes: :class:`MultiScaleMaps`, frames in, maps out, any batch."""
        s = self.config.size
        example = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
        outputs = ["e1", "e2", "attention", "frequency"]
        return ExportSpec(self._scoring_network().cpu(), (example,), ["frames"], outputs,
                          {n: {0: "batch"} for n in ["frames", *outputs]}, rows_independent=True)

    def _calibrate(self, train_v: list[np.ndarray], cal_v: list[np.ndarray]) -> None:
        """Per-pixel error statistics from every normal frame; per-component statistics and the
        threshold from the held-out normal frames alone.

        Per-pixel statistics need coverage more than independence: a few held-out videos leave
        most places where normal people walk unvisited, and there a walker would look anomalous.
        Training frames cover them (their error is a little lower, the spatial pattern the same).
        The scalar statistics that fix the score's scale and the alert threshold must come from
        frames the model never saw, so they do.
        """
        e1s, e2s = [], []
        cal = []
        for v in (train_v if train_v is not cal_v else []) + cal_v:
            maps = self._maps(self._frames(v))
            e1s.append(maps[0].cpu().numpy())
            e2s.append(maps[1].cpu().numpy())
            if any(v is c for c in cal_v):
                cal.append(maps)
        mu1, sd1 = pixel_stats(np.concatenate(e1s))
        mu2, sd2 = pixel_stats(np.concatenate(e2s))
        self.pixel_stats_ = np.stack([mu1, sd1, mu2, sd2]).astype(np.float32)
        comps = [self._components(*m) for m in cal]
        self.comp_center_, self.comp_scale_ = scoring.robust_stats(np.concatenate(comps))
        smoothed = np.concatenate([self._smooth(self._fuse(c)) for c in comps])
        self.threshold_ = scoring.threshold(smoothed, self.config.false_alarm_rate)

    def _components(self, e1, e2, att, freq) -> np.ndarray:
        dev = e1.device
        mu1, sd1, mu2, sd2 = (torch.from_numpy(a).to(dev) for a in self.pixel_stats_)
        return frame_components(e1, e2, att, freq, mu1, sd1, mu2, sd2)

    def _fuse(self, comps: np.ndarray) -> np.ndarray:
        """Each component normalised on held-out normal frames, then the design's weighted sum."""
        return scoring.fuse(scoring.normalise(comps, self.comp_center_, self.comp_scale_), self.config.weights)

    def _smooth(self, fused: np.ndarray) -> np.ndarray:
        return scoring.adaptive_median(fused, self.config.smooth_min, self.config.smooth_max)

    def components(self, video) -> np.ndarray:
        """The seven raw components per frame, ``(T, 7)``, in the order of ``COMPONENTS``."""
        self._check_fitted()
        return self._components(*self._maps(self._frames(self.frames_of(video)[0])))

    def _score(self, frames: np.ndarray) -> np.ndarray:
        return self._smooth(self._fuse(self._components(*self._maps(self._frames(frames)))))

    def _score_maps(self, frames: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Scores and per-pixel calibrated error maps at the frame's own resolution."""
        e1, e2, att, freq = self._maps(self._frames(frames))
        scores = self._smooth(self._fuse(self._components(e1, e2, att, freq)))
        mu1, sd1 = (torch.from_numpy(a).to(e1.device) for a in self.pixel_stats_[:2])
        z = ((e1 - mu1) / sd1).clamp_min(0).cpu().numpy()
        h, w = frame_size
        maps = np.stack([cv2.GaussianBlur(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 2)
                         for m in z]).astype(np.float32)
        return scores, maps

    # --- persistence ---
    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays.update(self._calibration_arrays())
        return arrays

    def _calibration_arrays(self) -> dict[str, np.ndarray]:
        return {"pixel_stats": self.pixel_stats_, "comp_center": self.comp_center_, "comp_scale": self.comp_scale_}

    def _load_state_arrays(self, arrays, fitted) -> None:
        self.net_ = TrueSightNet(self.config).to(resolve_device(self.device))
        state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        self.net_.load_state_dict(state, strict=True)
        self._load_calibration(arrays, fitted)

    def _load_calibration(self, arrays, fitted) -> None:
        s = self.config.size
        for key, shape in (("pixel_stats", (4, s, s)), ("comp_center", (len(COMPONENTS),)),
                           ("comp_scale", (len(COMPONENTS),))):
            if arrays[key].shape != shape:
                raise ValueError(f"{key} has shape {arrays[key].shape}, size {s} needs {shape}")
        self.pixel_stats_ = arrays["pixel_stats"]
        self.comp_center_, self.comp_scale_ = arrays["comp_center"], arrays["comp_scale"]
        self.gray_, self.threshold_ = bool(fitted["gray"]), float(fitted["threshold"])
        self.train_seconds_ = fitted.get("train_seconds")

    def _fitted_meta(self) -> dict:
        return {"gray": self.gray_, "threshold": self.threshold_, "train_seconds": self.train_seconds_,
                "components": list(COMPONENTS)}
