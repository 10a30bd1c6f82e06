"""The ``hybrid`` detector: quality on synthetic and real data, save/load, streaming, edge cases."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.metrics import auc
from vigil.models.hybrid import Hybrid


@pytest.fixture(scope="module")
def fitted(synthetic) -> Hybrid:
    return Hybrid().fit(synthetic.train)


def _shaken(frames: np.ndarray, amplitude: int, seed: int = 0) -> np.ndarray:
    """Each frame shifted by a random whole-pixel offset, edges replicated: a shaking camera."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        dx, dy = rng.integers(-amplitude, amplitude + 1, 2)
        f = np.pad(f, ((amplitude, amplitude), (amplitude, amplitude), (0, 0)), mode="edge")
        out.append(f[amplitude + dy: amplitude + dy + frames.shape[1], amplitude + dx: amplitude + dx + frames.shape[2]])
    return np.stack(out)


def test_separates_running_from_walking(fitted, synthetic):
    running = synthetic.test[0]
    scores = fitted.score(running)
    assert scores.shape == (len(running),) and np.isfinite(scores).all()
    assert auc(running.labels, scores) > 0.95
    # calibrated: the runner rises far above the 1%-false-alarm threshold (set on one held-out video);
    # scores are surprises (-log of a probability), so +log(100) is a hundred times rarer
    assert scores[running.labels == 1].max() > fitted.threshold_ + np.log(100)


def test_save_load_gives_the_same_scores(fitted, synthetic, tmp_path):
    fitted.save(tmp_path / "run")
    loaded = Hybrid.load(tmp_path / "run")
    video = synthetic.test[0]
    np.testing.assert_allclose(loaded.score(video), fitted.score(video), rtol=1e-6, atol=1e-6)
    assert loaded.threshold_ == fitted.threshold_ and loaded.size_ == fitted.size_


def test_maps_are_at_frame_resolution_and_point_at_the_runner(fitted, synthetic):
    video = synthetic.test[0]
    scores, maps = fitted.score_maps(video)
    frames = video.frames()
    assert maps.shape == frames.shape[:3] and maps.dtype == np.float32
    np.testing.assert_allclose(scores, fitted.score(video))
    masks = video.masks()
    t = np.flatnonzero(video.labels)
    assert auc(masks[t].ravel(), maps[t].ravel()) > 0.8


@pytest.mark.parametrize("tracked", [False, True])
def test_stream_matches_batch_before_smoothing(fitted, synthetic, tracked):
    """The live scorer keeps a few frames of state and gives the batch scores, unsmoothed; also with
    regions tracked and speeds against the row's (whose state is the last frame's regions)."""
    frames = synthetic.test[0].frames()
    if tracked:
        fitted = Hybrid(track_frames=5.0, perspective=True).fit(synthetic.train)
    unsmoothed = Hybrid(dataclasses.replace(fitted.config, smooth_sigma=0.0))
    unsmoothed.__dict__.update({k: v for k, v in fitted.__dict__.items() if k.endswith("_")})
    batch = unsmoothed.score(frames)
    live = fitted.stream()
    out = [live.update(f) for f in frames]
    assert out[0][0] == fitted.rest_                        # the first frame has no flow
    np.testing.assert_allclose([s for s, _ in out[1:]], batch[1:], rtol=1e-5, atol=1e-5)
    assert out[5][1].shape == frames.shape[1:3]


def test_one_and_two_frame_videos(fitted, synthetic):
    frames = synthetic.test[0].frames()
    one = fitted.score(frames[:1])
    assert one.shape == (1,) and one[0] == fitted.rest_          # no flow at all: the normal floor
    two = fitted.score(frames[:2])
    assert two.shape == (2,) and np.isfinite(two).all() and two[0] == two[1]   # frame 0 takes frame 1's
    s, m = fitted.score_maps(frames[:1])
    assert s.shape == (1,) and m.shape == (1, *frames.shape[1:3])


def test_static_video_scores_the_floor(fitted, synthetic):
    still = np.repeat(synthetic.train[0].frames()[:1], 12, axis=0)      # nothing moves
    scores = fitted.score(still)
    np.testing.assert_allclose(scores, fitted.rest_)
    assert (scores < fitted.threshold_).all()


def test_shaking_camera_is_compensated(fitted, synthetic):
    """Whole-frame motion is removed before regions are formed: a camera shaking by up to 2 px each
    way per frame (on a 128-px-wide frame) keeps normal footage mostly below the threshold; harder
    shaking still gives finite scores (the residue at the replicated edges then shows as motion)."""
    normal = synthetic.train[0].frames()
    assert np.isfinite(fitted.score(_shaken(normal, 6))).all()
    shaken = fitted.score(_shaken(normal, 2))
    assert np.isfinite(shaken).all()
    assert np.median(shaken) < fitted.threshold_
    assert np.median(shaken) < np.median(fitted.score(synthetic.test[0])[synthetic.test[0].labels == 1])


def test_bad_inputs_are_one_clear_error(synthetic):
    with pytest.raises(VigilError, match="at least one"):
        Hybrid().fit([])
    with pytest.raises(VigilError, match="two normal training videos"):
        Hybrid().fit(synthetic.train[:1])
    with pytest.raises(VigilError, match="evidence"):
        Hybrid(evidence=("motion", "colour")).fit(synthetic.train)
    with pytest.raises(VigilError, match="fit"):
        Hybrid().score(synthetic.test[0])
    still = np.repeat(synthetic.train[0].frames()[:1], 8, axis=0)
    with pytest.raises(VigilError, match="no motion"):
        Hybrid().fit([still, still])


def test_ped2_subset(ped2):
    """Real footage, kept quick: fit on 4 training videos, score 2 test videos."""
    det = Hybrid().fit(ped2.train[:4])
    tests = ped2.test[:2]
    scores = np.concatenate([det.score(v) for v in tests])
    labels = np.concatenate([v.labels for v in tests])
    assert auc(labels, scores) > 0.9
