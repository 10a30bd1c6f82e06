"""The ``vigil`` command line: a thin layer over the Python API.

Every user error ends in one line on stderr, ``vigil: error: <path>: <what is wrong>``, and exit
status 2; nothing is left half-written (all outputs are written atomically).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from vigil.errors import VigilError


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise VigilError(f"--set {item!r}: expected KEY=VALUE")
        try:
            v = json.loads(value)
        except json.JSONDecodeError:
            v = value
        out[key.strip()] = tuple(v) if isinstance(v, list) else v
    return out


def _overrides(klass, args) -> dict:
    fields = {f.name for f in dataclasses.fields(klass.Config)}
    over = _parse_set(args.set)
    for name in ("epochs", "seed"):
        value = getattr(args, name, None)
        if value is not None:
            if name not in fields:
                raise VigilError(f"--{name}: model '{klass.name}' has no such setting "
                                 f"(its settings: {', '.join(sorted(fields))})")
            over[name] = value
    if "epochs" in over and not (isinstance(over["epochs"], int) and over["epochs"] >= 1):
        raise VigilError(f"--epochs {over['epochs']}: must be a whole number, at least 1")
    unknown = set(over) - fields
    if unknown:
        raise VigilError(f"--set: model '{klass.name}' has no setting {', '.join(sorted(unknown))} "
                         f"(its settings: {', '.join(sorted(fields))})")
    return over


def _resume_args(args) -> argparse.Namespace:
    """``vigil train --resume RUN``: every other argument comes back from ``RUN/train_args.json``."""
    from vigil import training

    given = [f"--{k}" for k in ("model", "data", "out", "epochs", "seed", "set") if getattr(args, k) is not None]
    if given:
        raise VigilError(f"--resume {args.resume}: the run's arguments come from {args.resume}/"
                         f"{training.TRAIN_ARGS}; leave out {', '.join(given)}")
    saved = training.resume_arguments(args.resume)
    return argparse.Namespace(**{**vars(args), "model": saved["model"], "data": saved["data"], "out": args.resume,
                                 "epochs": saved.get("epochs"), "seed": saved.get("seed"), "set": saved.get("set"),
                                 "device": args.device or saved.get("device"),
                                 "original_command": saved.get("command")})


def cmd_train(args) -> None:
    """Train; under torchrun every process trains and only rank 0 prints and writes files."""
    from vigil import training
    from vigil.data import load_dataset
    from vigil.models import get_detector
    from vigil.models.base import machine_info, resolve_device

    main = training.is_main()
    if args.resume:
        args = _resume_args(args)
    elif not (args.model and args.data and args.out):
        raise VigilError("train: --model, --data and --out are required (or --resume RUN)")
    elif (Path(args.out) / training.CHECKPOINT).is_file():
        # a fresh start would delete it: an interrupted run's work is never dropped silently
        raise VigilError(f"{Path(args.out) / training.CHECKPOINT}: an interrupted training run is here; continue it "
                         f"with 'vigil train --resume {args.out}', or delete that file to start again")
    args.device = args.device or "cpu"
    command = getattr(args, "original_command", None) or "vigil " + " ".join(args.argv)
    klass = get_detector(args.model)
    over = _overrides(klass, args)
    resolve_device(args.device)                      # fail before any data is read
    det = klass(device=args.device, progress=not args.quiet and main, **over)     # checks the settings
    ds = load_dataset(args.data)
    if main:
        print(ds.describe(), file=sys.stderr)
    if not ds.train:
        raise VigilError(f"{args.data}: no training videos to learn normality from")
    t0 = time.time()
    if klass.resumable:
        if main and not args.resume:
            training.write_train_args(args.out, {
                "model": klass.name, "data": str(Path(args.data).resolve()), "epochs": args.epochs,
                "seed": args.seed, "set": args.set, "device": args.device, "command": command})
        det.fit(ds.train, checkpoint_dir=args.out, resume=bool(args.resume), checkpoint_every=args.checkpoint_every)
    else:
        det.fit(ds.train)
    if not main:
        return
    out = det.save(args.out, extra={"data": str(Path(args.data).resolve()), "layout": ds.layout,
                                     "train_seconds": round(time.time() - t0, 2), "machine": machine_info(),
                                     "command": command, "processes": training.world_size(),
                                     **({"resumed": True} if args.resume else {})})
    training.finish_run(out)
    print(f"trained {klass.name} in {time.time() - t0:.1f}s -> {out}/model.safetensors, {out}/config.json")


def _load(run: str, device: str):
    """A run folder, or a ``.onnx`` file written by ``vigil export`` (network in ONNX Runtime)."""
    if Path(run).suffix.lower() == ".onnx":
        from vigil.export import load_onnx

        return load_onnx(run, device=device)
    from vigil.models import Detector

    return Detector.load(run, device=device)


def cmd_export(args) -> None:
    from vigil.export import export_onnx

    det = _load(args.run, "cpu")
    if det._runtime is not None:
        raise VigilError(f"{args.run}: already an ONNX file; export the run folder it came from")
    s = export_onnx(det, args.out)
    print(f"exported {s['model']} -> {s['path']} ({s['bytes'] / 2**20:.1f} MiB; settings and calibration inside); "
          f"network outputs on a check batch, ONNX Runtime vs PyTorch: max |difference| {s['check_max_abs_diff']:.1e}")


def cmd_score(args) -> None:
    from tqdm.auto import tqdm

    from vigil.data import open_videos
    from vigil.io import write_scores_csv

    det = _load(args.run, args.device)
    videos = open_videos(args.data)
    scores, n = {}, 0
    t0 = time.time()
    for v in tqdm(videos, desc="scoring", unit="video", disable=args.quiet):
        if args.maps:
            from vigil.maps import save_maps

            s, maps = det.score_maps(v)
            save_maps(Path(args.maps) / v.name, v, maps)
        else:
            s = det.score(v)
        scores[v.name] = s
        n += len(s)
    rows = write_scores_csv(args.out, scores)
    dt = time.time() - t0
    print(f"scored {len(videos)} videos, {rows} frames in {dt:.1f}s ({n / max(dt, 1e-9):.0f} frames/s) -> {args.out}")


def cmd_evaluate(args) -> None:
    from vigil.evaluate import evaluate_csv
    from vigil.io import write_json

    m = evaluate_csv(args.scores, args.data)
    print(m.table())
    result = m.as_dict()
    if args.maps:
        from vigil.evaluate import pixel_auc_from_folder

        result["pixel_auc"] = pixel_auc_from_folder(args.maps, args.data)
        print(f"pixel AUC (every pixel pooled, map vs mask)         {result['pixel_auc']:.4f}")
    if args.json:
        write_json(args.json, result)
        print(f"saved {args.json}")


def cmd_explain(args) -> None:
    from vigil.explain import explain_video

    pos = None
    if args.position:
        try:
            h, w = (int(t) for t in args.position.split(","))
        except ValueError:
            raise VigilError(f"--position {args.position!r}: expected H,W (two integers)") from None
        pos = (h, w)
    out = explain_video(Path(args.run), Path(args.data), Path(args.out), position=pos, device=args.device)
    print(f"attention explained -> {out}")


def cmd_watch(args) -> None:
    from vigil.watch import watch

    det = _load(args.run, args.device)
    f = open(args.events, "a", encoding="utf-8") if args.events else None
    try:
        watch(det, args.source, events_out=f, save_dir=args.save_events, webhook=args.webhook,
              realtime=args.realtime, min_frames=args.min_frames, gap_frames=args.gap_frames,
              max_retries=args.max_retries, status=not args.quiet, threshold=args.threshold)
    finally:
        if f:
            f.close()


def cmd_report(args) -> None:
    from vigil.report import build_report

    out = build_report(args.run, args.data, args.out, device=args.device, progress=not args.quiet)
    print(f"report written to {out}")


def cmd_synth(args) -> None:
    from vigil.data.synthetic import generate

    out = generate(args.out, seed=args.seed)
    print(f"synthetic corridor written to {out}")


def cmd_corrupt(args) -> None:
    from vigil.corrupt import Corruption, corrupt_dataset

    spec = Corruption(flip=args.flip, noise=args.noise, blur=args.blur, drop=args.drop, dup=args.dup,
                      noise_sigma=args.noise_sigma, blur_sigma=args.blur_sigma)
    out = corrupt_dataset(args.data, args.out, spec, seed=args.seed, splits=args.splits, force=args.force,
                          progress=not args.quiet)
    print(f"corrupted copy of {args.data} written to {out} (what was done to each frame: {out}/corruption.json)")


def cmd_guard(args) -> None:
    from vigil.data.guard import add_to_run

    g = add_to_run(args.run, args.data)
    flip = "on" if g.flip_enabled else "off (the scene looks alike both ways up)"
    print(f"frame guard fitted on {g.diagnostics['frames']} training frames and saved in {args.run} "
          f"(orientation check {flip}; noise limit {g.noise_limit:.2f}, sharpness limit {g.sharp_limit:.3f})")


def cmd_demo(args) -> None:
    from vigil.data import load_dataset
    from vigil.data.synthetic import ANOMALIES, generate
    from vigil.evaluate import evaluate_csv
    from vigil.io import write_json, write_scores_csv
    from vigil.metrics import auc
    from vigil.models import get_detector

    root = Path(args.out)
    data = generate(root / "data", seed=args.seed)
    ds = load_dataset(data)
    print(ds.describe())
    klass = get_detector(args.model)
    trains_by_epochs = "epochs" in {f.name for f in dataclasses.fields(klass.Config)}
    det = klass(progress=True, **({"epochs": args.epochs} if args.epochs and trains_by_epochs else {})).fit(ds.train)
    det.save(root / "run")
    scores = {v.name: det.score(v) for v in ds.test}
    write_scores_csv(root / "scores.csv", scores)
    m = evaluate_csv(root / "scores.csv", data)
    write_json(root / "metrics.json", m.as_dict())
    print(m.table())
    # each synthetic test video holds one kind of anomaly (vigil.data.synthetic.generate's order)
    print("\nframe AUC per test video:")
    for i, v in enumerate(ds.test):
        print(f"  {v.name}  {ANOMALIES[i % len(ANOMALIES)]:<10} {auc(v.labels, scores[v.name]):.3f}")
    if klass.name == "hybrid":
        print("  (hybrid models motion; a box left on the floor does not move. 'vigil demo' trains True Sight, "
              "which looks at appearance.)")
    else:
        print(f"  ({klass.name} looks at appearance; someone walking the wrong way looks normal in any one frame. "
              f"'vigil demo --model hybrid' models motion.)")
    print(f"\nresults in {root}/: data/ (synthetic corridor), run/ (model), scores.csv, metrics.json")


def cmd_models(args) -> None:
    from vigil.models import available, get_detector

    for name in available():
        print(f"{name:<14} {(get_detector(name).__doc__ or '').strip().splitlines()[0]}")


def _add_run_args(p: argparse.ArgumentParser, run_help: str = "run folder written by 'vigil train'",
                  quiet_help: str | None = "no progress bar") -> None:
    """The arguments every command that uses a trained run shares."""
    p.add_argument("run", help=run_help)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    if quiet_help:
        p.add_argument("--quiet", action="store_true", help=quiet_help)


def build_parser() -> argparse.ArgumentParser:
    from vigil import __version__

    p = argparse.ArgumentParser(prog="vigil", description="Unsupervised video anomaly detection: learn normality "
                                "from normal videos, score every frame of new ones (higher = more anomalous).")
    p.add_argument("--version", action="version", version=f"vigil {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="learn normality from a dataset's training videos",
                       description="Train a detector on the normal training videos of DATASET; writes "
                                   "OUT/model.safetensors and OUT/config.json. Models trained by epochs also "
                                   "keep OUT/checkpoint.pt while training, for --resume. Under 'torchrun "
                                   "--nproc_per_node=N -m vigil train ...' N processes share each batch "
                                   "(NCCL on GPUs, gloo on CPUs) and only rank 0 writes.")
    t.add_argument("--model", help="detector name (see 'vigil models'); required unless --resume")
    t.add_argument("--data", help="dataset folder (frames, UCSD, Avenue or Dataset/ layout); required unless --resume")
    t.add_argument("--out", help="run folder to write; required unless --resume")
    t.add_argument("--epochs", type=int, help="training epochs (models that train by epochs)")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--device", help="cpu, cuda or cuda:N (default cpu; under torchrun cuda means GPU LOCAL_RANK)")
    t.add_argument("--resume", metavar="RUN", help="continue the interrupted run in RUN from its last checkpoint "
                   "(every other argument is read back from RUN/train_args.json; --device may change)")
    t.add_argument("--checkpoint-every", type=float, default=600.0, metavar="SECONDS",
                   help="checkpoint at every epoch's end and also every SECONDS within an epoch (default 600)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="any model setting, e.g. --set lr=0.0005")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("score", help="score every frame; writes an Id,Predicted CSV",
                       description="Score each frame of DATA with the model in RUN. Id is <video>_<frame>: the "
                                   "video's number without zero padding and the 1-based frame number.")
    _add_run_args(s, run_help="run folder written by 'vigil train', or a .onnx file written by 'vigil export'")
    s.add_argument("--data", required=True, help="dataset (its test videos), a video file, or a folder of frames")
    s.add_argument("--out", required=True, help="CSV file to write")
    s.add_argument("--maps", help="also save per-frame anomaly maps under this folder")
    s.set_defaults(func=cmd_score)
    # issue 16: --engine local|ray, --address, --workers, --threads, --retries; every engine scores through
    # vigil.archive (parts beside --out, resumable), which becomes the command
    from vigil.archive import add_score_options

    add_score_options(s)

    e = sub.add_parser("evaluate", help="frame-level AUC, AP and EER of a score CSV",
                       description="Compare an Id,Predicted CSV with the labels of DATASET's test videos.")
    e.add_argument("scores", help="CSV written by 'vigil score'")
    e.add_argument("--data", required=True, help="dataset with test labels")
    e.add_argument("--maps", help="folder written by 'vigil score --maps': also report pixel-level AUC")
    e.add_argument("--json", help="also save the metrics as JSON")
    e.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("explain", help="temporal attention pictures and statistics (OCR-GAN Video)",
                       description="For the clips of a video: attention matrices per head, the five attention "
                                   "statistics per position, top-3 attended frames; PNG pictures and a JSON file.")
    _add_run_args(x, run_help="run folder of an ocrgan-video model", quiet_help=None)
    x.add_argument("--data", required=True, help="a video file, a folder of frames, or a dataset")
    x.add_argument("--out", required=True, help="folder to write pictures and explanation.json into")
    x.add_argument("--position", help="spatial position H,W of the feature grid to show (default: centre)")
    x.set_defaults(func=cmd_explain)

    w = sub.add_parser("watch", help="score a camera, stream or file live and report events",
                       description="Score frames as they arrive. An event (score above the model's calibrated "
                                   "threshold for --min-frames frames, ending after --gap-frames below it) is "
                                   "written as one JSON line when it ends. Live sources that drop are reopened "
                                   "with back-off; Ctrl-C ends cleanly, writing the open event.")
    _add_run_args(w, run_help="run folder written by 'vigil train', or a .onnx file written by 'vigil export'",
                  quiet_help="no status line")
    w.add_argument("source", help="a video file, a folder of frames, a camera index (0, 1, ...) or a stream URL "
                                  "(rtsp://, http://)")
    w.add_argument("--events", help="append events (JSON lines) to this file (default: standard output)")
    w.add_argument("--save-events", metavar="DIR", help="save each event's clip (.avi) and its anomaly map (.png)")
    w.add_argument("--webhook", metavar="URL", help="POST each event as JSON to this URL")
    w.add_argument("--realtime", action="store_true", help="replay a file at its own frame rate")
    w.add_argument("--threshold", type=float, help="alert threshold (default: the model's calibrated threshold_)")
    w.add_argument("--min-frames", type=int, default=3, help="frames above the threshold that open an event")
    w.add_argument("--gap-frames", type=int, default=5, help="frames below the threshold that close it")
    w.add_argument("--max-retries", type=int, default=10, help="reconnection attempts in a row for live sources")
    w.set_defaults(func=cmd_watch)

    xp = sub.add_parser("export", help="write a trained run as one ONNX file (truesight, ocrgan-video)",
                        description="Write RUN's scoring network as an ONNX graph, with the run's settings and "
                                    "calibration in the file's metadata, so 'vigil score OUT.onnx' needs nothing "
                                    "else (ONNX Runtime). truesight and ocrgan-video export; hybrid has no neural "
                                    "network (optical flow and nearest neighbours) and cannot.")
    xp.add_argument("run", help="run folder written by 'vigil train'")
    xp.add_argument("--format", choices=("onnx",), default="onnx", help="the only format: onnx (default)")
    xp.add_argument("--out", required=True, help="ONNX file to write")
    xp.set_defaults(func=cmd_export)

    r = sub.add_parser("report", help="one self-contained HTML page: metrics, curves, timelines, frames",
                       description="Score DATASET's test videos with RUN and write an HTML report (pictures "
                                   "embedded; opens offline).")
    _add_run_args(r)
    r.add_argument("--data", required=True, help="dataset (its test videos)")
    r.add_argument("--out", required=True, help="HTML file to write")
    r.set_defaults(func=cmd_report)

    g = sub.add_parser("synth", help="write the synthetic corridor dataset",
                       description="A fixed-camera corridor: people walking left to right; test videos add a "
                                   "runner, a wrong-way walker and an abandoned box (frames layout, labels, masks).")
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=0)
    g.set_defaults(func=cmd_synth)

    from vigil.corrupt import Corruption

    cd = Corruption()
    c = sub.add_parser("corrupt", help="write a corrupted copy of a dataset: flipped, noisy, blurred, dropped and "
                                       "duplicated test frames",
                       description="Copy DATASET (any layout) to OUT in the frames layout, corrupting its test "
                                   "frames (training frames are copied unchanged unless --splits all). Per source "
                                   "frame, independently: dropped (--drop), repeated (--dup), turned upside down "
                                   "(--flip), Gaussian noise (--noise), blurred (--blur). Labels and masks follow "
                                   "their frames; OUT/corruption.json says what was done to every frame. The same "
                                   "--seed gives byte-identical output.")
    c.add_argument("data", metavar="DATASET", help="dataset folder (frames, UCSD, Avenue or Dataset/ layout)")
    c.add_argument("--out", required=True, help="folder to write (must not exist or be empty, unless --force)")
    c.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    c.add_argument("--flip", type=float, default=cd.flip, help="share of frames turned upside down (default "
                   "%(default)s, as in design document 004)")
    c.add_argument("--noise", type=float, default=cd.noise, help="share of frames with Gaussian noise (default %(default)s)")
    c.add_argument("--blur", type=float, default=cd.blur, help="share of frames blurred (default %(default)s)")
    c.add_argument("--drop", type=float, default=cd.drop, help="share of frames dropped (default %(default)s)")
    c.add_argument("--dup", type=float, default=cd.dup, help="share of frames delivered twice (default %(default)s)")
    c.add_argument("--noise-sigma", type=float, default=cd.noise_sigma,
                   help="noise standard deviation in gray levels 0-255, at the source resolution (default %(default)s)")
    c.add_argument("--blur-sigma", type=float, default=cd.blur_sigma,
                   help="Gaussian blur sigma in pixels at the source resolution (default %(default)s)")
    c.add_argument("--splits", choices=("test", "all"), default="test",
                   help="corrupt the test videos only (default) or the training videos too")
    c.add_argument("--force", action="store_true", help="replace OUT if it exists and is not empty")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_corrupt)

    gd = sub.add_parser("guard", help="fit the frame guard of a run trained before it existed (no retraining)",
                        description="Fit RUN's frame guard (upside-down frames turned back, noisy or blurred ones "
                                    "concealed before scoring) on the normal training videos of DATASET, as the "
                                    "model reads them, and save it in RUN. The networks are not retrained.")
    gd.add_argument("run", help="run folder written by 'vigil train'")
    gd.add_argument("--data", required=True, help="the dataset the run was trained on (its training videos)")
    gd.set_defaults(func=cmd_guard)

    d = sub.add_parser("demo", help="the whole job on built-in synthetic data",
                       description="Generate the synthetic corridor, train briefly, score, evaluate.")
    d.add_argument("--out", default="runs/demo", help="folder for the data, the run and the results (default %(default)s)")
    d.add_argument("--model", default="truesight", help="detector to train (default %(default)s; see 'vigil models')")
    d.add_argument("--epochs", type=int, default=15, help="training epochs, for models that train by epochs "
                   "(default %(default)s: brief)")
    d.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default %(default)s)")
    d.set_defaults(func=cmd_demo)

    m = sub.add_parser("models", help="list the detectors")
    m.set_defaults(func=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        args.func(args)
    except VigilError as e:
        print(f"vigil: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
