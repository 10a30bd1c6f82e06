"""Shared fixtures: a small synthetic corridor dataset and the real Ped2 development split."""

from __future__ import annotations

from pathlib import Path

import pytest

PED2 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ucsd_ped2"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test decodes into its own frame cache, so no test depends on another's leftovers."""
    monkeypatch.setenv("VIGIL_CACHE", str(tmp_path_factory.getbasetemp() / "frame-cache"))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """The synthetic corridor (8 normal training videos, 3 test videos: running, wrong way, object)."""
    from vigil.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), seed=0)


@pytest.fixture(scope="session")
def synthetic(synthetic_root):
    from vigil.data import load_dataset

    return load_dataset(synthetic_root)


@pytest.fixture(scope="session")
def ped2():
    if not PED2.is_dir():
        pytest.skip(f"real data not found at {PED2} (the shared benchmark folder is absent)")
    from vigil.data import load_dataset

    return load_dataset(PED2)


@pytest.fixture(scope="session")
def trained_truesight(synthetic):
    """True Sight after a short training on the synthetic corridor (shared by several test files)."""
    from vigil.models.truesight import TrueSight

    return TrueSight(epochs=20, progress=False).fit(synthetic.train)


@pytest.fixture(scope="session")
def trained_hybrid(synthetic):
    """The motion detector fitted on the synthetic corridor (seconds)."""
    from vigil.models.hybrid import Hybrid

    return Hybrid(progress=False).fit(synthetic.train)
