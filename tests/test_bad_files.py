"""Files that are wrong in ways a user meets: one line naming the file and what is wrong, never a
traceback, never silently wrong scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vigil.cli import main
from vigil.detector import Detector
from vigil.errors import VigilError


def _one_line(capsys, argv, message):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("vigil: error: ") and err.count("\n") == 1 and message in err, err


def test_evaluate_refuses_a_duplicated_id(synthetic_root, tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_text("Id,Predicted\n1_1,0.5\n1_2,0.1\n1_1,0.9\n")
    _one_line(capsys, ["evaluate", csv, "--data", synthetic_root], "s.csv:4: Id 1_1 appears twice (first on line 2)")


def test_evaluate_refuses_a_csv_that_is_not_utf8(synthetic_root, tmp_path, capsys):
    csv = tmp_path / "s.csv"
    csv.write_bytes(b"Id,Predicted\n1_1,0.5\n\xff\xfe,0.1\n")
    _one_line(capsys, ["evaluate", csv, "--data", synthetic_root], "s.csv: not a UTF-8 text file")


@pytest.fixture(scope="module")
def hybrid_run(trained_hybrid, tmp_path_factory):
    return trained_hybrid.save(tmp_path_factory.mktemp("bad") / "run")


def _copy_run(run, dst):
    dst.mkdir()
    for f in run.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(config=[1, 2]), "corrupt run configuration"),
    (lambda c: c.update(model=7), "corrupt run configuration"),
    (lambda c: c["config"].update(k="five"), "setting k='five' must be a whole number"),
    (lambda c: c["config"].update(cell=0), "setting cell=0 must be at least 1"),
    (lambda c: c["config"].update(cell=16), "weights do not fit model 'hybrid'"),        # another grid
])
def test_a_run_folder_of_the_wrong_shape_is_refused(hybrid_run, tmp_path, edit, message):
    run = _copy_run(hybrid_run, tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    edit(cfg)
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VigilError, match=message):
        Detector.load(run)


def test_a_config_that_is_not_utf8_is_refused(hybrid_run, tmp_path):
    run = _copy_run(hybrid_run, tmp_path / "run")
    (run / "config.json").write_bytes(b'{"model": "hybrid\xff"}')
    with pytest.raises(VigilError, match="config.json: not a UTF-8 text file"):
        Detector.load(run)


def test_weights_of_another_run_with_another_grid_are_refused(trained_hybrid, synthetic, hybrid_run, tmp_path):
    from vigil.models.hybrid import Hybrid

    other = Hybrid(progress=False, cell=16).fit(synthetic.train)
    run = _copy_run(hybrid_run, tmp_path / "run")
    other_run = other.save(tmp_path / "other")
    (run / "model.safetensors").write_bytes((other_run / "model.safetensors").read_bytes())
    with pytest.raises(VigilError, match="weights do not fit model 'hybrid'.*loc_mean has shape"):
        Detector.load(run)


def test_hybrid_on_videos_of_one_frame_is_one_clear_error(synthetic):
    from vigil.models.hybrid import Hybrid

    one = [v.frames()[:1] for v in synthetic.train[:3]]
    with pytest.raises(VigilError, match="single frame"):
        Hybrid(progress=False).fit(one)
    assert np.isfinite(Hybrid(progress=False).fit([v.frames()[:5] for v in synthetic.train[:3]]).threshold_)


def _frames_folder(tmp_path, n=6):
    import cv2

    folder = tmp_path / "clip"
    folder.mkdir()
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), (7, 7), 0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.roll(base, i, axis=1))
    return folder


def test_a_jpeg_with_damaged_data_is_scored_with_a_warning_naming_it(tmp_path, monkeypatch):
    from vigil.data.video import Video
    from vigil.errors import VigilWarning

    monkeypatch.setenv("VIGIL_CACHE", "off")
    folder = _frames_folder(tmp_path)
    p = folder / "003.jpg"
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = np.random.default_rng(1).integers(0, 256, 64, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))                       # the end-of-image marker is intact
    with pytest.warns(VigilWarning, match=r"clip: 1 JPEG frame\(s\) with damaged data.*003\.jpg"):
        frames = Video.open(folder).frames()
    assert len(frames) == 6


def test_a_jpeg_whose_data_was_zeroed_is_found_and_real_frames_are_not(tmp_path, monkeypatch):
    import glob

    from vigil.data.video import jpeg_damage

    folder = _frames_folder(tmp_path)
    good = [np.fromfile(p, dtype=np.uint8) for p in sorted(folder.iterdir())]
    assert all(jpeg_damage(d) is None for d in good)
    zeroed = good[2].copy()
    zeroed[len(zeroed) // 2:len(zeroed) // 2 + 64] = 0
    assert jpeg_damage(zeroed) is not None
    ped2 = sorted(glob.glob(str(Path(__file__).resolve().parents[2] / "shared/data/ucsd_ped2/testing/frames/12/*.jpg")))
    assert all(jpeg_damage(np.fromfile(p, dtype=np.uint8)) is None for p in ped2)   # real frames, when present


def test_a_video_cut_short_is_read_with_a_warning_naming_the_missing_frames(tmp_path, monkeypatch):
    import cv2

    from vigil.data.video import Video
    from vigil.errors import VigilWarning

    monkeypatch.setenv("VIGIL_CACHE", "off")
    path = tmp_path / "cam.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(60):
        vw.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    vw.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])         # the header still says 60 frames
    with pytest.warns(VigilWarning, match=r"cam\.avi: its header says 60 frames, \d+ decode"):
        frames = Video.open(path).frames()
    assert 0 < len(frames) < 60


def test_the_command_line_prints_the_warning_as_one_line(trained_hybrid, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIGIL_CACHE", "off")
    folder = _frames_folder(tmp_path)
    p = folder / "002.jpg"
    data = bytearray(p.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\xff\x12" * 32
    p.write_bytes(bytes(data))
    run = trained_hybrid.save(tmp_path / "run")
    code = main(["score", str(run), "--data", str(folder), "--out", str(tmp_path / "s.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and "vigil: warning: " in err and "002.jpg" in err and "Traceback" not in err
