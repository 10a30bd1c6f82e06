"""The object-centric core (vigil.models.objects) on synthetic arrays: walkers are dark upright
ellipses crossing a noisy gray floor at walking speed; anomalies are a wide box at walking pace."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vigil.errors import VigilError
from vigil.models.objects import ObjectConfig, ObjectModel

from scenes import H, W, scene

CFG = ObjectConfig(ae_steps=150, smooth_sigma=1.0, bank_size=5000)


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    train = [scene(rng, int(rng.integers(2, 6)))[0] for _ in range(6)]
    return ObjectModel(CFG).fit(train)


def test_odd_object_is_found_and_boxed(model):
    rng = np.random.default_rng(1)
    gray, boxes = scene(rng, 3, odd=(20, 45))
    s, b, maps = model.score_full(gray)
    lab = np.array([x is not None for x in boxes])
    assert roc_auc_score(lab, s) > 0.9
    assert np.median(s[lab]) > np.median(s[~lab]) + 1.0
    assert maps.shape == gray.shape and maps.dtype == np.float32
    hits = 0
    for t in np.flatnonzero(lab):
        cx, cy = (boxes[t][0] + boxes[t][2]) / 2, (boxes[t][1] + boxes[t][3]) / 2
        bt = b[t]
        hits += any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1, _ in bt)
    assert hits >= 0.5 * lab.sum()      # boxes are only the objects rarer than box_p; the top frames all have one


def test_crowd_does_not_raise_normal_scores(model):
    means = []
    for n in (1, 3, 6):
        rng = np.random.default_rng(10 + n)
        means.append(np.mean([model.score(scene(rng, n)[0]).mean() for _ in range(2)]))
    assert means[2] <= means[0] + 1.0, means
    assert means[1] <= means[0] + 1.0, means


def test_global_brightness_change_is_not_an_anomaly(model):
    rng = np.random.default_rng(3)
    gray, _ = scene(rng, 3, offset_from=30)
    s = model.score(gray)
    assert np.mean(s[32:] > model.threshold_) <= 0.1
    assert s[32:].mean() <= s[:28].mean() + 1.0


def test_state_round_trip_and_stream_equal_batch(model):
    rng = np.random.default_rng(4)
    gray, _ = scene(rng, 4, T=30, odd=(10, 20))
    arrays, meta = model.state()
    import json

    m2 = ObjectModel.from_state(CFG, arrays, json.loads(json.dumps(meta)))
    np.testing.assert_array_equal(m2.score(gray), model.score(gray))
    st = model.stream()
    raw = np.array([st.update(f)[0] for f in gray])
    raw[0] = raw[1]                      # the batch path's frame 0 (no flow) takes frame 1's score
    np.testing.assert_allclose(model.smooth(raw), model.score(gray), rtol=1e-6, atol=1e-6)
    st.reset()
    r0, boxes, m = st.update(gray[0])
    assert boxes.shape[1] == 5 and m.shape == (H, W)


def test_bad_input_fails_in_one_line():
    rng = np.random.default_rng(5)
    v = scene(rng, 2, T=10)[0]
    for bad, what in (([v], "at least two"), ([v, v[:1]], "frame"), ([v, v.astype(np.float32)], "uint8"),
                      ([np.full((10, H, W), 120, np.uint8)] * 2, "objects")):
        with pytest.raises(VigilError, match=what) as e:
            ObjectModel(CFG).fit(bad)
        assert "\n" not in str(e.value)
