"""Temporal attention over feature maps, and the five statistics that describe an attention matrix.

Shapes: ``B`` clips, ``T`` frames per clip, ``C`` feature channels, ``h w`` the feature grid,
``nh`` attention heads. Design document 000, steps 2-5: every spatial position of a ``(B, T, C, h, w)``
feature map becomes one sequence of ``T`` vectors, ``(B*h*w, T, C)``, attends across time with
multi-head attention (plus a residual path and a layer norm), and is put back on its grid.

The statistics (design document 000, ``analyze_attention_pattern``) are pure functions on
``(..., T, T)`` matrices whose rows sum to one (row ``i`` = where frame ``i`` looks); they accept
torch tensors or numpy arrays and return the same kind, with the two trailing axes reduced.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

MAX_FRAMES = 32  # longest clip the position encoding covers; clips are 8 or 16 frames


def sinusoidal_positions(n: int, dim: int) -> torch.Tensor:
    """The transformer's fixed sine/cosine encoding, ``(n, dim)``: frame ``t`` of any clip gets row ``t``."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class AttentionOutput(NamedTuple):
    features: torch.Tensor  # (B, T, C, h, w), the input with time context added
    weights: torch.Tensor   # (B, h, w, nh, T, T), rows sum to one


class MultiHeadSelfAttention(nn.Module):
    """Plain scaled dot-product self-attention that also returns every head's weights."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        assert dim % heads == 0, f"feature size {dim} must be divisible by the number of heads {heads}"
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = rearrange(self.qkv(x), "n t (three nh hs) -> three n nh t hs", three=3, nh=self.heads)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (N, nh, T, T)
        att = F.softmax(att, dim=-1)
        y = rearrange(att @ v, "n nh t hs -> n t (nh hs)")
        return self.proj(y), att


class TemporalAttention(nn.Module):
    """Every spatial position attends across the ``T`` frames of its clip (any ``T <= max_frames``).

    Where each frame sits in time comes from a fixed sinusoidal encoding plus a learned offset per
    frame index, added to the queries and keys only (the values, and so the residual path, carry
    content alone). Pre-norm residual block: ``y = x + attn(LN(x + pos))``, then a final LN.
    """

    def __init__(self, dim: int, heads: int = 4, max_frames: int = MAX_FRAMES):
        super().__init__()
        self.max_frames = max_frames
        self.register_buffer("pos_fixed", sinusoidal_positions(max_frames, dim), persistent=False)
        self.pos_learned = nn.Parameter(torch.zeros(max_frames, dim))
        self.norm_in = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> AttentionOutput:
        B, T, C, h, w = x.shape
        assert T <= self.max_frames, f"a clip of {T} frames is longer than the {self.max_frames} the attention knows"
        seq = rearrange(x, "b t c h w -> (b h w) t c")            # (B*h*w, T, C)
        pos = (self.pos_fixed[:T] + self.pos_learned[:T])[None]     # (1, T, C)
        y, att = self.attn(self.norm_in(seq + pos))                 # (B*h*w, T, C), (B*h*w, nh, T, T)
        seq = self.norm_out(seq + y)
        out = rearrange(seq, "(b h w) t c -> b t c h w", b=B, h=h, w=w)
        return AttentionOutput(out, rearrange(att, "(b h w) nh t s -> b h w nh t s", b=B, h=h, w=w))


# --- the five statistics of design document 000 --------------------------------------------------

STAT_NAMES = ("self_attention", "local_attention", "long_range_attention", "entropy", "temporal_consistency")


def _lib(a):
    return torch if isinstance(a, torch.Tensor) else np


def _offset_mask(T: int, keep, like):
    i = np.arange(T)
    m = keep(np.abs(i[:, None] - i[None, :])).astype(np.float32)
    return torch.as_tensor(m, dtype=like.dtype, device=like.device) if isinstance(like, torch.Tensor) else m


def _masked_mean(a, mask):
    n = mask.sum()
    return (a * mask).sum(-1).sum(-1) / n if n > 0 else (a * 0).sum(-1).sum(-1) * float("nan")


def self_attention(a):
    """Mean of the diagonal: how much each frame attends to itself."""
    return _lib(a).diagonal(a, 0, -2, -1).mean(-1)


def local_attention(a):
    """Mean weight between adjacent frames, ``|i - j| = 1``."""
    return _masked_mean(a, _offset_mask(a.shape[-1], lambda d: d == 1, a))


def long_range_attention(a):
    """Mean weight between distant frames, ``|i - j| > 2`` (NaN for clips of 3 frames or fewer)."""
    return _masked_mean(a, _offset_mask(a.shape[-1], lambda d: d > 2, a))


def attention_entropy(a):
    """Mean over rows of ``-sum_j p log(p + 1e-8)``: 0 for one-hot rows, ``log T`` for uniform rows."""
    return -(a * _lib(a).log(a + 1e-8)).sum(-1).mean(-1)


def temporal_consistency(a):
    """Mean cosine similarity of consecutive rows (how slowly the attention pattern changes in time)."""
    r0, r1 = a[..., :-1, :], a[..., 1:, :]
    lib = _lib(a)
    dot = (r0 * r1).sum(-1)
    n0, n1 = lib.sqrt((r0 * r0).sum(-1)), lib.sqrt((r1 * r1).sum(-1))
    eps = 1e-8
    den = (n0 * n1).clamp_min(eps) if lib is torch else np.maximum(n0 * n1, eps)
    return (dot / den).mean(-1)


STAT_FUNCTIONS = (self_attention, local_attention, long_range_attention, attention_entropy, temporal_consistency)


def attention_statistics(a):
    """The five statistics stacked on a new last axis: ``(..., T, T) -> (..., 5)`` in ``STAT_NAMES`` order."""
    vals = [f(a) for f in STAT_FUNCTIONS]
    return torch.stack(vals, -1) if isinstance(a, torch.Tensor) else np.stack(vals, -1)


def top_attended(a, k: int = 3):
    """For each frame (row), the indices of the ``k`` frames it attends to most, ``(..., T, k)``."""
    k = min(k, a.shape[-1])
    if isinstance(a, torch.Tensor):
        return a.topk(k, dim=-1).indices
    return np.argsort(-a, axis=-1, kind="stable")[..., :k]
