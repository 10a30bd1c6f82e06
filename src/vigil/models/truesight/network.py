"""True Sight: a frame autoencoder with multi-head spatial attention (design document 004).

Shapes: ``B`` frames in a batch, ``C`` channels, ``H W`` height and width (96x96 at the design
scale). Grayscale footage is replicated to 3 channels, so one architecture serves both.

This file holds the networks, read top to bottom (blocks first, the scoring pass last); the
detector (settings, training step, calibration, scores) is ``detector.py`` beside it.

Pipeline: encoder 32→64→128→128 (dropout 0.45→0.35) · three spatial attention heads with
different receptive fields and a learnable softmax fusion · a 32-channel bottleneck · decoder
128→128→64→32→3. Training minimises ``(error * (1 + attention)).mean()``. Scoring reconstructs each
frame at five scales, turns the error into seven per-frame components, normalises each against
normal frames held out of training, fuses them with the design weights and smooths over time.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from vigil.models.truesight.detector import TrueSightConfig

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
