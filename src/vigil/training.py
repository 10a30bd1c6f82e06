"""Training on several processes (torchrun) and resumable training.

**Processes.** ``torchrun --nproc_per_node=N -m vigil train ...`` starts N copies of the same
program; torchrun tells each its place through ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.
:func:`join` makes them one process group (NCCL when the device is a GPU, process ``LOCAL_RANK`` of
a node taking GPU ``LOCAL_RANK``; gloo on CPUs). Every process draws the same seeded permutation of
the training samples each epoch and takes its share of each batch (``chunk[rank::world]``), so
``batch_size`` is the *global* batch: the steps, the learning-rate schedule and, with the loss
weighting of :meth:`TrainingRun.scaled`, each step's gradient are those of one process. Gradients
are averaged across processes (``DistributedDataParallel``, or :meth:`TrainingRun.reduce` where a
model's update does not fit it). Rank 0 alone writes checkpoints, calibrates the fitted detector and
prints; :func:`share_fitted` then gives every process the calibrated state, so ``fit`` returns the
same fitted detector everywhere. (``hybrid`` has no gradient training: its processes share out the
per-video flow and descriptor extraction, :func:`map_sharded`, and each fits the same model from the
gathered features.) Outside torchrun all of this is a no-op. What differs from one process:
BatchNorm normalises each process's share of a batch rather than the whole batch, and dropout draws
differ, so results are close to, not equal to, a one-process run.

**Checkpoints.** With a ``checkpoint_dir``, ``fit`` writes ``checkpoint_dir/checkpoint.pt`` at the end
of every epoch and, within long epochs, every ``checkpoint_every`` seconds. It holds the model,
optimiser and scheduler state dicts, where training stands (epoch, batches done in it and that
epoch's sample order), the shuffling generator, every process's own random state (torch, CUDA, the
legacy numpy and Python generators), the time trained so far, and what must match to resume (the
model, every setting, the number of training samples). It is written atomically
(:func:`vigil.io.atomic_write`: temporary file, fsync, rename), so a killed run leaves the previous
checkpoint intact. Resuming restores all of it, so a resumed run ends where an uninterrupted one
does: bit-identical on CPUs (tested on one process, checked on two), up to the non-determinism of
GPU kernels on GPUs. A run may resume on another number of processes; it then continues the same
optimisation, but not bit for bit (each process's random stream and batch share change).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist

from vigil.errors import VigilError
from vigil.io import atomic_write, write_json

CHECKPOINT = "checkpoint.pt"
TRAIN_ARGS = "train_args.json"      # what `vigil train` was given, for `vigil train --resume RUN`
FORMAT = 1
# Rank 0 calibrates alone while the others wait in a collective; calibration of a large dataset on
# a CPU can take far longer than gloo's 30-minute default. A crashed process still ends the job at
# once: torchrun stops every worker when one fails.
TIMEOUT = timedelta(hours=3)

_opened_here = False


# --- processes ------------------------------------------------------------------------------------

def world_size() -> int:
    """Number of training processes (torchrun's ``WORLD_SIZE``; 1 outside torchrun)."""
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True in the one process that prints and writes files (rank 0; the only one outside torchrun)."""
    return rank() == 0


def join(device: str) -> str:
    """Join torchrun's process group (once per process) and return this process's device.

    Outside torchrun this returns ``device`` unchanged. Under torchrun, ``cuda`` (or ``cuda:N``)
    becomes ``cuda:LOCAL_RANK`` and the group uses NCCL; any other device uses gloo. A group the
    caller opened is used as it is and left open; one opened here is closed by :func:`leave`.
    """
    global _opened_here
    from vigil.models.base import resolve_device

    resolve_device(device)                                   # a clear error before any collective
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not dist.is_initialized():
        return device
    cuda = device.startswith("cuda")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise VigilError(f"--device {device}: process LOCAL_RANK={local} has no GPU of its own "
                             f"({torch.cuda.device_count()} visible); start at most that many processes per node")
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
        except (ValueError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise VigilError(f"WORLD_SIZE={os.environ.get('WORLD_SIZE')}: the process group did not start ({first}); "
                             f"start multi-process training with torchrun") from None
        _opened_here = True
    return device


def leave() -> None:
    """Close the process group if :func:`join` opened it (after every process has arrived)."""
    global _opened_here
    if _opened_here and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _opened_here = False


def map_sharded(fn: Callable[[int], Any], n: int) -> list:
    """``[fn(0), ..., fn(n - 1)]`` with item ``i`` computed by process ``i % world`` and the results
    gathered to every process (picklable results; work that needs no gradients, e.g. features)."""
    world, me = world_size(), rank()
    if world == 1:
        return [fn(i) for i in range(n)]
    mine = {i: fn(i) for i in range(me, n, world)}
    parts: list = [None] * world
    dist.all_gather_object(parts, mine)
    merged = {i: r for part in parts for i, r in part.items()}
    return [merged[i] for i in range(n)]


def share_fitted(det) -> None:
    """Give every process rank 0's fitted state (the arrays and scalars :meth:`Detector.save` writes)."""
    if world_size() == 1:
        return
    box = [(det._state_arrays(), det._fitted_meta())] if is_main() else [None]
    dist.broadcast_object_list(box, src=0)
    if not is_main():
        det._load_state_arrays(*box[0])


# --- random state ---------------------------------------------------------------------------------

def _process_rng() -> dict:
    """This process's global generators, in types ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_process_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _shuffle_state(gen: torch.Generator | np.random.Generator):
    return gen.get_state() if isinstance(gen, torch.Generator) else gen.bit_generator.state


def _set_shuffle_state(gen, state) -> None:
    if isinstance(gen, torch.Generator):
        gen.set_state(state)
    else:
        gen.bit_generator.state = state


# --- checkpoints ----------------------------------------------------------------------------------

def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load ``checkpoint.pt`` on the CPU; one clear error for a missing, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise VigilError(f"{path}: no checkpoint to resume from")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # truncated zip, garbage, a pickle of foreign objects: all one answer
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise VigilError(f"{path}: corrupt checkpoint ({e.__class__.__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "state" not in ckpt:
        raise VigilError(f"{path}: not a vigil training checkpoint (format {FORMAT})")
    return ckpt


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
    (folder / CHECKPOINT).unlink(missing_ok=True)


def resume_arguments(run: str | os.PathLike) -> dict:
    """The arguments an interrupted ``vigil train`` was given, after checking that ``run`` holds a
    readable checkpoint of that model; one clear error otherwise."""
    run = Path(run)
    if not run.is_dir():
        raise VigilError(f"{run}: no such run folder")
    args_file, ckpt_file = run / TRAIN_ARGS, run / CHECKPOINT
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
    saved = read_checkpoint(ckpt_file).get("model")
    if saved != model:
        raise VigilError(f"{ckpt_file}: checkpoint of model '{saved}', but {args_file} says '{model}'")
    return args


def _plain(x):
    """Settings compared across a save and a load: tuples and lists alike."""
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


class TrainingRun:
    """The bookkeeping of one ``fit``: this process's share of each batch, checkpoints, resuming.

    ``state`` names everything with ``state_dict()``/``load_state_dict()`` (modules, optimisers,
    schedulers); ``shuffle`` is the generator that orders samples (the same on every process).
    After construction ``epoch`` and :meth:`batches` say where training continues. The loop calls
    :meth:`order` once per epoch and :meth:`step_done` after every batch.
    """

    def __init__(self, det, *, state: dict[str, Any], shuffle, samples: int, batches_per_epoch: int,
                 checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
                 checkpoint_every: float | None = None):
        cfg = det.config
        self.world, self.rank = world_size(), rank()
        self.main = self.rank == 0
        if getattr(cfg, "batch_size", self.world) < self.world:
            raise VigilError(f"{det.name}: batch_size {cfg.batch_size} is smaller than the number of processes "
                             f"({self.world}); every process needs a share of each batch")
        self.state, self.shuffle, self.every = state, shuffle, checkpoint_every
        self.batches_per_epoch = batches_per_epoch
        self.path = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
        self.identity = {"model": det.name, "config": _plain(dataclasses.asdict(cfg)), "samples": int(samples),
                         "batches_per_epoch": int(batches_per_epoch)}
        self.epoch, self._step, self._perm, self._previous = 0, 0, None, 0.0
        if self.world > 1:
            # Dropout and other in-model randomness: a stream per process (the model's initial
            # weights were drawn before this, from the shared seed, and DDP broadcasts rank 0's).
            torch.manual_seed(getattr(cfg, "seed", 0) * 1_000_003 + self.rank)
        if resume:
            if self.path is None:
                raise VigilError(f"{det.name}: fit(resume=True) needs checkpoint_dir")
            self._restore(read_checkpoint(self.path))
        elif self.path is not None and self.main:
            self._clean(stale_checkpoint=True)
        self._t0 = self._last = time.monotonic()

    # --- the loop ---
    def order(self, epoch: int, draw: Callable[[], Any]):
        """This epoch's sample order: the saved one when resuming inside it, else ``draw()``."""
        if epoch == self.epoch and self._perm is not None:
            perm, self._perm = self._perm, None
            return perm
        return draw()

    def batches(self, epoch: int) -> range:
        """Indices of the batches still to train in ``epoch``."""
        return range(self._step if epoch == self.epoch else 0, self.batches_per_epoch)

    @property
    def steps_done(self) -> int:
        return self.epoch * self.batches_per_epoch + self._step

    def share(self, chunk: Sequence[int]):
        """This process's part of one global batch, or ``None`` when the batch is too small to give
        every process a part (then every process skips it; never the case on one process)."""
        if len(chunk) < self.world:
            return None
        return chunk[self.rank::self.world]

    def scaled(self, loss: torch.Tensor, n_mine: int, n_batch: int) -> torch.Tensor:
        """A per-sample-mean loss weighted so that the average over processes of its gradient is the
        gradient of the mean over the whole batch (shares may differ by one sample)."""
        return loss if self.world == 1 else loss * (n_mine * self.world / n_batch)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``DistributedDataParallel(module)`` under torchrun, else ``module`` itself. DDP broadcasts
        rank 0's weights now and its buffers (BatchNorm statistics) at every forward."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        dev = next(module.parameters()).device
        return DistributedDataParallel(module, device_ids=[dev.index] if dev.type == "cuda" else None)

    def broadcast(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers to every process (for models trained without DDP)."""
        if self.world > 1:
            for t in module.state_dict().values():
                dist.broadcast(t, src=0)

    def reduce(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Average gradients across processes in one flat all-reduce (what DDP does, without its
        overlap with the backward pass). A parameter without a gradient counts as zero."""
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        i = 0
        for p in params:
            p.grad = flat[i:i + p.numel()].view_as(p).clone()
            i += p.numel()

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running statistics) across processes; they only
        matter in evaluation, so this does not change training."""
        if self.world > 1:
            for b in module.buffers():
                if b.is_floating_point():
                    dist.all_reduce(b)
                    b /= self.world

    def step_done(self, epoch: int, done: int, perm, before_save: Callable[[], None] | None = None) -> None:
        """Call after batch ``done - 1`` of ``epoch``: checkpoints at the epoch's end, and inside it
        when ``checkpoint_every`` seconds have passed (rank 0's clock decides for everyone)."""
        if self.path is None:
            return
        if done >= self.batches_per_epoch:
            epoch, done, perm = epoch + 1, 0, None
        elif self.every is None or not self._due():
            return
        if before_save is not None:
            before_save()
        self._save(epoch, done, perm)

    def elapsed(self) -> float:
        """Seconds of training, including the sessions before a resume."""
        return self._previous + time.monotonic() - self._t0

    # --- saving and restoring ---
    def _due(self) -> bool:
        due = [time.monotonic() - self._last >= self.every] if self.main else [None]
        if self.world > 1:
            dist.broadcast_object_list(due, src=0)
        return bool(due[0])

    def _save(self, epoch: int, step: int, perm) -> None:
        ranks = [_process_rng()]
        if self.world > 1:
            ranks = [None] * self.world
            dist.all_gather_object(ranks, _process_rng())
        self._last = time.monotonic()
        if not self.main:
            return
        # torch.save, not safetensors: optimiser state is nested (per-parameter dicts, param groups,
        # Python numbers), which safetensors' flat name -> tensor map cannot hold. The model file a
        # finished run keeps (model.safetensors) stays safetensors.
        ckpt = {"format": FORMAT, **self.identity, "epoch": epoch, "step": step,
                "perm": None if perm is None else torch.as_tensor(np.asarray(perm)),
                "perm_numpy": isinstance(perm, np.ndarray),
                "state": {k: v.state_dict() for k, v in self.state.items()},
                "shuffle": _shuffle_state(self.shuffle), "ranks": ranks, "world_size": self.world,
                "elapsed": self.elapsed(), "torch": str(torch.__version__)}
        with atomic_write(self.path, "wb") as f:
            torch.save(ckpt, f)

    def _restore(self, ckpt: dict) -> None:
        for key in ("model", "samples", "batches_per_epoch"):
            if ckpt.get(key) != self.identity[key]:
                raise VigilError(f"{self.path}: checkpoint was written with {key} {ckpt.get(key)!r}, this training "
                                 f"has {self.identity[key]!r} (other model or other training videos)")
        saved, now = _plain(ckpt.get("config", {})), self.identity["config"]
        differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        if differ:
            raise VigilError(f"{self.path}: checkpoint was written with other settings: "
                             + ", ".join(f"{k} {saved.get(k)!r} (now {now.get(k)!r})" for k in differ))
        try:
            for k, obj in self.state.items():
                obj.load_state_dict(ckpt["state"][k])
            _set_shuffle_state(self.shuffle, ckpt["shuffle"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise VigilError(f"{self.path}: checkpoint does not fit this model ({first})") from None
        ranks = ckpt.get("ranks") or []
        if self.rank < len(ranks) and len(ranks) == self.world:
            _set_process_rng(ranks[self.rank])
        # else: another number of processes than before; each keeps its fresh per-process stream
        self.epoch, self._step, self._previous = int(ckpt["epoch"]), int(ckpt["step"]), float(ckpt["elapsed"])
        perm = ckpt.get("perm")
        self._perm = None if perm is None else (perm.numpy() if ckpt.get("perm_numpy") else perm)
        if self.main:
            self._clean(stale_checkpoint=False)
            print(f"resuming {self.path.parent}: epoch {self.epoch}, batch {self._step} of "
                  f"{self.batches_per_epoch} ({self._previous:.0f}s trained so far)", file=sys.stderr)

    def _clean(self, stale_checkpoint: bool) -> None:
        """Remove temporary files a killed run left behind (and, for a fresh start, an old checkpoint)."""
        folder = self.path.parent
        for tmp in folder.glob(f".{CHECKPOINT}.*.tmp"):
            tmp.unlink(missing_ok=True)
        if stale_checkpoint:
            self.path.unlink(missing_ok=True)
