"""vigil score --boxes and vigil evaluate's event figures and RBDC, on the synthetic corridor with
the motion model (fitted in seconds); one-line errors for bad input."""

import json

import numpy as np
import pytest

from vigil.cli import main
from vigil.io import read_boxes_csv, read_scores_csv


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def hybrid_run(trained_hybrid, tmp_path_factory):
    return trained_hybrid.save(tmp_path_factory.mktemp("eval") / "run")


@pytest.fixture(scope="module")
def scored(hybrid_run, synthetic_root, tmp_path_factory):
    """Scores and boxes of the synthetic test videos (one `vigil score --boxes` run)."""
    d = tmp_path_factory.mktemp("scored")
    assert main(["score", str(hybrid_run), "--data", str(synthetic_root), "--out", str(d / "scores.csv"),
                 "--boxes", str(d / "boxes.csv"), "--quiet"]) == 0
    return d


def test_score_boxes_writes_the_boxes_of_score_boxes_and_leaves_the_scores_unchanged(
        scored, hybrid_run, synthetic, synthetic_root, tmp_path, capsys):
    code, out, _ = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", tmp_path / "plain.csv",
                       "--quiet")
    assert code == 0 and " boxes -> " not in out
    assert (tmp_path / "plain.csv").read_bytes() == (scored / "scores.csv").read_bytes()
    assert not list((tmp_path / "plain.parts").glob("*.boxes.csv"))
    manifest = json.loads(next((tmp_path / "plain.parts").glob("*.json")).read_text())
    assert "boxes" not in manifest                      # the manifest vigil always wrote
    boxes, ids = read_boxes_csv(scored / "boxes.csv"), read_scores_csv(scored / "scores.csv")
    assert boxes and set(boxes) <= set(ids)
    from vigil.runs import load

    det = load(hybrid_run)
    v = synthetic.test[0]
    _, expected = det.score_boxes(v)
    prefix = "1"
    for t, b in enumerate(expected, start=1):
        got = boxes.get(f"{prefix}_{t}", np.zeros((0, 5), np.float32))
        assert got.shape == b.shape and np.allclose(got, b, rtol=1e-5)
    h, w = v.frame_size()
    allb = np.concatenate(list(boxes.values()))
    assert (allb[:, 0] >= 0).all() and (allb[:, 2] <= w).all() and (allb[:, 3] <= h).all()
    assert (allb[:, 4] > det.box_level()).all()         # each box holds map values above the level


def test_a_rerun_with_boxes_rescores_parts_written_without_them(hybrid_run, synthetic_root, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", out, "--quiet")[0] == 0
    code, text, _ = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", out,
                        "--boxes", tmp_path / "b.csv", "--quiet")
    assert code == 0 and "scored 3 videos" in text and "-> " + str(tmp_path / "b.csv") in text
    code, text, _ = run(capsys, "score", hybrid_run, "--data", synthetic_root, "--out", out,
                        "--boxes", tmp_path / "b2.csv", "--quiet")
    assert code == 0 and "all 3 videos already scored" in text
    assert (tmp_path / "b2.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_evaluate_with_the_runs_threshold_prints_events_and_rbdc(scored, hybrid_run, synthetic_root, tmp_path,
                                                                 capsys):
    from vigil.evaluate import event_figures, run_threshold

    code, out, _ = run(capsys, "evaluate", scored / "scores.csv", "--data", synthetic_root, "--run", hybrid_run,
                       "--boxes", scored / "boxes.csv", "--json", tmp_path / "m.json")
    assert code == 0, out
    assert "fps 10 assumed" in out and "labelled stretches detected" in out and "RBDC" in out
    m = json.loads((tmp_path / "m.json").read_text())
    t = json.loads((hybrid_run / "config.json").read_text())["fitted"]["threshold"]
    assert run_threshold(hybrid_run) == t and m["events"]["threshold"] == t
    ev = event_figures(scored / "scores.csv", synthetic_root, t)
    assert m["events"]["n_detected"] == ev.n_detected and m["events"]["n_stretches"] == 3
    assert ev.n_detected >= 2                           # the runner and the wrong-way walker move
    assert 0.0 <= m["rbdc"] <= 1.0 and m["rbdc_alpha"] == 0.1
    code, out, _ = run(capsys, "evaluate", scored / "scores.csv", "--data", synthetic_root,
                       "--threshold", "1e9", "--fps", "25")
    assert code == 0 and "0 / 3" in out and "25 fps" in out and "assumed" not in out


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.write_text("Id,x0,y0,x1,y1,score\n1_1,0,0,5,5,1\n99_1,0,0,5,5,1\n"),
     r"boxes for 1 Ids that match no test frame .*first: 99_1"),
    (lambda p: p.write_text("Id,x0,y0,x1,y1,score\n1_1,0,0,5\n"), r"b.csv:2: expected 6 fields"),
    (lambda p: p.write_text("Id,x0,y0,x1,y1,score\n1_1,0,0,5000,5,1\n"), "reaches beyond the"),
])
def test_bad_boxes_files_are_one_line(scored, synthetic_root, tmp_path, capsys, edit, message):
    import re

    edit(tmp_path / "b.csv")
    code, _, err = run(capsys, "evaluate", scored / "scores.csv", "--data", synthetic_root,
                       "--boxes", tmp_path / "b.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert "Traceback" not in err


def test_threshold_errors_are_one_line(scored, hybrid_run, synthetic_root, tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", scored / "scores.csv", "--data", synthetic_root,
                       "--threshold", "1", "--run", hybrid_run)
    assert code == 2 and "--threshold or --run, not both" in err
    run_copy = tmp_path / "run"
    run_copy.mkdir()
    cfg = json.loads((hybrid_run / "config.json").read_text())
    del cfg["fitted"]["threshold"]
    (run_copy / "config.json").write_text(json.dumps(cfg))
    code, _, err = run(capsys, "evaluate", scored / "scores.csv", "--data", synthetic_root, "--run", run_copy)
    assert code == 2 and "config.json: the run saved no calibrated threshold" in err
    code, _, err = run(capsys, "evaluate", scored / "scores.csv", "--data", synthetic_root, "--threshold", "1",
                       "--min-frames", "0")
    assert code == 2 and "min-frames 0" in err and len(err.strip().splitlines()) == 1
