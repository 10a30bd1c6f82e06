"""Files that are wrong in ways a user meets: one line naming the file and what is wrong, never a
traceback, never silently wrong scores."""

from __future__ import annotations

import json

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
