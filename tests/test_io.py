"""The Id,Predicted CSV and atomic writes."""

import numpy as np
import pytest

from vigil.errors import VigilError
from vigil.io import atomic_write, frame_ids, read_scores_csv, video_number, write_scores_csv


def test_ids_follow_the_submission_format(tmp_path):
    assert video_number("01") == "1" and video_number("Test007") == "7" and video_number("12.avi") == "12"
    assert frame_ids("02", 3) == ["2_1", "2_2", "2_3"]
    out = tmp_path / "s.csv"
    assert write_scores_csv(out, {"01": np.array([0.5, 0.25]), "10": np.array([1.0])}) == 3
    assert out.read_text().splitlines() == ["Id,Predicted", "1_1,0.5", "1_2,0.25", "10_1,1"]
    assert read_scores_csv(out) == {"1_1": 0.5, "1_2": 0.25, "10_1": 1.0}


def test_two_videos_with_one_number_are_refused(tmp_path):
    with pytest.raises(VigilError, match="share the Id prefix"):
        write_scores_csv(tmp_path / "s.csv", {"01": np.zeros(1), "1": np.zeros(1)})


def test_bad_csv_is_one_clear_error(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("Id,Score\n1_1,0.5\n")
    with pytest.raises(VigilError, match="header"):
        read_scores_csv(p)
    p.write_text("Id,Predicted\n1_1,abc\n")
    with pytest.raises(VigilError, match=r"bad.csv:2: score 'abc'"):
        read_scores_csv(p)
    with pytest.raises(VigilError, match="no such score file"):
        read_scores_csv(tmp_path / "missing.csv")


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write("new, half")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["f.txt"]   # no temporary left behind


def test_atomic_writes_are_readable_by_others(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        import importlib

        import vigil.io
        importlib.reload(vigil.io)
        with vigil.io.atomic_write(tmp_path / "r.csv") as f:
            f.write("x")
    finally:
        os.umask(old)
        importlib.reload(vigil.io)
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o644


def test_writing_over_a_folder_or_under_a_file_is_one_clear_error(tmp_path):
    with pytest.raises(VigilError, match=r"is a folder; give the name of a file to write"):
        with atomic_write(tmp_path) as f:
            f.write("x")
    (tmp_path / "plain").write_text("")
    with pytest.raises(VigilError, match=r"plain/out.csv: cannot write here"):
        with atomic_write(tmp_path / "plain" / "out.csv") as f:
            f.write("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]        # nothing half-written left
