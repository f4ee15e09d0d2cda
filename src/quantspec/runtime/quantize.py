"""Quantize, dequantize and fake-quantize (quantize-dequantize) in float32.

Three *semantics* reproduce three vendor kernels. They differ in the order of operations, which
decides the result at rounding ties and at the edges of the grid:

* ``onnx`` (ONNX QuantizeLinear/DequantizeLinear): ``c = clamp(R(x / scale), lo, hi)``,
  result ``c * scale``.
* ``aimet`` (aimet.md C.5): ``c = R(clamp(x, min, max) / scale - offset) + offset``, result
  ``c * scale``.
* ``vitis`` (vitis_amct.md 1.11): ``c = clamp(R(x * inv), lo, hi)`` with
  ``inv = float32(1/scale)``, result ``c * (1/inv)``.

``c`` is the centred integer (stored value minus zero point), ``lo, hi = offset,
offset + num_steps`` the encoding's own grid and ``R`` the rounding mode (default ``half_even``
for onnx and vitis, ``half_away`` for aimet). NaN maps to ``lo`` in all three (ONNX's reference
casts NaN to INT_MIN before saturating; AIMET maps NaN to ``min``).

Speed: the array is processed in cache-sized chunks (:mod:`quantspec.runtime.parallel`), on
several threads for large arrays, with ``out=`` everywhere and no temporaries on the default
path: ``divide, rint, multiply``, plus two reductions that decide whether a chunk needs clamping
at all (most do not) and one ``clip`` pass for those that do. Rows of a per-channel tensor that
share one scale run the same scalar loop; short rows are processed as broadcasting blocks.
benchmarks/RESULTS.md has the figures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import errors
from .encoding import Encoding
from .parallel import CHUNK, run_tasks
from .rounding import canonical_mode, round_array

SEMANTICS = ("onnx", "aimet", "vitis")
_DEFAULT_ROUNDING = {"onnx": "half_even", "aimet": "half_away", "vitis": "half_even"}
F32 = np.float32
_PIECE = 8 * CHUNK  # elements per task of a long row; each task loops over CHUNK-sized chunks


class _Consts:
    """Kernel constants in float32: arrays shaped for broadcasting, or scalars for one channel.

    ``div``: onnx/aimet divide by it (scale), vitis multiplies by it (float32(1/scale));
    ``fin``: factor of the final multiply; ``lo``/``hi``: centred grid bounds; ``a``/``b``/``off``:
    aimet's float32 min, max and offset; ``zp``: stored zero point; ``lo_max``/``hi_min``: bounds
    for the "chunk already inside the grid" test (and the clip bounds when ``uniform``). A plain
    slotted class: one is built per channel.
    """

    __slots__ = ("div", "fin", "lo", "hi", "a", "b", "off", "zp", "lo_max", "hi_min", "uniform")

    def __init__(self, vals: Sequence[Any], lo_max: float, hi_min: float,
                 uniform: bool = True) -> None:
        self.div, self.fin, self.lo, self.hi, self.a, self.b, self.off, self.zp = vals
        self.lo_max, self.hi_min = lo_max, hi_min
        self.uniform = uniform  # every channel has the same bounds: scalar clip is valid


_FIELDS = ("div", "fin", "lo", "hi", "a", "b", "off", "zp")


class _Table:
    """All channels' constants of one call: ``(C,)`` arrays, ``(C, 1)`` columns, bound lists."""

    def __init__(self, enc: Encoding, semantics: str) -> None:
        n = enc.num_steps
        scale32 = enc.scale.astype(F32)
        if semantics == "vitis":
            inv = (1.0 / enc.scale).astype(F32)  # Python 1.0/scale handed to the float kernel
            div, fin = inv, F32(1) / inv  # dst = (q - zp) * (1 / val_amp) in float
        else:
            div, fin = scale32, scale32
        self.arrays = {
            "div": div, "fin": fin, "lo": enc.offset.astype(F32),
            "hi": (enc.offset + n).astype(F32), "a": enc.min.astype(F32),
            "b": enc.max.astype(F32), "off": enc.offset.astype(F32),
            "zp": enc.zero_point.astype(F32),
        }
        self.columns = {f: v.reshape(-1, 1) for f, v in self.arrays.items()}
        self.lo = self.arrays["lo"].tolist()
        self.hi = self.arrays["hi"].tolist()

    def rows(self) -> list[_Consts]:
        """Scalar constants per channel (bulk conversion; float32 values are exact floats)."""
        cols = [self.arrays[f].tolist() for f in _FIELDS]
        return [_Consts(vals, vals[2], vals[3]) for vals in zip(*cols, strict=True)]

    def block(self, c0: int, c1: int, shape: tuple[int, ...], full: tuple[str, ...] = ()
              ) -> _Consts:
        """Constants of channels ``c0:c1`` for a ``(rows, cb, inner)`` block.

        Fields named in ``full`` are materialized to the block's shape: numpy's divide runs
        several times slower when an operand is broadcast along an outer dimension over short
        inner rows, while array-array loops stay vectorized. Other fields are ``(cb, 1)`` views.
        """
        vals: list[Any] = []
        for f in _FIELDS:
            v = self.columns[f][c0:c1]
            vals.append(np.broadcast_to(v, shape).copy() if f in full else v)
        lo, hi = self.lo[c0:c1], self.hi[c0:c1]
        uniform = min(lo) == max(lo) and min(hi) == max(hi)
        return _Consts(vals, max(lo), min(hi), uniform)


def _head(k: _Consts, rows: int) -> _Consts:
    """The first ``rows`` rows of materialized block constants (a last, shorter block)."""
    vals = [v[:rows] if v.ndim == 3 else v for v in (getattr(k, f) for f in _FIELDS)]
    return _Consts(vals, k.lo_max, k.hi_min, k.uniform)


_SHORT_INNER = 256  # below this, broadcast operands are materialized (see _Table.block)
_MATERIALIZE = {"onnx": ("div", "fin"), "vitis": ("div", "fin"), "aimet": ("a", "b", "div", "off")}


# -- element-wise steps: write the centred integer into `o` --------------------------------------
def _round(o: np.ndarray, mode: str) -> None:
    if mode == "half_even":
        np.rint(o, out=o)
    else:
        round_array(o, mode, out=o)


_MIN, _MAX = np.minimum.reduce, np.maximum.reduce  # the ufunc itself: no ndarray.min() wrapper


def _clamp(o: np.ndarray, k: _Consts, lo: Any, hi: Any) -> None:
    # Two reductions are cheaper than clamping passes, and most chunks are inside the grid.
    low = _MIN(o, axis=None)
    if not low >= k.lo_max:
        if k.uniform and low == low:  # no NaN (np.clip would keep it): one pass, both sides
            np.clip(o, k.lo_max, k.hi_min, out=o)
            return
        np.fmax(o, lo, out=o)  # fmax maps NaN to lo, like ONNX's cast of NaN to INT_MIN
    if not _MAX(o, axis=None) <= k.hi_min:
        np.fmin(o, hi, out=o)


def _centred_onnx(x: np.ndarray, o: np.ndarray, k: _Consts, mode: str, lo: Any, hi: Any) -> None:
    np.divide(x, k.div, out=o)
    _round(o, mode)
    _clamp(o, k, lo, hi)


def _centred_vitis(x: np.ndarray, o: np.ndarray, k: _Consts, mode: str, lo: Any, hi: Any) -> None:
    np.multiply(x, k.div, out=o)
    _round(o, mode)
    _clamp(o, k, lo, hi)


def _centred_aimet(x: np.ndarray, o: np.ndarray, k: _Consts, mode: str, lo: Any, hi: Any) -> None:
    # aimet.md C.5, float32 throughout: NaN -> min, clamp to [min, max], round(x/delta - offset).
    np.fmax(x, k.a, out=o)
    np.fmin(o, k.b, out=o)
    np.divide(o, k.div, out=o)
    np.subtract(o, k.off, out=o)
    _round(o, mode)
    np.add(o, k.off, out=o)


_CENTRED: dict[str, Callable[..., None]] = {
    "onnx": _centred_onnx, "aimet": _centred_aimet, "vitis": _centred_vitis,
}


class _ClampBounds:
    """Chunk-sized arrays filled with the clamp bounds, one pair per thread.

    numpy's fmax/fmin are several times faster array-with-array than array-with-scalar, so the
    bounds are materialized once per thread (and refilled only when a row's bounds change).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.local = threading.local()

    def get(self, k: _Consts) -> tuple[np.ndarray, np.ndarray]:
        state = getattr(self.local, "state", None)
        if state is None:
            state = [np.empty(self.size, F32), np.empty(self.size, F32), None, None]
            self.local.state = state
        if state[2] != k.lo:
            state[0].fill(k.lo)
            state[2] = k.lo
        if state[3] != k.hi:
            state[1].fill(k.hi)
            state[3] = k.hi
        return state[0], state[1]


# -- task layout -----------------------------------------------------------------------------------
def _tasks(x: np.ndarray, out: np.ndarray, axis: int | None, channels: int
           ) -> list[tuple[np.ndarray, np.ndarray, int, int, bool]]:
    """Split into tasks ``(x_view, out_view, c0, c1, scalar)``.

    ``scalar`` tasks are 1-d runs of one channel (looped over in CHUNK pieces); the others are
    ``(rows, channels, inner)`` blocks that broadcast per-channel constants.
    """
    if axis is None or channels == 1:
        xf, of = x.reshape(-1), out.reshape(-1)
        return [(xf[i:i + _PIECE], of[i:i + _PIECE], 0, 1, True)
                for i in range(0, xf.size, _PIECE)]
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    x3 = x.reshape(outer, channels, inner)
    o3 = out.reshape(outer, channels, inner)
    tasks: list[tuple[np.ndarray, np.ndarray, int, int, bool]] = []
    if inner >= CHUNK:  # long rows: one scalar loop per (outer, channel) row
        for i in range(outer):
            for c in range(channels):
                for j in range(0, inner, _PIECE):
                    tasks.append((x3[i, c, j:j + _PIECE], o3[i, c, j:j + _PIECE], c, c + 1, True))
    elif channels * inner <= CHUNK:  # short rows: blocks of several outer rows, all channels
        rows = max(1, CHUNK // (channels * inner))
        for i in range(0, outer, rows):
            tasks.append((x3[i:i + rows], o3[i:i + rows], 0, channels, False))
    else:
        cb = max(1, CHUNK // inner)
        for i in range(outer):
            for c in range(0, channels, cb):
                tasks.append((x3[i:i + 1, c:c + cb], o3[i:i + 1, c:c + cb], c,
                              min(c + cb, channels), False))
    return tasks


# -- argument handling ---------------------------------------------------------------------------
def _as_float32(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise errors.error(errors.BAD_DATA, f"expected a numeric array, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=F32, order="C")  # keeps 0-d arrays 0-d


def _normalize_axis(enc: Encoding, shape: tuple[int, ...]) -> int | None:
    if not enc.per_channel:
        return None
    assert enc.axis is not None
    ndim = len(shape)
    axis = enc.axis + ndim if enc.axis < 0 else enc.axis
    if not 0 <= axis < ndim:
        raise errors.error(errors.BAD_AXIS, f"axis {enc.axis} is out of range for a {ndim}-d array")
    if shape[axis] != enc.channels:
        raise errors.error(
            errors.BAD_AXIS,
            f"encoding has {enc.channels} channels but axis {enc.axis} has size {shape[axis]}",
        )
    return axis


def _mode(semantics: str, rounding: str | None) -> str:
    if semantics not in SEMANTICS:
        raise errors.unknown_name("quantization semantics", semantics, SEMANTICS)
    return canonical_mode(rounding or _DEFAULT_ROUNDING[semantics])


def _output(out: np.ndarray | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype \
            or not out.flags.c_contiguous or not out.flags.writeable:
        raise errors.error(
            errors.BAD_DATA,
            f"out must be a writeable C-contiguous {np.dtype(dtype).name} array of shape {shape}",
        )
    return out


def _int_only(enc: Encoding) -> None:
    if enc.dtype != "int":
        raise errors.error(
            errors.BAD_DATA, "a float encoding has no integer grid",
            "use fake_quantize() for float16 casts",
        )


# -- public kernels ------------------------------------------------------------------------------
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
        encoding: per-tensor or per-channel encoding (``encoding.axis`` is the channel axis).
        rounding: a mode of :data:`~quantspec.runtime.rounding.ROUNDING_MODES`; the default
            depends on ``semantics`` (``half_even`` for onnx/vitis, ``half_away`` for aimet).
        semantics: ``"onnx"``, ``"aimet"`` or ``"vitis"`` (see the module docstring).
        out: optional float32 C-contiguous output; may be ``x`` itself (in place).

    Returns:
        float32 array of grid values with the shape of ``x``.

    Example:
        >>> from quantspec.runtime import encoding_from_range
        >>> e = encoding_from_range(-1.0, 1.0, 8, symmetric=True)
        >>> [round(v, 6) for v in fake_quantize([0.3, 5.0, -5.0], e).tolist()]
        [0.299213, 1.0, -1.007874]
    """
    mode = _mode(semantics, rounding)
    x32 = _as_float32(x)
    res = _output(out, x32.shape, F32)
    if encoding.dtype != "int":
        np.copyto(res, x32.astype(np.float16) if encoding.bits == 16 else x32, casting="unsafe")
        return res
    axis = _normalize_axis(encoding, x32.shape)
    table = _Table(encoding, semantics)
    centred = _CENTRED[semantics]
    rows = table.rows()
    blocks: dict[tuple[int, int], _Consts] = {}
    bounds = _ClampBounds(min(CHUNK, max(1, x32.size)))

    def run(task: tuple[np.ndarray, np.ndarray, int, int, bool]) -> None:
        xv, ov, c0, c1, scalar = task
        if not scalar:
            k = blocks.get((c0, c1))
            if k is None:
                shared = c1 - c0 == encoding.channels  # every block task uses these constants
                full = _MATERIALIZE[semantics] if xv.shape[2] < _SHORT_INNER else ()
                k = table.block(c0, c1, xv.shape, full)
                if shared:
                    blocks[(c0, c1)] = k
            elif len(xv) < len(k.div):
                k = _head(k, len(xv))
            centred(xv, ov, k, mode, k.lo, k.hi)
            np.multiply(ov, k.fin, out=ov)
            return
        k = rows[c0]
        lo_buf, hi_buf = bounds.get(k)
        fin = k.fin
        for i in range(0, xv.size, CHUNK):  # the hot loop: keep it free of Python work
            xc, oc = xv[i:i + CHUNK], ov[i:i + CHUNK]
            m = oc.size
            centred(xc, oc, k, mode, lo_buf[:m], hi_buf[:m])
            np.multiply(oc, fin, out=oc)

    run_tasks(run, _tasks(x32, res, axis, encoding.channels), x32.size)
    return res


def quantize(
    x: Any,
    encoding: Encoding,
    *,
    rounding: str | None = None,
    semantics: str = "onnx",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize ``x`` to stored integers in ``encoding.qmin .. encoding.qmax``.

    Same arguments as :func:`fake_quantize`; the result has ``encoding.storage_dtype`` and equals
    ``c + zero_point`` for the semantics' centred integer ``c``. The arithmetic is float32, as in
    the vendor kernels, so grids wider than 2^24 steps are not exact.

    Example (spec 004, "Quantization Example"):
        >>> from quantspec.runtime import encoding_from_range
        >>> e = encoding_from_range(-1.8, 0.5, 8, scheme="qnn_tf")
        >>> quantize([-1.8, -1.0, 0.0, 0.5], e).tolist()
        [0, 89, 200, 255]
    """
    mode = _mode(semantics, rounding)
    _int_only(encoding)
    x32 = _as_float32(x)
    axis = _normalize_axis(encoding, x32.shape)
    res = _output(out, x32.shape, encoding.storage_dtype)
    table = _Table(encoding, semantics)
    centred = _CENTRED[semantics]
    rows = table.rows()

    def run(task: tuple[np.ndarray, np.ndarray, int, int, bool]) -> None:
        xv, qv, c0, c1, scalar = task
        k = rows[c0] if scalar else table.block(c0, c1, xv.shape)
        step = CHUNK if scalar else len(xv)
        for i in range(0, len(xv), step):
            xc, qc = xv[i:i + step], qv[i:i + step]
            scratch = np.empty(xc.shape, F32)
            centred(xc, scratch, k, mode, k.lo, k.hi)
            np.add(scratch, k.zp, out=scratch)
            np.copyto(qc, scratch, casting="unsafe")

    run_tasks(run, _tasks(x32, res, axis, encoding.channels), x32.size)
    return res


def dequantize(q: Any, encoding: Encoding, *, out: np.ndarray | None = None) -> np.ndarray:
    """Map stored integers back to float32, ``(q - zero_point) * scale`` (ONNX DequantizeLinear).

    Example (spec 004, "Dequantization Example"):
        >>> from quantspec.runtime import encoding_from_range
        >>> e = encoding_from_range(-1.8, 0.5, 8, scheme="qnn_tf")
        >>> [round(v, 6) for v in dequantize([0, 89, 200, 255], e).tolist()]
        [-1.803922, -1.001176, 0.0, 0.496078]
    """
    arr = np.asarray(q)
    if arr.dtype.kind not in "iuf":
        raise errors.error(errors.BAD_DATA, f"expected an integer array, got dtype {arr.dtype}")
    _int_only(encoding)
    axis = _normalize_axis(encoding, arr.shape)
    res = _output(out, arr.shape, F32)
    np.copyto(res, arr, casting="unsafe")
    zp = encoding.zero_point.astype(F32)
    scale = encoding.scale.astype(F32)
    if axis is not None:
        shape = [1] * arr.ndim
        shape[axis] = encoding.channels
        np.subtract(res, zp.reshape(shape), out=res)
        np.multiply(res, scale.reshape(shape), out=res)
    else:
        np.subtract(res, zp[0], out=res)
        np.multiply(res, scale[0], out=res)
    return res
