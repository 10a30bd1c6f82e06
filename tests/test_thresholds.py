"""Every detector stores a calibrated alert threshold, and keeps it through save/load."""

import numpy as np
import pytest

from vigil import Detector, available, get_detector

TINY = {"truesight": dict(epochs=1), "hybrid": dict(),
        "ocrgan-video": dict(size=32, gen_channels=8, feat_channels=16, heads=4, epochs=1, batch_size=4)}


@pytest.mark.parametrize("name", available())
def test_threshold_is_calibrated_and_saved(name, synthetic, tmp_path):
    det = get_detector(name)(progress=False, **TINY.get(name, {})).fit(synthetic.train[:4])
    assert np.isfinite(det.threshold_)
    scores = det.score(synthetic.train[0])
    assert scores.shape == (len(synthetic.train[0]),) and np.isfinite(scores).all()
    again = Detector.load(det.save(tmp_path / "run"))
    assert again.threshold_ == det.threshold_
    np.testing.assert_allclose(again.score(synthetic.train[0]), scores, rtol=1e-5, atol=1e-6)
