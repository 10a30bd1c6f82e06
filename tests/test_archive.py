"""Scoring an archive video by video (vigil.archive): the local engine and Ray on a local Ray started here.

Ray runs with 2 CPUs, listening on 127.0.0.1 only, once for the module, and is shut down after it
(also when a test fails). Without Ray installed the Ray tests skip, saying so.
"""

import os
import shutil
import sys

import numpy as np
import pytest

from vigil.archive import TEST_CRASH_ENV, discover, parts_dir
from vigil.cli import main


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        if "ray" not in sys.modules:                # a Ray on 127.0.0.1 only (see vigil.engines.ray_engine)
            mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
        except ImportError:
            pytest.skip("ray is not installed (pip install 'vigil[ray]')")
        import logging

        cache = tmp_path_factory.mktemp("ray-frame-cache")
        ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level=logging.ERROR,
                 runtime_env={"env_vars": {"VIGIL_CACHE": str(cache)}})
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def hybrid_run(trained_hybrid, tmp_path_factory):
    return trained_hybrid.save(tmp_path_factory.mktemp("archive") / "run")


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_ray_scores_equal_local_and_todays_csv(ray_local, hybrid_run, synthetic_root, tmp_path, capsys):
    from vigil.data import open_videos
    from vigil.io import write_scores_csv
    from vigil.detector import Detector

    code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "local.csv",
                         "--quiet")
    assert code == 0 and "scored 3 videos, 192 frames" in out, err
    code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "ray.csv",
                         "--engine", "ray", "--quiet")
    assert code == 0 and "scored 3 videos, 192 frames" in out and "frames/s per worker" in out, err
    det = Detector.load(hybrid_run)                # what 'vigil score' wrote before the engines
    write_scores_csv(tmp_path / "api.csv", {v.name: det.score(v) for v in open_videos(synthetic_root)})
    api = (tmp_path / "api.csv").read_bytes()
    assert (tmp_path / "local.csv").read_bytes() == api
    assert (tmp_path / "ray.csv").read_bytes() == api
    assert sorted(p.name for p in parts_dir(tmp_path / "ray.csv").iterdir()) == [
        "01.csv", "01.json", "02.csv", "02.json", "03.csv", "03.json"]


def test_ray_boxes_equal_local_boxes_and_the_api(ray_local, hybrid_run, synthetic_root, tmp_path, capsys):
    from vigil.data import open_videos
    from vigil.detector import Detector
    from vigil.io import write_boxes_csv

    for engine in ("local", "ray"):
        code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / f"{engine}.csv",
                             "--boxes", tmp_path / f"{engine}.boxes.csv", "--engine", engine, "--quiet")
        assert code == 0 and "boxes -> " in out, err
    det = Detector.load(hybrid_run)
    write_boxes_csv(tmp_path / "api.boxes.csv", {v.name: det.score_boxes(v)[1] for v in open_videos(synthetic_root)})
    api = (tmp_path / "api.boxes.csv").read_bytes()
    assert api.count(b"\n") > 10
    assert (tmp_path / "local.boxes.csv").read_bytes() == api == (tmp_path / "ray.boxes.csv").read_bytes()


def test_a_killed_worker_has_its_video_retried(ray_local, hybrid_run, synthetic_root, tmp_path, capsys,
                                               monkeypatch):
    marker = tmp_path / "crashed-once"
    monkeypatch.setenv(TEST_CRASH_ENV, f"02={marker}")    # test hook: the worker scoring 02 dies, once
    code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "s.csv",
                         "--engine", "ray", "--retries", "1", "--quiet")
    assert marker.is_file()                                   # the first attempt did die
    assert code == 0 and "scored 3 videos, 192 frames" in out, err
    code, _, _ = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "l.csv", "--quiet")
    assert (tmp_path / "s.csv").read_bytes() == (tmp_path / "l.csv").read_bytes()


def test_a_worker_that_keeps_dying_fails_its_video_only(ray_local, hybrid_run, synthetic_root, tmp_path, capsys,
                                                        monkeypatch):
    marker = tmp_path / "crashed-once"
    monkeypatch.setenv(TEST_CRASH_ENV, f"03={marker}")
    code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "s.csv",
                         "--engine", "ray", "--retries", "0", "--quiet")
    assert code == 2 and "video 03:" in err and "Ray could not score it in 1 attempt (" in err
    assert "1 of 3 videos failed" in err and not (tmp_path / "s.csv").exists()
    code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "s.csv",
                         "--engine", "ray", "--quiet")           # the marker exists now: 03 scores
    assert code == 0 and "scored 1 video, 64 frames" in out and "2 videos already scored" in out, err


def test_a_rerun_scores_only_what_is_missing(ray_local, hybrid_run, synthetic_root, tmp_path, capsys):
    out_csv = tmp_path / "s.csv"
    argv = ("score", hybrid_run, "--data", synthetic_root, "--out", out_csv, "--quiet")
    assert run(capsys, *argv, "--engine", "ray")[0] == 0
    first, parts = out_csv.read_bytes(), parts_dir(out_csv)
    before = _mtimes(parts)
    (parts / "02.csv").unlink()                               # as if interrupted before 02 was written
    code, out, err = run(capsys, *argv, "--engine", "ray")
    assert code == 0 and "scored 1 video, 64 frames" in out and "2 videos already scored" in out, err
    after = _mtimes(parts)
    assert {k for k in before if before[k] != after[k]} == {"02.csv", "02.json"}
    assert out_csv.read_bytes() == first
    code, out, _ = run(capsys, *argv)                          # nothing left: the local engine reuses all
    assert code == 0 and "all 3 videos already scored" in out and out_csv.read_bytes() == first
    # a part of another run is not reused: the same folder with a changed config.json scores everything
    other = tmp_path / "other-run"
    shutil.copytree(hybrid_run, other)
    (other / "config.json").write_text((other / "config.json").read_text().replace('"format"', '"note": 1, "format"', 1))
    code, out, _ = run(capsys, "score", other, "--data", synthetic_root, "--out", out_csv, "--quiet")
    assert code == 0 and "scored 3 videos, 192 frames" in out and "already" not in out


def test_an_unreadable_video_is_reported_and_the_rest_complete(ray_local, hybrid_run, synthetic, tmp_path,
                                                              capsys):
    import cv2

    tree = tmp_path / "archive"
    for cam, v in (("camA", synthetic.test[0]), ("camB", synthetic.test[1])):
        (tree / cam).mkdir(parents=True)
        os.symlink(v.source, tree / cam / "01")              # the same clip name in two folders
    broken = tree / "camB" / "zz"
    broken.mkdir()
    for i, f in enumerate(synthetic.test[2].frames()[:8]):
        data = cv2.imencode(".jpg", f)[1].tobytes()
        (broken / f"{i:03d}.jpg").write_bytes(data[: len(data) // 2] if i == 5 else data)
    units = discover(tree)
    assert [(u.name, u.ids) for u in units] == [("camA_01", "camA_01"), ("camB_01", "camB_01"), ("camB_zz", "camB_zz")]
    out_csv = tmp_path / "s.csv"
    argv = ("score", hybrid_run, "--data", tree, "--out", out_csv, "--engine", "ray", "--quiet")
    code, out, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2, err
    assert lines[0].startswith("vigil: error: video camB_zz: ") and "005.jpg: truncated JPEG" in lines[0]
    assert lines[1].startswith("vigil: error: 1 of 3 videos failed") and not out_csv.exists()
    assert "scored 2 videos, 128 frames" in out
    assert {p.name for p in parts_dir(out_csv).iterdir()} == {"camA_01.csv", "camA_01.json", "camB_01.csv",
                                                             "camB_01.json"}
    (broken / "005.jpg").write_bytes(cv2.imencode(".jpg", synthetic.test[2].frames()[5])[1].tobytes())
    code, out, err = run(capsys, *argv)
    assert code == 0 and "scored 1 video, 8 frames" in out and "2 videos already scored" in out, err
    ids = [ln.split(",")[0] for ln in out_csv.read_text().splitlines()[1:]]
    assert ids[0] == "camA_01_1" and ids[64] == "camB_01_1" and ids[-1] == "camB_zz_8" and len(ids) == 136


def test_maps_per_video_through_ray(ray_local, hybrid_run, synthetic_root, tmp_path, capsys):
    code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "s.csv",
                         "--engine", "ray", "--maps", tmp_path / "maps", "--quiet")
    assert code == 0, err
    maps = np.load(tmp_path / "maps" / "01" / "maps.npz")["maps"]
    assert len(maps) == 64 and (tmp_path / "maps" / "03" / "00064.png").is_file()
    code, out, _ = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "s.csv",
                       "--engine", "ray", "--quiet")            # maps not asked for: the parts serve
    assert code == 0 and "all 3 videos already scored" in out


def test_without_ray_the_engine_says_how_to_get_it(hybrid_run, synthetic_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)               # import ray now fails
    code, out, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "s.csv",
                         "--engine", "ray")
    assert code == 2 and err == "vigil: error: --engine ray needs Ray: pip install 'vigil[ray]'\n"
    assert not (tmp_path / "s.csv").exists() and not parts_dir(tmp_path / "s.csv").exists()


@pytest.mark.parametrize("extra, message", [
    (["--workers", "2"], "--workers and --address go with --engine ray"),
    (["--engine", "ray", "--workers", "0"], "--workers 0: must be at least 1"),
    (["--engine", "ray", "--retries", "-1"], "--retries -1: must be 0 or more"),
])
def test_bad_engine_options_are_one_line(extra, message, hybrid_run, synthetic_root, tmp_path, capsys):
    code, _, err = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "s.csv", *extra)
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_tree_with_two_videos_of_one_name_is_refused(tmp_path):
    from vigil.errors import VigilError

    (tmp_path / "cam1").mkdir()
    for ext in (".avi", ".mp4"):
        (tmp_path / "cam1" / f"a{ext}").write_bytes(b"x")
    with pytest.raises(VigilError, match=r"same name 'cam1_a'.*rename one"):
        discover(tmp_path)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(VigilError, match="no videos below it"):
        discover(tmp_path / "empty")
