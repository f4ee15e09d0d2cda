"""What the words inside a ``{ ... }`` block mean: flags (``int8``, ``symmetric``, ``off``) and
``key: value`` items, turned into IR settings. The formatter uses the inverse (:func:`to_items`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from .. import ir
from ..errors import QuantspecError, did_you_mean
from ..source import Span

_DTYPE_WORD = re.compile(r"^(u?int|float|fp|bfloat)(\d+)$")

FLAG_WORDS: dict[str, dict[str, Any]] = {
    "on": {"quantized": True},
    "off": {"quantized": False},
    "asymmetric": {"symmetric": False},
    "per_tensor": {"per_channel": False},
    "strict": {"strict_symmetric": True},
    "narrow": {"narrow_range": True},
    "unsigned": {"signed": False},
    "pow2": {"scale_type": "power_of_two"},
    "power_of_two": {"scale_type": "power_of_two"},
}
for _f in ir.BOOL_FIELDS:
    FLAG_WORDS.setdefault(_f, {_f: True})

KEY_ALIASES = {
    "calibrate": "calibration",
    "range": "fixed_range",
    "round": "rounding",
    "round_mode": "rounding",
    "bitwidth": "bits",
    "strict": "strict_symmetric",
    "unsigned": "unsigned_symmetric",
}


def dtype_word(word: str) -> dict[str, Any] | None:
    """``int8`` -> int/8, ``uint8`` -> int/8/unsigned, ``float16`` / ``fp16`` -> float/16."""
    m = _DTYPE_WORD.match(word)
    if not m:
        return None
    kind, bits = m.group(1), int(m.group(2))
    if kind == "int":
        return {"dtype": "int", "bits": bits}
    if kind == "uint":
        return {"dtype": "int", "bits": bits, "signed": False}
    return {"dtype": "float", "bits": bits}


def flag(word: str, span: Span) -> dict[str, ir.Setting]:
    values = FLAG_WORDS.get(word) or dtype_word(word)
    if values is None:
        choices = [*FLAG_WORDS, "int8", "int16", "uint8", "float16"]
        raise QuantspecError(
            "E006", f"unknown word '{word}' in a settings block", span,
            hint=did_you_mean(word, choices) or "write `key: value`, or a flag such as "
            "on, off, int8, symmetric, per_channel",
        )
    bits = values.get("bits")
    if bits is not None and not 1 <= bits <= 64:  # int0, int1000: same range as `bits:`
        raise QuantspecError("E005", f"'{word}': bits must be between 1 and 64, got {bits}", span,
                             hint="e.g. int4, int8, int16, uint8, float16")
    return {k: ir.Setting(v, span) for k, v in values.items()}


def setting(key: str, value: Any, span: Span, vspan: Span) -> dict[str, ir.Setting]:
    """A ``key: value`` item. ``value`` is the parsed literal (see parse.py)."""
    name = KEY_ALIASES.get(key, key)
    if name in ("min", "max"):
        num = _number(name, value, vspan, allow_null=False)
        return {f"_{name}": ir.Setting(num, vspan)}
    if name not in ir.FIELDS:
        raise QuantspecError(
            "E003", f"unknown setting '{key}'", span,
            hint=did_you_mean(key, [*ir.FIELDS, *KEY_ALIASES, "min", "max"])
            or f"settings are: {', '.join(ir.FIELDS)}",
        )
    return {name: ir.Setting(convert(name, value, vspan), vspan)}


def convert(name: str, value: Any, span: Span) -> Any:
    if isinstance(value, ir.Ref):
        if value.slot not in ("output", "input"):
            raise QuantspecError("E005", f"'like {value.slot}': only 'like output' and "
                                 "'like input' are supported", span)
        return value
    if name in ir.BOOL_FIELDS:
        return _bool(name, value, span)
    if name in ir.INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise QuantspecError("E005", f"'{name}' takes an integer, got {_show(value)}", span)
        if name in ("bits", "min_bits") and not 1 <= value <= 64:
            raise QuantspecError("E005", f"'{name}' must be between 1 and 64, got {value}", span,
                                 hint="e.g. bits: 8")
        return value
    if name == "dtype":
        return _choice(name, value, ir.DTYPES, span)
    if name == "scale_type":
        return _choice(name, value, ir.SCALE_TYPES, span)
    if name == "rounding":
        return _choice(name, value, ir.ROUNDING_MODES, span)
    if name == "calibration":
        return calibration(value, span)
    if name == "fixed_range":
        if not isinstance(value, tuple) or len(value) != 2:
            raise QuantspecError("E005", "'range' takes [min, max]", span,
                                 hint="e.g. range: [0, 1]  or  range: [0, null]")
        lo = _number(name, value[0], span, allow_null=True)
        hi = _number(name, value[1], span, allow_null=True)
        check_range(lo, hi, span)
        return (lo, hi)
    if name == "encodings":
        if not isinstance(value, tuple) or not value:
            raise QuantspecError("E005", "'encodings' takes a list of [min, max] per channel",
                                 span)
        out = []
        for pair in value:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise QuantspecError("E005", "each channel encoding is [min, max]", span)
            lo = _number(name, pair[0], span, allow_null=False)
            hi = _number(name, pair[1], span, allow_null=False)
            check_range(lo, hi, span)
            out.append((lo, hi))
        return tuple(out)
    return value


def check_range(lo: float | None, hi: float | None, span: Span) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise QuantspecError("E005", f"range min {lo} is greater than max {hi}", span)


def calibration(value: Any, span: Span) -> ir.Calibration:
    if isinstance(value, ir.Calibration):
        method = value.method
    elif isinstance(value, str):
        value = ir.Calibration(value)
        method = value
    else:
        raise QuantspecError("E005", f"'calibration' takes a method, got {_show(value)}", span,
                             hint="e.g. calibration: minmax  or  calibration: percentile(99.99)")
    method = value.method
    if method not in ir.CALIBRATION_METHODS:
        raise QuantspecError("E005", f"unknown calibration method '{method}'", span,
                             hint=did_you_mean(method, ir.CALIBRATION_METHODS)
                             or f"methods: {', '.join(ir.CALIBRATION_METHODS)}")
    return value


def finish(settings: dict[str, ir.Setting], span: Span) -> dict[str, ir.Setting]:
    """Fold ``min:`` / ``max:`` items into ``fixed_range``."""
    lo = settings.pop("_min", None)
    hi = settings.pop("_max", None)
    if lo is not None or hi is not None:
        if "fixed_range" in settings:
            raise QuantspecError("E005", "give either 'range' or 'min'/'max', not both",
                                 (lo or hi).span or span)  # type: ignore[union-attr]
        vlo = lo.value if lo else None
        vhi = hi.value if hi else None
        s = (lo or hi).span  # type: ignore[union-attr]
        check_range(vlo, vhi, s or span)
        settings["fixed_range"] = ir.Setting((vlo, vhi), s)
    return settings


def _bool(name: str, value: Any, span: Span) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("on", "true", "yes", "True"):
        return True
    if value in ("off", "false", "no", "False"):
        return False
    raise QuantspecError("E005", f"'{name}' takes on/off (or true/false), got {_show(value)}",
                         span)


def _choice(name: str, value: Any, choices: tuple[str, ...], span: Span) -> str:
    if isinstance(value, str) and value in choices:
        return value
    word = value if isinstance(value, str) else _show(value)
    raise QuantspecError("E005", f"'{name}' cannot be {word}", span,
                         hint=did_you_mean(str(word), choices) or f"one of: {', '.join(choices)}")


def _number(name: str, value: Any, span: Span, allow_null: bool) -> float | None:
    if value is None and allow_null:
        return None
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QuantspecError("E005", f"'{name}' takes a number, got {_show(value)}", span)
    return float(value)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "a list"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


# --------------------------------------------------------------------------------------------
# Inverse: settings -> canonical items (used by the formatter)
# --------------------------------------------------------------------------------------------


def to_items(settings: dict[str, ir.Setting]) -> list[str]:
    vals = {k: s.value for k, s in settings.items()}
    out: list[str] = []
    if isinstance(vals.get("quantized"), bool):  # `quantized: like input` is printed below
        out.append("on" if vals.pop("quantized") else "off")
    dtype, bits = vals.get("dtype"), vals.get("bits")
    if dtype is not None and isinstance(bits, int) and not isinstance(bits, bool):
        signed = vals.get("signed")
        if dtype == "int" and signed is False:
            out.append(f"uint{bits}")
            vals.pop("signed")
        else:
            out.append(f"{dtype}{bits}")
        vals.pop("dtype")
        vals.pop("bits")
    for name in ir.FIELDS:
        if name not in vals:
            continue
        v = vals[name]
        if isinstance(v, ir.Ref):
            out.append(f"{name}: {fmt_value(v)}")
        elif name == "symmetric" and isinstance(v, bool):
            out.append("symmetric" if v else "asymmetric")
        elif name == "per_channel" and isinstance(v, bool):
            out.append("per_channel" if v else "per_tensor")
        elif name in ir.BOOL_FIELDS and v is True:
            out.append(name)
        elif name == "fixed_range":
            out.append(f"range: [{fmt_value(v[0])}, {fmt_value(v[1])}]")
        else:
            out.append(f"{name}: {fmt_value(v)}")
    return out


def fmt_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, ir.Ref):
        return f"like {v.slot}"
    if isinstance(v, ir.Calibration):
        if not v.params:
            return v.method
        args = ", ".join(_fmt_arg(k, x) for k, x in v.params)
        return f"{v.method}({args})"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "[" + ", ".join(fmt_value(x) for x in v.items()) + "]"
    if isinstance(v, str):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", v) and v not in ("null", "true", "false",
                                                                       "like", "inf"):
            return v
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def _fmt_arg(k: str, v: Any) -> str:
    return fmt_value(v) if k.startswith("_") else f"{k}={fmt_value(v)}"
