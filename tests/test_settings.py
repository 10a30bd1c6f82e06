"""Settings: ``--set`` parsed against each setting's declared type, ranges checked on construction,
one line naming the setting for any wrong value, before any data is read (so no run folder is written)."""

from __future__ import annotations

import dataclasses

import pytest

from vigil import available, get_detector
from vigil.cli import main
from vigil.errors import VigilError
from vigil.settings import model_settings


def _wrong_type(default) -> str:
    if isinstance(default, bool):
        return "maybe"
    if isinstance(default, (int, float)):
        return "abc"
    if isinstance(default, tuple):
        return '["x"]' if default and isinstance(default[0], (int, float)) else "1"
    return None


CASES = []
for name in available():
    klass = get_detector(name)
    for f in dataclasses.fields(klass.Config):
        bad = _wrong_type(f.default)
        if bad is not None and not (isinstance(f.default, tuple) and not isinstance(f.default[0], (int, float))):
            CASES.append((name, f.name, bad))
        lo, hi = klass.ranges.get(f.name, (None, None))
        if lo is not None:
            below = lo - 1 if isinstance(lo, int) and not isinstance(f.default, float) else lo - 0.5
            value = f"[{below}]" if isinstance(f.default, tuple) else str(below)
            CASES.append((name, f.name, value))
        if hi is not None:
            above = hi + 1 if isinstance(hi, int) and not isinstance(f.default, float) else hi + 0.5
            value = f"[{above}]" if isinstance(f.default, tuple) else str(above)
            CASES.append((name, f.name, value))


@pytest.mark.parametrize("model, key, value", CASES)
def test_every_wrong_setting_is_one_line_before_any_data_is_read(model, key, value, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--model", model, "--data", str(tmp_path / "no-such-data"), "--out", str(out),
                 "--set", f"{key}={value}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("vigil: error: ") and key in err, err
    assert "no-such-data" not in err and not out.exists()


@pytest.mark.parametrize("text, expected", [("true", True), ("Yes", True), ("1", True),
                                            ("false", False), ("no", False), ("0", False)])
def test_booleans_take_true_false_yes_no_one_zero(text, expected):
    assert model_settings(get_detector("hybrid"), [f"guard={text}"]) == {"guard": expected}


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_numbers_must_be_finite(text):
    with pytest.raises(VigilError, match="smooth_sigma.*finite"):
        model_settings(get_detector("hybrid"), [f"smooth_sigma={text}"])


def test_lists_and_numbers_keep_their_types():
    got = model_settings(get_detector("truesight"), ["scales=[32,48]", "lr=0.001", "epochs=2"])
    assert got == {"scales": (32, 48), "lr": 0.001, "epochs": 2}


def test_lists_may_be_written_with_commas():
    """``--set evidence=motion,dynamics`` is the list a user means, as ``["motion","dynamics"]`` is."""
    hybrid, truesight = get_detector("hybrid"), get_detector("truesight")
    assert model_settings(hybrid, ["evidence=motion, dynamics"]) == {"evidence": ("motion", "dynamics")}
    assert model_settings(hybrid, ['evidence=["motion","look"]']) == {"evidence": ("motion", "look")}
    assert model_settings(hybrid, ["evidence=motion"]) == {"evidence": ("motion",)}
    assert model_settings(truesight, ["scales=32,48"]) == {"scales": (32, 48)}
    with pytest.raises(VigilError, match=r"scales=32,x"):
        model_settings(truesight, ["scales=32,x"])


def test_a_negative_seed_is_refused(tmp_path, capsys):
    code = main(["train", "--model", "hybrid", "--data", str(tmp_path), "--out", str(tmp_path / "r"),
                 "--seed", "-1"])
    assert code == 2 and "--seed -1" in capsys.readouterr().err
