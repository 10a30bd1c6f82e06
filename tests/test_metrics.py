"""Metrics against values computed by hand."""

import math

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.metrics import equal_error_rate, frame_metrics, minmax


def test_auc_by_hand():
    # positives {0.8, 0.4}, negatives {0.1, 0.5}: pairs (0.8>0.1, 0.8>0.5, 0.4>0.1, 0.4<0.5) -> 3/4
    m = frame_metrics([np.array([0.1, 0.4, 0.5, 0.8])], [np.array([0, 1, 0, 1])])
    assert m.micro_auc == pytest.approx(0.75)
    # AP: ranking 0.8(+) 0.5(-) 0.4(+) 0.1(-): precision at the positives 1/1 and 2/3 -> (1 + 2/3) / 2
    assert m.average_precision == pytest.approx((1 + 2 / 3) / 2)
    assert m.n_frames == 4 and m.n_anomalous == 2


def test_micro_pools_raw_scores_and_video_norm_rescales_each_video():
    # video A is perfectly ranked but on a high scale; video B perfectly ranked on a low scale
    a_s, a_y = np.array([10.0, 11.0]), np.array([0, 1])
    b_s, b_y = np.array([0.0, 1.0]), np.array([0, 1])
    m = frame_metrics([a_s, b_s], [a_y, b_y])
    # pooled: negatives {10, 0}, positives {11, 1}: 11 beats both, 1 beats 0 only -> 3/4
    assert m.micro_auc == pytest.approx(0.75)
    assert m.micro_auc_video_norm == pytest.approx(1.0)   # after min-max each video is 0, 1
    assert m.macro_auc == pytest.approx(1.0)
    assert m.n_videos_in_macro == 2


def test_macro_skips_single_class_videos():
    m = frame_metrics([np.array([0.2, 0.9]), np.array([0.5, 0.6])], [np.array([0, 1]), np.array([0, 0])])
    assert m.n_videos_in_macro == 1 and m.macro_auc == pytest.approx(1.0)


def test_eer_by_hand():
    assert equal_error_rate(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    assert equal_error_rate(np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == pytest.approx(0.5)


def test_one_class_gives_nan_not_a_crash():
    m = frame_metrics([np.array([0.1, 0.2])], [np.array([0, 0])])
    assert math.isnan(m.micro_auc) and math.isnan(m.macro_auc)


def test_length_mismatch_and_nan_are_errors():
    with pytest.raises(VigilError, match="3 scores but 2 labels"):
        frame_metrics([np.zeros(3)], [np.zeros(2)])
    with pytest.raises(VigilError, match="NaN"):
        frame_metrics([np.array([0.0, np.nan])], [np.array([0, 1])])


def test_minmax_constant_video():
    assert np.all(minmax(np.ones(5)) == 0)
