"""OCR-GAN Video: module shapes, frequency decoupling, channel selection, scoring, saving, edge cases, explain."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import vigil.models.ocrgan_video  # noqa: F401  (registers the detector)
from vigil.errors import VigilError
from vigil.detector import Detector, seed_everything
from vigil.registry import get_detector
from vigil.models.ocrgan_video.detector import OcrGanVideoConfig
from vigil.models.ocrgan_video.network import ChannelSelection, FrequencySplit, OcrGanVideoModel
from vigil.models.ocrgan_video.detector import OcrGanVideo, _to_float

TINY = dict(size=32, gen_channels=8, feat_channels=16, heads=4, epochs=1, batch_size=4, seed=0)


def moving_square_video(n: int, seed: int, speed: float = 1.5, h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = (rng.random((h, w)) * 40 + 80).astype(np.float32)
    frames = []
    x0 = rng.integers(0, 10)
    for t in range(n):
        f = bg.copy()
        x = int(x0 + speed * t) % (w - 8)
        f[20:28, x:x + 8] = 220
        frames.append(f)
    return np.stack(frames).astype(np.uint8)  # (N, H, W) gray; Video.from_array makes it RGB


@pytest.fixture(scope="module")
def train_videos():
    return [moving_square_video(36, s) for s in range(3)]


@pytest.fixture(scope="module")
def fitted(train_videos):
    return OcrGanVideo(progress=False, clip_len=8, **TINY).fit(train_videos)


# --- modules ----------------------------------------------------------------------------------

def test_frequency_split_reconstructs_the_frame_exactly_and_keeps_the_residual_signed():
    x = torch.rand(2, 8, 64, 64) * 2 - 1
    low, high = FrequencySplit(1.0)(x)
    assert low.shape == high.shape == x.shape
    assert torch.allclose(low + high, x, atol=1e-6)
    assert (high < 0).any() and (high > 0).any(), "the high band must stay signed, not clipped at zero"
    assert low.std() < x.std(), "the low band is a blur"


def test_channel_selection_works_on_a_batch_of_one_in_training_mode():
    cs = ChannelSelection(32).train()
    fl, fh = torch.randn(1, 32, 8, 8), torch.randn(1, 32, 8, 8)
    fused, a = cs(fl, fh)
    assert fused.shape == (1, 32, 8, 8) and a.shape == (1, 2, 32)
    assert torch.allclose(a.sum(1), torch.ones(1, 32), atol=1e-6)


@pytest.mark.parametrize("T", [8, 16])
@pytest.mark.parametrize("B", [1, 2])
def test_shapes_through_every_module(T, B):
    cfg = OcrGanVideoConfig(clip_len=T)        # the real sizes: 64 x 64, C = 100 on an 8 x 8 grid, 4 heads
    model = OcrGanVideoModel(cfg).train()
    clip = torch.rand(B, T, 64, 64) * 2 - 1
    out = model.predict(clip)
    assert out.frame.shape == out.low.shape == out.high.shape == (B, 64, 64)
    assert out.selection.shape == (B, 2, 4 * cfg.gen_channels)
    d = model.discriminator(clip)
    assert d.logits.shape == (B, 8, 8)
    assert d.features.shape == (B, 100, 8, 8)
    assert d.attention.shape == (B, 8, 8, 4, T, T)
    assert torch.allclose(d.attention.sum(-1), torch.ones(B, 8, 8, 4, T), atol=1e-5)
    losses, _ = model.losses(clip)
    assert all(torch.isfinite(v) for v in losses)


def test_channel_selection_is_registered_on_the_model():
    model = OcrGanVideoModel(OcrGanVideoConfig())
    names = [k for k in model.state_dict() if "select" in k]
    assert names, "channel selection must be part of the model's state"
    assert all(p.requires_grad for n, p in model.named_parameters() if "select" in n)


def test_channel_selection_weights_change_during_training(fitted):
    seed_everything(fitted.config.seed)
    before = OcrGanVideoModel(fitted.config).generator.select.state_dict()
    after = fitted.model_.generator.select.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.allclose(before[k], after[k]) for k in before)


def test_attention_module_is_trained(fitted):
    seed_everything(fitted.config.seed)
    before = OcrGanVideoModel(fitted.config).discriminator.temporal.attn.qkv.weight
    assert not torch.allclose(before, fitted.model_.discriminator.temporal.attn.qkv.weight)


# --- the detector -----------------------------------------------------------------------------

def test_registered():
    assert get_detector("ocrgan-video") is OcrGanVideo


def test_scores_and_maps(fitted):
    video = moving_square_video(20, 7, speed=4.0)
    s = fitted.score(video)
    assert s.shape == (20,) and np.isfinite(s).all()
    s2, maps = fitted.score_maps(video)
    np.testing.assert_allclose(s, s2)
    assert maps.shape == (20, 48, 64) and maps.dtype == np.float32
    c = fitted.score_components(video)
    assert c.stats.shape == (20, 4, 4, 5)


def test_save_load_gives_identical_scores(fitted, tmp_path):
    video = moving_square_video(16, 9)
    fitted.save(tmp_path / "run")
    for loaded in (OcrGanVideo.load(tmp_path / "run"), Detector.load(tmp_path / "run")):
        np.testing.assert_array_equal(loaded.score(video), fitted.score(video))


def test_live_stream_keeps_one_clip_plus_the_smoothing_history(fitted):
    assert fitted.context() == 8 + 6
    stream = fitted.stream()
    video = np.repeat(moving_square_video(20, 2)[..., None], 3, axis=-1)
    live = [stream.update(f)[0] for f in video]
    assert len(live) == 20 and np.isfinite(live).all()


def test_live_stream_runs_one_clip_per_frame_and_matches_the_batch_scores(fitted, monkeypatch):
    from vigil.models.ocrgan_video.detector import WindowScorer
    from vigil.scoring import gaussian_smooth

    video = np.repeat(moving_square_video(20, 2)[..., None], 3, axis=-1)
    T, sigma = fitted.config.clip_len, fitted.config.score_sigma
    raw = fitted._raw_components(fitted._infer(_to_float(fitted.frames_of(video)[0])))
    fused = fitted._fuse(raw, fitted.config.attention)           # per frame, before smoothing
    history = fitted.context() - T + 1
    # the batch's smoothing applied to each frame's past alone
    expected = [gaussian_smooth(fused[max(0, t - history + 1):t + 1], sigma)[-1] for t in range(len(video))]

    windows, forward = [], WindowScorer.forward
    monkeypatch.setattr(WindowScorer, "forward", lambda self, x: windows.append(len(x)) or forward(self, x))
    stream = fitted.stream(maps=True)
    live = [stream.update(f) for f in video]
    assert windows == [T] * len(video)                            # one clip of T frames per new frame
    np.testing.assert_allclose([s for s, _ in live], expected, rtol=1e-4, atol=1e-4)
    assert all(m.shape == video.shape[1:3] and np.isfinite(m).all() for _, m in live)


def test_checkpoint_with_another_clip_length_is_refused_clearly(fitted, tmp_path):
    fitted.save(tmp_path / "run")
    OcrGanVideo.load(tmp_path / "run", clip_len=8)                # the same length is fine
    with pytest.raises(VigilError, match="trained with clip_len 8.*--clip-len 16"):
        OcrGanVideo.load(tmp_path / "run", clip_len=16)


def test_video_shorter_than_one_clip_is_padded_with_its_first_frame(fitted):
    """Documented behaviour: every frame is scored; missing context repeats the first frame."""
    short = moving_square_video(3, 4)
    s = fitted.score(short)
    assert s.shape == (3,) and np.isfinite(s).all()
    padded = np.concatenate([np.repeat(short[:1], 5, axis=0), short])
    raw_short = fitted._infer(_to_float(fitted.frames_of(short)[0]))
    raw_padded = fitted._infer(_to_float(fitted.frames_of(padded)[0]))
    np.testing.assert_allclose(raw_short.rec_map, raw_padded.rec_map[5:], atol=1e-5)
    assert len(fitted.score(short[:1])) == 1                      # even a single frame


def test_training_videos_shorter_than_one_clip_give_a_clear_error():
    with pytest.raises(VigilError, match="shorter than one clip of 16 frames"):
        OcrGanVideo(progress=False, clip_len=16, **TINY).fit([moving_square_video(10, 0)])


def test_unsupported_clip_length_gives_a_clear_error():
    with pytest.raises(VigilError, match="clip_len 40"):
        OcrGanVideo(progress=False, clip_len=40, **TINY).fit([moving_square_video(50, 0)])


def test_clip_16_and_the_ablation_without_attention(train_videos):
    det = OcrGanVideo(progress=False, clip_len=16, attention=False, **{**TINY, "epochs": 1}).fit(train_videos)
    assert det.model_.discriminator.temporal is None
    s = det.score(moving_square_video(20, 5))
    assert s.shape == (20,) and np.isfinite(s).all()
    with pytest.raises(VigilError, match="without temporal attention"):
        det.clip_attention(moving_square_video(20, 5))


# --- explain ----------------------------------------------------------------------------------

def _write_frames(folder, frames):
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), f)
    return folder


def test_explain_writes_pictures_and_json(fitted, tmp_path):
    from vigil.explain import explain_video

    fitted.save(tmp_path / "run")
    video = _write_frames(tmp_path / "video", moving_square_video(19, 3))
    path = explain_video(tmp_path / "run", video, tmp_path / "out", position=(1, 2))
    data = json.loads(path.read_text())
    T = 8
    assert [(c["first_frame"], c["last_frame"]) for c in data["clips"]] == [(0, 7), (8, 15), (11, 18)]
    clip = data["clips"][0]
    assert np.array(clip["attention_at_position"]).shape == (4, T, T)
    np.testing.assert_allclose(np.array(clip["attention_mean_over_positions"]).sum(-1), 1, atol=1e-3)
    assert set(clip["statistics_per_position"]) == set(data["statistic_names"])
    assert np.array(clip["statistics_per_position"]["entropy"]).shape == (4, 4)
    assert all(len(v) == 3 for v in clip["top3_attended_frames"].values())
    assert len(data["frame_scores"]) == 19
    for c in data["clips"]:
        for name in c["pictures"]:
            assert (tmp_path / "out" / name).stat().st_size > 1000
    with pytest.raises(VigilError, match="outside the 4 x 4"):
        explain_video(tmp_path / "run", video, tmp_path / "out2", position=(4, 0))


def test_explain_a_video_shorter_than_one_clip(fitted, tmp_path):
    from vigil.explain import explain_video

    fitted.save(tmp_path / "run")
    video = _write_frames(tmp_path / "short", moving_square_video(5, 1))
    data = json.loads(explain_video(tmp_path / "run", video, tmp_path / "out").read_text())
    assert len(data["clips"]) == 1 and data["clips"][0]["padded_frames"] == 3
    assert data["clips"][0]["frames"] == [0, 0, 0, 0, 1, 2, 3, 4]


def test_pooling_published_is_the_plain_mean_error_and_survives_save_load(fitted, train_videos, tmp_path):
    import copy
    import dataclasses

    assert fitted.config.pooling == "published"                  # the default: OCR-GAN's rule
    video = moving_square_video(20, 7)
    o = fitted._infer(_to_float(fitted.frames_of(video)[0]))
    raw = fitted._raw_components(o)
    np.testing.assert_allclose(raw["rec"], o.rec_map.reshape(len(video), -1).mean(1), rtol=1e-6)
    np.testing.assert_allclose(raw["feat"], o.feat_map.reshape(len(video), -1).mean(1), rtol=1e-6)
    scores = fitted.score(video)

    det = copy.deepcopy(fitted)                                 # the same networks, calibrated for the max
    det.config = dataclasses.replace(det.config, pooling="max")
    det.recalibrate(train_videos)
    raw_max = det._raw_components(o)
    np.testing.assert_allclose(raw_max["rec"], raw["_map"].reshape(len(video), -1).max(1), rtol=1e-6)
    assert np.isfinite(det.score(video)).all() and not np.allclose(det.score(video), scores)
    loaded = Detector.load(det.save(tmp_path / "run"))
    assert loaded.config.pooling == "max" and loaded.threshold_ == det.threshold_
    np.testing.assert_array_equal(loaded.score(video), det.score(video))
    # recalibrating with the pooling it was trained with gives back the same calibration
    again = copy.deepcopy(fitted).recalibrate(train_videos)
    np.testing.assert_allclose(again.score(video), scores, rtol=1e-6)


def test_a_run_saved_before_the_pooling_setting_keeps_the_max_it_was_calibrated_for(fitted, train_videos, tmp_path):
    import copy
    import dataclasses

    det = copy.deepcopy(fitted)
    det.config = dataclasses.replace(det.config, pooling="max")
    det.recalibrate(train_videos)
    run = det.save(tmp_path / "old")
    meta = json.loads((run / "config.json").read_text())
    del meta["config"]["pooling"]                               # as written before the setting existed
    (run / "config.json").write_text(json.dumps(meta))
    loaded = Detector.load(run)
    assert loaded.config.pooling == "max"
    video = moving_square_video(20, 7)
    np.testing.assert_array_equal(loaded.score(video), det.score(video))


def test_unknown_pooling_is_one_clear_error():
    with pytest.raises(VigilError, match="pooling 'median' is not one of max, mean, published"):
        OcrGanVideo(progress=False, pooling="median", **TINY).fit([moving_square_video(20, 0)])
