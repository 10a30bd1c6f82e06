"""Export a trained detector to one self-contained ONNX file, and score with it through ONNX Runtime.

``vigil export RUN --format onnx --out model.onnx`` writes the detector's scoring network — the one
module its PyTorch path calls for every batch, :meth:`Detector._export_spec` — as an ONNX graph,
and puts everything else scoring needs in the model's ``metadata_props``:

* ``vigil`` — JSON: the run's ``config.json`` content (model name, every setting, fitted scalars
  such as ``threshold_``), the graph's input and output names and the export format version;
* ``vigil.arrays`` — the fitted calibration arrays (per-pixel statistics, component medians and
  scales), as a base64 safetensors blob, so they round-trip bit for bit.

:func:`load_onnx` (and so ``vigil score model.onnx``, ``vigil watch model.onnx``) rebuilds the
detector from that metadata alone and sets its ``_runtime`` to an ONNX Runtime session: the frames,
the pre-processing and every step after the network (calibration, fusion, smoothing) are the same
Python code as with PyTorch; only the network call changes backend.

Which detectors export: ``truesight`` (the whole 5-scale forward with the error maps and the
spectrum gap is one graph) and ``ocrgan-video`` (generator, discriminator, temporal attention and
its statistics for a window of frames). ``hybrid`` does not: it has no neural network (see
``Hybrid.onnx_unsupported``). Scores through ONNX Runtime match PyTorch within :data:`SCORE_TOLERANCE`
(tested in ``tests/test_export.py``).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from vigil.errors import VigilError
from vigil.io import atomic_write

FORMAT_VERSION = 1
#: ONNX Runtime and PyTorch scores of the same frames differ by at most SCORE_TOLERANCE x max(1, s),
#: ``s`` = the standard deviation of the PyTorch scores on normal frames (:func:`score_tolerance`):
#: a thousandth of the normal variation. Scores are calibrated (about one unit per normal-frame
#: deviation on held-out footage), so the floor of 1 keeps it a thousandth of a unit where footage
#: varies less. Measured on Ped2: 2e-6 x s (True Sight), 8e-6 x s (OCR-GAN Video): float32 rounding.
SCORE_TOLERANCE = 1e-3
OPSET = 17
_META_KEY, _ARRAYS_KEY = "vigil", "vigil.arrays"


def score_tolerance(normal_scores: np.ndarray) -> float:
    """The largest |ONNX Runtime - PyTorch| score difference allowed, given PyTorch's scores of normal frames."""
    return SCORE_TOLERANCE * max(1.0, float(np.std(normal_scores)))


def export_onnx(det, out: str | os.PathLike, *, check: bool = True) -> dict:
    """Write ``det`` (fitted) to ``out`` as one ONNX file; returns a summary (size, check difference).

    ``check`` runs the example batch through ONNX Runtime and PyTorch and reports the largest
    absolute difference of the network outputs (the exported file is written either way).
    """
    import torch

    det._check_fitted()
    reason = getattr(det, "onnx_unsupported", None)
    if reason:
        raise VigilError(f"model '{det.name}' cannot be exported to ONNX: {reason}")
    try:
        import onnx
    except ImportError:
        raise VigilError("exporting to ONNX needs the onnx package: pip install 'vigil[onnx]'") from None
    spec = det._export_spec()
    spec.module.eval()          # the exporter restores the module's mode afterwards: eval before and after
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode():
        # the TorchScript exporter is deprecated upstream but needs only `onnx` (not onnxscript) and
        # handles every op these graphs use; torch is pinned, so it stays available
        warnings.simplefilter("ignore")
        torch.onnx.export(spec.module, spec.example, buf, dynamo=False, opset_version=OPSET,
                          input_names=spec.input_names, output_names=spec.output_names,
                          dynamic_axes=spec.dynamic_axes, do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    arrays = dict(det._calibration_arrays())
    guard_meta = None
    if getattr(det, "guard_", None) is not None:          # the frame guard (vigil.data.guard) travels too
        guard_arrays, guard_meta = det.guard_.state()
        arrays.update({f"guard.{k}": v for k, v in guard_arrays.items()})
    meta = {"format": FORMAT_VERSION, "model": det.name, "config": dataclasses.asdict(det.config),
            "fitted": det._fitted_meta(), "guard": guard_meta, "inputs": spec.input_names,
            "outputs": spec.output_names, "rows_independent": spec.rows_independent}
    _set_metadata(model, {_META_KEY: json.dumps(meta, default=_json_default), _ARRAYS_KEY: _encode_arrays(arrays)})
    model.producer_name, model.doc_string = "vigil", f"vigil {det.name} scoring network; see vigil.export"
    data = model.SerializeToString()
    out = Path(out)
    with atomic_write(out, "wb") as f:
        f.write(data)
    summary = {"model": det.name, "path": str(out), "bytes": len(data)}
    if check:
        summary["check_max_abs_diff"] = _check(spec, data)
    return summary


def load_onnx(path: str | os.PathLike, *, device: str = "cpu", threads: int | None = None):
    """A fitted detector whose network runs in ONNX Runtime, from a file written by :func:`export_onnx`.

    ``threads``: ONNX Runtime intra-op threads; default ``$OMP_NUM_THREADS`` when set, else the cores
    this process may use. ``device`` ``cuda`` needs onnxruntime's CUDA provider (``onnxruntime-gpu``).
    """
    from vigil.registry import get_detector

    path = Path(path)
    if not path.is_file():
        raise VigilError(f"{path}: no such ONNX file")
    session = _session(path, device, threads)
    props = session.get_modelmeta().custom_metadata_map
    if _META_KEY not in props or _ARRAYS_KEY not in props:
        raise VigilError(f"{path}: an ONNX model, but not one written by 'vigil export' (no vigil metadata)")
    try:
        meta = json.loads(props[_META_KEY])
        name, raw, fitted = meta["model"], meta["config"], meta["fitted"]
        arrays = _decode_arrays(props[_ARRAYS_KEY])
    except (ValueError, KeyError, TypeError) as e:
        raise VigilError(f"{path}: corrupt vigil metadata ({e.__class__.__name__}: {e})") from None
    if meta.get("format", 0) > FORMAT_VERSION:
        raise VigilError(f"{path}: written by a newer vigil (export format {meta['format']}); upgrade vigil")
    klass = get_detector(name)
    if klass.onnx_unsupported:
        raise VigilError(f"{path}: claims to hold model '{name}', which has no ONNX form ({klass.onnx_unsupported})")
    det = klass(klass.saved_config(raw, path), device=device, progress=False)
    graph_in = [i.name for i in session.get_inputs()]
    graph_out = [o.name for o in session.get_outputs()]
    if graph_in != meta.get("inputs") or graph_out != meta.get("outputs"):
        raise VigilError(f"{path}: graph inputs {graph_in} / outputs {graph_out} do not match its vigil metadata")
    try:
        det._load_calibration({k: v for k, v in arrays.items() if not k.startswith("guard.")}, fitted)
        if meta.get("guard"):
            from vigil.data.guard import FrameGuard

            det.guard_ = FrameGuard.from_state({k[6:]: v for k, v in arrays.items() if k.startswith("guard.")},
                                               meta["guard"])
    except (KeyError, ValueError, TypeError) as e:
        raise VigilError(f"{path}: calibration arrays do not fit model '{name}' ({e})") from None
    n_threads = threads or default_threads()
    parts = 1
    if meta.get("rows_independent") and n_threads > 1 and not device.startswith("cuda"):
        # split each batch across the threads instead of each operator: one single-threaded run per
        # part (measured 93 vs 77 frames/s for True Sight's network on 2 cores)
        session, parts = _session(path, device, 1), n_threads
    det._runtime = OrtNetwork(session, path, parts)
    det.fitted_ = True
    return det


class OrtNetwork:
    """An ONNX Runtime session called like the PyTorch module it replaces: torch tensors in, a tuple
    of torch tensors out (on the first input's device).

    ``parts > 1`` (graphs whose batch rows are independent): a batch is cut into up to ``parts``
    pieces that run at the same time on a thread pool (ONNX Runtime releases the GIL), and the
    outputs are joined in order.
    """

    def __init__(self, session, path: Path, parts: int = 1):
        from concurrent.futures import ThreadPoolExecutor

        self.session, self.path, self.parts = session, path, parts
        self.input_names = [i.name for i in session.get_inputs()]
        self.pool = ThreadPoolExecutor(parts, thread_name_prefix="vigil-ort") if parts > 1 else None

    def __call__(self, *inputs):
        import torch

        feeds = {n: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
                 for n, t in zip(self.input_names, inputs)}
        n = len(next(iter(feeds.values())))
        if self.pool is None or n < 2:
            outs = self._run(feeds)
        else:
            bounds = np.linspace(0, n, min(self.parts, n) + 1).astype(int)
            pieces = [{k: v[a:b] for k, v in feeds.items()} for a, b in zip(bounds[:-1], bounds[1:])]
            outs = [np.concatenate(o) for o in zip(*self.pool.map(self._run, pieces))]
        dev = inputs[0].device
        return tuple(torch.from_numpy(o).to(dev) for o in outs)

    def _run(self, feeds: dict) -> list[np.ndarray]:
        try:
            return self.session.run(None, feeds)
        except Exception as e:  # onnxruntime raises its own exception types, not importable stably
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else e.__class__.__name__
            raise VigilError(f"{self.path}: ONNX Runtime failed ({first})") from None


# --- helpers --------------------------------------------------------------------------------------

def default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _session(path: Path, device: str, threads: int | None):
    try:
        import onnxruntime as ort
    except ImportError:
        raise VigilError(f"{path}: scoring an ONNX file needs onnxruntime: pip install 'vigil[onnx]'") from None
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1              # one graph at a time: all threads go to its operators
    # idle threads sleep instead of spinning: on a machine shared with other work spinning threads
    # measured 1.8x slower (22 vs 39 frames/s, True Sight, 2 threads); on a quiet one it costs ~nothing
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3                # errors only; warnings would clutter the CLI
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise VigilError(f"--device {device}: this onnxruntime has no CUDA provider (install onnxruntime-gpu, "
                             f"or score with --device cpu)")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:  # InvalidProtobuf, Fail, ...: onnxruntime's own types
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else e.__class__.__name__
        raise VigilError(f"{path}: not a readable ONNX model ({first})") from None


def _set_metadata(model, props: dict[str, str]) -> None:
    del model.metadata_props[:]
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v


def _encode_arrays(arrays: dict[str, np.ndarray]) -> str:
    from safetensors.numpy import save
    return base64.b64encode(save({k: np.ascontiguousarray(v) for k, v in arrays.items()})).decode("ascii")


def _decode_arrays(text: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load
    try:
        return load(base64.b64decode(text.encode("ascii"), validate=True))
    except Exception as e:  # binascii.Error, SafetensorError
        raise ValueError(f"calibration arrays: {e}") from None


def _json_default(o):
    if isinstance(o, (np.generic, np.ndarray)):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _check(spec, data: bytes) -> float:
    """Largest |ONNX Runtime - PyTorch| over the network outputs of the example batch."""
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = default_threads()
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        ref = spec.module(*spec.example)
    ref = ref if isinstance(ref, (tuple, list)) else (ref,)
    outs = sess.run(None, {n: t.cpu().numpy() for n, t in zip(spec.input_names, spec.example)})
    return float(max(np.abs(o - r.cpu().numpy()).max() for o, r in zip(outs, ref)))
