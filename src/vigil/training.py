"""The one training loop (:func:`fit_loop`): epochs, batches, progress bar, torchrun sharding and
gradient averaging, atomic checkpoints, resume. A model gives it an :class:`Objective` (its
networks, optimisers and a training step that returns one loss per optimiser); nothing else in
vigil calls ``backward()``.

**Processes.** ``torchrun --nproc_per_node=N -m vigil train ...`` starts N copies of the same
program; torchrun tells each its place through ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.
:func:`join` (called by :meth:`vigil.detector.Detector.fit`) makes them one process group (NCCL when the device is a GPU, process ``LOCAL_RANK`` of
a node taking GPU ``LOCAL_RANK``; gloo on CPUs). Every process draws the same seeded permutation of
the training samples each epoch and takes its share of each batch (``chunk[rank::world]``), so
``batch_size`` is the *global* batch: the steps, the learning-rate schedule and, with the loss
weighting of :meth:`TrainingRun.scaled`, each step's gradient are those of one process. Gradients
are averaged across processes after each loss's backward pass, one flat all-reduce per optimiser
(:meth:`TrainingRun.reduce`: what DistributedDataParallel does, without overlapping it with the
backward pass, which DDP cannot do for OCR-GAN Video's two optimisers fed by one forward pass), and
the starting weights are rank 0's (:meth:`TrainingRun.broadcast`). Rank 0 alone writes checkpoints, calibrates the fitted detector and
prints; :func:`share_fitted` then gives every process the calibrated state, so ``fit`` returns the
same fitted detector everywhere. (``hybrid`` has no gradient training: its processes share out the
per-video flow and descriptor extraction, :func:`map_sharded`, and each fits the same model from the
gathered features.) Outside torchrun all of this is a no-op. What differs from one process:
BatchNorm normalises each process's share of a batch rather than the whole batch (its running
statistics are averaged over the processes at every checkpoint and at the end), and dropout draws
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
import math
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.distributed as dist

from vigil.errors import VigilError
from vigil.io import atomic_write

CHECKPOINT = "checkpoint.pt"
FORMAT = 1
# Rank 0 calibrates alone while the others wait in a collective; calibration of a large dataset on
# a CPU can take far longer than gloo's 30-minute default. A crashed process still ends the job at
# once: torchrun stops every worker when one fails.
TIMEOUT = timedelta(hours=3)

_opened_here = False


# --- processes ------------------------------------------------------------------------------------

def resolve_device(device: str) -> torch.device:
    """``device`` as a torch device; one clear error for a missing GPU or a name that is no device."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VigilError(f"--device {device}: CUDA is not available here (torch {torch.__version__}); use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise VigilError(f"--device {device}: not a device name (use cpu, cuda or cuda:N)") from None


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


# --- the loop -------------------------------------------------------------------------------------

class Objective(NamedTuple):
    """What a model gives :func:`fit_loop`.

    ``step(chunk, mine)`` is called once per global batch: ``chunk`` the batch's sample indices (the
    same on every process), ``mine`` this process's share of them, or ``None`` when the batch is too
    small to give every process a part (then the step returns ``None`` and every process skips it,
    after drawing whatever the step draws per batch, so random streams stay aligned). Otherwise it
    returns ``(losses, logs)``: one loss per optimiser, in the order of ``optimisers`` (each a
    per-sample mean over ``mine``), and numbers for the progress bar. The loop then, for each
    optimiser in turn: zero its gradients, back-propagate its loss, average the gradients across
    processes, step (OCR-GAN Video: the generator, then the discriminator, from one forward pass).
    """
    modules: dict[str, torch.nn.Module]                 # trained, checkpointed, broadcast from rank 0
    optimisers: dict[str, torch.optim.Optimizer]        # stepped in this order
    step: Callable[[Sequence[int], Sequence[int] | None], tuple[list[torch.Tensor], dict] | None]
    schedulers: dict[str, Any] = {}                     # stepped once after every batch


def fit_loop(det, objective: Objective, *, samples: int, epochs: int, batch_size: int, shuffle,
             drop_last: bool = False, checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
             checkpoint_every: float | None = 600.0) -> float:
    """Train ``objective`` for ``epochs`` passes over ``samples`` samples in global batches of
    ``batch_size``, in an order drawn each epoch from ``shuffle`` (a ``torch.Generator`` or a NumPy
    ``Generator``, the same on every process); ``drop_last``: a last batch smaller than
    ``batch_size`` is left out (at least one batch per epoch). ``checkpoint_dir`` / ``resume`` /
    ``checkpoint_every``: see the module's doc. Returns the seconds trained, resumed sessions included;
    the modules are left in eval mode with their BatchNorm statistics averaged across processes.
    """
    per_epoch = max(1, samples // batch_size) if drop_last else math.ceil(samples / batch_size)
    run = TrainingRun(det, state={**objective.modules, **objective.optimisers, **objective.schedulers},
                      shuffle=shuffle, samples=samples, batches_per_epoch=per_epoch, checkpoint_dir=checkpoint_dir,
                      resume=resume, checkpoint_every=checkpoint_every)
    for module in objective.modules.values():
        run.broadcast(module)
    params = {k: [p for g in opt.param_groups for p in g["params"]] for k, opt in objective.optimisers.items()}

    def average_buffers():
        for module in objective.modules.values():
            run.average_buffers(module)

    def draw():
        if isinstance(shuffle, torch.Generator):
            return torch.randperm(samples, generator=shuffle)
        return shuffle.permutation(samples)

    from tqdm.auto import tqdm

    bar = tqdm(total=epochs * per_epoch, initial=run.steps_done, desc=det.name, unit="step", leave=False,
               disable=not (det.progress and run.main))
    for module in objective.modules.values():
        module.train()
    for epoch in range(run.epoch, epochs):
        perm = run.order(epoch, draw)
        for b in run.batches(epoch):
            chunk = perm[b * batch_size:(b + 1) * batch_size]
            mine = run.share(chunk)                     # this process's part (all of it on one process)
            out = objective.step(chunk, mine)
            if out is not None:
                losses, logs = out
                for (key, opt), loss in zip(objective.optimisers.items(), losses):
                    opt.zero_grad(set_to_none=True)     # also drops what an earlier loss left here
                    run.scaled(loss, len(mine), len(chunk)).backward()
                    run.reduce(params[key])
                    opt.step()
                for sched in objective.schedulers.values():
                    sched.step()
                bar.update(1)
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
            run.step_done(epoch, b + 1, perm, before_save=average_buffers)
    bar.close()
    average_buffers()
    for module in objective.modules.values():
        module.eval()
    return run.elapsed()
