"""Resumable training: checkpoints survive SIGKILL, and a resumed run ends where an uninterrupted one does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from vigil import runs, training
from vigil.cli import main
from vigil.errors import VigilError
from vigil.detector import Detector
from vigil.models.ocrgan_video.detector import OcrGanVideo
from vigil.models.truesight import TrueSight

# A small True Sight (32 px, one scale, narrow encoder): seconds per epoch on one CPU thread.
TINY_TS = dict(size=32, scales=(32,), enc_channels=(16, 32, 64, 64), batch_size=32, epochs=2)
TINY_TS_ARGS = ["--epochs", "2", "--set", "size=32", "--set", "scales=[32]", "--set", "enc_channels=[16,32,64,64]",
                "--set", "batch_size=32"]
TINY_GAN = dict(size=32, gen_channels=8, feat_channels=16, heads=4, epochs=2, batch_size=8)


class Interrupted(Exception):
    pass


def interrupt_after(monkeypatch, n_saves: int) -> None:
    """Stop training right after its ``n_saves``-th checkpoint, as a crash would."""
    save, count = training.TrainingRun._save, [0]

    def saving_then_stopping(self, *args, **kwargs):
        save(self, *args, **kwargs)
        count[0] += 1
        if count[0] == n_saves:
            raise Interrupted

    monkeypatch.setattr(training.TrainingRun, "_save", saving_then_stopping)


@pytest.fixture(scope="module")
def reference(synthetic):
    """True Sight trained without interruption (and without checkpoints)."""
    return TrueSight(progress=False, **TINY_TS).fit(synthetic.train)


def test_resume_mid_epoch_is_bit_identical(reference, synthetic, tmp_path, monkeypatch):
    # 6 training videos x 64 frames / 32 = 12 batches per epoch; a checkpoint after each: stop in epoch 2
    interrupt_after(monkeypatch, 17)
    with pytest.raises(Interrupted):
        TrueSight(progress=False, **TINY_TS).fit(synthetic.train, checkpoint_dir=tmp_path, checkpoint_every=0)
    monkeypatch.undo()
    ckpt = training.read_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and 0 < ckpt["step"] < ckpt["batches_per_epoch"] and ckpt["perm"] is not None
    resumed = TrueSight(progress=False, **TINY_TS).fit(synthetic.train, checkpoint_dir=tmp_path, resume=True)
    for v in synthetic.test:
        np.testing.assert_array_equal(resumed.score(v), reference.score(v))
    assert resumed.threshold_ == reference.threshold_


def test_gan_resume_at_epoch_end_is_bit_identical(synthetic, tmp_path, monkeypatch):
    videos = synthetic.train[:2]
    whole = OcrGanVideo(progress=False, **TINY_GAN).fit(videos)
    interrupt_after(monkeypatch, 1)                       # the checkpoint at the end of epoch 1 of 2
    with pytest.raises(Interrupted):
        OcrGanVideo(progress=False, **TINY_GAN).fit(videos, checkpoint_dir=tmp_path, checkpoint_every=None)
    monkeypatch.undo()
    assert training.read_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    # a checkpoint continues only the training that wrote it
    with pytest.raises(VigilError, match=r"other settings: lr 0.0002 \(now 0.001\)"):
        OcrGanVideo(progress=False, **{**TINY_GAN, "lr": 1e-3}).fit(videos, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(VigilError, match="written with samples"):
        OcrGanVideo(progress=False, **TINY_GAN).fit(synthetic.train[:3], checkpoint_dir=tmp_path, resume=True)
    resumed = OcrGanVideo(progress=False, **TINY_GAN).fit(videos, checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed.score(synthetic.test[0]), whole.score(synthetic.test[0]))


def test_sigkill_then_resume(reference, synthetic, synthetic_root, tmp_path, capsys):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}   # the same arithmetic as here
    proc = subprocess.Popen([sys.executable, "-m", "vigil", "train", "--model", "truesight", "--data",
                             str(synthetic_root), "--out", str(run), "--quiet", "--checkpoint-every", "0",
                             *TINY_TS_ARGS], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)          # a checkpoint after every batch: the kill may well land inside a write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert not (run / "model.safetensors").exists()
    ckpt = training.read_checkpoint(run / "checkpoint.pt")                  # intact, whatever the kill hit
    assert set(ckpt["state"]) == {"net", "opt", "sched"} and ckpt["epoch"] < 2
    assert ckpt["state"]["opt"]["state"] and ckpt["ranks"][0]["torch"].dtype == torch.uint8

    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"resuming {run}: epoch {ckpt['epoch']}" in err
    det = Detector.load(run)
    assert det.config.epochs == 2 and det.config.size == 32
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["resumed"] is True and cfg["command"].startswith("vigil train --model truesight")
    assert not (run / "checkpoint.pt").exists() and not list(run.glob(".*.tmp"))
    v = synthetic.test[0]                # the same model as training without an interruption
    np.testing.assert_allclose(det.score(v), reference.score(v), rtol=1e-5, atol=1e-6)

    assert main(["train", "--resume", str(run)]) == 2
    assert "this run has finished" in capsys.readouterr().err


def _train_args(run, **extra):
    run.mkdir(parents=True, exist_ok=True)
    runs.write_train_args(run, {"model": "truesight", "data": "/nowhere", "epochs": 1, "seed": None,
                                    "set": None, "device": "cpu", "command": "vigil train ...", **extra})


@pytest.mark.parametrize("setup, argv, message", [
    (None, [], "no such run folder"),
    ("args", [], "checkpoint.pt: missing; the run stopped before its first checkpoint"),
    ("garbage", [], "checkpoint.pt: corrupt checkpoint"),
    ("truncated", [], "checkpoint.pt: corrupt checkpoint"),
    ("no-args", [], "train_args.json: missing"),
    ("args", ["--epochs", "5"], "leave out --epochs"),
])
def test_resume_errors_are_one_line(setup, argv, message, tmp_path, capsys):
    run = tmp_path / "run"
    if setup in ("args", "garbage", "truncated"):
        _train_args(run)
    if setup == "garbage":
        (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    if setup == "truncated":
        torch.save({"format": 1, "state": {"w": torch.zeros(1000)}}, run / "checkpoint.pt")
        data = (run / "checkpoint.pt").read_bytes()
        (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    if setup == "no-args":
        run.mkdir()
        (run / "checkpoint.pt").write_bytes(b"x")
    code = main(["train", "--resume", str(run), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("vigil: error: ") and message in err and err.count("\n") == 1


def test_train_without_resume_needs_model_data_out(capsys):
    assert main(["train", "--model", "truesight"]) == 2
    assert "--model, --data and --out are required (or --resume RUN)" in capsys.readouterr().err


def test_a_fresh_start_does_not_delete_an_interrupted_runs_checkpoint(synthetic_root, tmp_path, capsys):
    run = tmp_path / "run"
    _train_args(run)
    (run / "checkpoint.pt").write_bytes(b"an interrupted run's work")
    code = main(["train", "--model", "truesight", "--data", str(synthetic_root), "--out", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and f"vigil train --resume {run}" in err and err.count("\n") == 1
    assert (run / "checkpoint.pt").read_bytes() == b"an interrupted run's work"
