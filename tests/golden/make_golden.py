"""Write the reference scores the behaviour-unchanged test compares against (tests/test_golden.py).

Run once, before a refactor, with the code as it stands: ``python tests/golden/make_golden.py``.
Each registered detector is fitted on the synthetic corridor (seed 0, CPU, one thread, the tiny
settings of ``SETTINGS``) and scores its test videos and their maps; the scores, maps (subsampled),
and the run folders themselves (small) are kept, so the test checks both that today's code gives
the same scores as then and that a run folder written then still loads and scores the same.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# tiny settings: seconds of training each; kept in step with tests/test_golden.py
SETTINGS = {
    "truesight": {"epochs": 1, "batch_size": 32, "enc_channels": [8, 16, 16, 16], "bottleneck": 8},
    "ocrgan-video": {"epochs": 1, "gen_channels": 4, "feat_channels": 16, "heads": 2, "size": 32},
    # the version the references were written with (issue 13 changed the defaults; the old run folder
    # loads as this through Hybrid.legacy_settings)
    "hybrid": {"pooling": "cells", "evidence": ["motion", "location"], "calibration": "holdout", "perspective": False,
               "neighbourhood": 3, "track_frames": 0.0, "split": False, "crowds": False},
}


def fit_and_score(name: str, ds):
    import torch

    from vigil import get_detector

    torch.set_num_threads(1)
    klass = get_detector(name)
    over = {k: tuple(v) if isinstance(v, list) else v for k, v in SETTINGS[name].items()}
    det = klass(progress=False, **over).fit(ds.train)
    out = {}
    for v in ds.test:
        s, m = det.score_maps(v)
        out[f"{v.name}/scores"] = np.asarray(s, np.float64)
        out[f"{v.name}/maps"] = np.asarray(m[::7, ::4, ::4], np.float32)
    return det, out


def main() -> None:
    from vigil.data import load_dataset
    from vigil.data.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        ds = load_dataset(generate(Path(tmp) / "data", seed=0))
        for name in SETTINGS:
            det, out = fit_and_score(name, ds)
            np.savez_compressed(HERE / f"{name}.npz", **out)
            det.save(HERE / "saved" / name)
            if name != "hybrid":                      # the ONNX path too: a file written now must load later
                from vigil.export import export_onnx, load_onnx

                export_onnx(det, HERE / "saved" / f"{name}.onnx")
                onnx = load_onnx(HERE / "saved" / f"{name}.onnx")
                np.savez_compressed(HERE / f"{name}.onnx.npz",
                                    **{f"{v.name}/scores": np.asarray(onnx.score(v), np.float64) for v in ds.test})
            print(name, {k: float(v.mean()) for k, v in out.items() if k.endswith("scores")}, file=sys.stderr)
    (HERE / "settings.json").write_text(json.dumps(SETTINGS, indent=1) + "\n")


if __name__ == "__main__":
    main()
