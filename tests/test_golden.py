"""Behaviour unchanged: scores from today's code, and from run folders and ONNX files written before
the package was restructured, equal the reference scores saved then (``tests/golden/make_golden.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from make_golden import SETTINGS, fit_and_score  # noqa: E402

MODELS = sorted(SETTINGS)


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _close(got: dict, want, keys) -> None:
    for k in keys:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("name", MODELS)
def test_fitting_today_gives_the_reference_scores(name, synthetic, one_thread):
    _, got = fit_and_score(name, synthetic)
    want = np.load(GOLDEN / f"{name}.npz")
    assert sorted(got) == sorted(want.files)
    _close(got, want, want.files)


@pytest.mark.parametrize("name", MODELS)
def test_a_run_folder_written_before_scores_the_same(name, synthetic):
    from vigil import load

    det = load(GOLDEN / "saved" / name)
    want = np.load(GOLDEN / f"{name}.npz")
    got = {f"{v.name}/scores": det.score(v) for v in synthetic.test}
    _close(got, want, got)


@pytest.mark.parametrize("name", ["ocrgan-video", "truesight"])          # hybrid has no ONNX form
def test_an_onnx_file_written_before_scores_the_same(name, synthetic):
    pytest.importorskip("onnxruntime")
    assert (GOLDEN / "saved" / f"{name}.onnx").is_file()
    from vigil import load

    det = load(GOLDEN / "saved" / f"{name}.onnx")
    want = np.load(GOLDEN / f"{name}.onnx.npz")
    got = {f"{v.name}/scores": det.score(v) for v in synthetic.test}
    _close(got, want, got)
