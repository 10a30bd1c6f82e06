"""The ``vigil`` command line: a thin layer over the Python API.

Every user error ends in one line on stderr, ``vigil: error: <path>: <what is wrong>``, and exit
status 2; nothing is left half-written (all outputs are written atomically).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vigil.errors import VigilError


def _resume_args(args) -> argparse.Namespace:
    """``vigil train --resume RUN``: every other argument comes back from ``RUN/train_args.json``."""
    from vigil import runs

    given = [f"--{k}" for k in ("model", "data", "out", "epochs", "seed", "set") if getattr(args, k) is not None]
    if given:
        raise VigilError(f"--resume {args.resume}: the run's arguments come from {args.resume}/"
                         f"{runs.TRAIN_ARGS}; leave out {', '.join(given)}")
    saved = runs.resume_arguments(args.resume)
    return argparse.Namespace(**{**vars(args), "model": saved["model"], "data": saved["data"], "out": args.resume,
                                 "epochs": saved.get("epochs"), "seed": saved.get("seed"), "set": saved.get("set"),
                                 "device": args.device or saved.get("device"),
                                 "original_command": saved.get("command")})


def cmd_train(args) -> None:
    """Train; under torchrun every process trains and only rank 0 prints and writes files."""
    from vigil import runs
    from vigil.registry import get_detector
    from vigil.settings import model_settings

    if args.resume:
        args = _resume_args(args)
    elif not (args.model and args.data and args.out):
        raise VigilError("train: --model, --data and --out are required (or --resume RUN)")
    settings = model_settings(get_detector(args.model), args.set, epochs=args.epochs, seed=args.seed)
    _writable(args.out, folder=True)                 # a read-only or full disk: refused before fitting
    det, out, seconds = runs.train(
        args.model, args.data, args.out, settings=settings, device=args.device or "cpu", progress=not args.quiet,
        command=getattr(args, "original_command", None) or "vigil " + " ".join(args.argv), resume=bool(args.resume),
        checkpoint_every=args.checkpoint_every, record={"epochs": args.epochs, "seed": args.seed, "set": args.set},
        say=lambda line: print(line, file=sys.stderr))
    if out is not None:
        print(f"trained {det.name} in {seconds:.1f}s -> {out}/model.safetensors, {out}/config.json")


def _writable(path: str, folder: bool = False) -> Path:
    """Refuse a read-only, full or unwritable output place in one line, before any long work."""
    from vigil.io import check_writable

    return check_writable(path, folder=folder)


def _load(run: str, device: str):
    from vigil.runs import load

    return load(run, device=device)


def cmd_export(args) -> None:
    from vigil.export import export_onnx

    _writable(args.out)
    det = _load(args.run, "cpu")
    if det._runtime is not None:
        raise VigilError(f"{args.run}: already an ONNX file; export the run folder it came from")
    s = export_onnx(det, args.out)
    print(f"exported {s['model']} -> {s['path']} ({s['bytes'] / 2**20:.1f} MiB; settings and calibration inside); "
          f"network outputs on a check batch, ONNX Runtime vs PyTorch: max |difference| {s['check_max_abs_diff']:.1e}")


def cmd_score(args) -> None:
    """Score, print the summary; failed videos one line each, then exit status 2."""
    from vigil.archive import score_archive, summary_text
    from vigil.engines import make_engine

    _writable(args.out)
    if args.maps:
        _writable(args.maps, folder=True)
    if args.boxes:
        _writable(args.boxes)
    engine = make_engine(args.engine, args.run, device=args.device, workers=args.workers, threads=args.threads,
                         retries=args.retries, address=args.address)
    s = score_archive(args.run, args.data, args.out, engine, engine_name=args.engine, maps=args.maps,
                      boxes=args.boxes, quiet=args.quiet)
    print(summary_text(s))
    for name, reason in s.failed:
        print(f"vigil: error: video {name}: {reason}", file=sys.stderr)
    if s.failed:
        good = s.reused + s.scored
        raise VigilError(f"{len(s.failed)} of {s.videos} videos failed (above); {s.out} not written; the parts of "
                         f"the {good} scored are kept in {s.parts}/ and a rerun scores only the rest")


def _evaluate_threshold(args) -> float | None:
    """``--threshold X``, or the calibrated ``threshold_`` of ``--run RUN`` (a run folder's config.json,
    or the model in a .onnx file), or None."""
    if args.threshold is not None:
        return args.threshold
    if args.run is None:
        return None
    from vigil.evaluate import run_threshold

    if Path(args.run).is_dir():
        return run_threshold(args.run)
    t = getattr(_load(args.run, "cpu"), "threshold_", None)
    if t is None:
        raise VigilError(f"{args.run}: the model has no calibrated threshold_; give --threshold")
    return float(t)


def cmd_evaluate(args) -> None:
    from vigil.evaluate import scores_by_video
    from vigil.io import write_json
    from vigil.metrics import frame_metrics

    if args.threshold is not None and args.run is not None:
        raise VigilError("evaluate: give --threshold or --run, not both")
    if args.json:
        _writable(args.json)
    threshold = _evaluate_threshold(args)
    # the scores and the dataset are read once; the boxes too, before anything is printed
    ds, scores = scores_by_video(args.scores, args.data)
    labels = [v.labels for v in ds.test]
    rbdc = None
    if args.boxes:
        from vigil.evaluate import boxes_rbdc

        rbdc = boxes_rbdc(args.boxes, args.data, alpha=args.alpha, dataset=ds)
    m = frame_metrics(scores, labels)
    print(m.table())
    result = m.as_dict()
    if args.maps:
        from vigil.evaluate import pixel_auc_from_folder

        result["pixel_auc"] = pixel_auc_from_folder(args.maps, args.data, dataset=ds)
        print(f"pixel AUC (every pixel pooled, map vs mask)         {result['pixel_auc']:.4f}")
    if threshold is not None:
        from vigil.evaluate import DEFAULT_FPS, dataset_fps
        from vigil.events import event_metrics

        fps = args.fps
        if fps is None:
            fps = dataset_fps(ds)
            if fps is None:
                fps = DEFAULT_FPS
                print(f"(fps {fps:g} assumed: the dataset does not say; --fps to change)")
        ev = event_metrics(scores, labels, threshold, fps=fps, min_frames=args.min_frames,
                           gap_frames=args.gap_frames, names=[v.name for v in ds.test])
        print(ev.table())
        result["events"] = ev.as_dict()
    elif args.fps is not None:
        print("(no threshold: give --threshold or --run for the event figures)")
    if rbdc is not None:
        result["rbdc"] = rbdc
        result["rbdc_alpha"] = args.alpha
        print(f"RBDC (regions at IoU >= {args.alpha:g}, 0-1 false positives per frame) {result['rbdc']:.4f}")
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
    _writable(args.out, folder=True)
    out = explain_video(Path(args.run), Path(args.data), Path(args.out), position=pos, device=args.device)
    print(f"attention explained -> {out}")


def cmd_watch(args) -> None:
    from vigil.watch import check_options, watch

    opts = dict(events_out=args.events, save_dir=args.save_events, webhook=args.webhook, realtime=args.realtime,
                min_frames=args.min_frames, gap_frames=args.gap_frames, max_retries=args.max_retries,
                threshold=args.threshold)
    check_options(**opts)                            # bad options, URL or output place: before loading
    watch(_load(args.run, args.device), args.source, status=not args.quiet, **opts)


def cmd_serve(args) -> None:
    from vigil.serve import serve                    # FastAPI, SQLAlchemy, paho load only for this command

    serve(args.config)


def cmd_refit(args) -> None:
    from vigil.runs import refit

    _writable(args.out, folder=True)
    _, out, s = refit(args.run, args.normal, args.out, data=args.data, device=args.device, progress=not args.quiet,
                      say=lambda line: print(line, file=sys.stderr))
    before = f"{s['threshold_before']:.3f}" if s["threshold_before"] is not None else "?"
    after = f"{s['threshold']:.3f}" if s["threshold"] is not None else "?"
    print(f"refitted {s['model']} on {s['videos']} training videos + {s['normal_clips']} clips of normal footage "
          f"in {s['seconds']:.1f}s -> {out} (threshold {before} -> {after}; {args.run} unchanged)")


def cmd_report(args) -> None:
    from vigil.report import build_report

    _writable(args.out)
    out = build_report(args.run, args.data, args.out, device=args.device, progress=not args.quiet)
    print(f"report written to {out}")


def cmd_synth(args) -> None:
    from vigil.data.synthetic import generate

    _writable(args.out, folder=True)
    out = generate(args.out, seed=args.seed)
    print(f"synthetic corridor written to {out}")


def cmd_corrupt(args) -> None:
    from vigil.corrupt import Corruption, corrupt_dataset

    _writable(args.out, folder=True)
    spec = Corruption(flip=args.flip, noise=args.noise, blur=args.blur, drop=args.drop, dup=args.dup,
                      noise_sigma=args.noise_sigma, blur_sigma=args.blur_sigma)
    out = corrupt_dataset(args.data, args.out, spec, seed=args.seed, splits=args.splits, force=args.force,
                          progress=not args.quiet)
    print(f"corrupted copy of {args.data} written to {out} (what was done to each frame: {out}/corruption.json)")


def cmd_guard(args) -> None:
    from vigil.runs import add_guard

    if Path(args.run).is_dir():
        _writable(args.run, folder=True)
    g = add_guard(args.run, args.data)
    flip = "on" if g.flip_enabled else "off (the scene looks alike both ways up)"
    print(f"frame guard fitted on {g.diagnostics['frames']} training frames and saved in {args.run} "
          f"(orientation check {flip}; noise limit {g.noise_limit:.2f}, sharpness limit {g.sharp_limit:.3f})")


def cmd_demo(args) -> None:
    from vigil.demo import run_demo

    _writable(args.out, folder=True)
    run_demo(args.out, model=args.model, epochs=args.epochs, seed=args.seed, say=print)


def cmd_cache(args) -> None:
    from vigil.data import cache

    root = cache.cache_dir()
    if root is None:
        print("frame cache off (VIGIL_CACHE=off)")
        return
    if args.clear:
        n, size = cache.clear(root)
        print(f"removed {n} cached videos ({size / 2**20:.1f} MiB) from {root}")
        return
    n, size = cache.usage(root)
    limit = cache.size_limit()
    print(f"frame cache {root}: {n} videos, {size / 2**20:.1f} MiB of {limit / 2**20:.0f} MiB "
          f"(VIGIL_CACHE_SIZE; least recently used entries are removed first)")


def cmd_models(args) -> None:
    from vigil.registry import available, get_detector

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
    s.add_argument("--boxes", metavar="FILE", help="also write each frame's anomalous regions as a boxes CSV "
                   "(Id,x0,y0,x1,y1,score; pixels of the original frame, x1 and y1 exclusive)")
    s.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: one process (default); ray: one task per video on a Ray cluster "
                        "(pip install 'vigil[ray]')")
    s.add_argument("--address", help="Ray cluster to use, e.g. ray://head:10001 or auto (default: start a "
                                     "local Ray on this machine for the run)")
    s.add_argument("--workers", type=int, help="at most this many videos scored at once (default: as many as "
                                               "the cluster's CPUs / --threads)")
    s.add_argument("--threads", type=int, help="threads of each worker for torch, OpenCV and ONNX Runtime "
                                               "(default: 1 with Ray, unchanged locally)")
    s.add_argument("--retries", type=int, default=2, help="times a video whose Ray worker died is tried again "
                                                          "(default %(default)s)")
    s.set_defaults(func=cmd_score)

    e = sub.add_parser("evaluate", help="frame-level AUC, AP and EER of a score CSV; events and RBDC",
                       description="Compare an Id,Predicted CSV with the labels of DATASET's test videos. With "
                                   "a threshold (--threshold, or --run for the model's calibrated one), also the "
                                   "alert events 'vigil watch' would raise (causal median of 3, then --min-frames "
                                   "above opens, --gap-frames below closes) against the labelled anomalous "
                                   "stretches: stretches detected, delay to detect, false alarm events per hour "
                                   "of normal footage, frames flagged. With --boxes, RBDC against the pixel masks.")
    e.add_argument("scores", help="CSV written by 'vigil score'")
    e.add_argument("--data", required=True, help="dataset with test labels")
    e.add_argument("--maps", help="folder written by 'vigil score --maps': also report pixel-level AUC")
    e.add_argument("--threshold", type=float, help="alert threshold for the event figures (same scale as the scores)")
    e.add_argument("--run", help="take the alert threshold from this run's calibrated threshold_ (folder or .onnx)")
    e.add_argument("--fps", type=float, help="frames per second, for delays and false alarms per hour "
                                             "(default: the dataset's, else 10)")
    e.add_argument("--min-frames", type=int, default=3, help="frames above the threshold that open an event "
                                                              "(default %(default)s, as vigil watch)")
    e.add_argument("--gap-frames", type=int, default=5, help="frames below the threshold that close it "
                                                              "(default %(default)s, as vigil watch)")
    e.add_argument("--boxes", metavar="FILE", help="boxes CSV written by 'vigil score --boxes': also report RBDC "
                                                    "(needs pixel masks)")
    e.add_argument("--alpha", type=float, default=0.1, help="IoU at which a box detects a region, for RBDC "
                                                             "(default %(default)s)")
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
                                   "with back-off; after a drop scoring starts afresh. Ctrl-C and SIGTERM end "
                                   "cleanly, writing the open event; SIGHUP reopens the --events file.")
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

    sv = sub.add_parser("serve", help="watch several cameras as a service: events in a database, MQTT, a web page",
                        description="Watch every camera of CONFIG (vigil.yaml: cameras, mqtt, database, http, "
                                    "storage) with the watch rule, each on threads of its own; store events with "
                                    "a snapshot and a clip, publish them over MQTT (Frigate's shapes, Home "
                                    "Assistant discovery), and serve a page and a JSON API (127.0.0.1:8765 by "
                                    "default). SIGTERM and Ctrl-C close open events and exit 0. Needs "
                                    "pip install 'vigil[serve]'; see docs/deploy.md.")
    sv.add_argument("config", help="the service's YAML configuration (e.g. vigil.yaml)")
    sv.set_defaults(func=cmd_serve)

    rf = sub.add_parser("refit", help="learn from false alarms: refit a run with more normal footage",
                        description="Fit RUN's model again, with its settings, on its own training videos plus "
                                    "the footage in each --normal folder (a folder of frames, or folders of "
                                    "frames such as vigil serve's storage/false_alarms/), recalibrating its "
                                    "threshold; writes the new run OUT and leaves RUN as it is. The training data "
                                    "is the one RUN's config.json records (or --data).")
    _add_run_args(rf, run_help="run folder written by 'vigil train'")
    rf.add_argument("--normal", action="append", required=True, metavar="DIR",
                    help="footage known to be normal (repeatable)")
    rf.add_argument("--out", required=True, help="the new run folder")
    rf.add_argument("--data", help="the training dataset (default: the one RUN records)")
    rf.set_defaults(func=cmd_refit)

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

    ca = sub.add_parser("cache", help="show or clear the frame cache",
                        description="Decoded frames are cached on disk (VIGIL_CACHE, default ~/.cache/vigil) so a "
                                    "video is decoded once; the cache holds at most VIGIL_CACHE_SIZE (default 4G), "
                                    "least recently used entries going first.")
    ca.add_argument("--clear", action="store_true", help="remove every cached entry")
    ca.set_defaults(func=cmd_cache)

    m = sub.add_parser("models", help="list the detectors")
    m.set_defaults(func=cmd_models)
    return p


def _show_warnings() -> None:
    """Damaged-but-usable input (:class:`vigil.errors.VigilWarning`) as one ``vigil: warning:`` line each."""
    import warnings

    from vigil.errors import VigilWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, VigilWarning):
            print(f"vigil: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    _show_warnings()
    try:
        args.func(args)
    except VigilError as e:
        print(f"vigil: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130
    except OSError as e:                 # last resort: a disk that filled (or went read-only) mid-write
        from vigil.io import disk_error

        err = disk_error(e.filename or getattr(args, "out", None) or "output", e)
        if err is None:
            raise
        print(f"vigil: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
