"""True Sight: a frame autoencoder with multi-head spatial attention (design document 004).

Shapes: ``B`` frames in a batch, ``C`` channels, ``H W`` height and width (96x96 at the design
scale). Grayscale footage is replicated to 3 channels, so one architecture serves both.

Pipeline: encoder 32→64→128→128 (dropout 0.45→0.35) · three spatial attention heads with
different receptive fields and a learnable softmax fusion · a 32-channel bottleneck · decoder
128→128→64→32→3. Training minimises ``(error * (1 + attention)).mean()``. Scoring reconstructs each
frame at five scales, turns the error into seven per-frame components, normalises each against
normal frames held out of training, fuses them with the design weights and smooths over time.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from vigil import training
from vigil.data.video import Video
from vigil.errors import VigilError
from vigil.models.base import Detector, as_video, register, resolve_device, seed_everything
from vigil.scoring import adaptive_median, robust_stats
from vigil.training import TrainingRun

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


# --- building blocks --------------------------------------------------------------------------

def _down(cin, cout, p):
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(p))


def _up(cin, cout, last=False):
    if last:
        return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.Sigmoid())
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SpatialAttention(nn.Module):
    """Three heads see the feature map at different receptive fields (1, 3 and dilated 5x5 ≈ subtle,
    medium and large anomalies); a learnable softmax fuses their maps.

    In: ``(B, C, h, w)``. Out: features ``(B, C, h, w)`` re-weighted by ``1 + A`` and ``A (B, 1, h, w)``
    in [0, 1].
    """

    def __init__(self, channels: int, heads: int = 3):
        super().__init__()
        hidden = max(channels // 8, 8)
        specs = [(1, 1), (3, 1), (3, 2), (3, 3), (3, 4)][:heads]     # (kernel, dilation)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, hidden, k, padding=d * (k // 2), dilation=d),
                          nn.ReLU(inplace=True), nn.Conv2d(hidden, 1, 1))
            for k, d in specs)
        self.fusion = nn.Parameter(torch.zeros(heads))                # learnable, starts equal

    def forward(self, x):
        maps = torch.stack([torch.sigmoid(h(x)) for h in self.heads], dim=0)  # (nh, B, 1, h, w)
        w = torch.softmax(self.fusion, dim=0).view(-1, 1, 1, 1, 1)
        a = (w * maps).sum(0)                                                 # (B, 1, h, w)
        return x * (1 + a), a


class TrueSightOutput(NamedTuple):
    recon: torch.Tensor       # (B, 3, H, W) in [0, 1]
    attention: torch.Tensor   # (B, 1, H, W) upsampled to the input size, in [0, 1]


class TrueSightNet(nn.Module):
    def __init__(self, cfg: TrueSightConfig):
        super().__init__()
        c, p = cfg.enc_channels, cfg.dropout
        self.encoder = nn.Sequential(_down(3, c[0], p[0]), _down(c[0], c[1], p[1]),
                                     _down(c[1], c[2], p[2]), _down(c[2], c[3], p[3]))
        self.attention = SpatialAttention(c[3], cfg.heads)
        # the tight 32-channel bottleneck: normal frames fit through it, anomalies do not
        self.squeeze = nn.Sequential(nn.Conv2d(c[3], cfg.bottleneck, 1), nn.LeakyReLU(0.2, inplace=True))
        self.expand = nn.Sequential(nn.Conv2d(cfg.bottleneck, 128, 1), nn.ReLU(inplace=True))
        self.decoder = nn.Sequential(_up(128, 128), _up(128, 64), _up(64, 32), _up(32, 3, last=True))

    def forward(self, x: torch.Tensor) -> TrueSightOutput:
        B, _, H, W = x.shape
        assert H % 16 == 0 and W % 16 == 0, "input sides must be multiples of 16 (four stride-2 stages)"
        z, a = self.attention(self.encoder(x))
        recon = self.decoder(self.expand(self.squeeze(z)))
        return TrueSightOutput(recon, F.interpolate(a, size=(H, W), mode="bilinear", align_corners=False))


# --- per-frame score components -----------------------------------------------------------------

def _high_freq_mask(size: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(size).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(size).view(1, -1)
    return (torch.sqrt(fx ** 2 + fy ** 2) > 0.25).float()    # upper half of the spectrum radius


def _dft_matrices(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``rfft2`` of an ``(S, S)`` image as ``left @ img @ right``: ``left (2S, S)`` stacks the cosine and
    minus-sine rows, ``right (S, 2L)`` their columns, ``L = S // 2 + 1``. Two small matrix products
    instead of an FFT, because ONNX export cannot express ``torch.fft``; built in float64, used in float32.
    """
    n = torch.arange(size, dtype=torch.float64)
    cols = 2 * math.pi * n[:, None] * torch.arange(size // 2 + 1, dtype=torch.float64)[None] / size   # (S, L)
    rows = 2 * math.pi * n[:, None] * n[None] / size                                                 # (S, S)
    right = torch.cat([torch.cos(cols), -torch.sin(cols)], 1)
    left = torch.cat([torch.cos(rows), -torch.sin(rows)], 0)
    return left.float(), right.float()


def fold_batchnorm(net: TrueSightNet) -> TrueSightNet:
    """An inference copy of ``net`` with every BatchNorm folded into the convolution before it
    (eval-mode statistics); the same function up to float rounding, fewer passes over memory."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for block in list(net.encoder) + list(net.decoder):
        if len(block) > 1 and isinstance(block[1], nn.BatchNorm2d):
            block[0] = fuse_conv_bn_eval(block[0], block[1], transpose=isinstance(block[0], nn.ConvTranspose2d))
            block[1] = nn.Identity()
    return net


class MultiScaleMaps(nn.Module):
    """Scoring's whole network pass as one module: the frame reconstructed at every inference scale,
    the error maps and the high-frequency spectrum gap averaged over the scales, at the input size.

    In: ``x (B, 3, S, S)`` in [0, 1]. Out: ``e1, e2, att (B, S, S)`` (mean |error|, mean squared
    |error|, attention) and ``freq (B,)``. PyTorch scoring calls this module batch by batch and
    ``vigil export`` writes exactly this module as the ONNX graph (:mod:`vigil.export`), so the two
    backends share every other step. ``x``'s own spectrum is computed once, not once per scale.
    """

    def __init__(self, net: TrueSightNet, scales: Sequence[int], size: int):
        super().__init__()
        self.net, self.scales, self.size = net, tuple(scales), size
        left, right = _dft_matrices(size)
        hf = _high_freq_mask(size)
        self.register_buffer("left", left, persistent=False)
        self.register_buffer("right", right, persistent=False)
        self.register_buffer("hf_weight", hf / hf.sum(), persistent=False)   # mean over the masked band

    def spectrum(self, img: torch.Tensor) -> torch.Tensor:
        """``|rfft2(img)|``: ``(B, S, S) -> (B, S, L)``."""
        S, L = self.size, self.right.shape[1] // 2
        y = self.left @ (img @ self.right)                  # (B, 2S, 2L): [[cos], [-sin]] x [cos | -sin]
        re = y[:, :S, :L] - y[:, S:, L:]
        im = y[:, :S, L:] + y[:, S:, :L]
        return torch.sqrt(re * re + im * im)

    def forward(self, x: torch.Tensor):
        S = self.size
        spec_x = self.spectrum(x.mean(1))
        e1 = e2 = att = freq = 0.0
        for s in self.scales:
            xs = x if s == S else F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
            recon, a = self.net(xs)
            if s != S:
                recon = F.interpolate(recon, size=(S, S), mode="bilinear", align_corners=False)
                a = F.interpolate(a, size=(S, S), mode="bilinear", align_corners=False)
            d = (recon - x).abs().mean(1)                                      # (B, S, S)
            e1, e2, att = e1 + d, e2 + d * d, att + a[:, 0]
            freq = freq + ((self.spectrum(recon.mean(1)) - spec_x).abs() * self.hf_weight).sum((1, 2))
        n = len(self.scales)
        return e1 / n, e2 / n, att / n, freq / n


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

    def _read(self, video: Video) -> np.ndarray:
        """``(T, S, S, 3)`` uint8 as read, before the frame guard."""
        return video.frames(size=(self.config.size, self.config.size))

    def _frames(self, video: Video) -> np.ndarray:
        """``(T, 3, S, S)`` float32 in [0, 1]; gray footage (or a gray-trained model) uses one channel x3."""
        s = self.config.size
        f = self._guarded(self._read(video))
        if self.gray_:
            f = np.repeat(cv2.cvtColor(f.reshape(-1, s, 3), cv2.COLOR_RGB2GRAY).reshape(len(f), s, s, 1), 3, -1)
        return np.ascontiguousarray(f.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0

    def _split(self, videos: list[Video]) -> tuple[list[Video], list[Video]]:
        """Hold out whole normal videos for calibration (deterministic for the seed)."""
        if len(videos) < 2:
            return videos, videos   # one video: calibrate on its frames (documented: optimistic)
        n_cal = max(1, int(round(self.config.calib_fraction * len(videos))))
        order = np.random.default_rng(self.config.seed).permutation(len(videos))
        cal = sorted(order[:n_cal])
        return [v for i, v in enumerate(videos) if i not in cal], [videos[i] for i in cal]

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

    def fit(self, videos, *, checkpoint_dir=None, resume: bool = False,
            checkpoint_every: float | None = 600.0) -> "TrueSight":
        """Train on normal videos, calibrate on held-out ones; returns ``self``.

        ``checkpoint_dir``: write ``checkpoint.pt`` there at the end of every epoch and every
        ``checkpoint_every`` seconds within one; ``resume=True`` continues from it (same result as
        an uninterrupted run). Under torchrun each process trains on its share of every batch
        through DistributedDataParallel and rank 0 calibrates (:mod:`vigil.training`).
        """
        cfg = self.config
        videos = [as_video(v, f"train{i}") for i, v in enumerate(videos)]
        if not videos:
            raise VigilError("truesight: fit() needs at least one normal training video")
        seed_everything(cfg.seed)
        self.device = training.join(self.device)        # under torchrun: this process's device
        dev = resolve_device(self.device)
        sample = videos[0].frames(size=(cfg.size, cfg.size))[:8]
        self.gray_ = bool(np.all(sample[..., 0] == sample[..., 1]) and np.all(sample[..., 1] == sample[..., 2]))
        train_v, cal_v = self._split(videos)
        x = torch.from_numpy(np.concatenate([self._frames(v) for v in train_v]))
        self.net_ = TrueSightNet(cfg).to(dev)
        opt = torch.optim.Adam(self.net_.parameters(), lr=cfg.lr)
        steps = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
        gen = torch.Generator().manual_seed(cfg.seed)
        run = TrainingRun(self, state={"net": self.net_, "opt": opt, "sched": sched}, shuffle=gen, samples=len(x),
                          batches_per_epoch=math.ceil(len(x) / cfg.batch_size), checkpoint_dir=checkpoint_dir,
                          resume=resume, checkpoint_every=checkpoint_every)
        net = run.wrap(self.net_)                       # DistributedDataParallel under torchrun
        bar = tqdm(range(run.epoch, cfg.epochs), initial=run.epoch, total=cfg.epochs, desc="truesight",
                   unit="epoch", disable=not (self.progress and run.main))
        self.net_.train()
        for epoch in bar:
            perm = run.order(epoch, lambda: torch.randperm(len(x), generator=gen))
            total = seen = 0.0
            for b in run.batches(epoch):
                chunk = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                # train at every inference scale, so all five reconstruct normal frames well
                s = cfg.scales[int(torch.randint(len(cfg.scales), (1,), generator=gen))]
                mine = run.share(chunk)                 # this process's part (all of it on one process)
                if mine is None:                        # a last batch smaller than the number of processes
                    run.step_done(epoch, b + 1, perm)
                    continue
                xb = x[mine].to(dev)
                if s != cfg.size:
                    xb = F.interpolate(xb, size=(s, s), mode="bilinear", align_corners=False)
                out = net(xb)
                err = (out.recon - xb).abs()
                # attention-weighted loss; the weight is detached so the attention cannot lower
                # the loss by switching itself off
                loss = (err * (1 + out.attention.detach())).mean()
                opt.zero_grad(set_to_none=True)
                run.scaled(loss, len(mine), len(chunk)).backward()
                opt.step()
                sched.step()
                total, seen = total + loss.item() * len(xb), seen + len(xb)
                run.step_done(epoch, b + 1, perm)
            bar.set_postfix(loss=f"{total / max(seen, 1):.4f}")
        self.train_seconds_ = run.elapsed()
        if run.main:                                    # the others receive rank 0's calibration
            self._calibrate(train_v, cal_v)
        training.share_fitted(self)
        training.leave()
        self.fit_guard(videos)
        self.fitted_ = True
        return self

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

    def _export_spec(self):
        """The module ``vigil export`` writes: :class:`MultiScaleMaps`, frames in, maps out, any batch."""
        from vigil.export import ExportSpec

        s = self.config.size
        example = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
        outputs = ["e1", "e2", "attention", "frequency"]
        return ExportSpec(self._scoring_network().cpu(), (example,), ["frames"], outputs,
                          {n: {0: "batch"} for n in ["frames", *outputs]}, rows_independent=True)

    def _calibrate(self, train_v: list[Video], cal_v: list[Video]) -> None:
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
        self.comp_center_, self.comp_scale_ = robust_stats(np.concatenate(comps))
        smoothed = np.concatenate([adaptive_median(self._fuse(c), self.config.smooth_min, self.config.smooth_max)
                                   for c in comps])
        self.threshold_ = float(np.quantile(smoothed, 1 - self.config.false_alarm_rate))

    def _components(self, e1, e2, att, freq) -> np.ndarray:
        dev = e1.device
        mu1, sd1, mu2, sd2 = (torch.from_numpy(a).to(dev) for a in self.pixel_stats_)
        return frame_components(e1, e2, att, freq, mu1, sd1, mu2, sd2)

    def _fuse(self, comps: np.ndarray) -> np.ndarray:
        z = (comps - self.comp_center_) / self.comp_scale_       # each component normalised first
        return z @ np.asarray(self.config.weights, dtype=np.float64)

    def components(self, video) -> np.ndarray:
        """The seven raw components per frame, ``(T, 7)``, in the order of ``COMPONENTS``."""
        self._check_fitted()
        return self._components(*self._maps(self._frames(as_video(video))))

    def score(self, video) -> np.ndarray:
        self._check_fitted()
        fused = self._fuse(self.components(video))
        return adaptive_median(fused, self.config.smooth_min, self.config.smooth_max)

    def score_maps(self, video) -> tuple[np.ndarray, np.ndarray]:
        """Scores and per-pixel calibrated error maps at the frame's own resolution."""
        self._check_fitted()
        video = as_video(video)
        e1, e2, att, freq = self._maps(self._frames(video))
        scores = adaptive_median(self._fuse(self._components(e1, e2, att, freq)),
                                 self.config.smooth_min, self.config.smooth_max)
        mu1, sd1 = (torch.from_numpy(a).to(e1.device) for a in self.pixel_stats_[:2])
        z = ((e1 - mu1) / sd1).clamp_min(0).cpu().numpy()
        h, w = video.frame_size()
        maps = np.stack([cv2.GaussianBlur(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 2)
                         for m in z]).astype(np.float32)
        return scores, self._as_given(maps)

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
        self.pixel_stats_ = arrays["pixel_stats"]
        self.comp_center_, self.comp_scale_ = arrays["comp_center"], arrays["comp_scale"]
        self.gray_, self.threshold_ = bool(fitted["gray"]), float(fitted["threshold"])
        self.train_seconds_ = fitted.get("train_seconds")

    def _fitted_meta(self) -> dict:
        return {"gray": self.gray_, "threshold": self.threshold_, "train_seconds": self.train_seconds_,
                "components": list(COMPONENTS)}
