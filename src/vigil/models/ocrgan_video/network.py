"""OCR-GAN Video: the networks, read top to bottom (small blocks first, the full model last).

OCR-GAN (Liang et al., IEEE TIP 2023) splits an image into a low- and a high-frequency band, runs
one encoder-decoder per band, lets the two streams exchange information through a channel-selection
module, and trains the pair against a discriminator. This file extends it to clips and adds the
temporal attention of design document 000 to the discriminator.

Shapes: ``B`` clips, ``T`` frames per clip (``clip_len``, 8 or 16), ``H W`` = 64 x 64 gray frames
in [-1, 1], ``C`` channels, ``h w`` = 8 x 8 the discriminator's feature grid, ``nh`` heads.

What the generator does: it **predicts the last frame of a clip from the ``T - 1`` frames before
it**. The context frames are stacked on the channel axis, so the first convolution already mixes
time; a frame whose motion does not follow from its past (a bike among walkers) is predicted badly.
What the discriminator does: it embeds every frame on an 8 x 8 grid (``(B, T, C, h, w)``), lets
each grid position attend across the ``T`` frames (:class:`TemporalAttention`), and judges the
*last* frame's attended features, real or predicted, patch by patch. Only the last frame differs
between a real and a fake clip, so the adversarial loss trains the attention to compare the last
frame with the rest of the clip. The detector (scoring, calibration, saving) lives in
``detector.py`` beside this file.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from vigil.models.attention import MAX_FRAMES, TemporalAttention

if TYPE_CHECKING:
    from vigil.models.ocrgan_video.detector import OcrGanVideoConfig


# --- frequency decoupling -------------------------------------------------------------------------

def gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-x**2 / (2 * sigma**2))
    k = k / k.sum()
    return k[:, None] * k[None, :]  # (2r+1, 2r+1), sums to one


class FrequencySplit(nn.Module):
    """Frame -> (low, high): low = Gaussian blur, high = frame - low, signed float (low + high == frame)."""

    def __init__(self, sigma: float):
        super().__init__()
        self.register_buffer("kernel", gaussian_kernel(sigma)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = x.shape                                    # (..., H, W)
        flat = x.reshape(-1, 1, *shape[-2:])               # (N, 1, H, W)
        r = self.kernel.shape[-1] // 2
        low = F.conv2d(F.pad(flat, (r, r, r, r), mode="reflect"), self.kernel).reshape(shape)
        return low, x - low


# --- generator: two streams with channel selection -----------------------------------------------

def conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class ChannelSelection(nn.Module):
    """Squeeze-and-excitation over the two streams (selective-kernel style).

    ``s = avgpool(f_low + f_high)`` (B, C); two FC layers give one logit per stream and channel; a
    softmax over the streams gives weights ``a`` (B, 2, C) and the fused map ``a_low f_low + a_high f_high``.
    No normalisation layer, so it works on a batch of one in training and in evaluation.
    """

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(8, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, 2 * channels)

    def forward(self, f_low: torch.Tensor, f_high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = (f_low + f_high).mean(dim=(2, 3))                                   # (B, C)
        a = F.softmax(rearrange(self.fc2(F.relu(self.fc1(s))), "b (two c) -> b two c", two=2), dim=1)
        fused = a[:, 0, :, None, None] * f_low + a[:, 1, :, None, None] * f_high  # (B, C, H, W)
        return fused, a


class Encoder(nn.Module):
    """(B, T-1, 64, 64) context band -> features at 64, 32, 16, 8 (widths c, 2c, 4c, 4c)."""

    def __init__(self, cin: int, c: int):
        super().__init__()
        self.stages = nn.ModuleList([
            conv_block(cin, c),
            conv_block(c, 2 * c, 2),
            conv_block(2 * c, 4 * c, 2),
            conv_block(4 * c, 4 * c, 2),
        ])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """Features at 8, 16, 32, 64 (with skips) -> one band of the predicted frame, (B, 1, 64, 64)."""

    def __init__(self, c: int):
        super().__init__()
        self.up = nn.ModuleList([conv_block(4 * c + 4 * c, 2 * c), conv_block(2 * c + 2 * c, c),
                                 conv_block(c + c, c)])
        self.out = nn.Conv2d(c, 1, 3, 1, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for block, skip in zip(self.up, reversed(feats[:-1])):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = block(torch.cat([x, skip], dim=1))
        return self.out(x)


class GeneratorOutput(NamedTuple):
    frame: torch.Tensor       # (B, H, W) predicted last frame = low + high
    low: torch.Tensor         # (B, H, W)
    high: torch.Tensor        # (B, H, W)
    selection: torch.Tensor   # (B, 2, C) channel-selection weights at the bottleneck (low, high)


class TwoStreamGenerator(nn.Module):
    """Predicts the last frame's two bands from the two bands of the ``T - 1`` frames before it.

    At every scale a :class:`ChannelSelection` fuses the two encoders' features and adds the fused
    map to both streams, so each decoder sees what the other band found.
    """

    def __init__(self, cfg: OcrGanVideoConfig):
        super().__init__()
        c, cin = cfg.gen_channels, cfg.clip_len - 1
        self.enc_low, self.enc_high = Encoder(cin, c), Encoder(cin, c)
        self.select = nn.ModuleList([ChannelSelection(w) for w in (c, 2 * c, 4 * c, 4 * c)])
        self.dec_low, self.dec_high = Decoder(c), Decoder(c)

    def forward(self, ctx_low: torch.Tensor, ctx_high: torch.Tensor) -> GeneratorOutput:
        fl, fh = self.enc_low(ctx_low), self.enc_high(ctx_high)   # lists of (B, C_k, H_k, W_k)
        weights = []
        for k, sel in enumerate(self.select):
            fused, a = sel(fl[k], fh[k])
            fl[k], fh[k] = fl[k] + fused, fh[k] + fused
            weights.append(a)
        low, high = self.dec_low(fl)[:, 0], self.dec_high(fh)[:, 0]  # (B, H, W) each
        return GeneratorOutput(low + high, low, high, weights[-1])


# --- discriminator: spatial features, temporal attention, patch head -----------------------------

class DiscriminatorOutput(NamedTuple):
    logits: torch.Tensor          # (B, h, w) real/fake logit of the last frame, per patch
    features: torch.Tensor        # (B, C, h, w) the last frame's features (after attention when enabled)
    attention: torch.Tensor | None  # (B, h, w, nh, T, T), None without attention


class FrameEmbed(nn.Module):
    """One frame (B, 1, 64, 64) -> features (B, C, 8, 8); no normalisation, so frames stay independent."""

    def __init__(self, c: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 4, 2, 1), nn.LeakyReLU(0.2),     # 32 x 32
            nn.Conv2d(16, 32, 4, 2, 1), nn.LeakyReLU(0.2),    # 16 x 16
            nn.Conv2d(32, c, 4, 2, 1), nn.LeakyReLU(0.2),     # 8 x 8
            nn.Conv2d(c, c, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TemporalDiscriminator(nn.Module):
    def __init__(self, cfg: OcrGanVideoConfig):
        super().__init__()
        self.embed = FrameEmbed(cfg.feat_channels)
        self.temporal = TemporalAttention(cfg.feat_channels, cfg.heads, MAX_FRAMES) if cfg.attention else None
        self.head = nn.Conv2d(cfg.feat_channels, 1, 1)

    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, H, W) frames -> (N, C, h, w); computed once per frame and reused by every clip."""
        return self.embed(frames[:, None])

    def from_features(self, feats: torch.Tensor) -> DiscriminatorOutput:
        """(B, T, C, h, w) per-frame features of a clip -> the judgement of its last frame."""
        att = None
        if self.temporal is not None:
            feats, att = self.temporal(feats)
        last = feats[:, -1]                                   # (B, C, h, w)
        return DiscriminatorOutput(self.head(last)[:, 0], last, att)

    def forward(self, clip: torch.Tensor) -> DiscriminatorOutput:
        B, T = clip.shape[:2]                                 # clip: (B, T, H, W)
        feats = rearrange(self.embed_frames(rearrange(clip, "b t h w -> (b t) h w")), "(b t) c h w -> b t c h w", b=B)
        return self.from_features(feats)


# --- the full model and its losses ---------------------------------------------------------------

class Losses(NamedTuple):
    d: torch.Tensor
    g: torch.Tensor
    adv: torch.Tensor
    rec: torch.Tensor
    fm: torch.Tensor


class OcrGanVideoModel(nn.Module):
    def __init__(self, cfg: OcrGanVideoConfig):
        super().__init__()
        assert 2 <= cfg.clip_len <= MAX_FRAMES, f"clip_len must be between 2 and {MAX_FRAMES}"
        self.cfg = cfg
        self.split = FrequencySplit(cfg.blur_sigma)
        self.generator = TwoStreamGenerator(cfg)
        self.discriminator = TemporalDiscriminator(cfg)

    def predict(self, clip: torch.Tensor) -> GeneratorOutput:
        """(B, T, H, W) clip -> the generator's prediction of its last frame from the others."""
        low, high = self.split(clip[:, :-1])                 # (B, T-1, H, W) each
        return self.generator(low, high)

    def losses(self, clip: torch.Tensor) -> tuple[Losses, GeneratorOutput]:
        """Both losses for one batch; the caller steps D on ``d`` and then G on ``g``.

        D: binary cross-entropy, real clip -> 1, clip with the predicted last frame -> 0.
        G: ``w_adv`` x BCE(D(fake) -> 1) + ``w_rec`` x L1 on both bands + ``w_fm`` x the squared
        distance between the last frame's (attended) discriminator features, real vs predicted.
        """
        cfg, D = self.cfg, self.discriminator
        B, T = clip.shape[:2]
        out = self.predict(clip)
        t_low, t_high = self.split(clip[:, -1])
        feats = rearrange(D.embed_frames(rearrange(clip, "b t h w -> (b t) h w")), "(b t) c h w -> b t c h w", b=B)
        fake_last = D.embed_frames(out.frame.detach())[:, None]               # (B, 1, C, h, w)
        real = D.from_features(feats)
        fake = D.from_features(torch.cat([feats[:, :-1], fake_last], dim=1))
        bce = F.binary_cross_entropy_with_logits
        d_loss = bce(real.logits, torch.ones_like(real.logits)) + bce(fake.logits, torch.zeros_like(fake.logits))

        with torch.no_grad():   # G's targets; D's parameters are not G's to update
            feats_ng = feats.detach()
            real_ng = D.from_features(feats_ng)
        fake_g = D.from_features(torch.cat([feats_ng[:, :-1], D.embed_frames(out.frame)[:, None]], dim=1))
        adv = bce(fake_g.logits, torch.ones_like(fake_g.logits))
        rec = (out.low - t_low).abs().mean() + (out.high - t_high).abs().mean()
        fm = (fake_g.features - real_ng.features).pow(2).mean()
        g_loss = cfg.w_adv * adv + cfg.w_rec * rec + cfg.w_fm * fm
        return Losses(d_loss, g_loss, adv.detach(), rec.detach(), fm.detach()), out
