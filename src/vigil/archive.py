"""Scoring a whole archive video by video, resumably: ``vigil score ... [--engine local|ray]``.

An *archive* is whatever ``vigil score --data`` took before (a dataset's test videos, one video file,
one folder of frames: the same videos under the same names) or any folder tree of videos and frame
folders. Each video is one unit of work, scored by the same code whatever the engine:

* :func:`discover` lists the units, each with a stable unique name and its ``Id`` prefix;
* :func:`score_unit` scores one video (and saves its maps, and gives its boxes when asked), on the
  machine it runs on;
* :func:`write_part` keeps one video's rows in ``OUT.parts/<name>.csv``, then a small manifest
  ``<name>.json`` (frame count, the run's and the video's fingerprints; with boxes, the video's
  boxes rows in ``<name>.boxes.csv`` first): a part counts as done only
  when its manifest says it comes from this run and this video as it is now (:func:`part_done`);
* :func:`score_archive` skips the done parts, hands the rest to an engine (in this process, or Ray
  tasks: :mod:`vigil.engines.ray_engine`), writes each part as its video comes back, reports the
  videos that failed by name without stopping the others, and merges the parts, in archive order,
  into ``OUT`` (and the boxes parts into the boxes CSV, :data:`vigil.io.BOXES_HEADER`) when every
  video has one.

Ids are ``<video>_<frame>`` as ``vigil score`` always wrote them (``<video>`` = the video's number,
:func:`vigil.io.video_number`). In a folder tree a video's name is its path below the archive with
``/`` replaced by ``_`` (``cam1/01`` -> ``cam1_01``; a dataset inside the tree gives its test
videos, ``siteA/<dataset>`` -> ``siteA_01``); when two videos of the archive would share a number
(the same clip name in two folders), every Id of that archive uses the whole name instead
(``cam1_01_5``).

Nothing here imports Ray; models and :mod:`vigil.data` do not import this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from vigil.errors import DiskError, VigilError

PART_FORMAT = 1
#: the environment variable of a *test hook*: ``NAME=MARKER`` makes the Ray worker scoring video NAME
#: kill its own process (``os._exit(1)``) when the file MARKER does not exist yet, after creating it;
#: so the first attempt dies and the retry succeeds. Read by the driver only; never set it otherwise.
TEST_CRASH_ENV = "VIGIL_TEST_CRASH_ONCE"


@dataclass(frozen=True)
class Unit:
    """One video of an archive: its unique name, where it is, and the prefix of its Ids."""

    name: str
    source: str
    ids: str = ""


@dataclass
class Result:
    """What scoring one unit gave: scores, or the one-line reason it failed."""

    name: str
    scores: object = None            # np.ndarray (T,) on success
    boxes: object = None             # with boxes: one (K, 5) np.ndarray per frame (vigil.regions)
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""


@dataclass
class Summary:
    videos: int = 0                  # in the archive
    reused: int = 0                  # parts already done
    scored: int = 0                  # scored in this call
    frames_scored: int = 0
    rows: int = 0                    # rows of the merged CSV (0 when not written)
    seconds: float = 0.0             # wall time of the scoring phase
    workers: dict = field(default_factory=dict)       # worker process -> [frames, busy seconds]
    at_once: int = 1                                  # videos scored at the same time
    failed: list = field(default_factory=list)        # (name, reason)
    engine: str = "local"
    out: str = ""
    parts: str = ""
    boxes_out: str = ""                               # the boxes CSV, when asked for
    boxes: int = 0                                    # rows of the merged boxes CSV

    def fps(self) -> float:
        return self.frames_scored / max(self.seconds, 1e-9)

    def fps_per_worker(self) -> float:
        rates = [f / max(s, 1e-9) for f, s in self.workers.values() if f]
        return sum(rates) / len(rates) if rates else 0.0


# --- discovery ------------------------------------------------------------------------------------

def _tree_units(root: Path) -> list[tuple[str, str]]:
    """``(name, source)`` for every video below ``root``: frame folders, video files, and the test
    videos of datasets found in the tree (hidden entries skipped; symbolic links followed, loops not)."""
    from vigil.data import load_dataset
    from vigil.data.layouts import detect_layout
    from vigil.data.video import VIDEO_EXTS, list_images, natural_key

    out: list[tuple[str, str]] = []

    def name_of(rel: Path) -> str:
        return "_".join(rel.parts)

    def walk(d: Path, ancestors: frozenset) -> None:
        real = d.resolve()
        if real in ancestors:
            return
        ancestors = ancestors | {real}
        try:
            entries = sorted((e for e in d.iterdir() if not e.name.startswith(".")), key=natural_key)
        except OSError as e:
            raise VigilError(f"{d}: cannot list this folder ({e.strerror or e})") from None
        for e in entries:
            if e.is_dir():
                rel = e.relative_to(root)
                if detect_layout(e) is not None:
                    for v in load_dataset(e).test:
                        out.append((name_of(rel / v.name), str(v.source)))
                elif list_images(e):
                    out.append((name_of(rel), str(e)))
                else:
                    walk(e, ancestors)
            elif e.is_file() and e.suffix.lower() in VIDEO_EXTS:
                out.append((name_of(e.relative_to(root).with_suffix("")), str(e)))

    walk(root, frozenset())
    return out


def discover(path: str | os.PathLike) -> list[Unit]:
    """The videos of an archive in a stable order, each with a unique name and Id prefix.

    What ``vigil score --data`` took before keeps its videos and names (:func:`vigil.data.open_videos`);
    any other folder is walked (see the module's docstring)."""
    from vigil.data import open_videos
    from vigil.data.layouts import detect_layout
    from vigil.data.video import list_images
    from vigil.io import video_number

    p = Path(path)
    if not p.exists():
        raise VigilError(f"{p}: no such file or folder")
    if p.is_file() or detect_layout(p) is not None or list_images(p):
        pairs = [(v.name, str(v.source)) for v in open_videos(p)]
    else:
        pairs = _tree_units(p)
        if not pairs:
            raise VigilError(f"{p}: neither a dataset, a video file nor a folder of frames, and no videos below it")
    seen: dict[str, str] = {}
    for name, src in pairs:
        if name in seen:
            raise VigilError(f"{src}: has the same name '{name}' as {seen[name]}; rename one of them")
        seen[name] = src
    numbers = [video_number(n) for n, _ in pairs]
    ids = numbers if len(set(numbers)) == len(numbers) else [n for n, _ in pairs]
    return [Unit(n, s, i) for (n, s), i in zip(pairs, ids)]


# --- fingerprints ---------------------------------------------------------------------------------

def run_identity(run: str | os.PathLike) -> str:
    """SHA-256 of what makes a run's scores: ``config.json`` and ``model.safetensors``, or the ``.onnx``."""
    p = Path(run)
    files = [p] if p.is_file() else [p / "config.json", p / "model.safetensors"]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def source_identity(source: str | os.PathLike) -> str:
    """Names, sizes and modification times of a video's files (a frame folder's images, or the file)."""
    from vigil.data.video import list_images

    p = Path(source)
    h = hashlib.sha1()
    try:
        files = list_images(p) if p.is_dir() else [p]
        for f in files:
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    except OSError as e:
        h.update(f"unreadable:{e.__class__.__name__}".encode())
    return h.hexdigest()


# --- one video ------------------------------------------------------------------------------------

def set_threads(threads: int | None) -> None:
    """Threads of this process for torch, OpenCV and (models loaded after this) ONNX Runtime."""
    if not threads:
        return
    import cv2
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def score_unit(det, unit: Unit, maps_dir: str | None = None, worker: str = "", boxes: bool = False) -> Result:
    """Score one video with ``det`` (and save its maps under ``maps_dir/<name>``; with ``boxes``, give
    each frame's boxes, :meth:`vigil.detector.Detector.score_boxes`): the one function every engine
    runs. A video that cannot be read gives a failed :class:`Result`, not an exception."""
    from vigil.data.video import Video
    from vigil.detector import Detector

    t0 = time.perf_counter()
    box_list = None
    try:
        video = Video.open(unit.source, name=unit.name)
        if maps_dir:
            from vigil.maps import save_maps

            scores, maps = det.score_maps(video)
            save_maps(Path(maps_dir) / unit.name, video, maps)
            if boxes:                   # boxes from these maps, unless the model has boxes of its own
                own = type(det)._score_boxes is not Detector._score_boxes
                box_list = det.score_boxes(video)[1] if own else det.map_boxes(maps)
        elif boxes:
            scores, box_list = det.score_boxes(video)
        else:
            scores = det.score(video)
    except DiskError:        # the output place itself is full or read-only: every video would fail, so stop
        raise
    except VigilError as e:
        return Result(unit.name, error=_one_line(str(e)), seconds=time.perf_counter() - t0, worker=worker)
    except OSError as e:
        from vigil.io import disk_error

        if disk_error(e.filename or maps_dir or unit.source, e) is not None:
            raise disk_error(e.filename or maps_dir or unit.source, e) from None
        return Result(unit.name, error=f"{unit.source}: {e.__class__.__name__}: {_one_line(str(e))}",
                      seconds=time.perf_counter() - t0, worker=worker)
    except Exception as e:   # cv2.error, MemoryError...: this video fails, the others go on
        return Result(unit.name, error=f"{unit.source}: {e.__class__.__name__}: {_one_line(str(e))}",
                      seconds=time.perf_counter() - t0, worker=worker)
    return Result(unit.name, scores=scores, boxes=box_list, seconds=time.perf_counter() - t0, worker=worker)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500] or "failed"


def worker_name() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


# --- parts ----------------------------------------------------------------------------------------

def parts_dir(out: str | os.PathLike) -> Path:
    """``scores.csv`` -> ``scores.parts/`` beside it."""
    out = Path(out)
    return out.with_name(out.stem + ".parts")


def _manifest(unit: Unit, run_id: str, maps_dir: str | None, boxes: bool = False) -> dict:
    m = {"format": PART_FORMAT, "name": unit.name, "source": os.path.abspath(unit.source), "ids": unit.ids,
         "run": run_id, "video": source_identity(unit.source), "maps": maps_dir}
    return {**m, "boxes": True} if boxes else m        # without boxes: the manifest vigil always wrote


def part_done(parts: Path, unit: Unit, run_id: str, maps_dir: str | None, boxes: bool = False) -> bool:
    """Whether ``parts`` holds this video's rows from this run, for the video as it is now (and its
    maps, when maps are asked for and were saved in the same folder; and its boxes, when asked for)."""
    meta, rows = parts / f"{unit.name}.json", parts / f"{unit.name}.csv"
    try:
        m = json.loads(meta.read_text())
        with open(rows, "rb") as f:
            n_lines = sum(1 for _ in f)
    except (OSError, ValueError):
        return False
    want = _manifest(unit, run_id, maps_dir, boxes)
    if not isinstance(m, dict) or any(m.get(k) != v for k, v in want.items() if k != "maps"):
        return False
    if boxes and not (parts / f"{unit.name}.boxes.csv").is_file():
        return False
    if maps_dir and (m.get("maps") != maps_dir or not (Path(maps_dir) / unit.name / "maps.npz").is_file()):
        return False
    return m.get("frames") == n_lines - 1


def write_part(parts: Path, unit: Unit, result: Result, run_id: str, maps_dir: str | None) -> int:
    """Write one video's ``Id,Predicted`` rows (and its boxes rows, when the result has boxes), then its
    manifest (each atomically); returns the rows. The values are formatted as
    :func:`vigil.io.write_scores_csv` and :func:`vigil.io.write_boxes_csv` format them."""
    import csv

    import numpy as np

    from vigil.io import BOXES_HEADER, atomic_write, box_rows, write_json

    s = np.asarray(result.scores, dtype=np.float64).reshape(-1)
    with atomic_write(parts / f"{unit.name}.csv") as f:
        w = csv.writer(f)
        w.writerow(["Id", "Predicted"])
        for i, value in enumerate(s, start=1):
            w.writerow([f"{unit.ids}_{i}", f"{value:.6g}"])
    if result.boxes is not None:
        with atomic_write(parts / f"{unit.name}.boxes.csv") as f:
            w = csv.writer(f)
            w.writerow(BOXES_HEADER)
            w.writerows(box_rows(unit.ids, result.boxes))
    write_json(parts / f"{unit.name}.json", {**_manifest(unit, run_id, maps_dir, result.boxes is not None),
                                             "frames": int(len(s)),
                                             "seconds": round(result.seconds, 3), "worker": result.worker})
    return len(s)


def merge_parts(out: str | os.PathLike, parts: Path, units: list[Unit], suffix: str = ".csv",
                header: str = "Id,Predicted") -> int:
    """``OUT`` = the header and every unit's part rows (``<name><suffix>``) in archive order (atomically);
    returns the rows. ``suffix=".boxes.csv"`` with the boxes header merges the boxes parts."""
    from vigil.io import atomic_write

    rows = 0
    with atomic_write(out) as f:
        f.write(header + "\r\n")                 # csv.writer's line ending, as write_scores_csv
        for u in units:
            with open(parts / f"{u.name}{suffix}", newline="", encoding="utf-8") as src:
                next(src)
                for line in src:
                    f.write(line)
                    rows += 1
    return rows


# --- engines --------------------------------------------------------------------------------------

def local_engine(run: str, device: str, threads: int | None) -> Callable:
    """Score units one after another in this process (what ``vigil score`` always did)."""
    set_threads(threads)
    from vigil.runs import load

    det = load(run, device=device)
    name = worker_name()

    def engine(units: list[Unit], maps_dir: str | None, boxes: bool = False) -> Iterator[Result]:
        for u in units:
            yield score_unit(det, u, maps_dir, worker=name, boxes=boxes)

    return engine


def score_archive(run: str, data: str, out: str, engine: Callable, *, engine_name: str = "local",
                  maps: str | None = None, boxes: str | None = None, quiet: bool = False) -> Summary:
    """Score every video of ``data`` with ``run`` into ``out``, resumably (see the module docstring);
    with ``boxes``, also write each frame's boxes into that CSV (:func:`vigil.io.write_boxes_csv`'s format).

    ``engine(units, maps_dir[, boxes=True])`` scores the videos still to do and yields a :class:`Result` for each
    (:func:`local_engine`, or :class:`vigil.engines.ray_engine.RayEngine`; :func:`vigil.engines.make_engine`
    builds either). Raises :class:`VigilError` for a problem with the whole job (no videos, ``out`` a
    folder); videos that fail are in ``Summary.failed`` and ``out`` is then not written."""
    from tqdm.auto import tqdm

    for path in (out, boxes):
        if path is not None and Path(path).is_dir():
            raise VigilError(f"{path}: is a folder; give the name of a file to write")
    if boxes is not None and Path(boxes).resolve() == Path(out).resolve():
        raise VigilError(f"--boxes {boxes}: the same file as --out; give the boxes a file of their own")
    run_engine = engine
    units = discover(data)
    run_id = run_identity(run)
    maps_dir = str(Path(maps).resolve()) if maps else None
    parts = parts_dir(out)
    want_boxes = boxes is not None
    done = [u for u in units if part_done(parts, u, run_id, maps_dir, want_boxes)]
    done_names = {u.name for u in done}
    todo = [u for u in units if u.name not in done_names]
    summary = Summary(videos=len(units), reused=len(done), engine=engine_name, out=str(out), parts=str(parts),
                      boxes_out=str(boxes) if want_boxes else "")
    extra = {"boxes": True} if want_boxes else {}       # engines written before boxes are called as before
    by_name = {u.name: u for u in todo}
    t0 = time.perf_counter()
    bar = tqdm(total=len(units), initial=len(done), desc="scoring", unit="video", disable=quiet)
    try:
        for r in (run_engine(todo, maps_dir, **extra) if todo else ()):
            if r.error is None:
                summary.frames_scored += write_part(parts, by_name[r.name], r, run_id, maps_dir)
                summary.scored += 1
                w = summary.workers.setdefault(r.worker, [0, 0.0])
                w[0] += len(r.scores)
                w[1] += r.seconds
            else:
                summary.failed.append((r.name, r.error))
            bar.update(1)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - t0
        summary.at_once = getattr(run_engine, "slots_used", 1)
        close = getattr(run_engine, "close", None)
        if close:
            close()
    if not summary.failed:
        summary.rows = merge_parts(out, parts, units)
        if want_boxes:
            from vigil.io import BOXES_HEADER

            summary.boxes = merge_parts(boxes, parts, units, ".boxes.csv", ",".join(BOXES_HEADER))
    return summary


# --- what vigil score prints ---------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_text(s: Summary) -> str:
    """``scored 3 videos, 192 frames in 1.2s (160 frames/s) -> scores.csv`` (the line ``vigil score``
    always printed), what was reused from the parts, and with Ray the workers' speed."""
    if s.scored or not s.reused or s.failed:
        head = (f"scored {_plural(s.scored, 'video')}, {s.frames_scored} frames in {s.seconds:.1f}s "
                f"({s.fps():.0f} frames/s)")
        if s.reused:
            head += f"; {_plural(s.reused, 'video')} already scored in {s.parts}/"
    else:
        head = f"all {_plural(s.reused, 'video')} already scored in {s.parts}/"
    if s.failed:
        head += f"; {len(s.failed)} failed"
    else:
        head += f" -> {s.out}" + (f" ({s.rows} frames)" if s.reused else "")
        if s.boxes_out:
            head += f"; {s.boxes} box{'' if s.boxes == 1 else 'es'} -> {s.boxes_out}"
    if s.engine == "ray" and s.workers:
        procs = "" if len(s.workers) == s.at_once else f" ({len(s.workers)} worker processes in all)"
        head += (f"\nray: {_plural(s.at_once, 'worker')}{procs}, {s.fps_per_worker():.0f} frames/s per worker "
                 f"while scoring")
    return head
