"""ONNX export: ONNX Runtime scores equal PyTorch's within the stated tolerance, the file is
self-contained, the CLI round trip, and one-line errors (hybrid, corrupt or foreign files, no runtime)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install -e '.[onnx]')")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install -e '.[onnx]')")

from vigil.cli import main  # noqa: E402
from vigil.data import Video  # noqa: E402
from vigil.errors import VigilError  # noqa: E402
from vigil.export import OrtNetwork, export_onnx, load_onnx, score_tolerance  # noqa: E402
from vigil.models.ocrgan_video.detector import OcrGanVideo  # noqa: E402
from vigil.models.truesight.detector import TrueSight
from vigil.models.truesight.network import MultiScaleMaps, TrueSightNet, fold_batchnorm  # noqa: E402

# Small networks and one epoch: these tests compare two backends, not detection quality. The scales
# 32/48/64 around size 48 make the graph resize by 2/3 and 4/3, which a float-scale Resize would get
# wrong by a pixel, so a size bug would show.
TINY_TS = dict(size=48, scales=(32, 48, 64), enc_channels=(8, 16, 16, 16), epochs=1, batch_size=32)
TINY_OCR = dict(size=32, clip_len=4, gen_channels=8, feat_channels=16, heads=2, epochs=1, batch_size=8)


def run(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def truesight(synthetic):
    return TrueSight(progress=False, **TINY_TS).fit(synthetic.train[:4])


@pytest.fixture(scope="module")
def ocrgan(synthetic):
    return OcrGanVideo(progress=False, **TINY_OCR).fit(synthetic.train[:3])


def _videos(synthetic):
    """The three test videos, a 5-frame one (another batch size) and a 2-frame one (shorter than a clip)."""
    frames = synthetic.test[0].frames()
    return list(synthetic.test) + [Video.from_array("short5", frames[:5]), Video.from_array("short2", frames[40:42])]


def _tolerance(det, synthetic) -> float:
    """The stated tolerance, from PyTorch's scores of the normal (label 0) test frames."""
    normal = np.concatenate([det.score(v)[v.labels == 0] for v in synthetic.test])
    assert normal.std() > 0.05                  # scores vary, so agreeing within it means something
    return score_tolerance(normal)


@pytest.mark.parametrize("which,threads", [("truesight", 2), ("ocrgan", 1)])
def test_onnx_scores_equal_pytorch(which, threads, request, synthetic, tmp_path):
    det = request.getfixturevalue(which)
    summary = export_onnx(det, tmp_path / "m.onnx")
    assert summary["check_max_abs_diff"] < 1e-4
    onnx_det = load_onnx(tmp_path / "m.onnx", threads=threads)
    assert isinstance(onnx_det._runtime, OrtNetwork) and onnx_det.name == det.name
    assert onnx_det._runtime.parts == (2 if which == "truesight" else 1)   # True Sight splits batches
    assert onnx_det.threshold_ == det.threshold_ and onnx_det.config == det.config
    tol = _tolerance(det, synthetic)
    for v in _videos(synthetic):
        ref, got = det.score(v), onnx_det.score(v)
        assert got.shape == ref.shape == (len(v.frames()),)
        assert np.abs(got - ref).max() <= tol, v.name
    s_ref, m_ref = det.score_maps(synthetic.test[1])
    s_got, m_got = onnx_det.score_maps(synthetic.test[1])
    assert m_got.shape == m_ref.shape and np.abs(m_got - m_ref).max() < 1e-3 * max(1.0, np.abs(m_ref).max())


def test_onnx_without_attention_exports_two_outputs(synthetic, tmp_path):
    det = OcrGanVideo(progress=False, attention=False, **{**TINY_OCR, "epochs": 1}).fit(synthetic.train[:2])
    export_onnx(det, tmp_path / "m.onnx")
    onnx_det = load_onnx(tmp_path / "m.onnx", threads=1)
    assert [o.name for o in onnx_det._runtime.session.get_outputs()] == ["rec", "feat"]
    v = synthetic.test[2]
    assert np.abs(onnx_det.score(v) - det.score(v)).max() <= _tolerance(det, synthetic)


def test_onnx_file_carries_config_and_calibration(truesight, tmp_path):
    import onnx

    export_onnx(truesight, tmp_path / "a" / "m.onnx")
    moved = tmp_path / "elsewhere.onnx"
    shutil.move(tmp_path / "a" / "m.onnx", moved)               # nothing beside it
    props = {p.key: p.value for p in onnx.load(str(moved)).metadata_props}
    meta = json.loads(props["vigil"])
    assert meta["model"] == "truesight" and meta["config"]["scales"] == [32, 48, 64]
    assert meta["fitted"]["threshold"] == truesight.threshold_
    det = load_onnx(moved)
    np.testing.assert_array_equal(det.pixel_stats_, truesight.pixel_stats_)     # bit for bit
    np.testing.assert_array_equal(det.comp_scale_, truesight.comp_scale_)
    assert (det.guard_ is None) == (getattr(truesight, "guard_", None) is None)     # the frame guard travels too
    with pytest.raises(VigilError, match="loaded from an ONNX file"):
        det.save(tmp_path / "run")


def test_cli_export_then_score_onnx(truesight, synthetic, synthetic_root, tmp_path, capsys):
    run_dir, model = truesight.save(tmp_path / "run"), tmp_path / "model.onnx"
    code, out, err = run(capsys, "export", run_dir, "--format", "onnx", "--out", model)
    assert code == 0 and "exported truesight" in out and model.stat().st_size > 100_000, err
    for src, csv_path in ((run_dir, tmp_path / "pt.csv"), (model, tmp_path / "ort.csv")):
        code, out, err = run(capsys, "score", src, "--data", synthetic_root, "--out", csv_path, "--quiet")
        assert code == 0 and "scored 3 videos, 192 frames" in out, err
    rows = [list(csv.reader(p.open()))[1:] for p in (tmp_path / "pt.csv", tmp_path / "ort.csv")]
    assert [r[0] for r in rows[0]] == [r[0] for r in rows[1]]
    diff = max(abs(float(a[1]) - float(b[1])) for a, b in zip(*rows))
    assert diff <= _tolerance(truesight, synthetic)
    code, _, err = run(capsys, "export", model, "--out", tmp_path / "again.onnx")
    assert code == 2 and "already an ONNX file" in err


def test_hybrid_refuses_with_one_line(trained_hybrid, tmp_path, capsys):
    run_dir = trained_hybrid.save(tmp_path / "hyb")
    code, out, err = run(capsys, "export", run_dir, "--out", tmp_path / "h.onnx")
    assert code == 2 and not (tmp_path / "h.onnx").exists()
    assert err.count("\n") == 1 and "cannot be exported to ONNX" in err and "no neural network" in err


def test_bad_onnx_files_are_one_line_errors(truesight, synthetic_root, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    good = tmp_path / "good.onnx"
    export_onnx(truesight, good, check=False)
    data = good.read_bytes()
    (tmp_path / "garbage.onnx").write_bytes(b"this is not a protobuf" * 10)
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "foreign.onnx"))
    cases = {"garbage.onnx": "not a readable ONNX model", "truncated.onnx": "not a readable ONNX model",
             "foreign.onnx": "not one written by 'vigil export'", "missing.onnx": "no such ONNX file"}
    for name, message in cases.items():
        code, out, err = run(capsys, "score", tmp_path / name, "--data", synthetic_root, "--out", tmp_path / "s.csv")
        assert code == 2 and message in err and err.count("\n") == 1 and name in err, (name, err)
    assert not (tmp_path / "s.csv").exists()


def test_missing_onnxruntime_is_explained(truesight, tmp_path, monkeypatch):
    export_onnx(truesight, tmp_path / "m.onnx", check=False)
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)     # import now fails
    with pytest.raises(VigilError, match=r"needs onnxruntime: pip install 'vigil\[onnx\]'"):
        load_onnx(tmp_path / "m.onnx")


def test_spectrum_and_batchnorm_folding_are_exact():
    """The two rewrites scoring relies on: rfft2 as matrix products, BatchNorm folded into convolutions."""
    torch.manual_seed(0)
    net = TrueSightNet(TrueSight.Config(enc_channels=(8, 16, 16, 16))).eval()
    for m in net.modules():                          # non-trivial statistics, so folding has work to do
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    maps = MultiScaleMaps(net, (32, 48), 48)
    img = torch.rand(3, 48, 48)
    torch.testing.assert_close(maps.spectrum(img), torch.fft.rfft2(img).abs(), atol=2e-4, rtol=1e-4)
    x = torch.rand(2, 3, 48, 48)
    with torch.inference_mode():
        ref, folded = net(x), fold_batchnorm(net)(x)
    torch.testing.assert_close(folded.recon, ref.recon, atol=1e-5, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batchnorm(net).modules())


def test_watch_an_onnx_file_gives_the_events_of_its_run(ocrgan, synthetic, tmp_path):
    """`vigil watch model.onnx`: the live path (OCR-GAN Video's one clip per frame) through ONNX Runtime."""
    from vigil.watch import watch

    det = load_onnx(export_onnx(ocrgan, tmp_path / "m.onnx")["path"])
    video = synthetic.test[0]                                # its folder of frames, replayed as a live source
    live = [ocrgan.stream().update(f)[0] for f in video.frames()]
    threshold = float(np.median(live))                       # events both ways of crossing it, whatever the weights
    events = [[(e.start_frame, e.end_frame) for e in watch(d, str(video.source), status=False, threshold=threshold)]
              for d in (ocrgan, det)]
    assert events[0] and events[1] == events[0]
