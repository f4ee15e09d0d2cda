"""Quantize, dequantize and fake-quantize (quantize-dequantize) in float32.

Three *semantics* reproduce the three vendor kernels; they differ in the order of operations,
which decides the result at rounding ties and at the grid edges:

=========  ==========================================================  ==========  ===============
semantics  integer value ``c`` (centred: ``q_storage - zero_point``)    result      reference
=========  ==========================================================  ==========  ===============
onnx       ``clamp(R(x / scale), lo, hi)``                               ``c*scale``  ONNX QuantizeLinear
aimet      ``R(clamp(nan->min(x), min, max)/scale - offset) + offset``   ``c*scale``  aimet.md C.5
vitis      ``clamp(R(x * (1/scale)), lo, hi)``                           ``c/(1/scale)`` vitis_amct.md 1.11
=========  ==========================================================  ==========  ===============

``lo, hi = offset, offset + num_steps`` (the encoding's grid), ``R`` the rounding mode (default
``half_even`` for onnx/vitis, ``half_away`` for aimet). NaN maps to ``lo`` in every semantics
(the ONNX reference casts NaN to INT_MIN before saturating; AIMET maps NaN to ``min``).

Speed: per tensor the onnx path is ``divide, rint, [clamp], multiply`` on cache-sized chunks of
the array (:mod:`quantspec.runtime.parallel`), with the clamp skipped for chunks that are already
inside the grid (two cheap reductions decide). Per channel, rows that share a scale use the same
scalar path; short rows are processed as broadcasting blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import errors
from .encoding import Encoding
from .parallel import CHUNK, run_tasks
from .rounding import canonical_mode, round_array

SEMANTICS = ("onnx", "aimet", "vitis")
_DEFAULT_ROUNDING = {"onnx": "half_even", "aimet": "half_away", "vitis": "half_even"}
F32 = np.float32


@dataclass(frozen=True)
class _Consts:
    """Kernel constants in float32, per channel (arrays) or for one channel (scalars)."""

    div: Any  # onnx/aimet: scale (x / div); vitis: float32(1/scale) (x * div)
    fin: Any  # factor of the final multiply: scale, or float32(1)/(1/scale) for vitis
    lo: Any  # centred grid bounds: offset, offset + num_steps
    hi: Any
    a: Any  # aimet: float32(min), float32(max), float32(offset)
    b: Any
    off: Any
    zp: Any  # storage zero point
    lo_max: float = 0.0  # bounds for the "already inside the grid" test
    hi_min: float = 0.0

    def take(self, c0: int, c1: int, scalar: bool) -> _Consts:
        if scalar:
            vals = [F32(getattr(self, f)[c0]) for f in _FIELDS]
        else:
            vals = [getattr(self, f)[c0:c1, None] for f in _FIELDS]
        return _Consts(*vals, lo_max=float(np.max(vals[2])), hi_min=float(np.min(vals[3])))


_FIELDS = ("div", "fin", "lo", "hi", "a", "b", "off", "zp")
_Bufs = tuple[np.ndarray, np.ndarray] | None


def _consts(enc: Encoding, semantics: str) -> _Consts:
    n = enc.num_steps
    scale32 = enc.scale.astype(F32)
    if semantics == "vitis":
        inv = (1.0 / enc.scale).astype(F32)  # Python 1.0/scale, then the float kernel argument
        div, fin = inv, F32(1) / inv  # (q - zp) * (1 / val_amp) in float (vitis_amct.md 1.11)
    else:
        div, fin = scale32, scale32
    return _Consts(
        div=div, fin=fin, lo=enc.offset.astype(F32), hi=(enc.offset + n).astype(F32),
        a=enc.min.astype(F32), b=enc.max.astype(F32), off=enc.offset.astype(F32),
        zp=enc.zero_point.astype(F32),
    )


def _as_float32(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise errors.error(errors.BAD_DATA, f"expected a numeric array, got dtype {arr.dtype}")
    return arr if arr.dtype == F32 else arr.astype(F32)


def _normalize_axis(enc: Encoding, ndim: int, shape: tuple[int, ...]) -> int | None:
    if not enc.per_channel:
        return None
    assert enc.axis is not None
    axis = enc.axis + ndim if enc.axis < 0 else enc.axis
    if not 0 <= axis < ndim:
        raise errors.error(
            errors.BAD_AXIS, f"axis {enc.axis} is out of range for a {ndim}-d array"
        )
    if shape[axis] != enc.channels:
        raise errors.error(
            errors.BAD_AXIS,
            f"encoding has {enc.channels} channels but axis {enc.axis} has size {shape[axis]}",
        )
    return axis


def _check(enc: Encoding, semantics: str, rounding: str | None) -> str:
    if semantics not in SEMANTICS:
        raise errors.unknown_name("quantization semantics", semantics, SEMANTICS)
    return canonical_mode(rounding or _DEFAULT_ROUNDING[semantics])


# -- chunk kernels: write the centred integer c into `ov` ---------------------------------------
def _round(ov: np.ndarray, mode: str) -> None:
    if mode == "half_even":
        np.rint(ov, out=ov)
    else:
        round_array(ov, mode, out=ov)


def _clamp(ov: np.ndarray, k: _Consts, bufs: tuple[np.ndarray, np.ndarray] | None) -> None:
    # Most chunks are inside the grid; two reductions are cheaper than two clamping passes.
    # A NaN makes both tests fail, and fmax() then maps it to lo.
    if ov.size == 0:
        return
    lo, hi = (k.lo, k.hi) if bufs is None else (bufs[0][: ov.size], bufs[1][: ov.size])
    if not ov.min() >= k.lo_max:
        np.fmax(ov, lo, out=ov)
    if not ov.max() <= k.hi_min:
        np.fmin(ov, hi, out=ov)


def _centred_onnx(xv: np.ndarray, ov: np.ndarray, k: _Consts, mode: str, bufs: _Bufs) -> None:
    np.divide(xv, k.div, out=ov)
    _round(ov, mode)
    _clamp(ov, k, bufs)


def _centred_vitis(xv: np.ndarray, ov: np.ndarray, k: _Consts, mode: str, bufs: _Bufs) -> None:
    np.multiply(xv, k.div, out=ov)
    _round(ov, mode)
    _clamp(ov, k, bufs)


def _centred_aimet(xv: np.ndarray, ov: np.ndarray, k: _Consts, mode: str, bufs: _Bufs) -> None:
    # aimet.md C.5, all float32: NaN -> min; clamp to [min, max]; round(x/delta - offset).
    np.fmax(xv, k.a, out=ov)
    np.fmin(ov, k.b, out=ov)
    np.divide(ov, k.div, out=ov)
    np.subtract(ov, k.off, out=ov)
    _round(ov, mode)
    np.add(ov, k.off, out=ov)


_CENTRED: dict[str, Callable[..., None]] = {
    "onnx": _centred_onnx, "aimet": _centred_aimet, "vitis": _centred_vitis,
}


# -- task layout ----------------------------------------------------------------------------------
def _tasks(x: np.ndarray, out: np.ndarray, axis: int | None, channels: int) -> list[tuple[Any, ...]]:
    """Split into cache-sized blocks: (x_view, out_view, c0, c1, scalar_params)."""
    if axis is None or channels == 1:
        xf, of = x.reshape(-1), out.reshape(-1)
        return [(xf[i:i + CHUNK], of[i:i + CHUNK], 0, 1, True) for i in range(0, xf.size, CHUNK)]
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    x3 = x.reshape(outer, channels, inner)
    o3 = out.reshape(outer, channels, inner)
    tasks: list[tuple[Any, ...]] = []
    if inner >= CHUNK // 4:  # long rows: scalar parameters per row
        for o in range(outer):
            for c in range(channels):
                for i in range(0, inner, CHUNK):
                    tasks.append((x3[o, c, i:i + CHUNK], o3[o, c, i:i + CHUNK], c, c + 1, True))
    elif channels * inner <= CHUNK:  # short rows: blocks of whole channel sets
        rows = max(1, CHUNK // (channels * inner))
        for o in range(0, outer, rows):
            tasks.append((x3[o:o + rows], o3[o:o + rows], 0, channels, False))
    else:
        cb = max(1, CHUNK // inner)
        for o in range(outer):
            for c in range(0, channels, cb):
                tasks.append((x3[o:o + 1, c:c + cb], o3[o:o + 1, c:c + cb], c,
                              min(c + cb, channels), False))
    return tasks


def _prepare(x: Any, enc: Encoding) -> tuple[np.ndarray, int | None]:
    x32 = np.ascontiguousarray(_as_float32(x))
    if enc.dtype != "int":
        return x32, None
    return x32, _normalize_axis(enc, x32.ndim, x32.shape)


def _float_cast(x32: np.ndarray, enc: Encoding, out: np.ndarray) -> np.ndarray:
    if enc.bits == 16:
        np.copyto(out, x32.astype(np.float16), casting="unsafe")
    else:
        np.copyto(out, x32)
    return out


def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise errors.error(
            errors.BAD_DATA,
            f"out must be a C-contiguous {np.dtype(dtype).name} array of shape {shape}",
        )
    return out


def fake_quantize(
    x: Any,
    encoding: Encoding,
    *,
    rounding: str | None = None,
    semantics: str = "onnx",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize then dequantize ``x`` on ``encoding``'s grid, in float32.

    Args:
        x: array of real values (converted to float32).
        encoding: per-tensor or per-channel encoding (``encoding.axis`` selects the channel axis).
        rounding: a mode of :data:`~quantspec.runtime.rounding.ROUNDING_MODES`; default depends
            on ``semantics`` (``half_even`` for onnx/vitis, ``half_away`` for aimet).
        semantics: ``"onnx"`` (QuantizeLinear->DequantizeLinear), ``"aimet"`` (aimet.md C.5) or
            ``"vitis"`` (vitis_amct.md 1.11); see the module docstring.
        out: optional float32 C-contiguous output; may be ``x`` itself for in-place operation.

    Returns:
        float32 array of grid values, shape of ``x``.

    Example:
        >>> from quantspec.runtime import encoding_from_range
        >>> e = encoding_from_range(-1.0, 1.0, 8, symmetric=True)
        >>> fake_quantize([0.3, 5.0], e).tolist()
        [0.2992125928401947, 1.0]
    """
    mode = _check(encoding, semantics, rounding)
    x32, axis = _prepare(x, encoding)
    res = _output(out, x32.shape, F32)
    if encoding.dtype != "int":
        return _float_cast(x32, encoding, res)
    consts = _consts(encoding, semantics)
    centred = _CENTRED[semantics]
    tasks = _tasks(x32, res, axis, encoding.channels)
    per_row = [consts.take(c, c + 1, True) for c in range(encoding.channels)]
    bufs = _ClampBuffers(min(CHUNK, x32.size))

    def run(task: tuple[Any, ...]) -> None:
        xv, ov, c0, c1, scalar = task
        k = per_row[c0] if scalar else consts.take(c0, c1, False)
        centred(xv, ov, k, mode, bufs.get(k) if scalar else None)
        np.multiply(ov, k.fin, out=ov)

    run_tasks(run, tasks, x32.size)
    return res


class _ClampBuffers:
    """Constant arrays holding a chunk's clamp bounds, one pair per thread.

    numpy's fmax/fmin run several times faster array-with-array than array-with-scalar, so the
    bounds are materialized once per (thread, bound value) and reused by every chunk.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.local = threading.local()

    def get(self, k: _Consts) -> tuple[np.ndarray, np.ndarray]:
        cached = getattr(self.local, "pair", None)
        if cached is None:
            cached = (np.empty(self.size, F32), np.empty(self.size, F32), [None, None])
            self.local.pair = cached
        lo, hi, vals = cached
        if vals[0] != k.lo:
            lo.fill(k.lo)
            vals[0] = k.lo
        if vals[1] != k.hi:
            hi.fill(k.hi)
            vals[1] = k.hi
        return lo, hi


def quantize(
    x: Any,
    encoding: Encoding,
    *,
    rounding: str | None = None,
    semantics: str = "onnx",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize ``x`` to stored integers ``qmin .. qmax`` of ``encoding.storage_dtype``.

    Same arguments as :func:`fake_quantize`; the result is ``c + zero_point`` where ``c`` is the
    centred integer of the chosen semantics.

    Example (spec 004 "Quantization Example"):
        >>> from quantspec.runtime import encoding_from_range
        >>> e = encoding_from_range(-1.8, 0.5, 8, scheme="qnn_tf")
        >>> quantize([-1.8, -1.0, 0.0, 0.5], e).tolist()
        [0, 89, 200, 255]
    """
    mode = _check(encoding, semantics, rounding)
    if encoding.dtype != "int":
        raise errors.error(
            errors.BAD_DATA, "a float encoding has no integer grid",
            "use fake_quantize() for float16 casts",
        )
    x32, axis = _prepare(x, encoding)
    res = _output(out, x32.shape, encoding.storage_dtype)
    consts = _consts(encoding, semantics)
    centred = _CENTRED[semantics]
    tasks = _tasks(x32, res, axis, encoding.channels)

    def run(task: tuple[Any, ...]) -> None:
        xv, qv, c0, c1, scalar = task
        k = consts.take(c0, c1, scalar)
        scratch = np.empty(xv.shape, F32)
        centred(xv, scratch, k, mode, None)
        np.add(scratch, k.zp, out=scratch)
        np.copyto(qv, scratch, casting="unsafe")

    run_tasks(run, tasks, x32.size)
    return res


def dequantize(q: Any, encoding: Encoding, *, out: np.ndarray | None = None) -> np.ndarray:
    """Map stored integers back to float32: ``(q - zero_point) * scale`` (ONNX DequantizeLinear).

    Example (spec 004 "Dequantization Example"):
        >>> from quantspec.runtime import encoding_from_range
        >>> e = encoding_from_range(-1.8, 0.5, 8, scheme="qnn_tf")
        >>> [round(v, 4) for v in dequantize([0, 89, 200, 255], e).tolist()]
        [-1.8039, -1.0011, 0.0, 0.4961]
    """
    arr = np.asarray(q)
    if arr.dtype.kind not in "iuf":
        raise errors.error(errors.BAD_DATA, f"expected an integer array, got dtype {arr.dtype}")
    if encoding.dtype != "int":
        raise errors.error(errors.BAD_DATA, "a float encoding has no integer grid")
    axis = _normalize_axis(encoding, arr.ndim, arr.shape)
    res = _output(out, arr.shape, F32)
    np.copyto(res, arr, casting="unsafe")
    zp = encoding.zero_point.astype(F32)
    scale = encoding.scale.astype(F32)
    if axis is not None:
        shape = [1] * arr.ndim
        shape[axis] = encoding.channels
        zp, scale = zp.reshape(shape), scale.reshape(shape)
    else:
        zp, scale = zp[0], scale[0]
    np.subtract(res, zp, out=res)
    np.multiply(res, scale, out=res)
    return res
