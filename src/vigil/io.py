"""Atomic writes, write problems in one line, the ``Id,Predicted`` score CSV and the boxes CSV.

Every file vigil writes goes through :func:`atomic_write`: the content lands in a temporary file in
the same folder and is renamed over the target, so an interrupted run never leaves half a
checkpoint or half a CSV behind. A full disk (ENOSPC, EDQUOT), a read-only one (EROFS) or a folder
without permission (EACCES) becomes one :class:`VigilError` naming the path; commands call
:func:`check_writable` on their outputs before long work starts.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vigil.errors import DiskError, VigilError

_UMASK = os.umask(0)
os.umask(_UMASK)


#: errno -> what the user is told; the write problems a user can fix (free space, mount, permissions)
DISK_ERRORS = {errno.ENOSPC: "no space left on device", errno.EROFS: "read-only file system",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file too large for this file system"}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}      # only writing can raise these


def disk_error(path: str | os.PathLike, e: OSError) -> VigilError | None:
    """``<path>: no space left on device`` (etc.) for a write problem a user can fix, else None."""
    reason = DISK_ERRORS.get(getattr(e, "errno", None))
    return DiskError(f"{path}: {reason}") if reason else None


def _fsync(f) -> None:
    """Flush and sync a file being written: the lowest-level step of every write here, where a full
    disk shows itself at the latest (tests replace it to fake one)."""
    f.flush()
    os.fsync(f.fileno())


def make_dirs(path: str | os.PathLike) -> Path:
    """``mkdir -p`` that fails in one line (``<path>: read-only file system``) instead of a traceback."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise VigilError(f"{path}: is a file, not a folder") from None
    except OSError as e:
        raise (disk_error(path, e) or VigilError(f"{path}: cannot create this folder ({e.strerror or e})")) from None
    return path


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Before long work: can ``path`` be written? Creates the folder it goes in if needed and
    test-writes (and removes) a small temporary file there, so a read-only or full disk is refused
    in one line at the start, not after an hour of training. ``folder``: ``path`` is an output folder
    (checked itself when it exists, else the folder it will be created in)."""
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise VigilError(f"{path}: is a file; give the name of a folder to write into")
    if not folder and path.is_dir():
        raise VigilError(f"{path}: is a folder; give the name of a file to write")
    where = path if folder and path.is_dir() else path.parent
    make_dirs(where)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".vigil-write-test.", suffix=".tmp", dir=where)
        with os.fdopen(fd, "wb") as f:
            f.write(b"vigil")
            _fsync(f)
    except OSError as e:
        raise (disk_error(where if tmp is None else path, e)
               or VigilError(f"{path}: cannot write here ({e.strerror or e})")) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    A full disk, a read-only one or a folder without permission ends in one :class:`VigilError`
    naming ``path`` (``<path>: no space left on device``), with the temporary file removed.
    """
    path = Path(path)
    if path.is_dir():
        raise VigilError(f"{path}: is a folder; give the name of a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:                    # a parent that is a file, no permission, a read-only disk
        raise (disk_error(path, e) or VigilError(f"{path}: cannot write here ({e.strerror or e})")) from None
    ours = True                             # False while the caller's code runs
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)      # mkstemp makes private files; results are for sharing
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"})) as f:
            ours = False
            try:
                yield f
            except OSError as e:            # from the caller's code: only a full disk is ours to name
                if e.errno in _FULL:
                    raise disk_error(path, e) from None
                raise
            ours = True
            _fsync(f)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if ours and isinstance(e, OSError) and disk_error(path, e):
            raise disk_error(path, e) from None
        raise


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=_json_default)
        f.write("\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def video_number(name: str) -> str:
    """The ``<video>`` part of an Id: the last run of digits without zero padding (``"Test007"`` -> ``"7"``).

    Names without digits are used as they are.
    """
    digits = re.findall(r"\d+", Path(name).stem)
    return str(int(digits[-1])) if digits else Path(name).stem


def frame_ids(video_name: str, n_frames: int) -> list[str]:
    """``<video>_<frame>`` Ids with 1-based frame numbers, as in the submission format."""
    v = video_number(video_name)
    return [f"{v}_{i}" for i in range(1, n_frames + 1)]


def write_scores_csv(path: str | os.PathLike, scores: dict[str, np.ndarray]) -> int:
    """Write ``Id,Predicted`` rows for each video in order; returns the number of rows."""
    seen: dict[str, str] = {}
    rows = 0
    with atomic_write(path) as f:
        w = csv.writer(f)
        w.writerow(["Id", "Predicted"])
        for name, s in scores.items():
            v = video_number(name)
            if v in seen:
                raise VigilError(f"{path}: videos '{seen[v]}' and '{name}' would share the Id prefix '{v}_'")
            seen[v] = name
            for fid, value in zip(frame_ids(name, len(s)), np.asarray(s, dtype=np.float64)):
                w.writerow([fid, f"{value:.6g}"])
                rows += 1
    return rows


def read_scores_csv(path: str | os.PathLike) -> dict[str, float]:
    """Read an ``Id,Predicted`` CSV into ``{Id: score}``; one clear error for a malformed file."""
    path = Path(path)
    if not path.is_file():
        raise VigilError(f"{path}: no such score file")
    out: dict[str, float] = {}
    seen: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["Id", "Predicted"]:
                raise VigilError(f"{path}: expected the header 'Id,Predicted', found {header!r}")
            for lineno, row in enumerate(reader, start=2):
                if len(row) < 2:
                    raise VigilError(f"{path}:{lineno}: expected 'Id,Predicted', found {row!r}")
                try:
                    value = float(row[1])
                except ValueError:
                    raise VigilError(f"{path}:{lineno}: score {row[1]!r} is not a number") from None
                if not np.isfinite(value):
                    raise VigilError(f"{path}:{lineno}: score for {row[0]} is not finite ({row[1]})")
                key = row[0].strip()
                if key in seen:          # a silent last-one-wins would change the AUC
                    raise VigilError(f"{path}:{lineno}: Id {key} appears twice (first on line {seen[key]})")
                seen[key] = lineno
                out[key] = value
    except UnicodeDecodeError as e:
        raise VigilError(f"{path}: not a UTF-8 text file (byte {e.start}: {e.reason}); expected an "
                         f"'Id,Predicted' CSV") from None
    return out


#: the boxes CSV: one row per box, Ids as in the score CSV, pixels of the original frame, x1 and y1
#: exclusive; a frame without boxes has no row
BOXES_HEADER = ["Id", "x0", "y0", "x1", "y1", "score"]


def box_rows(prefix: str, boxes: Sequence[np.ndarray]) -> Iterator[list[str]]:
    """The boxes CSV rows of one video whose Ids start with ``prefix`` (``<prefix>_<frame>``, 1-based);
    ``boxes``: one ``(K, 5)`` array ``(x0, y0, x1, y1, score)`` per frame."""
    for i, b in enumerate(boxes, start=1):
        for row in np.asarray(b, dtype=np.float64).reshape(-1, 5):
            yield [f"{prefix}_{i}", *(f"{v:.6g}" for v in row)]


def write_boxes_csv(path: str | os.PathLike, boxes: dict[str, Sequence[np.ndarray]]) -> int:
    """Write ``Id,x0,y0,x1,y1,score`` rows (atomically) for ``{video name: one (K, 5) array per frame}``,
    Ids as :func:`write_scores_csv` gives them; returns the number of boxes."""
    seen: dict[str, str] = {}
    rows = 0
    with atomic_write(path) as f:
        w = csv.writer(f)
        w.writerow(BOXES_HEADER)
        for name, per_frame in boxes.items():
            v = video_number(name)
            if v in seen:
                raise VigilError(f"{path}: videos '{seen[v]}' and '{name}' would share the Id prefix '{v}_'")
            seen[v] = name
            for row in box_rows(v, per_frame):
                w.writerow(row)
                rows += 1
    return rows


def read_boxes_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a boxes CSV into ``{Id: (K, 5) float32 array}`` (frames without boxes are absent); one
    clear error naming the file and line for a malformed row."""
    path = Path(path)
    if not path.is_file():
        raise VigilError(f"{path}: no such boxes file")
    out: dict[str, list] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != BOXES_HEADER:
                raise VigilError(f"{path}: expected the header '{','.join(BOXES_HEADER)}', found {header!r}")
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 6:
                    raise VigilError(f"{path}:{lineno}: expected 6 fields 'Id,x0,y0,x1,y1,score', found {len(row)}")
                try:
                    values = [float(v) for v in row[1:]]
                except ValueError:
                    raise VigilError(f"{path}:{lineno}: {row[1:]!r} are not all numbers") from None
                if not all(np.isfinite(values)):
                    raise VigilError(f"{path}:{lineno}: a value of the box of {row[0]} is not finite")
                x0, y0, x1, y1, _ = values
                if not (x0 < x1 and y0 < y1):
                    raise VigilError(f"{path}:{lineno}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) of {row[0]} is "
                                     f"empty (needs x0 < x1 and y0 < y1; x1, y1 exclusive)")
                out.setdefault(row[0].strip(), []).append(values)
    except UnicodeDecodeError as e:
        raise VigilError(f"{path}: not a UTF-8 text file (byte {e.start}: {e.reason}); expected a boxes CSV "
                         f"'{','.join(BOXES_HEADER)}'") from None
    return {k: np.asarray(v, dtype=np.float32).reshape(-1, 5) for k, v in out.items()}


def sorted_ids(ids: Sequence[str]) -> list[str]:
    """Ids in video then frame order (``2_10`` after ``2_9``)."""
    def key(i: str):
        v, _, f = i.rpartition("_")
        return (int(v) if v.isdigit() else v, int(f) if f.isdigit() else f)
    return sorted(ids, key=key)
