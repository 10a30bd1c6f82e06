"""Writes when the disk is full or read-only: one line naming the path, exit 2, nothing half-written.

A full disk is faked by replacing ``vigil.io._fsync`` (the lowest-level step of every write vigil
makes) with one that raises ``OSError(ENOSPC)`` for files under the output folder; a read-only folder
is a real read-only tmpfs mount (the tests run as root, where ``chmod 0o555`` stops nothing), or,
where mounting is not allowed, the same replacement raising ``EROFS``. A real, nearly full tmpfs
shows what OpenCV's silent video writer does to ``watch --save-events``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

import vigil.io
from vigil.cli import main
from vigil.errors import VigilError


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs at ``path`` for the block (None when this machine does not let us mount one)."""
    if not _mount(path, options):
        yield None
        return
    try:
        yield path
    finally:
        _umount(path)


def _fake_disk(monkeypatch, root: Path, err: int, *, after_probe: bool = False) -> None:
    """Writes under ``root`` fail with ``err`` at the last step (``after_probe``: the start check passes,
    so the disk 'fills' once the command is under way)."""
    real = vigil.io._fsync

    def fsync(f):
        where = os.readlink(f"/proc/self/fd/{f.fileno()}")
        if where.startswith(str(root)) and not (after_probe and ".vigil-write-test." in where):
            raise OSError(err, os.strerror(err))
        real(f)
    monkeypatch.setattr(vigil.io, "_fsync", fsync)


@pytest.fixture(scope="module")
def hybrid_run(trained_hybrid, tmp_path_factory):
    return trained_hybrid.save(tmp_path_factory.mktemp("writes") / "run")


@pytest.fixture(scope="module")
def scores_csv(trained_hybrid, synthetic, tmp_path_factory):
    from vigil.io import write_scores_csv

    p = tmp_path_factory.mktemp("writes-scores") / "scores.csv"
    write_scores_csv(p, {v.name: trained_hybrid.score(v) for v in synthetic.test})
    return p


def _commands(run, syn, csv, avi, out, scratch):
    """Each writing command, writing under ``out`` (other outputs go to the writable ``scratch``)."""
    return {
        "score": ["score", run, "--data", syn, "--out", out / "s.csv", "--quiet"],
        "score --maps": ["score", run, "--data", avi, "--out", scratch / "s.csv", "--maps", out / "maps", "--quiet"],
        "train": ["train", "--model", "hybrid", "--data", syn, "--out", out / "run", "--quiet"],
        "report": ["report", run, "--data", syn, "--out", out / "r.html", "--quiet"],
        "export": ["export", run, "--out", out / "m.onnx"],
        "corrupt": ["corrupt", syn, "--out", out / "c", "--quiet"],
        "evaluate --json": ["evaluate", csv, "--data", syn, "--json", out / "m.json"],
        "synth": ["synth", "--out", out / "syn"],
        "watch --save-events": ["watch", run, avi, "--save-events", out / "ev", "--quiet",
                                "--events", scratch / "e.jsonl"],
    }


COMMANDS = list(_commands(*[Path(".")] * 6))


@pytest.fixture(scope="module")
def small_avi(synthetic, tmp_path_factory):
    """The runner video's first 40 frames as an .avi (an event, and quick to score)."""
    import cv2

    p = tmp_path_factory.mktemp("writes-avi") / "cam3.avi"
    frames = synthetic.test[0].frames()[:40]
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, frames.shape[2:0:-1])
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()
    return p


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _no_fit(monkeypatch):
    from vigil.models.hybrid import Hybrid

    def fit(self, *a, **k):
        raise AssertionError("train fitted before finding out that it cannot write its run")
    monkeypatch.setattr(Hybrid, "fit", fit)


@pytest.mark.parametrize("command", COMMANDS)
def test_full_disk_is_one_line_before_the_work(command, hybrid_run, synthetic_root, scores_csv, small_avi,
                                               tmp_path, monkeypatch, capsys):
    out, scratch = tmp_path / "full", tmp_path / "scratch"
    out.mkdir()
    argv = _commands(hybrid_run, synthetic_root, scores_csv, small_avi, out, scratch)[command]
    _fake_disk(monkeypatch, out, errno.ENOSPC)
    _no_fit(monkeypatch)
    code, _, err = _run(capsys, argv)
    assert code == 2, err
    assert err.startswith(f"vigil: error: {out}") and err.endswith(": no space left on device\n"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert _files(out) == []                       # nothing half-written, no temporary left


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_folder_is_one_line_before_the_work(command, hybrid_run, synthetic_root, scores_csv, small_avi,
                                                      tmp_path, monkeypatch, capsys):
    scratch = tmp_path / "scratch"
    with tmpfs(tmp_path / "ro", "size=1m,ro") as out:
        if out is None:                            # no mounting here: the same errno, faked
            out = tmp_path / "ro"
            _fake_disk(monkeypatch, out, errno.EROFS)
        argv = _commands(hybrid_run, synthetic_root, scores_csv, small_avi, out, scratch)[command]
        _no_fit(monkeypatch)
        code, _, err = _run(capsys, argv)
        assert code == 2, err
        assert err.startswith(f"vigil: error: {out}") and err.endswith(": read-only file system\n"), err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert _files(out) == []


# the disk fills once the command is under way (its start check passed)
MID_RUN = ["score", "score --maps", "train", "report", "corrupt", "evaluate --json", "synth"]


@pytest.mark.parametrize("command", MID_RUN)
def test_disk_filling_mid_run_is_one_line(command, hybrid_run, synthetic_root, scores_csv, small_avi, tmp_path,
                                          monkeypatch, capsys):
    out, scratch = tmp_path / "full", tmp_path / "scratch"
    out.mkdir()
    argv = _commands(hybrid_run, synthetic_root, scores_csv, small_avi, out, scratch)[command]
    _fake_disk(monkeypatch, out, errno.ENOSPC, after_probe=True)
    code, _, err = _run(capsys, argv)
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"vigil: error: {out}") and last.endswith(": no space left on device"), err
    assert "Traceback" not in err
    assert _files(out) == []


def test_watch_keeps_going_when_the_disk_fills(hybrid_run, small_avi, tmp_path, monkeypatch, capsys):
    out, scratch = tmp_path / "full", tmp_path / "scratch"
    out.mkdir()
    argv = _commands(hybrid_run, "-", "-", small_avi, out, scratch)["watch --save-events"]
    _fake_disk(monkeypatch, out, errno.ENOSPC, after_probe=True)
    code, _, err = _run(capsys, argv)
    assert code == 0, err
    events = [json.loads(x) for x in (scratch / "e.jsonl").read_text().splitlines()]
    assert events                                  # the JSON lines still went out
    said = [ln for ln in err.splitlines() if "no space left on device" in ln]
    assert len(said) == 1 and f"{out / 'ev'}/event_0001" in said[0], err     # once, naming the path
    assert "Traceback" not in err and _files(out) == []


def test_watch_on_a_really_full_disk_leaves_no_half_clip(trained_hybrid, synthetic, tmp_path, capsys):
    """OpenCV's VideoWriter says nothing when the disk is full: the clip is checked, never renamed."""
    with tmpfs(tmp_path / "small", "size=160k") as disk:
        if disk is None:
            pytest.skip("cannot mount a tmpfs here")
        with open(disk / "filler", "wb") as f:     # leave about 40 KB: the start check passes, a clip does not fit
            f.write(b"\0" * (120 * 1024))
        lines = io.StringIO()
        events = watch_file(trained_hybrid, synthetic.test[0].source, lines, disk / "ev")
        err = capsys.readouterr().err
        assert events and len(lines.getvalue().splitlines()) == len(events)
        said = [ln for ln in err.splitlines() if str(disk / "ev") in ln]
        assert len(said) == 1 and "no space left on device" in said[0], err
        names = [p.name for p in (disk / "ev").iterdir()]
        assert not any(n.endswith(".avi") for n in names), names      # no half clip, no temporary
        for n in names:                                                # a map that fitted is whole
            assert n.endswith("_map.png") and (disk / "ev" / n).stat().st_size > 0


def watch_file(det, source, lines, save_dir):
    from vigil.watch import watch

    return watch(det, str(source), events_out=lines, save_dir=str(save_dir), status=False)


def test_io_helpers_name_the_path(tmp_path, monkeypatch):
    from vigil.io import atomic_write, check_writable, write_json

    _fake_disk(monkeypatch, tmp_path, errno.EDQUOT)
    with pytest.raises(VigilError, match=rf"^{tmp_path}/x.json: disk quota exceeded$"):
        write_json(tmp_path / "x.json", {"a": 1})
    with pytest.raises(VigilError, match=r"no space left on device"):
        with atomic_write(tmp_path / "y.bin", "wb") as f:      # the caller's own write hits the full disk
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(VigilError, match=rf"^{tmp_path}/sub/z.csv: disk quota exceeded$"):
        check_writable(tmp_path / "sub" / "z.csv")
    assert _files(tmp_path) == []
    monkeypatch.undo()
    with pytest.raises(PermissionError):             # a read error in the caller's code is not renamed
        with atomic_write(tmp_path / "w.txt") as f:
            raise PermissionError(errno.EACCES, "input not readable")
    assert check_writable(tmp_path / "new" / "out.csv") == tmp_path / "new" / "out.csv"
    assert _files(tmp_path) == [] and (tmp_path / "new").is_dir()


def test_main_turns_a_stray_disk_oserror_into_one_line(monkeypatch, capsys, tmp_path):
    import vigil.cli

    def boom(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.png"))
    monkeypatch.setattr(vigil.cli, "cmd_models", boom)
    parser = vigil.cli.build_parser

    def build():
        p = parser()
        p._subparsers._group_actions[0].choices["models"].set_defaults(func=boom)
        return p
    monkeypatch.setattr(vigil.cli, "build_parser", build)
    code, _, err = _run(capsys, ["models"])
    assert code == 2 and err == f"vigil: error: {tmp_path / 'x.png'}: no space left on device\n"


class _FullFile(io.StringIO):
    """An events file on a disk that is full."""

    def write(self, s):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_watch_goes_on_when_the_events_file_cannot_be_written(trained_hybrid, synthetic, capsys, tmp_path):
    from vigil.watch import watch

    class Hook:                                      # stands in for the webhook: it still gets every event
        got = []

        def submit(self, ev):
            self.got.append(ev)

        def close(self, drain_seconds=None):
            return 0

        def abort(self):
            pass

    hook = Hook()
    twice = tmp_path / "twice"                       # the runner's clip twice over: two events to write
    twice.mkdir()
    frames = sorted(Path(synthetic.test[0].source).iterdir())
    for i, f in enumerate(frames + frames):
        (twice / f"{i:04d}{f.suffix}").symlink_to(f)
    events = watch(trained_hybrid, str(twice), events_out=_FullFile(), status=False, webhook=hook)
    err = capsys.readouterr().err
    assert len(events) >= 2 and hook.got == events
    assert err.count("no space left on device") == 1 and "Traceback" not in err
