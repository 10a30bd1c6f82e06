"""The boxes CSV: written atomically with score-CSV Ids, read back, one line for a malformed file."""

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.io import read_boxes_csv, write_boxes_csv


def test_boxes_round_trip_with_score_csv_ids(tmp_path):
    f = tmp_path / "boxes.csv"
    boxes = {"Test003": [np.array([[1, 2, 5, 9, 0.75], [10, 0, 12.5, 4, 3]], np.float32),
                         np.zeros((0, 5), np.float32),
                         np.array([[0, 0, 360, 240, -1.5]], np.float32)],
             "Test010": [np.zeros((0, 5), np.float32)]}
    assert write_boxes_csv(f, boxes) == 3
    assert f.read_text().splitlines() == ["Id,x0,y0,x1,y1,score", "3_1,1,2,5,9,0.75", "3_1,10,0,12.5,4,3",
                                          "3_3,0,0,360,240,-1.5"]
    back = read_boxes_csv(f)
    assert sorted(back) == ["3_1", "3_3"]
    assert back["3_1"].dtype == np.float32 and back["3_1"].tolist() == boxes["Test003"][0].tolist()
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.parametrize("text, message", [
    ("Id,Predicted\n1_1,0.5\n", "expected the header 'Id,x0,y0,x1,y1,score'"),
    ("Id,x0,y0,x1,y1,score\n1_1,0,0,4,4\n", r"boxes.csv:2: expected 6 fields"),
    ("Id,x0,y0,x1,y1,score\n1_1,0,0,4,4,0.5\n1_2,0,a,4,4,0.5\n", r"boxes.csv:3: .* not all numbers"),
    ("Id,x0,y0,x1,y1,score\n1_1,0,0,4,4,nan\n", "not finite"),
    ("Id,x0,y0,x1,y1,score\n1_1,5,0,4,4,1\n", r"box \(5, 0, 4, 4\) of 1_1 is empty"),
])
def test_malformed_boxes_files_are_one_line(tmp_path, text, message):
    f = tmp_path / "boxes.csv"
    f.write_text(text)
    with pytest.raises(VigilError, match=message):
        read_boxes_csv(f)


def test_a_missing_or_binary_boxes_file(tmp_path):
    with pytest.raises(VigilError, match="no such boxes file"):
        read_boxes_csv(tmp_path / "nope.csv")
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(VigilError, match="not a UTF-8 text file"):
        read_boxes_csv(tmp_path / "b.csv")
