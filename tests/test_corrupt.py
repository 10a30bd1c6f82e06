"""`vigil corrupt`: determinism, labels and masks that follow their frames, the manifest, safe writing."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil import corrupt as corrupt_mod
from vigil.cli import main
from vigil.corrupt import Corruption, corrupt_dataset, load_manifest, plan_video
from vigil.data import load_dataset
from vigil.errors import VigilError

# high rates, so that every kind of corruption shows up in the three 64-frame test videos
SPEC = Corruption(flip=0.4, noise=0.2, blur=0.2, drop=0.15, dup=0.15)


@pytest.fixture(scope="module")
def corrupted(synthetic_root, tmp_path_factory) -> Path:
    return corrupt_dataset(synthetic_root, tmp_path_factory.mktemp("corrupt") / "c", SPEC, seed=5, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_output(corrupted, synthetic_root, tmp_path):
    again = corrupt_dataset(synthetic_root, tmp_path / "again", SPEC, seed=5, progress=False)
    a, b = _files(corrupted), _files(again)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    other = corrupt_dataset(synthetic_root, tmp_path / "other", SPEC, seed=6, progress=False)
    assert _files(other)["corruption.json"] != a["corruption.json"]


def test_frames_labels_and_masks_follow_the_plan(corrupted, synthetic):
    ds, manifest = load_dataset(corrupted), load_manifest(corrupted)
    assert ds.has_labels and len(ds.test) == len(synthetic.test) == len(manifest["videos"])
    seen = set()
    for src, out, entry in zip(synthetic.test, ds.test, manifest["videos"]):
        plan = entry["plan"]
        frames, masks = out.frames(), out.masks()
        src_frames, src_masks = src.frames(), src.masks()
        assert len(frames) == len(plan) == len(out.labels) == len(masks) == entry["frames"]
        sources = [p["source"] for p in plan]
        assert sources == sorted(sources) and not set(entry["dropped"]) & set(sources)
        assert set(entry["dropped"]) | set(sources) == set(range(len(src_frames)))
        for t, p in enumerate(plan):
            ops, s = set(p["ops"]), p["source"]
            seen |= ops
            assert out.labels[t] == src.labels[s]
            np.testing.assert_array_equal(masks[t], src_masks[s][::-1] if "flip" in ops else src_masks[s])
            if "duplicate" in ops:
                np.testing.assert_array_equal(frames[t], frames[t - 1])      # a frozen stream repeats exactly
                assert plan[t - 1]["source"] == s
            elif not ops & {"noise", "blur"}:                                 # lossless: the source's pixels
                np.testing.assert_array_equal(frames[t], src_frames[s][::-1] if "flip" in ops else src_frames[s])
            else:
                assert np.abs(frames[t].astype(int) - src_frames[s][::-1 if "flip" in ops else 1]).mean() > 1
    assert seen == {"flip", "noise", "blur", "duplicate"} and any(e["dropped"] for e in manifest["videos"])


def test_training_frames_are_copied_unchanged(corrupted, synthetic_root):
    src = synthetic_root / "training" / "frames"
    for p in src.rglob("*.jpg"):
        assert (corrupted / "training" / "frames" / p.relative_to(src)).read_bytes() == p.read_bytes()


def test_manifest_says_what_was_done(corrupted):
    m = load_manifest(corrupted)
    assert m["seed"] == 5 and m["splits"] == "test" and m["layout"] == "frames"
    assert m["settings"]["flip"] == 0.4 and m["settings"]["noise_sigma"] == SPEC.noise_sigma
    assert m["label_file"] == "frame_labels_synthetic.npy" and (corrupted / m["label_file"]).is_file()
    for e in m["videos"]:
        assert e["split"] == "testing" and e["source_frames"] == 64
        for op, n in e["counts"].items():
            assert n == sum(op in p["ops"] for p in e["plan"])
        assert e["frames"] == 64 - len(e["dropped"]) + e["counts"]["duplicate"]


def test_plan_is_nested_when_a_rate_grows():
    """Raising one rate only adds frames to that corruption: the draws do not shift."""
    low = plan_video(500, Corruption(flip=0.1), np.random.default_rng(0))
    high = plan_video(500, Corruption(flip=0.5), np.random.default_rng(0))
    flipped = lambda plan: {p.source for p in plan if "flip" in p.ops}  # noqa: E731
    assert flipped(low) < flipped(high) and 0.4 < len(flipped(high)) / 500 < 0.6
    assert len(plan_video(5, Corruption(drop=0.999), np.random.default_rng(0))) >= 1    # never empty


def test_refuses_to_overwrite_without_force(corrupted, synthetic_root, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(VigilError, match="not empty.*--force"):
        corrupt_dataset(synthetic_root, out, SPEC, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    corrupt_dataset(synthetic_root, out, SPEC, seed=5, force=True, progress=False)
    assert not (out / "keep.txt").exists() and (out / "corruption.json").is_file()
    (tmp_path / "empty").mkdir()                                   # an empty folder is fine
    corrupt_dataset(synthetic_root, tmp_path / "empty", SPEC, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "taken"]   # no temporary leftovers
    with pytest.raises(VigilError, match="source dataset"):
        corrupt_dataset(synthetic_root, synthetic_root, SPEC, force=True, progress=False)


def test_a_crash_leaves_no_half_dataset(synthetic_root, tmp_path, monkeypatch):
    real, calls = corrupt_mod._corrupt_video, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(corrupt_mod, "_corrupt_video", failing)
    with pytest.raises(OSError, match="disk full"):
        corrupt_dataset(synthetic_root, tmp_path / "out", SPEC, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_round_trip(synthetic_root, tmp_path, capsys):
    out = tmp_path / "c"
    code = main(["corrupt", str(synthetic_root), "--out", str(out), "--seed", "3", "--flip", "0.5", "--noise", "0",
                 "--blur", "0", "--drop", "0", "--dup", "0", "--quiet"])
    assert code == 0 and "corruption.json" in capsys.readouterr().out
    m = load_manifest(out)
    assert m["seed"] == 3 and m["settings"]["flip"] == 0.5 and m["settings"]["noise"] == 0
    ds = load_dataset(out)
    assert ds.has_labels and [len(v) for v in ds.test] == [64, 64, 64]
    n_flip = sum(e["counts"]["flip"] for e in m["videos"])
    assert 0.35 < n_flip / 192 < 0.65 and all(e["counts"]["noise"] == 0 for e in m["videos"])
    # the scores of a corrupted dataset line up with its labels, frame for frame
    code = main(["train", "--model", "hybrid", "--data", str(out), "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0
    code = main(["score", str(tmp_path / "run"), "--data", str(out), "--out", str(tmp_path / "s.csv"), "--quiet"])
    assert code == 0
    code = main(["evaluate", str(tmp_path / "s.csv"), "--data", str(out)])
    assert code == 0 and "frames: 192" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["corrupt", "{tmp}/nope", "--out", "{tmp}/c"], "nope: no such dataset folder"),
    (["corrupt", "{syn}", "--out", "{tmp}/c", "--flip", "1.5"], "--flip 1.5: a rate must lie between 0 and 1"),
    (["corrupt", "{syn}", "--out", "{tmp}/c", "--blur-sigma", "0"], "--blur-sigma 0.0: must be a positive, finite"),
    (["corrupt", "{syn}", "--out", "{tmp}/c", "--blur-sigma", "inf"], "--blur-sigma inf: must be a positive, finite"),
    (["corrupt", "{syn}", "--out", "{tmp}/c", "--noise-sigma", "nan"], "--noise-sigma nan: must be a positive"),
    (["corrupt", "{syn}", "--out", "{syn}", "--force"], "is (or contains) the source dataset"),
    (["corrupt", "{syn}", "--out", "{syn}/corrupted"], "is inside the source dataset"),
])
def test_errors_are_one_line(argv, message, synthetic_root, tmp_path, capsys):
    code = main([a.format(tmp=tmp_path, syn=synthetic_root) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("vigil: error: ") and message in err and err.count("\n") == 1


def test_help_states_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["corrupt", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default 0.3, as in design document 004)" in out and "--noise-sigma" in out and "--splits {test,all}" in out


def test_splits_all_corrupts_training_too(synthetic_root, tmp_path):
    out = corrupt_dataset(synthetic_root, tmp_path / "all", Corruption(flip=1.0, noise=0, blur=0, drop=0, dup=0),
                          splits="all", progress=False)
    m = load_manifest(out)
    assert {e["split"] for e in m["videos"]} == {"training", "testing"}
    src = cv2.imread(str(synthetic_root / "training" / "frames" / "01" / "000.jpg"))
    dst = cv2.imread(str(out / "training" / "frames" / "01" / "000.png"))
    np.testing.assert_array_equal(dst, src[::-1])
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()) and os.access(out, os.W_OK)
