"""Engines that score an archive's videos (:mod:`vigil.archive`): in this process, or as Ray tasks on
this machine or a cluster (:mod:`vigil.engines.ray_engine`, imported only when asked for)."""

from __future__ import annotations

from typing import Callable

from vigil import archive
from vigil.errors import VigilError

ENGINES = ("local", "ray")


def make_engine(name: str, run: str, *, device: str = "cpu", workers: int | None = None,
                threads: int | None = None, retries: int = 2, address: str | None = None) -> Callable:
    """The engine ``name`` for ``run``: ``engine(units, maps_dir, boxes=False) -> Iterator[archive.Result]``
    (it may have ``close()``); one clear error for a bad option or a missing Ray."""
    for opt, value in (("workers", workers), ("threads", threads)):
        if value is not None and value < 1:
            raise VigilError(f"--{opt} {value}: must be at least 1")
    if retries < 0:
        raise VigilError(f"--retries {retries}: must be 0 or more")
    if name == "ray":
        from vigil.engines.ray_engine import RayEngine     # one line if Ray is absent, before loading the run

        return RayEngine(run, device=device, threads=threads, workers=workers, retries=retries, address=address)
    if name == "local":
        if workers not in (None, 1) or address:
            raise VigilError("--workers and --address go with --engine ray (the local engine is one process)")
        return archive.local_engine(run, device, threads)
    raise VigilError(f"--engine {name}: unknown engine ({' or '.join(ENGINES)})")
