"""Detector.score_boxes: boxes from the maps by default, a model's own boxes when it has them, and
both turned back with frames the guard turned upright (a vertical flip)."""

from dataclasses import dataclass

import numpy as np
import pytest

from vigil.detector import Detector, Input


@dataclass(frozen=True)
class _Config:
    seed: int = 0


class _SpotModel(Detector):
    """Its map of each frame is 5 on the frame's brightest pixel's 2x2 block, 0 elsewhere."""

    name = "spot-test"
    Config = _Config

    def _input(self, frame_size=None):
        return Input(None, True)

    def _fit(self, frames, **train):
        self.threshold_ = 1.0

    def _score(self, frames):
        return frames.reshape(len(frames), -1).max(1).astype(np.float64)

    def _score_maps(self, frames, frame_size):
        maps = np.zeros((len(frames), *frame_size), np.float32)
        for t, f in enumerate(frames):
            y, x = np.unravel_index(np.argmax(f), f.shape)
            maps[t, y:y + 2, x:x + 2] = 5.0
        return self._score(frames), maps

    def _state_arrays(self):
        return {}

    def _load_state_arrays(self, arrays, fitted):
        pass


def _video():
    v = np.zeros((3, 20, 30), np.uint8)
    v[0, 4, 6] = 200                                   # frame 1: spot at x 6, y 4
    v[2, 15, 20] = 250                                 # frame 3: spot at x 20, y 15; frame 2: none bright
    v[1] = 0
    return v


def _fitted(cls=_SpotModel):
    det = cls(progress=False)
    det.threshold_, det.fitted_ = 1.0, True
    return det


def test_boxes_come_from_the_maps_at_the_documented_level():
    det = _fitted()
    scores, boxes = det.score_boxes(_video())
    assert scores.tolist() == [200, 0, 250]
    assert [b.dtype for b in boxes] == [np.float32] * 3
    assert boxes[0].tolist() == [[6, 4, 8, 6, 5.0]]
    # frame 2 is all zero: argmax is (0, 0), a block at the corner
    assert boxes[1].tolist() == [[0, 0, 2, 2, 5.0]]
    assert boxes[2].tolist() == [[20, 15, 22, 17, 5.0]]
    assert det.box_level() == 3.0                      # maps not on the score scale: map_box_level
    det.map_box_level = 6.0
    assert [len(b) for b in det.score_boxes(_video())[1]] == [0, 0, 0]


def test_maps_on_the_score_scale_are_cut_at_threshold():
    class OnScale(_SpotModel):
        maps_on_score_scale = True

    det = _fitted(OnScale)
    det.threshold_ = 7.0
    assert det.box_level() == 7.0 and [len(b) for b in det.score_boxes(_video())[1]] == [0, 0, 0]


def test_a_model_with_its_own_boxes_and_the_guards_flip_turned_back():
    class OwnBoxes(_SpotModel):
        def _score_boxes(self, frames, frame_size):
            return self._score(frames), [np.array([[1, 2, 4, 5, 0.5]])] * len(frames)

    det = _fitted(OwnBoxes)
    v = _video()
    flipped = np.array([False, True, False])
    det.frames_of = lambda video: (v, flipped)         # as if the guard had turned frame 2 upright
    _, boxes = det.score_boxes(v)
    assert boxes[0].tolist() == [[1, 2, 4, 5, 0.5]]
    assert boxes[1].tolist() == [[1, 20 - 5, 4, 20 - 2, 0.5]]       # rows y -> H - y, H = 20
    # the maps' fallback is turned back the same way as the maps themselves
    plain = _fitted()
    plain.frames_of = lambda video: (v, np.array([True, False, False]))
    _, maps = plain.score_maps(v)
    _, b = plain.score_boxes(v)
    ys, xs = np.nonzero(maps[0])
    assert b[0].tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 5.0]] == [[6, 14, 8, 16, 5.0]]


def test_a_model_giving_boxes_for_the_wrong_number_of_frames_is_one_line():
    from vigil.errors import VigilError

    class Short(_SpotModel):
        def _score_boxes(self, frames, frame_size):
            return self._score(frames), []

    with pytest.raises(VigilError, match="boxes for 0 frames but 3 scores"):
        _fitted(Short).score_boxes(_video())
