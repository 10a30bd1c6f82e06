"""Run folders: train one (and resume it), open one, give an older one a frame guard.

A run folder is what ``vigil train --out RUN`` writes: ``model.safetensors`` and ``config.json``
(:meth:`vigil.detector.Detector.save`), and, for models trained by epochs, ``train_args.json``
(what the command was given, so ``vigil train --resume RUN`` needs nothing else) and, while
training, ``checkpoint.pt`` (:mod:`vigil.training`). The command line and the benchmarks call these
functions; they hold the logic the CLI used to.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from vigil import training
from vigil.data import load_dataset
from vigil.detector import Detector, machine_info, resolve_device
from vigil.errors import VigilError
from vigil.io import write_json
from vigil.registry import get_detector

TRAIN_ARGS = "train_args.json"      # what `vigil train` was given, for `vigil train --resume RUN`


def load(path: str | os.PathLike, *, device: str = "cpu") -> Detector:
    """A trained detector: a run folder written by ``vigil train``, or a ``.onnx`` file written by
    ``vigil export`` (its network then runs in ONNX Runtime)."""
    if Path(path).suffix.lower() == ".onnx":
        from vigil.export import load_onnx

        return load_onnx(path, device=device)
    return Detector.load(path, device=device)


def train(model: str, data: str | os.PathLike, out: str | os.PathLike, *, settings: dict | None = None,
          device: str = "cpu", progress: bool = True, command: str = "", resume: bool = False,
          checkpoint_every: float | None = 600.0, record: dict | None = None,
          say: Callable[[str], None] = lambda _: None) -> tuple[Detector, Path | None, float]:
    """Train ``model`` on the training videos of the dataset ``data`` and write the run folder ``out``.

    ``settings``: the model's settings (checked on construction, before any data is read).
    ``record``: what to keep in ``train_args.json`` for a resume (models trained by epochs).
    ``resume``: continue the interrupted run in ``out`` from its checkpoint. Under torchrun every
    process trains and only rank 0 writes; returns ``(detector, run folder or None on the other
    processes, seconds)``. ``say`` receives the lines a user should see (the dataset's summary).
    """
    main = training.is_main()
    out = Path(out)
    if not resume and (out / training.CHECKPOINT).is_file():
        # a fresh start would delete it: an interrupted run's work is never dropped silently
        raise VigilError(f"{out / training.CHECKPOINT}: an interrupted training run is here; continue it "
                         f"with 'vigil train --resume {out}', or delete that file to start again")
    klass = get_detector(model)
    resolve_device(device)                           # fail before any data is read
    det = klass(device=device, progress=progress and main, **(settings or {}))     # checks the settings
    ds = load_dataset(data)
    if main:
        say(ds.describe())
    if not ds.train:
        raise VigilError(f"{data}: no training videos to learn normality from")
    t0 = time.time()
    if klass.resumable:
        if main and not resume:
            write_train_args(out, {"model": klass.name, "data": str(Path(data).resolve()), **(record or {}),
                                   "device": device, "command": command})
        det.fit(ds.train, checkpoint_dir=out, resume=resume, checkpoint_every=checkpoint_every)
    else:
        det.fit(ds.train)
    seconds = time.time() - t0
    if not main:
        return det, None, seconds
    for note in getattr(det, "fit_notes_", []):          # what a model chose from the footage (hybrid's size)
        say(f"{det.name}: {note}")
    unseen = _unseen_alarms(det, ds.train)
    if unseen:
        worst = sorted(unseen.items(), key=lambda kv: -kv[1])[:3]
        say(f"calibration: threshold_ {det.threshold_:.3f}, set for {100 * det.config.false_alarm_rate:g}% of held-out normal "
            f"frames; the training videos with most frames above it, each judged by a normality fitted without it: "
            + ", ".join(f"{name} {100 * a:.1f}%" for name, a in worst))
    det.save(out, extra={"data": str(Path(data).resolve()), "layout": ds.layout, "train_seconds": round(seconds, 2),
                         **({"unseen_alarms": unseen} if unseen else {}),
                         "machine": machine_info(), "command": command, "processes": training.world_size(),
                         **({"resumed": True} if resume else {})})
    finish_run(out)
    return det, out, seconds


def _unseen_alarms(det: Detector, videos) -> dict[str, float]:
    """Per training video (by name), the share of its frames above ``threshold_`` when judged by a normality
    fitted without it, for a model that measures it (``unseen_alarms_``; None for a video it never held out)."""
    shares = getattr(det, "unseen_alarms_", None) or []
    return {v.name: round(a, 4) for v, a in zip(videos, shares) if a is not None}


def write_train_args(folder: str | os.PathLike, args: dict, finished: bool = False) -> None:
    """Record the command's arguments in ``folder/train_args.json`` (atomically)."""
    write_json(Path(folder) / TRAIN_ARGS, {**args, "finished": finished})


def finish_run(folder: str | os.PathLike) -> None:
    """After the model is saved: drop the checkpoint and mark the run finished."""
    folder = Path(folder)
    args = folder / TRAIN_ARGS
    if args.is_file():
        write_train_args(folder, {k: v for k, v in json.loads(args.read_text()).items() if k != "finished"},
                         finished=True)
    (folder / training.CHECKPOINT).unlink(missing_ok=True)


def resume_arguments(run: str | os.PathLike) -> dict[str, Any]:
    """The arguments an interrupted ``vigil train`` was given, after checking that ``run`` holds a
    readable checkpoint of that model; one clear error otherwise."""
    run = Path(run)
    if not run.is_dir():
        raise VigilError(f"{run}: no such run folder")
    args_file, ckpt_file = run / TRAIN_ARGS, run / training.CHECKPOINT
    if not args_file.is_file():
        raise VigilError(f"{args_file}: missing (is {run} a run folder written by 'vigil train'?)")
    try:
        args = json.loads(args_file.read_text())
        model, finished = args["model"], args.get("finished", False)
        args["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise VigilError(f"{args_file}: corrupt training arguments ({e.__class__.__name__}: {e})") from None
    if not ckpt_file.is_file():
        if finished:
            raise VigilError(f"{run}: this run has finished (see {run}/model.safetensors); nothing to resume")
        raise VigilError(f"{ckpt_file}: missing; the run stopped before its first checkpoint, so start it again")
    saved = training.read_checkpoint(ckpt_file).get("model")
    if saved != model:
        raise VigilError(f"{ckpt_file}: checkpoint of model '{saved}', but {args_file} says '{model}'")
    return args


def add_guard(run: str | os.PathLike, data: str | os.PathLike):
    """Fit the guard of a run saved before guards existed (or refit it) from the training videos of the
    dataset ``data``, and write it into the run folder; the networks and every other entry of
    ``config.json`` stay as they are. Returns the guard."""
    run = Path(run)
    det = Detector.load(run)
    ds = load_dataset(data)
    if not ds.train:
        raise VigilError(f"{data}: no training videos to fit the frame guard on")
    det.fit_guard(ds.train)
    meta = json.loads((run / "config.json").read_text())
    kept = {k: v for k, v in meta.items() if k not in ("format", "model", "config", "fitted", "guard")}
    det.save(run, extra={**kept, "guard_data": str(Path(data).resolve())})
    return det.guard_


def _normal_folders(root: Path) -> list[Path]:
    """``root`` itself if it holds frames, else every folder under it that does (``false_alarms/<camera>/<id>/``)."""
    from vigil.data.video import list_images

    if not root.is_dir():
        raise VigilError(f"{root}: no such folder of normal footage")
    found = [root] if list_images(root) else []
    found += [p for p in sorted(root.rglob("*")) if p.is_dir() and not p.name.startswith(".") and list_images(p)]
    return found


def refit(run: str | os.PathLike, normal: list[str | os.PathLike], out: str | os.PathLike, *,
          data: str | os.PathLike | None = None, device: str = "cpu", progress: bool = True,
          say: Callable[[str], None] = lambda _: None) -> tuple[Detector, Path, dict]:
    """Learn from false alarms: fit ``run``'s model again, with the same settings, on the run's own
    training videos plus the footage in ``normal`` (folders of frames, or folders holding such folders,
    as ``vigil serve`` keeps them under ``storage/false_alarms/``), and write the new run ``out``
    (its threshold recalibrated the same way). ``run`` itself is not changed.

    A run records where its training data came from (``data`` in ``config.json``, written by
    :func:`train`); ``data`` overrides it. No model keeps its normal data in a form that could be
    extended without the originals (hybrid's kNN banks are a subsample, the networks are trained by
    epochs), so this is a complete refit: seconds for hybrid, a full training for the networks.
    Returns ``(detector, out, summary)``.
    """
    from vigil.data.video import Video

    run, out = Path(run), Path(out)
    if run.suffix.lower() == ".onnx":
        raise VigilError(f"{run}: an ONNX file holds no training record; refit the run folder it was exported from")
    if out.resolve() == run.resolve():
        raise VigilError(f"--out {out}: must differ from the run being refitted (it is kept as it is)")
    old = Detector.load(run)
    meta = json.loads((run / "config.json").read_text(encoding="utf-8"))
    data = data if data is not None else meta.get("data")
    if data is None:
        raise VigilError(f"{run}/config.json: does not record the training data it was fitted on; give --data DATASET")
    if not Path(data).exists():
        raise VigilError(f"{data}: the training data recorded in {run}/config.json is not there; give --data DATASET")
    ds = load_dataset(data)
    if not ds.train:
        raise VigilError(f"{data}: no training videos")
    extra = []
    for root in normal:
        folders = _normal_folders(Path(root))
        if not folders:
            raise VigilError(f"{root}: no frames found (expected a folder of frames, or folders of frames)")
        extra += [Video.open(f, name=f"normal-{len(extra) + i}") for i, f in enumerate(folders)]
    say(f"refitting {old.name} on {len(ds.train)} training videos of {data} + {len(extra)} clips of normal footage")
    det = type(old)(config=old.config, device=device, progress=progress)
    t0 = time.time()
    det.fit(list(ds.train) + extra)
    seconds = time.time() - t0
    summary = {"model": det.name, "videos": len(ds.train), "normal_clips": len(extra),
               "threshold_before": getattr(old, "threshold_", None), "threshold": getattr(det, "threshold_", None),
               "seconds": round(seconds, 2)}
    det.save(out, extra={"data": str(Path(data).resolve()), "layout": ds.layout, "train_seconds": round(seconds, 2),
                         "machine": machine_info(), "refit_from": str(run.resolve()),
                         "normal": [str(Path(p).resolve()) for p in normal],
                         "normal_clips": len(extra)})
    return det, out, summary
