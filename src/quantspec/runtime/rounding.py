"""Rounding modes used by the vendors, with exact tie rules (x = k + 0.5).

* ``half_even``: to the even neighbour. ONNX QuantizeLinear, numpy/torch round, Python
  ``round`` (aimet.md C.2).
* ``half_away`` (alias ``std_round``): away from zero, C ``round`` / C++ ``std::round``.
  AIMET's C++ kernels (aimet.md C.1, C.5), Vitis ``std_round`` (vitis_amct.md 1.11).
* ``half_up``: toward +inf (-2.5 -> -2, 2.5 -> 3). Vitis ``half_up`` (vitis_amct.md 1.11).
* ``half_down``: toward zero (-2.5 -> -2, 2.5 -> 2). Vitis ``half_down`` (vitis_amct.md 1.11).
* ``floor``, ``ceil``, ``trunc``: not round-to-nearest (Vitis codes 4 and 7).

Ties are detected as the Vitis CPU kernel does, ``x - floor(x) == 0.5``, which is exact except
for ``-0.5 < x < 0`` (``x + 1`` can round to 0.5 there; no half-integer lies in that interval, so
those are never ties). 0.49999997 therefore rounds to 0 in every mode, unlike the
``floor(x + 0.5)`` shortcut, which rounds it to 1.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import unknown_name

ROUNDING_MODES: tuple[str, ...] = (
    "half_even",
    "half_away",
    "std_round",
    "half_up",
    "half_down",
    "floor",
    "ceil",
    "trunc",
)
_ALIASES = {
    "round_half_even": "half_even", "banker": "half_even", "nearest": "half_even",
    "round": "half_away", "half_away_from_zero": "half_away", "half_toward_zero": "half_down",
}


def canonical_mode(mode: str) -> str:
    """Return the canonical name of ``mode`` (``std_round`` -> ``half_away``), or raise E404."""
    mode = _ALIASES.get(mode, mode)
    if mode not in ROUNDING_MODES:
        raise unknown_name("rounding mode", mode, ROUNDING_MODES)
    return "half_away" if mode == "std_round" else mode


def round_array(
    x: np.ndarray, mode: str = "half_even", out: np.ndarray | None = None
) -> np.ndarray:
    """Round a float array to integers (as floats) with the given tie rule.

    Args:
        x: float32 or float64 array.
        mode: one of :data:`ROUNDING_MODES`.
        out: optional output array (may be ``x`` itself for in-place rounding).

    Returns:
        ``out`` (or a new array) holding integral values of ``x``'s dtype.
    """
    mode = canonical_mode(mode)
    if out is None:
        out = np.empty_like(x)
    if mode == "half_even":
        np.rint(x, out=out)
        return out
    if mode in ("floor", "ceil", "trunc"):
        getattr(np, mode)(x, out=out)
        return out
    fl = np.floor(x)
    tie = ((x - fl) == 0.5) & ~((x > -0.5) & (x < 0))
    if not tie.any():
        np.rint(x, out=out)
        return out
    # At a tie rint() picks the even neighbour; overwrite it with the mode's neighbour. The
    # masks are taken before rint() because `out` may be `x`.
    if mode == "half_up":
        take_upper = tie
    elif mode == "half_away":
        take_upper = tie & (x > 0)
    else:  # half_down: toward zero
        take_upper = tie & (x < 0)
    take_lower = tie & ~take_upper
    np.rint(x, out=out)
    np.copyto(out, fl + 1, where=take_upper)
    np.copyto(out, fl, where=take_lower)
    return out


def round_scalar(v: float, mode: str = "half_even") -> float:
    """Scalar version of :func:`round_array` on a Python float (double precision)."""
    mode = canonical_mode(mode)
    if math.isnan(v) or math.isinf(v):
        return v
    if mode == "half_even":
        return float(round(v))
    if mode == "floor":
        return float(math.floor(v))
    if mode == "ceil":
        return float(math.ceil(v))
    if mode == "trunc":
        return float(math.trunc(v))
    fl = math.floor(v)
    if v - fl != 0.5 or -0.5 < v < 0:
        return float(round(v))
    if mode == "half_up" or (mode == "half_away" and v > 0) or (mode == "half_down" and v < 0):
        return float(fl + 1)
    return float(fl)
