"""Range -> encoding, once per vendor scheme, vectorized over channels.

Each scheme function takes float64 arrays ``mn``/``mx`` (one value per tensor or per channel) and
returns a :class:`Grid` (scale, AIMET-style offset, min, max). The arithmetic reproduces each
vendor's own code step by step, including its precision (double, or float32 where the vendor
computes in float), because the goal is bit-equality with the vendor tool:

* ``aimet2``: aimet-onnx 2.x ``getComputedEncodings`` (min-max, "tf"); aimet.md C.1.
* ``aimet1``: AIMET <= mid-2024 ``TfEncodingAnalyzer`` (MIN_RANGE 0.01); aimet.md C.1.
* ``aimet_fixed``: Python ``create_encoding_from_min_max`` (fixed ranges, half-even); C.2.
* ``qnn_tf``: QNN "tf" / "symmetric" quantizer (min range 1e-4, zero exact); spec 004.
* ``vitis_float``: vai_q_pytorch ``maxmin`` with float scales; vitis_amct.md 1.12.
* ``vitis_pof2``: vai_q_pytorch power-of-two ``maxmin`` (``diffs`` with scope 1); 1.12.
* ``amct``: AMCT ``calculate_scale_offset`` / ARQ; vitis_amct.md 2.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import errors
from .encoding import ArrayLike, Encoding, num_steps
from .rounding import round_array

F32_MAX = float(np.finfo(np.float32).max)
# aimet.md C.1: "Use 0.99 of numeric limits to avoid floating point overflow" (double).
AIMET_F_MIN = -F32_MAX * 0.99
AIMET_F_MAX = F32_MAX * 0.99
FLT_EPSILON = 2.0**-23
FLT_MIN = float(np.finfo(np.float32).tiny)


class Grid(NamedTuple):
    """Raw scheme output: float64 arrays plus the storage signedness the vendor uses."""

    scale: np.ndarray
    offset: np.ndarray
    min: np.ndarray
    max: np.ndarray
    signed: bool
    scale_type: str = "float"


class Options(NamedTuple):
    bits: int
    symmetric: bool
    strict: bool
    unsigned: bool
    zero_point_shift: float


SchemeFn = Callable[[np.ndarray, np.ndarray, Options], Grid]


def _steps(o: Options) -> float:
    return float(num_steps(o.bits, o.symmetric, o.strict))


def aimet2(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """aimet-onnx 2.x min-max (aimet.md C.1, verified bit-exact by the golden vectors)."""
    n = _steps(o)
    mn = np.clip(np.minimum(0.0, mn), AIMET_F_MIN, 0.0)  # zero always in range; +-inf clamped
    mx = np.clip(np.maximum(0.0, mx), 0.0, AIMET_F_MAX)
    unsigned = o.unsigned & (mn >= 0)
    min_scale = min(0.01 / n, FLT_EPSILON)  # 2^-23 for bw<=16, 0.01/N above
    npos = math.floor(n / 2) + o.zero_point_shift
    nneg = n - npos
    if n == 3 and o.zero_point_shift == 0.0:  # 2-bit: both sides get 2 steps (aimet.md C.1)
        npos = nneg
    d_sym = np.maximum(np.maximum(mx / npos, -mn / nneg), min_scale)
    d_asym = np.maximum((mx - mn) / n, min_scale)
    o_asym = np.clip(round_array(mn / d_asym, "half_away"), -n, 0.0)
    use_sym = o.symmetric & ~unsigned
    delta = np.where(use_sym, d_sym, d_asym)
    offset = np.where(use_sym, -nneg, o_asym)
    # Keep delta*offset and delta*(offset+N) inside +-0.99*FLT_MAX.
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(offset < 0, np.minimum(delta, AIMET_F_MIN / offset), delta)
        delta = np.where(offset + n > 0, np.minimum(delta, AIMET_F_MAX / (offset + n)), delta)
    return Grid(delta, offset, delta * offset, delta * (offset + n), o.symmetric)


def aimet1(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """AIMET 1.x / early 2.0 min-max with MIN_RANGE 0.01 (aimet.md C.1, "R1")."""
    n = _steps(o)
    mn = np.minimum(0.0, mn)
    mx = np.maximum(0.0, mx)
    mx = np.maximum(mx, mn + 0.01)
    use_sym = o.symmetric & ((mn < 0) | (not o.unsigned))
    absmax = np.maximum(np.abs(mn), np.abs(mx))
    npos = math.floor(n / 2)
    d_sym = absmax / npos
    o_sym = -float(math.ceil(n / 2))
    d_asym = (mx - mn) / n
    straddle = (mn < 0) & (mx > 0)
    o_straddle = -np.clip(round_array(-mn / d_asym, "half_away"), 0.0, n)
    o_side = round_array(mn / d_asym, "half_away")
    o_asym = np.where(straddle, o_straddle, o_side)
    min_asym = np.where(straddle, d_asym * o_asym, mn)
    max_asym = np.where(straddle, mx - mn + d_asym * o_asym, mx)
    return Grid(
        np.where(use_sym, d_sym, d_asym),
        np.where(use_sym, o_sym, o_asym),
        np.where(use_sym, o_sym * d_sym, min_asym),
        np.where(use_sym, d_sym * npos, max_asym),
        o.symmetric,
    )


def aimet_fixed(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """AIMET's Python fixed-range path ``recompute_grid_params`` (aimet.md C.2).

    Python ``round`` is half-even here, unlike the C++ paths.
    """
    half = 1 << (o.bits - 1)
    full = (1 << o.bits) - 1
    mn = np.minimum(0.0, mn)
    mx = np.maximum(np.maximum(0.0, mx), mn + 0.01)
    if o.symmetric:
        delta = np.maximum(np.abs(mx / (half - 1)), np.abs(mn / half))
        offset = np.full_like(delta, -(half - int(o.strict)))
        return Grid(delta, offset, delta * offset, delta * (half - 1), True)
    delta = (mx - mn) / full
    offset = round_array(mn / delta, "half_even")
    lo = delta * offset
    return Grid(delta, offset, lo, lo + delta * full, False)


def qnn_tf(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """QNN "tf" quantizer (spec 004 "Quantization" and "Quantization Modes").

    Min range 0.0001 is enforced on the true range first, then 0 is brought into the range, then
    the range is shifted so that 0 is a grid point (offset = round(-min/scale), C ``round``).
    ``symmetric`` first widens the range to (-absmax, absmax) ("Symmetric" mode); ``strict``
    drops one step so the grid is -(2^(b-1)-1) .. 2^(b-1)-1; ``unsigned`` keeps plain "tf" when
    the data has no negative values.
    """
    n = _steps(o)
    mx = np.maximum(mx, mn + 0.0001)
    mn = np.minimum(mn, 0.0)
    mx = np.maximum(mx, 0.0)
    if o.symmetric:
        absmax = np.maximum(np.abs(mn), np.abs(mx))
        keep = o.unsigned & (mn >= 0)
        mn = np.where(keep, mn, -absmax)
        mx = np.where(keep, mx, absmax)
    scale = (mx - mn) / n
    zp = np.clip(round_array(-mn / scale, "half_away"), 0.0, n)
    lo = -zp * scale
    return Grid(scale, -zp, lo, lo + n * scale, o.symmetric)


def vitis_float(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """vai_q_pytorch ``maxmin`` with float scales (vitis_amct.md 1.11, 1.12).

    Symmetric signed: ``scale = amax/qmax``, zp 0. Unsigned symmetric: ``scale = max/(2^b-1)``.
    Asymmetric: ``scale = (max-min)/(qmax-qmin)``, ``zp = round(-min/scale)`` (Python round);
    Vitis does not force 0 into an asymmetric range.
    """
    n = _steps(o)
    if o.symmetric and o.unsigned:
        negative = mn < 0
        if negative.any():
            if len(mn) == 1:
                # vitis_amct.md 1.11: per-tensor unsigned with negative data is a TypeError.
                raise errors.error(
                    errors.NEGATIVE_UNSIGNED,
                    "negative values encountered in unsigned quantization",
                    "use signed symmetric quantization for data with negative values",
                )
        # Per channel Vitis silently switches the whole tensor to signed (vitis_amct.md 1.11).
        if not negative.any():
            scale = _nonzero_scale(mx / ((1 << o.bits) - 1))
            zeros = np.zeros_like(scale)
            return Grid(scale, zeros, zeros, scale * ((1 << o.bits) - 1), False)
    if o.symmetric:
        qmax = (1 << (o.bits - 1)) - 1
        scale = _nonzero_scale(np.maximum(np.abs(mn), np.abs(mx)) / qmax)
        offset = np.full_like(scale, -(1 << (o.bits - 1)) + int(o.strict))
        return Grid(scale, offset, scale * offset, scale * (offset + n), True)
    # A constant tensor has no range: Vitis would divide by a zero scale. Widen it to include 0.
    flat = mx <= mn
    mn, mx = np.where(flat, np.minimum(mn, 0.0), mn), np.where(flat, np.maximum(mx, 0.0), mx)
    scale = _nonzero_scale((mx - mn) / n)
    zp = round_array(-mn / scale, "half_even")
    return Grid(scale, -zp, -zp * scale, (n - zp) * scale, False)


def _nonzero_scale(scale: np.ndarray) -> np.ndarray:
    # The vendor would divide by a zero scale for an all-constant tensor; use AIMET's minimum
    # scale (aimet.md C.1, 2^-23) so the grid stays valid.
    return np.where(scale > 0, scale, FLT_EPSILON)


def vitis_pof2(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """Power-of-two scale from min/max: vai_q ``diffs_fix_pos`` with scope 1 (vitis_amct.md 1.12).

    ``step = max(min/(-2^(b-1)-0.5), max/(2^(b-1)-0.5))`` and ``fix_pos = floor(log2(1/step))``
    in float32 (18 when step <= FLT_MIN), clamped to 12 for <= 8 bits and 15 above
    (``nndct_max_fix_position``); ``scale = 2^-fix_pos``. The grid is always signed.
    """
    fix_pos = vitis_fix_pos_from_range(mn, mx, o.bits)
    return pof2_grid(fix_pos, o)


def vitis_fix_pos_from_range(mn: np.ndarray, mx: np.ndarray, bits: int) -> np.ndarray:
    f32 = np.float32
    half = f32(1 << (bits - 1))
    lb, ub = -half - f32(0.5), half - f32(0.5)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.maximum(mn.astype(f32) / lb, mx.astype(f32) / ub)
        fp = np.floor(np.log2(f32(1) / step))
    fp = np.where(step <= FLT_MIN, 18.0, fp.astype(np.float64))
    return np.minimum(fp, 12.0 if bits <= 8 else 15.0)


def pof2_grid(fix_pos: np.ndarray, o: Options) -> Grid:
    """Signed power-of-two grid ``scale = 2^-fix_pos`` (Vitis DPU range, vitis_amct.md 1.13)."""
    n = float(num_steps(o.bits, True, o.strict))
    scale = np.exp2(-np.asarray(fix_pos, dtype=np.float64))
    offset = np.full_like(scale, -(1 << (o.bits - 1)) + int(o.strict))
    return Grid(scale, offset, scale * offset, scale * (offset + n), True, "power_of_two")


def amct(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """AMCT ``calculate_scale_offset`` + ``process_scale`` in float32 (vitis_amct.md 2.5).

    AMCT stores ``x_q = round(x/scale) + offset_amct`` in int8; the AIMET-style offset here is
    ``-2^(b-1) - offset_amct``. Symmetric divides by 2^(b-1) when the negative side dominates.
    """
    f32 = np.float32
    half = 1 << (o.bits - 1)
    full = (1 << o.bits) - 1
    mx32: np.ndarray = mx.astype(f32)
    mn32: np.ndarray = mn.astype(f32)
    scale: np.ndarray
    if o.symmetric:
        neg_dominates = np.abs(mx32) < np.abs(mn32)
        scope = (neg_dominates + (half - 1)).astype(f32)
        scale = np.where(np.abs(mx32) > np.abs(mn32), np.abs(mx32), np.abs(mn32)) / scope
        off_amct = np.zeros_like(scale)
        small = scale < f32(FLT_EPSILON)
        scale = np.where(small, f32(1.0), scale)
    else:
        mx32 = np.maximum(mx32, f32(0))
        mn32 = np.minimum(mn32, f32(0))
        scale = (mx32 - mn32) / f32(full)
        centre = f32(-math.ceil(full / 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            off_amct = np.where(mx32 != mn32, centre - mn32 / scale, centre)
        small = scale < f32(FLT_EPSILON)
        off_amct = np.where(small, f32(-half), off_amct)
        scale = np.where(small, f32(1.0), scale)
    off_amct = np.rint(off_amct).astype(np.float64)  # torch.round: half-even
    scale = scale.astype(np.float64)
    offset = -half - off_amct
    return Grid(scale, offset, scale * offset, scale * (offset + full), True)


def ort(mn: np.ndarray, mx: np.ndarray, o: Options) -> Grid:
    """onnxruntime's ``compute_scale_zp`` (onnxruntime/quantization/quant_utils.py, 1.32).

    The range is float32 with 0 brought in; symmetric grids use ``absmax`` on both sides (the
    narrow ``[-127, 127]`` of ``ONNX_INT_TYPE_SYMMETRIC_RANGE`` is ``strict`` here) and a zero
    point in the middle of the integer range (``round((qmin + qmax) / 2)``: offset
    ``-2^(b-1)`` or ``-(2^(b-1) - 1)``); asymmetric grids ``round(qmin - rmin / scale)`` with
    numpy's half-to-even rounding. The scale is computed in float64 and stored as float32; a
    range with a scale below float32's smallest normal gets scale 1.0 and zero point 0.
    ``unsigned`` (no onnxruntime equivalent) keeps ``[0, max]`` for non-negative data, as
    the other schemes do.
    """
    n = _steps(o)
    f32 = np.float32
    lo = np.minimum(mn.astype(f32), f32(0.0))
    hi = np.maximum(mx.astype(f32), f32(0.0))
    keep = o.unsigned & (lo >= 0)
    if o.symmetric:
        absmax = np.maximum(np.abs(lo), np.abs(hi))
        lo = np.where(keep, lo, -absmax)
        hi = np.where(keep, hi, absmax)
    scale = (hi.astype(np.float64) - lo.astype(np.float64)) / n
    tiny = scale < float(np.finfo(f32).tiny)
    safe = np.where(tiny, 1.0, scale)
    if o.symmetric:
        offset = np.where(keep, 0.0, -float(math.floor((n + 1) / 2)))
    else:
        offset = -np.round(-lo.astype(np.float64) / safe)  # zp = round(0 - rmin/scale)
    offset = np.where(tiny, np.where(o.symmetric & ~keep, offset, 0.0), offset)
    scale = np.where(tiny, 1.0, scale).astype(f32).astype(np.float64)
    return Grid(scale, offset, scale * offset, scale * (offset + n), o.symmetric)


SCHEMES: dict[str, SchemeFn] = {
    "aimet2": aimet2,
    "aimet1": aimet1,
    "aimet_fixed": aimet_fixed,
    "qnn_tf": qnn_tf,
    "vitis_float": vitis_float,
    "vitis_pof2": vitis_pof2,
    "amct": amct,
    "ort": ort,
}
SCHEME_ALIASES = {"aimet": "aimet2", "tf": "aimet2", "min_max": "aimet2", "qnn": "qnn_tf",
                  "vitis": "vitis_float", "power_of_two": "vitis_pof2", "pof2": "vitis_pof2",
                  "onnxruntime": "ort"}


def resolve_scheme(name: str) -> SchemeFn:
    """The scheme function for ``name`` (aliases accepted), or raise E404."""
    fn = SCHEMES.get(SCHEME_ALIASES.get(name, name))
    if fn is None:
        raise errors.unknown_name("encoding scheme", name, SCHEMES)
    return fn


def _check_options(scheme: str, o: Options) -> None:
    if o.symmetric and o.strict and o.unsigned:
        # aimet.md B.9: strict and unsigned symmetric are asserted exclusive by the analyzer.
        raise errors.error(
            errors.BAD_OPTIONS, "strict and unsigned symmetric grids are mutually exclusive",
            "drop one of strict=True / unsigned=True",
        )
    if o.zero_point_shift != 0.0 and (not o.symmetric or o.unsigned or o.strict):
        raise errors.error(
            errors.BAD_OPTIONS, "zero_point_shift needs a plain symmetric grid",
            "zero_point_shift only applies with symmetric=True, strict=False, unsigned=False",
        )
    if scheme == "amct" and o.symmetric and (o.strict or o.unsigned):
        raise errors.error(
            errors.BAD_OPTIONS, "AMCT grids have no strict or unsigned symmetric variant",
            "AMCT quantizes to the full int8 range (vitis_amct.md 2.5)",
        )
    if scheme == "vitis_pof2" and not o.symmetric:
        raise errors.error(
            errors.BAD_OPTIONS, "power-of-two scales are symmetric in Vitis AI",
            "pass symmetric=True with the vitis_pof2 scheme",
        )


def encoding_from_range(
    min: ArrayLike,
    max: ArrayLike,
    bits: int = 8,
    *,
    scheme: str = "aimet2",
    symmetric: bool = False,
    strict: bool = False,
    unsigned: bool = False,
    signed: bool | None = None,
    axis: int | None = None,
    zero_point_shift: float = 0.0,
) -> Encoding:
    """Compute an encoding from an observed range, exactly as the named vendor scheme does.

    Args:
        min, max: observed minimum/maximum (scalars, or one value per channel with ``axis``).
        bits: integer bit width.
        scheme: one of :data:`SCHEMES` (``aimet2`` default; aliases ``aimet``, ``qnn``, ...).
        symmetric, strict, unsigned: grid flags (aimet.md B.9).
        signed: storage signedness; default = the vendor's (AIMET: ``symmetric``).
        axis: channel axis when ``min``/``max`` hold one value per channel.
        zero_point_shift: AIMET's ``zero_point_shift`` for symmetric grids (aimet.md C.1).

    Returns:
        The :class:`~quantspec.runtime.encoding.Encoding`.

    Example:
        >>> e = encoding_from_range(-1.0, 0.5, 8, symmetric=True)
        >>> float(e.scale[0]) == 1 / 128, float(e.max[0])
        (True, 0.9921875)
    """
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 32:
        raise errors.bad_bits(bits)
    bits = int(bits)
    if bits == 1 and symmetric:
        raise errors.bad_bits(bits, "2..32 for symmetric grids")
    name = SCHEME_ALIASES.get(scheme, scheme)
    fn = resolve_scheme(name)
    o = Options(bits, bool(symmetric), bool(strict), bool(unsigned), float(zero_point_shift))
    _check_options(name, o)
    mn: np.ndarray = np.array(min, dtype=np.float64).reshape(-1)
    mx: np.ndarray = np.array(max, dtype=np.float64).reshape(-1)
    if mn.size == 0 or mx.size == 0:
        raise errors.error(errors.BAD_RANGE, "empty min/max")
    try:
        mn, mx = np.broadcast_arrays(mn, mx)
    except ValueError:
        raise errors.error(
            errors.BAD_AXIS, f"min has {mn.size} values but max has {mx.size}"
        ) from None
    if np.any(np.isnan(mn)) or np.any(np.isnan(mx)):
        raise errors.error(errors.BAD_RANGE, "min/max is NaN", "calibrate on finite data")
    if np.any(mn > mx):
        raise errors.error(errors.BAD_RANGE, "min is greater than max")
    if mn.size > 1 and axis is None:
        raise errors.error(
            errors.BAD_AXIS, f"{mn.size} per-channel ranges but no axis",
            "pass axis= for per-channel encodings",
        )
    if name not in ("aimet2",) and (np.any(np.isinf(mn)) or np.any(np.isinf(mx))):
        raise errors.error(
            errors.BAD_RANGE, f"infinite range for scheme {name!r}",
            "only the aimet2 scheme clamps infinite ranges (aimet.md C.1)",
        )
    g = fn(mn.copy(), mx.copy(), o)
    return Encoding(
        bits, g.scale, g.offset, g.min, g.max, symmetric=o.symmetric,
        strict=o.strict and o.symmetric, unsigned=o.unsigned and o.symmetric,
        signed=g.signed if signed is None else bool(signed), axis=axis, scale_type=g.scale_type,
    )
