"""Dataset layouts read from small fixtures made here, and bad input turned into clear errors."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from vigil.data import Video, load_dataset, open_videos
from vigil.data.layouts import parse_ucsd_m
from vigil.errors import VigilError


def _frames(n, h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, h, w), dtype=np.uint8)


def _write_folder(folder: Path, frames, ext=".jpg", pattern="{:03d}"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / (pattern.format(i) + ext)), f)


def _write_avi(path: Path, frames):
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()


def test_frames_layout_synthetic(synthetic):
    assert synthetic.layout == "frames" and len(synthetic.train) == 8 and len(synthetic.test) == 3
    v = synthetic.test[0]
    assert v.labels.shape == (len(v),) and v.labels.any() and not v.labels.all()
    m = v.masks()
    assert m.shape[0] == len(v)
    # the frame labels and the pixel masks agree: a frame is anomalous when its mask has a pixel set
    assert np.array_equal(m.reshape(len(m), -1).any(1), v.labels.astype(bool))
    assert v.frames(size=(64, 48)).shape == (len(v), 48, 64, 3)
    assert v.frames(size=(64, 48), gray=True).shape == (len(v), 48, 64)


def test_ucsd_official_layout(tmp_path):
    root = tmp_path / "UCSDped2"
    _write_folder(root / "Train" / "Train001", _frames(6), ".tif")
    _write_folder(root / "Test" / "Test001", _frames(8, seed=1), ".tif")
    _write_folder(root / "Test" / "Test002", _frames(5, seed=2), ".tif")
    gt = np.zeros((8, 24, 32), np.uint8)
    gt[2:5, 3:6, 3:6] = 255
    _write_folder(root / "Test" / "Test001_gt", gt, ".bmp")
    (root / "Test" / "UCSDped2.m").write_text(
        "TestVideoFile = {};\n"
        "TestVideoFile{end+1}.gt_frame = [3:5];\n"
        "TestVideoFile{end+1}.gt_frame = [1:2, 4:5];\n")
    ds = load_dataset(root)
    assert ds.layout == "ucsd" and [v.name for v in ds.test] == ["Test001", "Test002"]
    assert ds.test[0].labels.tolist() == [0, 0, 1, 1, 1, 0, 0, 0]
    assert ds.test[1].labels.tolist() == [1, 1, 0, 1, 1]
    assert ds.test[0].masks().reshape(8, -1).any(1).tolist() == [False, False, True, True, True, False, False, False]
    assert ds.train[0].frames().shape == (6, 24, 32, 3)
    assert parse_ucsd_m(root / "Test" / "UCSDped2.m") == [[(3, 5)], [(1, 2), (4, 5)]]


def test_avenue_official_layout_with_real_avi_and_mat(tmp_path):
    root = tmp_path / "avenue"
    _write_avi(root / "training_videos" / "01.avi", _frames(7))
    _write_avi(root / "testing_videos" / "01.avi", _frames(6, seed=3))
    vol = np.empty((1, 6), dtype=object)
    for t in range(6):
        m = np.zeros((24, 32), np.uint8)
        if t in (2, 3):
            m[5:9, 5:9] = 1
        vol[0, t] = m
    lab = root / "ground_truth_demo" / "testing_label_mask"
    lab.mkdir(parents=True)
    savemat(str(lab / "1_label.mat"), {"volLabel": vol})
    ds = load_dataset(root)
    assert ds.layout == "avenue"
    assert len(ds.train[0]) == 7
    assert ds.test[0].labels.tolist() == [0, 0, 1, 1, 0, 0]
    assert ds.test[0].frames().shape == (6, 24, 32, 3)
    assert ds.test[0].masks().shape == (6, 24, 32)


def test_design_document_layout(tmp_path):
    base = tmp_path / "Avenue_Corrupted" / "Dataset"
    _write_folder(base / "training_videos" / "01", _frames(3), pattern="frame_{:05d}")
    _write_folder(base / "testing_videos" / "01", _frames(4), pattern="frame_{:05d}")
    ds = load_dataset(tmp_path / "Avenue_Corrupted")
    assert ds.layout == "design" and not ds.has_labels
    assert len(ds.test[0]) == 4


def test_single_video_and_frame_folder_are_accepted(tmp_path):
    _write_avi(tmp_path / "clip.avi", _frames(5))
    _write_folder(tmp_path / "frames", _frames(4))
    assert len(open_videos(tmp_path / "clip.avi")[0]) == 5
    assert len(open_videos(tmp_path / "frames")[0]) == 4


def test_frame_size_without_decoding_the_video(tmp_path, monkeypatch):
    _write_avi(tmp_path / "clip.avi", _frames(5, h=24, w=32))
    _write_folder(tmp_path / "frames", _frames(4, h=20, w=28))
    monkeypatch.setattr(Video, "frames", lambda *a, **k: pytest.fail("frame_size decoded every frame"))
    assert Video.open(tmp_path / "clip.avi").frame_size() == (24, 32)
    assert Video.open(tmp_path / "frames").frame_size() == (20, 28)
    assert Video.from_array("a", np.zeros((3, 6, 9), np.uint8)).frame_size() == (6, 9)


def test_frames_sorted_naturally(tmp_path):
    frames = np.stack([np.full((8, 8), i * 20, np.uint8) for i in range(12)])
    _write_folder(tmp_path / "v", frames, ".png", pattern="frame_{}")   # frame_2 before frame_10
    got = Video.open(tmp_path / "v").frames(gray=True)
    assert [int(f[0, 0]) for f in got] == [i * 20 for i in range(12)]


def test_cache_is_invalidated_when_the_source_changes(tmp_path):
    _write_folder(tmp_path / "v", np.zeros((3, 8, 8), np.uint8), ".png")
    assert Video.open(tmp_path / "v").frames().max() == 0
    cv2.imwrite(str(tmp_path / "v" / "001.png"), np.full((8, 8, 3), 200, np.uint8))
    assert Video.open(tmp_path / "v").frames().max() == 200
    assert Video.open(tmp_path / "v").frames(size=(4, 4)).shape == (3, 4, 4, 3)   # size is in the key


# --- bad input: one clear error naming the path -------------------------------------------------

def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(VigilError, match="no such dataset folder"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VigilError, match="no known dataset layout"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "ds" / "training" / "frames" / "01").mkdir(parents=True)
    with pytest.raises(VigilError, match=r"01: folder holds no frames"):
        load_dataset(tmp_path / "ds")


def test_unreadable_and_truncated_images(tmp_path):
    _write_folder(tmp_path / "v", _frames(3))
    bad = tmp_path / "v" / "001.jpg"
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    with pytest.raises(VigilError, match=r"001\.jpg: truncated JPEG"):
        Video.open(tmp_path / "v").frames()
    bad.write_bytes(b"not an image at all")
    with pytest.raises(VigilError, match=r"001\.jpg: (truncated|unreadable)"):
        Video.open(tmp_path / "v").frames()
    _write_folder(tmp_path / "p", _frames(2), ".png")
    (tmp_path / "p" / "000.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(VigilError, match=r"000\.png: unreadable image"):
        Video.open(tmp_path / "p").frames()


def test_frames_of_different_sizes(tmp_path):
    _write_folder(tmp_path / "v", _frames(2))
    cv2.imwrite(str(tmp_path / "v" / "002.jpg"), np.zeros((10, 10), np.uint8))
    with pytest.raises(VigilError, match=r"002\.jpg: frame size 10x10 differs"):
        Video.open(tmp_path / "v").frames()


def test_video_that_cannot_be_opened_or_has_no_frames(tmp_path):
    (tmp_path / "junk.avi").write_bytes(b"\x00" * 100)
    with pytest.raises(VigilError, match=r"junk\.avi: (cannot open video|video has zero frames)"):
        Video.open(tmp_path / "junk.avi").frames()
    with pytest.raises(VigilError, match="not a video file"):
        Video.open(tmp_path / "notes.txt" if (tmp_path / "notes.txt").write_text("x") else None)


def test_label_count_must_match_frames(synthetic_root, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(synthetic_root, root)
    lab = np.load(root / "frame_labels_synthetic.npy")
    np.save(root / "frame_labels_synthetic.npy", lab[:, :-5])
    with pytest.raises(VigilError, match=r"frame_labels_synthetic\.npy: 187 labels but the test videos have 192 frames"):
        load_dataset(root)
