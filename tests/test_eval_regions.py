"""Boxes from maps and masks, IoU, and RBDC against hand-computed values."""

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.regions import box_iou, boxes_from_map, mask_boxes, rbdc, rbdc_curve, rbdc_from_regions


def test_boxes_from_a_map_are_components_with_their_peak():
    m = np.zeros((10, 12), np.float32)
    m[1:3, 2:5] = 2.0                                     # rows 1-2, columns 2-4
    m[2, 3] = 7.0
    m[6:9, 8:9] = 3.0                                     # rows 6-8, column 8
    m[9, 9] = 4.0                                         # touches (8, 8) diagonally: same component
    b = boxes_from_map(m, 1.0)
    assert b.dtype == np.float32 and b.shape == (2, 5)
    assert b.tolist() == [[2, 1, 5, 3, 7.0], [8, 6, 10, 10, 4.0]]   # highest score first, x1/y1 exclusive
    assert boxes_from_map(m, 10.0).shape == (0, 5)
    assert boxes_from_map(m, 2.5).tolist() == [[3, 2, 4, 3, 7.0], [8, 6, 10, 10, 4.0]]


def test_mask_boxes_and_iou():
    k = np.zeros((8, 8), bool)
    k[0:2, 0:2] = True
    k[5:8, 4:6] = True
    assert mask_boxes(k).tolist() == [[0, 0, 2, 2], [4, 5, 6, 8]]
    iou = box_iou(np.array([[0, 0, 10, 10, 1], [5, 0, 15, 10, 1]]), np.array([[0, 0, 10, 10]]))
    assert iou[:, 0].tolist() == pytest.approx([1.0, 50 / 150])


def _frame(gt, *boxes):
    m = np.zeros((40, 40), bool)
    x0, y0, x1, y1 = gt
    m[y0:y1, x0:x1] = True
    return m, np.array(boxes, np.float32).reshape(-1, 5)


def test_perfect_boxes_give_one_and_boxes_that_miss_give_zero():
    gts = [(2, 2, 10, 10), (20, 5, 30, 25), (0, 30, 8, 40)]
    masks = [_frame(g)[0] for g in gts]
    perfect = [np.array([[*g, 0.9]], np.float32) for g in gts]
    assert rbdc(perfect, masks) == pytest.approx(1.0)
    missed = [np.array([[x0 + 10, y0, x1 + 10, y1, 0.9]], np.float32) if x1 + 10 <= 40 else
              np.array([[30, 0, 40, 5, 0.9]], np.float32) for x0, y0, x1, y1 in gts]
    assert max(box_iou(b, mask_boxes(m)).max() for b, m in zip(missed, masks)) == 0
    assert rbdc(missed, masks) == 0.0


def test_a_false_positive_in_every_frame_scoring_above_the_true_boxes_gives_zero():
    # 2 frames, one region each, found at 0.5; one false positive per frame at 0.9: by the time a
    # region is found there is already 1 false positive per frame -> curve (0,0),(1,0),(1,1): area 0
    gts = [(2, 2, 10, 10), (20, 20, 30, 30)]
    frames = [_frame(g, (*g, 0.5), (30, 0, 40, 8, 0.9)) for g in gts]
    assert rbdc([b for _, b in frames], [m for m, _ in frames]) == 0.0


def test_a_false_positive_in_half_the_frames_gives_one_half():
    # the same with the false positive in frame 1 only: (0,0),(0.5,0),(0.5,1), held to (1,1) -> 0.5
    a = _frame((2, 2, 10, 10), (2, 2, 10, 10, 0.5), (30, 0, 40, 8, 0.9))
    b = _frame((20, 20, 30, 30), (20, 20, 30, 30, 0.5))
    assert rbdc([a[1], b[1]], [a[0], b[0]]) == pytest.approx(0.5)
    # false positives scoring below the true boxes cost nothing: (0,0),(0,1),(1,1) -> 1
    c = _frame((2, 2, 10, 10), (2, 2, 10, 10, 0.9), (30, 0, 40, 8, 0.5))
    d = _frame((20, 20, 30, 30), (20, 20, 30, 30, 0.9), (0, 30, 8, 40, 0.5))
    assert rbdc([c[1], d[1]], [c[0], d[0]]) == pytest.approx(1.0)


def test_a_mixed_curve_by_hand():
    # 4 frames, one region each. Frame 1: found at 0.9; frame 2: found at 0.8; frame 3: a box that
    # misses (FP) at 0.7; frame 4: found at 0.6. Points (FP/frame, rate): (0,0) (0,.25) (0,.5)
    # (.25,.5) (.25,.75), held at .75 to 1. Area = .25 * .5 + .75 * .75 = 0.6875
    g = (10, 10, 20, 20)
    boxes = [np.array([[*g, s]], np.float32) for s in (0.9, 0.8)] + \
            [np.array([[25, 25, 35, 35, 0.7]], np.float32), np.array([[*g, 0.6]], np.float32)]
    regions = [np.array([g], np.float32)] * 4
    x, y = rbdc_curve(boxes, regions)
    assert x.tolist() == [0, 0, 0, 0.25, 0.25] and y.tolist() == [0, 0.25, 0.5, 0.5, 0.75]
    assert rbdc_from_regions(boxes, regions) == pytest.approx(0.6875)


def test_the_curve_is_cut_at_one_false_positive_per_frame_by_interpolation():
    # 2 frames, one region (frame 1). An FP at 0.9, then the region and 2 FPs at 0.5: points
    # (0,0) (0.5,0) (1.5,1); at x = 1 the line gives 0.5 -> area = 0.5 * 0.5 / 2 = 0.125
    g = (10, 10, 20, 20)
    f1 = np.array([[*g, 0.5], [25, 25, 35, 35, 0.5], [0, 0, 5, 5, 0.9]], np.float32)
    f2 = np.array([[25, 25, 35, 35, 0.5]], np.float32)
    regions = [np.array([g], np.float32), np.zeros((0, 4), np.float32)]
    assert rbdc_from_regions([f1, f2], regions) == pytest.approx(0.125)


def test_iou_at_alpha_counts_and_below_does_not():
    g = (0, 0, 10, 10)
    thin = [np.array([[0, 0, 10, 1, 0.9]], np.float32)]        # IoU exactly 0.1
    regions = [np.array([g], np.float32)]
    assert rbdc_from_regions(thin, regions, alpha=0.1) == pytest.approx(1.0)
    assert rbdc_from_regions(thin, regions, alpha=0.11) == 0.0


def test_bad_input():
    with pytest.raises(VigilError, match="no frame's mask"):
        rbdc([np.zeros((0, 5))], [np.zeros((4, 4), bool)])
    with pytest.raises(VigilError, match="2 frames of boxes for 1"):
        rbdc([np.zeros((0, 5))] * 2, [np.ones((4, 4), bool)])
    with pytest.raises(VigilError, match="alpha"):
        rbdc_from_regions([np.zeros((0, 5))], [np.ones((1, 4))], alpha=0)
