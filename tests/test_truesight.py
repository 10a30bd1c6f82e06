"""True Sight: the architecture of the design document, training, save/load and a quality floor."""

import json

import numpy as np
import pytest
import torch

from vigil.errors import VigilError
from vigil.metrics import auc
from vigil.detector import Detector
from vigil.models.truesight import COMPONENTS, TrueSight, TrueSightConfig, TrueSightNet


def test_architecture_follows_the_design():
    cfg = TrueSightConfig()
    net = TrueSightNet(cfg).eval()
    out = net(torch.rand(1, 3, 96, 96))                        # a batch of one
    assert out.recon.shape == (1, 3, 96, 96) and out.attention.shape == (1, 1, 96, 96)
    assert 0 <= out.recon.min() and out.recon.max() <= 1
    assert len(net.attention.heads) == 3 and net.attention.fusion.requires_grad
    assert net.squeeze[0].out_channels == 32                   # the 32-channel bottleneck
    assert [m.out_channels for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)] == [32, 64, 128, 128]
    assert [m.p for m in net.encoder.modules() if isinstance(m, torch.nn.Dropout2d)] == [0.45, 0.40, 0.35, 0.35]
    for s in cfg.scales:                                       # every inference scale runs
        assert net(torch.rand(2, 3, s, s)).recon.shape == (2, 3, s, s)
    assert dict(zip(COMPONENTS, cfg.weights)) == {"l1": 0.26, "l2": 0.22, "max": 0.21, "attention": 0.15,
                                                   "std": 0.08, "frequency": 0.06, "peak": 0.02}


@pytest.fixture(scope="module")
def trained(trained_truesight):
    return trained_truesight


def test_attention_fusion_is_learned(trained):
    assert not torch.allclose(trained.net_.attention.fusion.detach(), torch.zeros(3))


def test_separates_running_from_walking(trained, synthetic):
    """True Sight sees appearance: the blurred, leaning runner and the abandoned box. (A wrong-way
    walker looks like any walker in a single frame; that takes a motion model, see ``hybrid``.)"""
    running, box = synthetic.test[0], synthetic.test[2]
    s = trained.score(running)
    assert s.shape == (len(running),) and np.isfinite(s).all()
    assert auc(running.labels, s) > 0.65
    assert auc(box.labels, trained.score(box)) > 0.85


def test_scores_are_on_one_scale_and_threshold_is_calibrated(trained, synthetic):
    # held-out normal footage sits around 0; the threshold is a high quantile of it
    assert trained.threshold_ > 0
    # new normal footage of the same camera (the test videos' normal frames): about the 1% it is set for
    normal = np.concatenate([trained.score(v)[v.labels == 0] for v in synthetic.test])
    assert np.mean(normal > trained.threshold_) <= 0.05


def test_save_load_gives_identical_scores(trained, synthetic, tmp_path):
    trained.save(tmp_path / "run")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["model"] == "truesight" and cfg["config"]["epochs"] == 20 and cfg["config"]["bottleneck"] == 32
    again = Detector.load(tmp_path / "run")
    assert isinstance(again, TrueSight)
    v = synthetic.test[1]
    np.testing.assert_array_equal(trained.score(v), again.score(v))


def test_maps_at_frame_resolution(trained, synthetic):
    v = synthetic.test[2]
    s, maps = trained.score_maps(v)
    assert maps.shape == (len(v), 96, 128) and maps.dtype == np.float32 and (maps >= 0).all()
    # the abandoned box is where the map is hottest, more often than not
    masks = v.masks()
    hit = [maps[t][masks[t]].mean() > maps[t][~masks[t]].mean() for t in range(len(v)) if masks[t].any()]
    assert np.mean(hit) > 0.7


def test_bad_checkpoints(trained, tmp_path):
    run = trained.save(tmp_path / "run")
    (run / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(VigilError, match="corrupt weights file"):
        Detector.load(run)
    trained.save(run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["config"]["bottleneck"] = 16
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VigilError, match="weights do not fit model 'truesight'"):
        Detector.load(run)
    cfg["model"] = "no-such-model"
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VigilError, match="unknown model 'no-such-model'"):
        Detector.load(run)


def test_cuda_without_cuda_is_a_clear_error(synthetic):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(VigilError, match="CUDA is not available"):
        TrueSight(epochs=1, device="cuda", progress=False).fit(synthetic.train[:1])


def test_ped2_short_training_beats_chance(ped2):
    """A short run on real data: 6 training clips, 4 epochs, the first two test clips."""
    det = TrueSight(epochs=4, progress=False).fit(ped2.train[:6])
    scores = [det.score(v) for v in ped2.test[:2]]
    assert [len(s) for s in scores] == [len(v) for v in ped2.test[:2]]
    assert all(np.isfinite(s).all() for s in scores)
    y = np.concatenate([v.labels for v in ped2.test[:2]])
    assert auc(y, np.concatenate(scores)) > 0.6
