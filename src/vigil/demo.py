"""``vigil demo``: the whole job on built-in synthetic data — generate the corridor, train briefly,
score, evaluate, and say per test video what the model sees and what it cannot."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

from vigil.data import load_dataset
from vigil.data.synthetic import ANOMALIES, generate
from vigil.evaluate import evaluate_csv
from vigil.io import write_json, write_scores_csv
from vigil.metrics import auc
from vigil.registry import get_detector


def run_demo(out: str | os.PathLike, *, model: str = "truesight", epochs: int | None = 15, seed: int = 0,
             say: Callable[[str], None] = print) -> dict:
    """Write ``out/data`` (the synthetic corridor), ``out/run`` (the model), ``out/scores.csv`` and
    ``out/metrics.json``; returns the metrics. ``epochs`` applies to models that train by epochs."""
    root = Path(out)
    data = generate(root / "data", seed=seed)
    ds = load_dataset(data)
    say(ds.describe())
    klass = get_detector(model)
    trains_by_epochs = "epochs" in {f.name for f in dataclasses.fields(klass.Config)}
    det = klass(progress=True, **({"epochs": epochs} if epochs and trains_by_epochs else {})).fit(ds.train)
    det.save(root / "run")
    scores = {v.name: det.score(v) for v in ds.test}
    write_scores_csv(root / "scores.csv", scores)
    m = evaluate_csv(root / "scores.csv", data)
    write_json(root / "metrics.json", m.as_dict())
    say(m.table())
    # each synthetic test video holds one kind of anomaly (vigil.data.synthetic.generate's order)
    say("\nframe AUC per test video:")
    for i, v in enumerate(ds.test):
        say(f"  {v.name}  {ANOMALIES[i % len(ANOMALIES)]:<10} {auc(v.labels, scores[v.name]):.3f}")
    if klass.name == "hybrid":
        say("  (hybrid models motion; a box left on the floor does not move. 'vigil demo' trains True Sight, "
            "which looks at appearance.)")
    else:
        say(f"  ({klass.name} looks at appearance; someone walking the wrong way looks normal in any one frame. "
            f"'vigil demo --model hybrid' models motion.)")
    say(f"\nresults in {root}/: data/ (synthetic corridor), run/ (model), scores.csv, metrics.json")
    return m.as_dict()
