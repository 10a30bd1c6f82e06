"""The frame guard: orientation and quality checks fitted on normal frames, used by every detector."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vigil.cli import main
from vigil.corrupt import Corruption, apply_ops, plan_video
from vigil.data.guard import FrameGuard, GuardStream
from vigil.metrics import auc
from vigil.detector import Detector

SIZE = (128, 96)          # the synthetic corridor's own size


@pytest.fixture(scope="module")
def guard(synthetic) -> FrameGuard:
    return FrameGuard.fit([v.frames(size=SIZE, gray=True) for v in synthetic.train])


def _corrupt(frames: np.ndarray, spec: Corruption, seed: int = 0) -> tuple[np.ndarray, list]:
    """Frames corrupted in place (no drops or duplicates, so frame t stays frame t) and the plan."""
    plan = plan_video(len(frames), dataclasses.replace(spec, drop=0.0, dup=0.0), np.random.default_rng(seed))
    out = np.stack([apply_ops(frames[p.source], p.ops, spec, np.random.default_rng([seed, t]))
                    for t, p in enumerate(plan)])
    return out, plan


def test_flipped_frames_are_found_and_turned_back(guard, synthetic):
    assert guard.flip_enabled and guard.diagnostics["held_out_flipped_found"] == 1.0
    test = np.concatenate([v.frames(size=SIZE, gray=True) for v in synthetic.test])
    corrupted, plan = _corrupt(test, Corruption(flip=0.3, noise=0, blur=0))
    truth = np.array(["flip" in p.ops for p in plan])
    rep = guard.inspect(corrupted)
    assert 0.2 < truth.mean() < 0.4
    assert (rep.flipped == truth).mean() >= 0.99 and not rep.flipped[~truth].any()
    assert not rep.bad.any()                         # clean frames: quality in range, nothing concealed
    np.testing.assert_array_equal(guard.apply(corrupted), test)
    np.testing.assert_array_equal(guard.apply(test), test)     # upright footage passes unchanged


def test_noisy_and_blurred_frames_are_concealed_by_a_good_neighbour(guard, synthetic):
    test = synthetic.test[1].frames(size=SIZE, gray=True)
    corrupted, plan = _corrupt(test, Corruption(flip=0, noise=0.15, blur=0.15), seed=1)
    damaged = np.array([bool(p.ops) for p in plan])
    rep = guard.inspect(corrupted)
    assert damaged.sum() >= 10 and (rep.bad == damaged).mean() >= 0.95 and not rep.bad[~damaged].any()
    out = guard.apply(corrupted)
    for t in np.flatnonzero(rep.bad):
        s = rep.source[t]
        assert s != t and not damaged[s] and abs(s - t) <= guard.max_gap
        np.testing.assert_array_equal(out[t], test[s])
    # a camera noisier all the time is not frozen: without good neighbours frames stay as they are
    noisy, _ = _corrupt(test[:20], Corruption(flip=0, noise=1.0, blur=0), seed=2)
    np.testing.assert_array_equal(guard.apply(noisy), noisy)


def test_a_scene_that_looks_alike_both_ways_up_disables_the_flip():
    rng = np.random.default_rng(0)
    videos = []
    for _ in range(5):
        f = rng.integers(0, 255, (30, 48, 64)).astype(np.float32)
        videos.append(((f + f[:, ::-1]) / 2).astype(np.uint8))          # each frame symmetric top-bottom
    g = FrameGuard.fit(videos)
    assert not g.flip_enabled and not g.inspect(videos[0][:, ::-1]).flipped.any()


def test_guard_state_is_saved_and_old_runs_still_load(trained_hybrid, synthetic, synthetic_root, tmp_path):
    from safetensors.numpy import load_file, save_file

    run = trained_hybrid.save(tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["guard"]["flip_enabled"] and cfg["config"]["guard"] is True
    loaded = Detector.load(run)
    np.testing.assert_array_equal(loaded.guard_.reference, trained_hybrid.guard_.reference)
    assert loaded.guard_.noise_limit == trained_hybrid.guard_.noise_limit
    # a run saved before the guard existed: no guard.* arrays, no "guard" entry, no setting
    arrays = {k: v for k, v in load_file(str(run / "model.safetensors")).items() if not k.startswith("guard.")}
    save_file(arrays, str(run / "model.safetensors"), metadata={"vigil_model": "hybrid"})
    del cfg["guard"], cfg["config"]["guard"]
    cfg["command"] = "vigil train --model hybrid ..."
    (run / "config.json").write_text(json.dumps(cfg))
    old = Detector.load(run)
    assert old.guard_ is None                      # guard off until fitted: frames pass unchanged
    video = synthetic.test[0]
    flipped = video.frames()[:, ::-1]
    off = dataclasses.replace(trained_hybrid.config, guard=False)
    np.testing.assert_allclose(old.score(flipped), _with(trained_hybrid, off).score(flipped))
    old.fit_guard(synthetic.train)                 # no retraining: the guard alone is added
    np.testing.assert_allclose(old.score(flipped), trained_hybrid.score(video.frames()), atol=1e-6)
    # `vigil guard` writes it into the run folder and keeps everything else
    assert main(["guard", str(run), "--data", str(synthetic_root)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["guard"]["flip_enabled"] and cfg["command"] == "vigil train --model hybrid ..."
    np.testing.assert_allclose(Detector.load(run).score(flipped), old.score(flipped))


def _with(det, config):
    """A shallow copy of ``det`` with another config (the ablation switch)."""
    import copy

    other = copy.copy(det)
    other.config = config
    return other


def test_hybrid_scores_corrupted_footage_like_clean_with_the_guard(trained_hybrid, synthetic):
    video = synthetic.test[0]                                                 # the runner
    clean = video.frames()
    corrupted, _ = _corrupt(clean, Corruption(flip=0.3, noise=0.1, blur=0.1), seed=3)
    s_clean = trained_hybrid.score(clean)
    s_on = trained_hybrid.score(corrupted)
    s_off = _with(trained_hybrid, dataclasses.replace(trained_hybrid.config, guard=False)).score(corrupted)
    gap_on, gap_off = np.abs(s_on - s_clean).mean(), np.abs(s_off - s_clean).mean()
    assert gap_on < 0.2 * gap_off
    assert auc(video.labels, s_on) > 0.9 and auc(video.labels, s_on) > auc(video.labels, s_off) + 0.1


def test_live_hybrid_stream_turns_frames_upright(trained_hybrid, synthetic):
    frames = synthetic.test[0].frames()[:30]
    flipped = frames.copy()
    flipped[1::3] = flipped[1::3, ::-1]
    a, b = trained_hybrid.stream(), trained_hybrid.stream()
    upright = [a.update(f) for f in frames]
    turned = [b.update(f) for f in flipped]
    np.testing.assert_allclose([s for s, _ in turned], [s for s, _ in upright], atol=1e-6)
    for t, ((_, m_up), (_, m_turned)) in enumerate(zip(upright, turned)):   # maps overlay the frames given
        np.testing.assert_allclose(m_turned, m_up[::-1] if t % 3 == 1 else m_up, atol=1e-6)
    g = GuardStream(trained_hybrid.guard_)
    small = trained_hybrid._read(synthetic.test[0])[:3]
    noisy, _ = _corrupt(small[1:2], Corruption(flip=0, noise=1.0, blur=0), seed=4)
    first = small[0]
    assert g.update(first) is first and g.update(noisy[0]) is first      # concealed by the last good frame


def test_every_detector_reads_through_the_guard(synthetic, tmp_path):
    """True Sight and OCR-GAN Video (tiny, one epoch) fit a guard, save it, and read flipped frames upright."""
    from vigil.models.ocrgan_video.detector import OcrGanVideo
    from vigil.models.truesight import TrueSight

    train = synthetic.train[:3]
    video = synthetic.test[2]
    flipped = video.frames()[:, ::-1]
    for det in (TrueSight(progress=False, size=32, scales=(32,), enc_channels=(8, 16, 32, 32), epochs=1),
                OcrGanVideo(progress=False, size=32, gen_channels=8, feat_channels=16, heads=4, epochs=1,
                            batch_size=8, clip_len=8)):
        det.fit(train)
        assert det.guard_ is not None and det.guard_.flip_enabled
        np.testing.assert_array_equal(det.frames_of(video)[0], det.frames_of(type(video).from_array("f", flipped))[0])
        loaded = Detector.load(det.save(tmp_path / det.name))
        np.testing.assert_allclose(loaded.score(flipped), det.score(video), rtol=1e-5, atol=1e-5)
    # OCR-GAN Video's live path reads through the guard too, and gives maps in the orientation given
    a, b = det.stream(maps=True), det.stream(maps=True)
    for f, g in zip(video.frames()[:10], flipped[:10]):
        (s_up, m_up), (s_turned, m_turned) = a.update(f), b.update(g)
        assert s_turned == pytest.approx(s_up, rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(m_turned, m_up[::-1], rtol=1e-5, atol=1e-5)


def test_maps_are_returned_in_the_orientation_given(trained_hybrid, synthetic):
    frames = synthetic.test[0].frames()
    turned = frames.copy()
    turned[::2] = turned[::2, ::-1]
    s_up, m_up = trained_hybrid.score_maps(frames)
    s_turned, m_turned = trained_hybrid.score_maps(turned)
    np.testing.assert_allclose(s_turned, s_up, atol=1e-6)
    np.testing.assert_allclose(m_turned[::2], m_up[::2, ::-1], atol=1e-6)    # they overlay the turned frames
    np.testing.assert_allclose(m_turned[1::2], m_up[1::2], atol=1e-6)
