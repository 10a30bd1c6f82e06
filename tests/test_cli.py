"""The command line on temporary folders: train, score, evaluate, and one-line errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from vigil.cli import main


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run_dir(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--model", "truesight", "--data", str(synthetic_root), "--out", str(out),
                 "--epochs", "2", "--seed", "3", "--quiet", "--set", "batch_size=32"]) == 0
    return out


def test_train_writes_weights_and_full_config(run_dir):
    cfg = json.loads((run_dir / "config.json").read_text())
    assert (run_dir / "model.safetensors").stat().st_size > 10_000
    assert cfg["model"] == "truesight" and cfg["layout"] == "frames"
    assert cfg["config"]["epochs"] == 2 and cfg["config"]["seed"] == 3 and cfg["config"]["batch_size"] == 32
    assert "--epochs 2" in cfg["command"] and cfg["machine"]["torch"]


def test_score_then_evaluate(run_dir, synthetic_root, tmp_path, capsys):
    scores = tmp_path / "scores.csv"
    code, out, _ = run(capsys, "score", run_dir, "--data", synthetic_root, "--out", scores, "--quiet")
    assert code == 0 and "scored 3 videos, 192 frames" in out
    rows = list(csv.reader(scores.open()))
    assert rows[0] == ["Id", "Predicted"] and rows[1][0] == "1_1" and rows[65][0] == "2_1" and len(rows) == 193
    code, out, _ = run(capsys, "evaluate", scores, "--data", synthetic_root, "--json", tmp_path / "m.json")
    assert code == 0 and "micro AUC (raw scores pooled" in out and "min-max normalised" in out
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["n_frames"] == 192
    # the same AUC from the CSV and the dataset's labels, computed here by scikit-learn
    from sklearn.metrics import roc_auc_score

    from vigil.data import load_dataset

    predicted = np.array([float(r[1]) for r in rows[1:]])
    labels = np.concatenate([v.labels for v in load_dataset(synthetic_root).test])
    assert m["micro_auc"] == pytest.approx(roc_auc_score(labels, predicted), abs=1e-9)
    assert m["micro_auc"] > 0.6          # two epochs of True Sight already see the runner and the box


def test_score_single_video_file_and_maps(run_dir, synthetic, tmp_path, capsys):
    import cv2

    frames = synthetic.test[0].frames()[:10]
    vw = cv2.VideoWriter(str(tmp_path / "cam7.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, frames.shape[2:0:-1])
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    code, _, _ = run(capsys, "score", run_dir, "--data", tmp_path / "cam7.avi", "--out", tmp_path / "s.csv",
                     "--maps", tmp_path / "maps", "--quiet")
    assert code == 0
    ids = [r[0] for r in csv.reader((tmp_path / "s.csv").open())][1:]
    assert ids == [f"7_{i}" for i in range(1, 11)]
    maps = np.load(tmp_path / "maps" / "cam7" / "maps.npz")["maps"]
    assert maps.shape == (10, 96, 128) and (tmp_path / "maps" / "cam7" / "00010.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "truesight", "--data", "{tmp}/nope", "--out", "{tmp}/r"], "nope: no such dataset folder"),
    (["train", "--model", "nosuch", "--data", "{tmp}", "--out", "{tmp}/r"], "unknown model 'nosuch'"),
    (["train", "--model", "truesight", "--data", "{syn}", "--out", "{tmp}/r", "--set", "colour=1"],
     "has no setting colour"),
    (["train", "--model", "truesight", "--data", "{syn}", "--out", "{tmp}/r", "--set", "scales=[64,100]"],
     "scales (64, 100) must be multiples of 16"),
    (["train", "--model", "truesight", "--data", "{syn}", "--out", "{tmp}/r", "--set", "weights=[1,1]"],
     "must be 7 numbers"),
    (["train", "--model", "ocrgan-video", "--data", "{syn}", "--out", "{tmp}/r", "--set", "clip_len=1"],
     "clip_len 1 is not supported"),
    (["score", "{tmp}/norun", "--data", "{syn}", "--out", "{tmp}/s.csv"], "norun: no such run folder"),
    (["evaluate", "{tmp}/none.csv", "--data", "{syn}"], "none.csv: no such score file"),
])
def test_errors_are_one_line(argv, message, synthetic_root, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, syn=synthetic_root) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("vigil: error: ") and message in err and err.count("\n") == 1


def test_device_cuda_without_cuda(synthetic_root, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, _, err = run(capsys, "train", "--model", "truesight", "--data", synthetic_root, "--out", tmp_path / "r",
                       "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err


def test_evaluate_refuses_scores_of_another_dataset(synthetic_root, tmp_path, capsys):
    (tmp_path / "s.csv").write_text("Id,Predicted\n1_1,0.5\n")
    code, _, err = run(capsys, "evaluate", tmp_path / "s.csv", "--data", synthetic_root)
    assert code == 2 and "no score for 63 frames of test video 01" in err


def test_installed_entry_point_and_help():
    exe = [sys.executable, "-m", "vigil"]
    out = subprocess.run(exe + ["--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("train", "score", "evaluate", "explain", "demo"):
        assert cmd in out
    out = subprocess.run(exe + ["train", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--epochs" in out and "--device" in out and "--seed" in out


def test_demo_with_a_model_that_has_no_epochs_says_what_each_video_shows(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--model", "hybrid", "--out", tmp_path / "demo")
    assert code == 0
    assert {p.name for p in (tmp_path / "demo").iterdir()} == {"data", "run", "scores.csv", "metrics.json"}
    lines = {ln.split()[1]: float(ln.split()[2]) for ln in out.splitlines() if ln.startswith("  0")}
    assert set(lines) == {"running", "wrong_way", "object"}
    assert lines["running"] > 0.9                  # motion is what hybrid sees


def test_training_hybrid_says_how_its_threshold_held_on_each_training_video(synthetic_root, tmp_path, capsys):
    """``vigil train --model hybrid`` prints the training videos whose frames most exceed ``threshold_`` when
    judged by a normality fitted without them, and keeps every video's share in config.json; with fewer
    training videos than the calibration's five groups it also warns, in one line, that the threshold may
    flag far more than it is set for."""
    from vigil.data.synthetic import SceneSpec, generate

    code, _, err = run(capsys, "train", "--model", "hybrid", "--data", synthetic_root, "--out", tmp_path / "run",
                       "--quiet")
    assert code == 0 and "vigil: warning:" not in err
    line = next(ln for ln in err.splitlines() if ln.startswith("calibration: threshold_"))
    shares = json.loads((tmp_path / "run" / "config.json").read_text())["unseen_alarms"]
    assert sorted(shares) == [f"{i:02d}" for i in range(1, 9)] and all(0 <= a <= 1 for a in shares.values())
    worst = max(shares, key=shares.get)
    assert f"{worst} {100 * shares[worst]:.1f}%" in line
    few = generate(tmp_path / "few", seed=1, spec=SceneSpec(n_train=2, n_test=1))
    code, _, err = run(capsys, "train", "--model", "hybrid", "--data", few, "--out", tmp_path / "few-run", "--quiet")
    warned = [ln for ln in err.splitlines() if ln.startswith("vigil: warning:")]
    assert code == 0 and len(warned) == 1 and "calibrated on 2 training videos" in warned[0]
    assert "mirror=true" in warned[0]


def test_export_onto_a_folder_and_zero_epochs_are_one_line_errors(run_dir, synthetic_root, tmp_path, capsys):
    code, _, err = run(capsys, "export", run_dir, "--out", tmp_path)
    assert code == 2 and err == f"vigil: error: {tmp_path}: is a folder; give the name of a file to write\n"
    code, _, err = run(capsys, "train", "--model", "truesight", "--data", synthetic_root, "--out", tmp_path / "r",
                       "--epochs", "0")
    assert code == 2 and "--epochs 0: must be a whole number, at least 1" in err and not (tmp_path / "r").exists()
