"""Runtime diagnostics (``E4xx``): bad encodings, bad calibration data, bad kernel arguments.

Every function here *returns* a :class:`~quantspec.errors.QuantspecError` so call sites read
``raise bad_bits(bits)`` and tracebacks point at the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import QuantspecError, did_you_mean

BAD_BITS = "E401"  # bit width outside what the scheme supports
BAD_RANGE = "E402"  # min/max not finite, min > max, non-positive scale
BAD_OPTIONS = "E403"  # option combination a vendor rejects (strict + unsigned, ...)
UNKNOWN_NAME = "E404"  # unknown scheme / rounding mode / semantics / calibrator / statistic
NEGATIVE_UNSIGNED = "E405"  # negative data for an unsigned per-tensor grid (Vitis)
BAD_AXIS = "E406"  # axis out of range or channel count mismatch
MERGE_MISMATCH = "E407"  # merging calibrators with different configuration
NO_DATA = "E408"  # encoding requested before any calibration data
BAD_DATA = "E409"  # data that is not a real-valued array
BAD_PACKING = "E410"  # 4-bit packing of values that do not fit, wrong lengths
BAD_PARAMETER = "E411"  # parameter value out of its documented range


def error(code: str, message: str, hint: str = "") -> QuantspecError:
    return QuantspecError(code, message, hint=hint)


def bad_bits(bits: object, allowed: str = "1..32") -> QuantspecError:
    return error(BAD_BITS, f"bit width {bits!r} is not supported", f"use a bit width in {allowed}")


def unknown_name(kind: str, name: object, choices: Iterable[str]) -> QuantspecError:
    options = sorted(choices)
    hint = did_you_mean(str(name), options) or "choose one of: " + ", ".join(options)
    return error(UNKNOWN_NAME, f"unknown {kind} {name!r}", hint)


def bad_parameter(name: str, value: object, expected: str) -> QuantspecError:
    return error(BAD_PARAMETER, f"{name}={value!r} is out of range", f"expected {expected}")


def no_data(what: str) -> QuantspecError:
    return error(
        NO_DATA,
        f"{what} has seen no calibration data",
        "call update(batch) with at least one non-empty batch before asking for an encoding",
    )
