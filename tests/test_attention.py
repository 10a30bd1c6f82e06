"""Temporal attention: shapes for any clip length, rows that sum to one, and the five statistics by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vigil.models.attention import (STAT_NAMES, TemporalAttention, attention_entropy, attention_statistics,
                                    local_attention, long_range_attention, self_attention, temporal_consistency,
                                    top_attended)


@pytest.mark.parametrize("B,T", [(1, 8), (2, 8), (1, 16), (2, 16)])
def test_temporal_attention_shapes_and_rows(B, T):
    torch.manual_seed(0)
    m = TemporalAttention(100, heads=4)
    x = torch.randn(B, T, 100, 7, 7)
    out = m(x)
    assert out.features.shape == (B, T, 100, 7, 7)
    assert out.weights.shape == (B, 7, 7, 4, T, T)
    assert torch.allclose(out.weights.sum(-1), torch.ones(B, 7, 7, 4, T), atol=1e-5)
    assert (out.weights >= 0).all()


def test_each_position_attends_only_across_its_own_time_line():
    torch.manual_seed(0)
    m = TemporalAttention(16, heads=4).eval()
    x = torch.randn(1, 8, 16, 3, 3)
    y = m(x).features
    x2 = x.clone()
    x2[:, :, :, 0, 0] += 5.0                      # change one grid position only
    y2 = m(x2).features
    assert not torch.allclose(y[:, :, :, 0, 0], y2[:, :, :, 0, 0])
    assert torch.allclose(y[:, :, :, 1:, :], y2[:, :, :, 1:, :], atol=1e-6)


def test_attention_knows_where_each_frame_sits():
    """Identical frames still give different outputs per time step: the position encoding tells them apart."""
    m = TemporalAttention(16, heads=4).eval()
    x = torch.randn(1, 1, 16, 2, 2).repeat(1, 8, 1, 1, 1)
    y = m(x).features
    assert not torch.allclose(y[:, 0], y[:, 5], atol=1e-4)


def test_clip_longer_than_the_position_encoding_is_refused():
    m = TemporalAttention(16, heads=4, max_frames=32)
    with pytest.raises(AssertionError, match="longer than"):
        m(torch.randn(1, 33, 16, 2, 2))


# --- the statistics, against hand-computed values -----------------------------------------------

@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_statistics_of_a_pure_diagonal(lib):
    a = np.eye(8)
    a = torch.tensor(a) if lib == "torch" else a
    s = np.asarray(attention_statistics(a), dtype=float)
    assert s.shape == (5,)
    # self 1; local 0; long-range 0; entropy -log(1 + 1e-8) ~ 0; consecutive rows are orthogonal -> 0
    np.testing.assert_allclose(s, [1.0, 0.0, 0.0, 0.0, 0.0], atol=1e-7)


@pytest.mark.parametrize("T", [8, 16])
def test_statistics_of_a_uniform_matrix(T):
    a = np.full((T, T), 1.0 / T)
    s = attention_statistics(a)
    np.testing.assert_allclose(s, [1 / T, 1 / T, 1 / T, math.log(T), 1.0], rtol=1e-6)


def test_statistics_of_a_small_hand_matrix():
    a = np.array([[0.7, 0.2, 0.1, 0.0],
                  [0.1, 0.6, 0.3, 0.0],
                  [0.0, 0.5, 0.5, 0.0],
                  [0.4, 0.0, 0.0, 0.6]])
    assert self_attention(a) == pytest.approx((0.7 + 0.6 + 0.5 + 0.6) / 4)
    # |i-j| = 1: (0,1) (1,0) (1,2) (2,1) (2,3) (3,2)
    assert local_attention(a) == pytest.approx((0.2 + 0.1 + 0.3 + 0.5 + 0.0 + 0.0) / 6)
    # |i-j| > 2 in a 4x4: only (0,3) and (3,0)
    assert long_range_attention(a) == pytest.approx((0.0 + 0.4) / 2)
    ent = np.mean([-sum(p * math.log(p + 1e-8) for p in row) for row in a])
    assert attention_entropy(a) == pytest.approx(ent)
    cos = [np.dot(a[i], a[i + 1]) / (np.linalg.norm(a[i]) * np.linalg.norm(a[i + 1])) for i in range(3)]
    assert temporal_consistency(a) == pytest.approx(np.mean(cos))


def test_statistics_work_on_batches_and_agree_between_numpy_and_torch():
    rng = np.random.default_rng(0)
    a = rng.random((2, 3, 4, 8, 8))
    a /= a.sum(-1, keepdims=True)
    s_np = attention_statistics(a)
    s_t = attention_statistics(torch.tensor(a)).numpy()
    assert s_np.shape == (2, 3, 4, len(STAT_NAMES))
    np.testing.assert_allclose(s_np, s_t, rtol=1e-6)
    np.testing.assert_allclose(s_np[1, 2, 3], attention_statistics(a[1, 2, 3]))


def test_top_attended_frames():
    a = np.array([[0.1, 0.5, 0.3, 0.1],
                  [0.6, 0.1, 0.1, 0.2],
                  [0.25, 0.25, 0.4, 0.1],
                  [0.0, 0.1, 0.2, 0.7]])
    np.testing.assert_array_equal(top_attended(a, 3), [[1, 2, 0], [0, 3, 1], [2, 0, 1], [3, 2, 1]])
    assert top_attended(torch.tensor(a), 3)[:, 0].tolist() == [1, 0, 2, 3]
