"""``hybrid``'s object-level score (issue 13) on synthetic scenes of walkers (tests/scenes.py): a frame's
score must not rise with the crowd, a change of light is not an anomaly, boxes cover the odd object,
and the threshold holds its rate on new normal footage."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from vigil.models.hybrid import Hybrid

from scenes import scene


def _train(n: int = 8, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [scene(rng, int(rng.integers(1, 7)))[0] for _ in range(n)]


@pytest.fixture(scope="module")
def fitted() -> Hybrid:
    return Hybrid(bank_size=5000).fit(_train())


def test_a_crowd_of_normal_walkers_does_not_raise_the_score(fitted):
    """The rarest region among n is corrected for n: 1, 3 and 6 walkers score alike."""
    means = {}
    for n in (1, 3, 6):
        rng = np.random.default_rng(100 + n)
        means[n] = np.mean([fitted.score(scene(rng, n)[0]).mean() for _ in range(3)])
    assert max(means.values()) - min(means.values()) < 1.0, means
    cells = Hybrid(bank_size=5000, pooling="cells").fit(_train())
    old = {n: np.mean([cells.score(scene(np.random.default_rng(100 + n), n)[0]).mean()]) for n in (1, 6)}
    assert old[6] > old[1], old                        # the cell version's maximum does rise with the crowd


def test_a_fast_object_is_found_and_boxed(fitted):
    rng = np.random.default_rng(1)
    gray, truth = scene(rng, 3, odd=(20, 45), odd_speed=3.0)
    scores, boxes = fitted.score_boxes(gray)
    lab = np.array([b is not None for b in truth])
    assert roc_auc_score(lab, scores) > 0.9
    assert scores[lab].max() > fitted.threshold_
    hits = 0
    for t in np.flatnonzero(lab):
        cx, cy = (truth[t][0] + truth[t][2]) / 2, (truth[t][1] + truth[t][3]) / 2
        hits += any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1, _ in boxes[t])
    assert hits >= 0.6 * lab.sum()
    # boxes are the regions rarer than box_p (1 in 10) only: on scenes of three normal walkers, a few
    # tenths of a box per frame, and none as unusual as the fast object's
    normal = [fitted.score_boxes(scene(np.random.default_rng(50 + i), 3)[0])[1] for i in range(3)]
    per_frame = [x for video in normal for x in video]
    assert sum(len(x) for x in per_frame) <= 0.3 * len(per_frame)
    odd_best = min(max(x[:, 4]) for t, x in enumerate(boxes) if lab[t] and len(x))
    assert all(x[:, 4].max() < odd_best for x in per_frame if len(x))


def test_a_change_of_light_is_not_an_anomaly(fitted):
    rng = np.random.default_rng(3)
    gray, _ = scene(rng, 3, offset_from=30)
    s = fitted.score(gray)
    assert np.mean(s > fitted.threshold_) <= 0.1
    assert s[33:].mean() <= s[:27].mean() + 1.0


def test_the_threshold_holds_its_rate_on_new_normal_footage(fitted):
    rng = np.random.default_rng(7)
    normal = np.concatenate([fitted.score(scene(rng, int(rng.integers(1, 7)))[0]) for _ in range(6)])
    assert np.mean(normal > fitted.threshold_) <= 0.05


def test_a_slow_object_of_another_shape_is_seen_by_appearance_only():
    """At walking pace, motion cannot tell the box from a walker; the appearance evidence (gradient
    orientations and energy of the cells, not their position) can."""
    rng = np.random.default_rng(2)
    gray, truth = scene(rng, 3, odd=(15, 50), odd_speed=1.0)
    lab = np.array([b is not None for b in truth])
    seen = Hybrid(bank_size=5000, evidence=("motion", "appearance")).fit(_train())
    assert roc_auc_score(lab, seen.score(gray)) > 0.9


def test_perspective_learns_how_normal_speed_grows_down_the_frame():
    """Walkers lower in the frame (nearer) move up to twice as fast in pixels: the fitted line of normal
    region speed per row rises down the frame; where speed does not depend on the row, it stays flat."""
    rng = np.random.default_rng(3)
    deep = Hybrid(bank_size=2000, perspective=True).fit([scene(rng, 5, perspective=True)[0] for _ in range(6)])
    flat = Hybrid(bank_size=2000, perspective=True).fit([scene(rng, 5)[0] for _ in range(6)])
    rows = slice(5, 13)                                      # where the walkers' regions are centred
    assert deep.row_scale_[12] > 1.25 * deep.row_scale_[5], deep.row_scale_
    assert abs(np.log(flat.row_scale_[12] / flat.row_scale_[5])) < abs(np.log(deep.row_scale_[12] / deep.row_scale_[5])) / 2
    assert np.all(np.diff(deep.row_scale_[rows]) >= 0)
    off = Hybrid(bank_size=2000).fit([scene(rng, 5, perspective=True)[0] for _ in range(3)])
    assert np.all(off.row_scale_ == 1)


def test_tracking_averages_a_region_along_its_track():
    """A region sharing cells with one of the frame before continues its track (exponential average);
    one sharing none starts at its own score; a merge continues the most unusual of the tracks."""
    from vigil.models.hybrid.detector import Regions

    det = Hybrid(track_frames=4.0)

    def regions(cells_of: list[list[int]], scores: list[float]) -> Regions:
        labels = np.zeros((4, 6), np.int32)
        for r, cells in enumerate(cells_of):
            labels.flat[cells] = r + 1
        return Regions(np.array(scores, np.float64)[:, None], np.zeros((len(scores), 4), np.float32), labels)

    before = regions([[0, 1], [4, 5], [20]], [8.0, 0.0, 3.0])
    now = det._track(before, regions([[1, 2], [5, 10, 11, 9], [14]], [0.0, 4.0, 1.0]))
    np.testing.assert_allclose(now.scores[:, 0], [6.0, 1.0, 1.0])      # 0.25 x + 0.75 s; new: own score
    merged = det._track(before, regions([[1, 2, 3, 4]], [0.0]))
    np.testing.assert_allclose(merged.scores[:, 0], [6.0])              # max(8, 0) carried
    assert Hybrid(track_frames=0.0)._track(before, now) is now          # track_frames 0: unchanged


@pytest.mark.parametrize("fitted_with", [{"perspective": False, "track_frames": 0.0},
                                         {"crowds": False, "dynamics_size": "region"}, {"change_factor": 0.0},
                                         {"object_size": 0.0}])
def test_a_run_saved_before_a_setting_existed_loads_as_it_was_fitted(tmp_path, fitted_with):
    """Object-level runs saved before ``perspective`` and ``track_frames`` existed, or before ``crowds`` and
    ``dynamics_size`` (whose defaults are now on and ``none``), lack those keys in their config: they load
    as they were fitted (a region size in the dynamics bank: three columns) and score as before."""
    import json

    from vigil import load

    det = Hybrid(bank_size=2000, **fitted_with).fit(_train(4, seed=5))
    run = det.save(tmp_path / "run")
    cfg_file = run / "config.json"
    saved = json.loads(cfg_file.read_text())
    for key in fitted_with:
        del saved["config"][key]
    cfg_file.write_text(json.dumps(saved))
    old = load(run)
    assert {k: getattr(old.config, k) for k in fitted_with} == fitted_with
    assert old.config.pooling == "objects"
    video = scene(np.random.default_rng(6), 3)[0]
    np.testing.assert_allclose(old.score(video), det.score(video), rtol=1e-6)


def test_regions_split_where_neighbours_move_in_opposite_directions():
    """``moving_regions`` with velocities: the same regions as OpenCV's 8-connected components when
    everything moves one way; a group whose halves move in opposite directions becomes two regions."""
    import cv2

    from vigil.models.hybrid.features import moving_regions

    rng = np.random.default_rng(0)
    active = rng.random((20, 30)) < 0.3
    n_cv, lab_cv, stats_cv, _ = cv2.connectedComponentsWithStats(active.astype(np.uint8), connectivity=8)
    n, lab, stats = moving_regions(active, np.ones((20, 30, 2)))
    assert n == n_cv
    pairs = set(zip(lab_cv.ravel(), lab.ravel()))
    assert len(pairs) == n                                   # one label of ours for each of OpenCV's
    assert all((stats_cv[a] == stats[b]).all() for a, b in pairs if a)
    group = np.zeros((4, 6), bool)
    group[1:3, 1:5] = True
    v = np.zeros((4, 6, 2))
    v[1:3, 1:3], v[1:3, 3:5] = (1, 0), (-1, 0)               # left half walks right, right half left
    n, lab, stats = moving_regions(group, v)
    assert n == 3 and set(lab[1:3, 1:3].ravel()) != set(lab[1:3, 3:5].ravel())
    np.testing.assert_array_equal(stats[1:, :4], [[1, 1, 2, 2], [3, 1, 2, 2]])
    assert moving_regions(group)[0] == 2                     # without velocities: one region


def test_shape_and_look_describe_the_region_a_cell_belongs_to():
    """Every cell of a region carries the region's box (log height, log width, centre row) and its crop,
    standardised, so that a change of light leaves the look as it was."""
    from vigil.models.hybrid.features import LOOK_WIDTH, CellStream

    stream = CellStream((64, 48), 8, tau=0.1, history=1, look=True, split=True)
    gray = (np.random.default_rng(0).random((48, 64)) * 200).astype(np.uint8)
    cf = np.zeros((6, 8, 2), np.float32)
    cf[1:4, 2:4] = (1.0, 0.0)                                # a 3 x 2 block of cells walking right
    cf[5, 6] = (0.0, 1.0)                                    # one cell on its own
    c = stream.describe(gray, cf)
    block = np.isin(c.idx, [r * 8 + k for r in range(1, 4) for k in range(2, 4)])
    np.testing.assert_allclose(c.shape[block], [[np.log(3), np.log(2), 2]] * 6, rtol=1e-6)
    np.testing.assert_allclose(c.shape[~block], [[0, 0, 5]])
    assert c.look.shape == (7, LOOK_WIDTH) and (c.look[block] == c.look[block][0]).all()
    np.testing.assert_allclose(c.look[block][0].mean(), 0, atol=1e-5)
    np.testing.assert_allclose(c.look[block][0].std(), 1, rtol=1e-4)
    brighter = CellStream((64, 48), 8, tau=0.1, history=1, look=True, split=True).describe(gray // 2 + 60, cf)
    np.testing.assert_allclose(brighter.look, c.look, atol=0.05)


def test_look_learns_what_normal_objects_look_like():
    """The principal subspace of normal walkers' crops reconstructs new walkers well and the odd box
    badly; a fitted run with shape and look saves, loads and scores the same."""
    from vigil.models.hybrid.detector import _LookModel
    from vigil.models.hybrid.features import region_crops

    rng = np.random.default_rng(4)
    normal = []
    while len(normal) < 60:                     # crops of a lone walker: its dark pixels' bounding box
        f = scene(rng, 1, T=1)[0][0]
        ys, xs = np.nonzero(f < 90)
        if len(xs) > 20 and 0 < xs.min() and xs.max() < f.shape[1] - 1:
            box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            normal.append(region_crops(f, np.array([box])))
    normal = np.concatenate(normal)
    model = _LookModel.fit(normal[:40], 10_000, rng)
    odd_frame = scene(rng, 0, T=30, odd=(0, 30))[0][5]
    odd = region_crops(odd_frame, np.array([[15, 55, 44, 30]]))
    assert model.score(odd)[0] > model.score(normal[40:]).max()
    assert region_crops(odd_frame, np.array([[0, 0, 160, 120]])).shape == (1, 128)


def test_a_run_with_shape_and_look_saves_loads_and_streams_alike(tmp_path):
    import dataclasses

    from vigil import load

    det = Hybrid(bank_size=2000, evidence=("motion", "shape", "look")).fit(_train(4, seed=8))
    video = scene(np.random.default_rng(9), 3, odd=(10, 30))[0]
    loaded = load(det.save(tmp_path / "run"))
    np.testing.assert_allclose(loaded.score(video), det.score(video), rtol=1e-6)
    unsmoothed = Hybrid(dataclasses.replace(det.config, smooth_sigma=0.0))
    unsmoothed.__dict__.update({k: v for k, v in det.__dict__.items() if k.endswith("_")})
    live = det.stream()
    out = [live.update(f)[0] for f in video]
    np.testing.assert_allclose(out[1:], unsmoothed.score(video)[1:], rtol=1e-5, atol=1e-5)


def test_the_size_in_dynamics_is_the_region_s_or_the_neighbourhood_s():
    """``dynamics_size``: ``region`` is the log area of the cell's region, which grows when walkers merge;
    ``local`` the log number of moving cells around it, at most 9 whatever the region; ``none`` leaves it out."""
    from vigil.models.hybrid.features import CellStream

    gray = np.full((48, 64), 100, np.uint8)
    cf = np.zeros((6, 8, 2), np.float32)
    cf[1:4, 1:7] = (1.0, 0.0)                                # a 3 x 6 group walking right
    sizes = {s: CellStream((64, 48), 8, tau=0.1, history=1, appearance=False, dynamics_size=s).describe(gray, cf)
             for s in ("region", "local", "none")}
    np.testing.assert_allclose(sizes["region"].dynamics[:, 2], np.log(18), rtol=1e-6)
    local = np.exp(sizes["local"].dynamics[:, 2]).round().reshape(3, 6)
    np.testing.assert_array_equal(local[1], [6, 9, 9, 9, 9, 6])
    np.testing.assert_array_equal(local[0], [4, 6, 6, 6, 6, 4])
    assert sizes["none"].dynamics.shape == (18, 2)
    np.testing.assert_array_equal(sizes["none"].dynamics, sizes["region"].dynamics[:, :2])


def test_the_crowd_correction_can_count_person_sized_objects(tmp_path):
    """``crowd_count objects``: a region of k times the median calibration region's area is k chances to
    look rare, as k walkers apart would be; ``regions`` counts it once. A saved run keeps its unit."""
    import dataclasses

    from vigil.models.hybrid.detector import RegionTails, Regions

    det = Hybrid(bank_size=2000, crowd_count="objects").fit(_train(4, seed=3))
    assert det.unit_ >= 1
    labels = np.zeros((4, 40), np.int32)
    labels[0, :int(det.unit_)] = 1                            # one walker-sized region
    labels[2, :int(4 * det.unit_)] = 2                        # four walkers merged into one region
    regions = Regions(np.full((2, len(det.config.evidence)), 5.0), np.zeros((2, 4), np.float32), labels)
    lp = det.regions_.log_p(regions.scores).min()
    assert det._frame_value(None, None, regions) == RegionTails.frame_score(lp, 5)
    by_regions = Hybrid(dataclasses.replace(det.config, crowd_count="regions"))   # same fit, counted by region
    by_regions.__dict__.update({k: v for k, v in det.__dict__.items() if k.endswith("_")})
    assert by_regions._frame_value(None, None, regions) == RegionTails.frame_score(lp, 2)
    assert Hybrid.load(det.save(tmp_path / "run")).unit_ == det.unit_


def test_a_video_s_own_crowd_holds_both_halves_walkers():
    """``self_crowd``: the first half of a video with the moving pixels of its second half laid over it;
    the still scene stays as it was; a video too short for two halves gives none."""
    from vigil.models.hybrid.features import self_crowd

    gray = np.full((20, 30, 40), 100, np.uint8)
    for t in range(20):
        x = t if t < 10 else 20 + (t - 10)
        gray[t, 5:15, x:x + 4] = 20                          # one walker in each half, at other places
    out = self_crowd(gray)
    assert out.shape == (10, 30, 40)
    for t in range(10):
        assert (out[t, 5:15, t:t + 4] == 20).all()             # its own walker
        assert (out[t, 5:15, 20 + t:24 + t] == 20).all()       # the second half's walker at frame 10 + t
    assert (out[:, 20:, :] == 100).all()
    assert self_crowd(gray[:15]) is None


def test_normal_crowds_made_from_sparse_training_footage_lower_false_alarms_in_a_crowd():
    """Trained on videos of one walker each, a scene of six walkers is new normal footage that a normality
    of single walkers finds odd (merged walkers make regions larger than any it saw: the region size in
    ``dynamics`` shows it most); with ``crowds``, the training videos' own crowds are normal footage too,
    so the threshold flags fewer of its frames, while a fast object is still found."""
    flagged = {False: [], True: []}
    for seed in (1, 2, 3, 4):
        rng = np.random.default_rng(seed)
        train = [scene(rng, 1)[0] for _ in range(4)]
        test = np.random.default_rng(40)
        dense = [scene(test, 6)[0] for _ in range(4)]
        odd, truth = scene(np.random.default_rng(1), 3, odd=(20, 45), odd_speed=3.0)
        for crowds in flagged:
            det = Hybrid(bank_size=2000, crowds=crowds, dynamics_size="region").fit(train)
            flagged[crowds].append(np.mean(np.concatenate([det.score(v) for v in dense]) > det.threshold_))
            assert roc_auc_score([b is not None for b in truth], det.score(odd)) > 0.85, (seed, crowds)
    assert np.mean(flagged[True]) < 0.8 * np.mean(flagged[False]), flagged


def test_mirror_makes_the_other_way_along_a_path_normal_and_keeps_speed_odd():
    """Trained on walkers who all go right, walkers going left are new to ``motion``: without ``mirror``
    the threshold flags many of their frames; with it (each training velocity also with its horizontal part
    reversed), few, while a fast object is still found. The fitted run records, per training
    video, its share of frames above ``threshold_`` as judged by a normality that did not see it."""
    rng = np.random.default_rng(7)
    train = [scene(rng, int(rng.integers(2, 5)), direction=1.0)[0] for _ in range(4)]
    left = [scene(np.random.default_rng(50 + i), 3, direction=-1.0)[0] for i in range(3)]
    fast, truth = scene(np.random.default_rng(60), 3, odd=(20, 45), odd_speed=3.0, direction=-1.0)
    flagged = {}
    for mirror in (False, True):
        det = Hybrid(bank_size=2000, mirror=mirror).fit(train)
        flagged[mirror] = float(np.mean(np.concatenate([det.score(v) for v in left]) > det.threshold_))
        assert len(det.unseen_alarms_) == len(train) and all(0 <= a <= 1 for a in det.unseen_alarms_)
        if mirror:
            assert roc_auc_score([b is not None for b in truth], det.score(fast)) > 0.85
    assert flagged[False] > 0.2 and flagged[True] < 0.05, flagged


def test_pace_makes_a_brisker_walk_normal_and_keeps_a_fast_object_odd():
    """Trained on walkers of one pace, walkers 1.4 times as brisk are new to ``motion`` and ``dynamics``: with
    ``pace`` 1.5 (each training cell also sped up and slowed down 1.5 times) the threshold flags fewer of
    their frames, while an object three times as fast as a walker is still found."""
    rng = np.random.default_rng(8)
    train = [scene(rng, int(rng.integers(2, 5)))[0] for _ in range(4)]
    brisk = [scene(np.random.default_rng(70 + i), 3, pace=1.4)[0] for i in range(3)]
    fast, truth = scene(np.random.default_rng(80), 3, odd=(20, 45), odd_speed=3.5)
    flagged = {}
    for pace in (1.0, 1.5):
        det = Hybrid(bank_size=2000, pace=pace).fit(train)
        flagged[pace] = float(np.mean(np.concatenate([det.score(v) for v in brisk]) > det.threshold_))
        assert roc_auc_score([b is not None for b in truth], det.score(fast)) > 0.85, pace
    assert flagged[1.5] < 0.5 * flagged[1.0], flagged


def test_the_gray_level_gate_needs_a_cell_s_pixels_to_change():
    """With ``gate``, a cell the flow says moves is active only when its gray levels changed, on average over
    the window, by more than the gate; without it, the flow alone decides."""
    from vigil.models.hybrid.features import CellStream

    rng = np.random.default_rng(3)
    before = (rng.random((48, 64)) * 200).astype(np.uint8)
    gray = before.copy()
    gray[8:32, 16:24] = 255 - gray[8:32, 16:24]               # cells (1-3, 2) change, cells (1-3, 3) do not
    cf = np.zeros((6, 8, 2), np.float32)
    cf[1:4, 2:4] = (1.0, 0.0)                                 # the flow: a 3 x 2 block of cells moving right
    gated = CellStream((64, 48), 8, tau=0.1, history=1, appearance=False, gate=5.0).describe(gray, cf, before)
    np.testing.assert_array_equal(np.sort(gated.idx), [r * 8 + 2 for r in range(1, 4)])
    plain = CellStream((64, 48), 8, tau=0.1, history=1, appearance=False).describe(gray, cf, before)
    assert len(plain.idx) == 6


def test_the_gate_keeps_moving_cells_on_the_walkers_and_a_fast_object_found():
    """Smooth optical flow spreads a walker's motion over the still floor around it; with ``change_factor``
    3 (the gate at 3x the training cells' median gray-level change) nearly every active cell lies on a
    walker, where without it many do not. A fast object is still found, and the gate is saved with the run."""
    import cv2

    train = _train(6)
    video = scene(np.random.default_rng(9), 4)[0]
    fast, truth = scene(np.random.default_rng(60), 3, odd=(20, 45), odd_speed=3.0)
    on_walkers = {}
    for factor in (0.0, 3.0):
        det = Hybrid(bank_size=3000, change_factor=factor).fit(train)
        assert (det.gate_ > 0) == (factor > 0)
        gw, gh = det.size_[0] // det.config.cell, det.size_[1] // det.config.cell
        on = []
        for gray, cells in zip(video, det._cells(video)):
            if cells is not None and len(cells.idx):
                near = cv2.dilate((gray < 90).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(np.float32)
                on.append((cv2.resize(near, (gw, gh), interpolation=cv2.INTER_AREA).ravel() > 0)[cells.idx])
        on_walkers[factor] = float(np.concatenate(on).mean())
        assert roc_auc_score([b is not None for b in truth], det.score(fast)) > 0.85, factor
    assert on_walkers[3.0] > 0.95 and on_walkers[0.0] < on_walkers[3.0] - 0.1, on_walkers


def test_a_gated_run_saves_its_gate_streams_alike_and_a_run_without_one_is_refused(tmp_path):
    """A run fitted with ``change_factor`` keeps its gate, scores the same loaded and live; its config
    without the gate does not load."""
    import dataclasses
    import json

    from vigil import load

    det = Hybrid(bank_size=2000, change_factor=3.0).fit(_train(4, seed=5))
    run = det.save(tmp_path / "run")
    loaded = load(run)
    assert loaded.gate_ == det.gate_
    video = scene(np.random.default_rng(6), 3)[0]
    np.testing.assert_allclose(loaded.score(video), det.score(video), rtol=1e-6)
    unsmoothed = Hybrid(dataclasses.replace(det.config, smooth_sigma=0.0))
    unsmoothed.__dict__.update({k: v for k, v in loaded.__dict__.items() if k.endswith("_")})
    live = loaded.stream()                     # the live path gates with the frame before, as the batch one
    np.testing.assert_allclose([live.update(f)[0] for f in video][1:], unsmoothed.score(video)[1:], rtol=1e-5, atol=1e-5)
    saved = json.loads((run / "config.json").read_text())
    del saved["fitted"]["gate"]
    (run / "config.json").write_text(json.dumps(saved))
    with pytest.raises(Exception, match="gate"):
        load(run)


def test_objects_seen_small_are_worked_on_at_a_finer_scale(tmp_path):
    """``object_size``: the moving objects' mean height in cells halves when the frame is worked at half the
    width; fitted at a working width where the walkers are 1-2 cells tall, the working width grows (up to the
    source's own) until they are as tall as the setting asks, a run keeps that size, and where the objects are
    tall enough, or the source is no wider, nothing changes."""
    from vigil import load
    from vigil.models.hybrid.features import object_height

    train = _train(6)
    small = [np.stack([cv2_resize(f, (80, 60)) for f in v]) for v in train]
    heights = object_height(train, 8), object_height(small, 8)
    assert 0.35 < heights[1] / heights[0] < 0.7, heights
    grown = Hybrid(bank_size=3000, max_width=80, object_size=heights[0]).fit(train)
    assert 120 <= grown.size_[0] <= 160, grown.size_                # as tall as at the source's width, about
    assert Hybrid(bank_size=3000, max_width=80, object_size=3 * heights[0]).fit(train).size_[0] == 160  # never beyond
    assert Hybrid(bank_size=3000, max_width=80, object_size=0.0).fit(train).size_[0] == 80
    assert Hybrid(bank_size=3000, max_width=80, object_size=heights[1] * 0.9).fit(train).size_[0] == 80
    fast, truth = scene(np.random.default_rng(60), 3, odd=(20, 45), odd_speed=3.0)
    assert roc_auc_score([b is not None for b in truth], grown.score(fast)) > 0.85
    assert load(grown.save(tmp_path / "run")).size_ == grown.size_


def cv2_resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def test_vigil_train_says_when_the_working_size_grew(synthetic_root, tmp_path, capsys):
    """A user is told what the footage made ``hybrid`` choose: the grown working size and why, in ``vigil
    train``'s output; the run keeps it."""
    import json

    from vigil.cli import main

    assert main(["train", "--model", "hybrid", "--data", str(synthetic_root), "--out", str(tmp_path / "run"),
                 "--set", "max_width=64", "--set", "bank_size=2000"]) == 0
    out = capsys.readouterr()
    said = [line for line in (out.out + out.err).splitlines() if "grown from 64x48 (max_width)" in line]
    size = json.loads((tmp_path / "run" / "config.json").read_text())["fitted"]["size"]
    assert 64 < size[0] <= 128, size
    assert len(said) == 1 and f"working size {size[0]}x{size[1]}," in said[0] and "object_size 3" in said[0], said
