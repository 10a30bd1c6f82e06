"""The Ray engine of ``vigil score --engine ray``: one Ray task per video, at most ``--workers`` at once.

Each task runs :func:`vigil.archive.score_unit`, the code the local engine runs, in a Ray worker
process that loads the run once (a cache per process, keyed by the run's fingerprint) and sends the
scores back; the driver writes the parts and merges them (:mod:`vigil.archive`), so only the run and
the data must be readable on every node, at the same path (``--maps`` writes from the workers, so
the maps folder too). A worker process that dies (killed, out of memory, its node lost) has its video
retried by Ray, ``--retries`` times (the task's ``max_retries``); a video that cannot be read comes
back as a failed result and is not retried.

Without ``--address`` a Ray is started on this machine for the run and stopped after it, listening on
127.0.0.1 only; with one (``ray://head:10001``, ``auto``) the driver joins that cluster. Ray is imported
only here, and only when the engine is used.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys

from vigil import archive
from vigil.errors import VigilError
from vigil.runs import load

_HINT = "--engine ray needs Ray: pip install 'vigil[ray]'"


def check_ray(local: bool = True):
    """Import Ray, or one line saying how to get it. For a Ray started here, its processes are made to
    listen on 127.0.0.1 only and not to report usage (set before Ray is first imported)."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")   # node IP 127.0.0.1: bind to it
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise VigilError(_HINT) from None
    return ray


# --- in the worker process ------------------------------------------------------------------------

_DETECTORS: dict = {}


def _detector(run: str, run_id: str, device: str, threads: int):
    key = (run, run_id, device, threads)
    if key not in _DETECTORS:
        archive.set_threads(threads)
        det = load(run, device=device)
        det.progress = False
        _DETECTORS.clear()                      # one run per worker process at a time
        _DETECTORS[key] = det
    return _DETECTORS[key]


def score_task(run: str, run_id: str, device: str, threads: int, unit: archive.Unit, maps_dir: str | None,
               test_crash: tuple[str, str] | None = None, boxes: bool = False) -> archive.Result:
    """One video, in a Ray worker. ``test_crash`` is the test hook of :data:`vigil.archive.TEST_CRASH_ENV`."""
    if test_crash and unit.name == test_crash[0] and not os.path.exists(test_crash[1]):
        open(test_crash[1], "w").close()
        os._exit(1)                             # TEST HOOK: the worker dies on the first attempt
    worker = archive.worker_name()
    try:
        det = _detector(run, run_id, device, threads)
    except VigilError as e:
        return archive.Result(unit.name, error=f"{e} (on worker {worker})", worker=worker)
    return archive.score_unit(det, unit, maps_dir, worker=worker, boxes=boxes)


def probe(run: str, source: str) -> dict:
    """Run on one worker before the videos: can it import vigil and see the run and the data?"""
    import socket

    from vigil import __version__

    return {"host": socket.gethostname(), "vigil": __version__, "run": os.path.exists(run),
            "data": os.path.exists(source)}


# --- in the driver --------------------------------------------------------------------------------

class RayEngine:
    """Callable ``(units, maps_dir, boxes=False) -> iterator of Result`` in completion order; :meth:`close` after."""

    def __init__(self, run: str, *, device: str = "cpu", threads: int | None = None, workers: int | None = None,
                 retries: int = 2, address: str | None = None):
        check_ray(local=not address)
        load(run, device=device)      # a bad run fails here, in one line, before Ray starts
        self.run = os.path.abspath(run)
        self.run_id = archive.run_identity(run)
        self.device, self.threads, self.workers, self.retries = device, threads or 1, workers, retries
        crash = os.environ.get(archive.TEST_CRASH_ENV)
        self.test_crash = tuple(crash.split("=", 1)) if crash and "=" in crash else None
        self.address, self.started, self._task = address, False, None

    def _start(self):
        """Join the cluster, or start a Ray here (unless this process already has one): only once
        there is something to score."""
        import ray

        if not ray.is_initialized():
            try:
                if self.address:
                    ray.init(address=self.address, logging_level=logging.WARNING)
                else:
                    cpus = self.workers * self.threads if self.workers else os.cpu_count()
                    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                             _node_ip_address="127.0.0.1", logging_level=logging.ERROR)
            except Exception as e:      # ConnectionError, ValueError (no Ray Client), TimeoutError...
                first = " ".join(str(e).split())[:300] or e.__class__.__name__
                where = f"--address {self.address}: cannot join the Ray cluster" if self.address else \
                    "cannot start a local Ray"
                raise VigilError(f"{where} ({first})") from None
            self.started = True
        if self._task is None:
            self._task = ray.remote(score_task).options(num_cpus=self.threads, max_retries=self.retries,
                                                         retry_exceptions=False)

    def _check_workers(self, sample: str) -> None:
        """One small task first, so that a cluster without vigil, or without the run or the data at
        these paths, is one line instead of one failure per video."""
        import ray

        try:
            seen = ray.get(ray.remote(probe).options(num_cpus=0, max_retries=self.retries).remote(self.run, sample))
        except Exception as e:              # ModuleNotFoundError at submission (Ray Client), RayTaskError...
            first = " ".join(str(e).split())[:300] or e.__class__.__name__
            raise VigilError(f"the Ray workers cannot run vigil ({e.__class__.__name__}: {first}); install vigil "
                             f"(pip install 'vigil[ray]') in the same Python on every node") from None
        for what, path in (("run", self.run), ("data", sample)):
            if not seen[what]:
                raise VigilError(f"{path}: not found on Ray node {seen['host']}; every node needs the run and the "
                                 f"data at the same path (a shared filesystem, or the same copy on each)")

    def slots(self) -> int:
        import ray

        cpus = ray.cluster_resources().get("CPU", 1)
        fit = max(1, int(cpus // self.threads))
        return min(self.workers, fit) if self.workers else fit

    def __call__(self, units: list[archive.Unit], maps_dir: str | None, boxes: bool = False):
        import ray

        self._start()
        self._check_workers(os.path.abspath(units[0].source))
        pending: dict = {}
        queue = iter(units)

        def submit() -> None:
            u = next(queue, None)
            if u is not None:
                u_abs = dataclasses.replace(u, source=os.path.abspath(u.source))
                try:
                    ref = self._task.remote(self.run, self.run_id, self.device, self.threads, u_abs, maps_dir,
                                            self.test_crash, boxes)
                except Exception as e:      # the cluster went away mid-run (Ray Client raises here)
                    first = " ".join(str(e).split())[:300] or e.__class__.__name__
                    raise VigilError(f"Ray: cannot submit video {u.name} ({e.__class__.__name__}: {first}); "
                                     f"the parts scored so far are kept") from None
                pending[ref] = u

        self.slots_used = min(self.slots(), len(units))
        for _ in range(self.slots_used):
            submit()
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    u = pending.pop(ref)
                    try:
                        r = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        first = " ".join(str(e).split())[:300]
                        r = archive.Result(u.name, error=f"{u.source}: Ray could not score it in "
                                                         f"{archive._plural(self.retries + 1, 'attempt')} "
                                                         f"({e.__class__.__name__}: {first})")
                    submit()
                    yield r
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started:
            import ray

            ray.shutdown()
            self.started = False
