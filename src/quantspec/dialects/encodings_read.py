"""Reading AIMET / QNN encodings files (0.4.0 to 2.1.0) into :class:`EncodingFile`.

Two layers of checks, both pointing at ``file:line:col`` of the offending value:

1. the JSON Schemas shipped in ``quantspec/schemas/encodings_*.json`` (shape, types, fields), then
2. semantic checks (bit widths, zero points that fit the dtype, scale > 0, finite numbers,
   per-channel lengths, duplicated tensors).

Error codes: E130 shape (schema), E131 version, E132 bit width / dtype, E133 offset / zero point,
E134 scale / min / max values, E135 per-channel consistency, E136 duplicates, E137 incomplete
range. JSON syntax errors are jsonpos's E110/E111.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import QuantspecError, did_you_mean
from ..jsonpos import PathT, Positions, json_path, loads
from ..source import Span
from .encodings_model import (
    FLOAT_BITWIDTHS,
    FLOAT_DTYPES_V2,
    INT_BITWIDTHS,
    LEGACY_VERSIONS,
    READ_VERSIONS,
    EncodingFile,
    TensorEncoding,
    levels,
    offset_from_zero_point,
    qnn_encoding,
    zero_point_range,
)

if TYPE_CHECKING:  # imported on use, so sniffing a file's dialect stays cheap (lint)
    import jsonschema

SECTIONS = (("activation_encodings", "activation"), ("param_encodings", "param"))
_SECTION_NAMES = ("activation_encodings", "param_encodings")
_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
_SCHEMA_FILES = {
    "legacy": "encodings_legacy.json",
    "1.0.0": "encodings_v1.json",
    "2.x": "encodings_v2.json",
}
_INT_DTYPE = re.compile(r"(u?)int(\d+)")
_V2_DTYPES = (
    *(f"{u}int{b}" for u in ("", "u") for b in (4, 8, 16, 32)), *FLOAT_DTYPES_V2,
)
# Field names of the other versions, for "did you mean" hints across versions (aimet.md D).
_CROSS_VERSION = {
    "legacy": {"bw": "bitwidth", "is_sym": "is_symmetric", "y_scale": "scale"},
    "1.0.0": {"bitwidth": "bw", "is_symmetric": "is_sym", "y_scale": "scale"},
    "2.x": {"scale": "y_scale", "offset": "y_zero_point", "dtype": "output_dtype"},
}


def read_file(
    text: str, file: str = "<string>", *, version: str | None = None, strict: bool = True
) -> EncodingFile:
    """Parse and validate an encodings file of any supported version.

    Args:
        text: the file's text.
        file: name used in error positions.
        version: the version to assume when the file does not declare one (default: inferred
            from the shape, as AIMET's loader does).
        strict: reject unknown fields and duplicated keys / tensors (else ignore them; for a
            duplicated tensor the last entry wins, like Python's ``json``).

    Raises:
        QuantspecError: E110/E111 (JSON syntax) or E130-E137, at the offending value.
    """
    doc, pos = loads(text, file)
    reader = _Reader(pos, strict, doc)
    if not isinstance(doc, dict):
        raise reader.error("E130", "an encodings file is a JSON object", (),
                           hint='expected {"version": ..., "activation_encodings": ...}')
    layout, ver, declared = reader.detect_version(doc, version)
    reader.check_schema(doc, layout)
    reader.check_duplicate_keys()
    entries = reader.unique_tensors(list(reader.entries(doc, layout)))
    extra = {k: v for k, v in doc.items() if k not in _KNOWN_TOP}
    return EncodingFile(
        version=ver,
        entries=entries,
        quantizer_args=doc.get("quantizer_args"),
        producer=doc.get("producer"),
        extra=extra,
        version_declared=declared,
        file=file,
        spans={k: pos.get((k,)) for k in doc},
    )


_KNOWN_TOP = frozenset(
    {"version", "activation_encodings", "param_encodings", "encodings", "quantizer_args",
     "producer"}
)


@functools.cache
def schema(layout: str) -> dict[str, Any]:
    """The JSON Schema of a layout: ``"legacy"``, ``"1.0.0"`` or ``"2.x"``."""
    data: dict[str, Any] = json.loads((_SCHEMA_DIR / _SCHEMA_FILES[layout]).read_text("utf-8"))
    return data


@functools.cache
def _validator(layout: str) -> jsonschema.protocols.Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(schema(layout))


def layout_of(version: str) -> str:
    if version in LEGACY_VERSIONS:
        return "legacy"
    return "1.0.0" if version == "1.0.0" else "2.x"


class _Reader:
    def __init__(self, pos: Positions, strict: bool, doc: Any = None) -> None:
        self.pos = pos
        self.strict = strict
        self.doc = doc

    # -- positions and errors -------------------------------------------------------------------

    def span(self, path: PathT) -> Span:
        """Span of the value at ``path`` (falls back to the nearest ancestor)."""
        return self.pos.value_span(path)

    def field_spans(self, path: PathT, fields: dict[str, str]) -> dict[str, Span]:
        """Spans of the entry fields that exist, by model part (for IR setting spans)."""
        out = {}
        for part, key in fields.items():
            span = self.pos.spans.get((*path, key))
            if span is not None:
                out[part] = span
        return out

    def key_span(self, path: PathT) -> Span:
        return self.pos.key_spans.get(tuple(path)) or self.span(path)

    def error(self, code: str, message: str, path: PathT, *, hint: str = "",
              key: bool = False) -> QuantspecError:
        span = self.key_span(path) if key else self.span(path)
        return QuantspecError(code, message, span, hint=hint)

    # -- version --------------------------------------------------------------------------------

    def detect_version(self, doc: dict[str, Any], assumed: str | None) -> tuple[str, str, bool]:
        """``(layout, version, declared)``; the shape decides when no version is given.

        aimet.md D (loader): ``y_scale`` entries -> 2.x, lists with ``bw`` -> 1.0.0, dicts keyed
        by tensor -> 0.6.1. Here the containers decide, so that a malformed entry still gets the
        right schema and a precise error.
        """
        shape = self._shape(doc)
        declared = "version" in doc
        if declared:
            ver = doc["version"]
            if not isinstance(ver, str):
                raise self.error("E130", f"'version' must be a string, got {_json_type(ver)}",
                                 ("version",), hint='e.g. "version": "1.0.0"')
            if ver not in READ_VERSIONS:
                raise self.error(
                    "E131", f"unsupported encodings version '{ver}'", ("version",),
                    hint=did_you_mean(ver, READ_VERSIONS)
                    or f"supported: {', '.join(READ_VERSIONS)}",
                )
        elif assumed is not None:
            if assumed not in READ_VERSIONS:
                raise QuantspecError("E131", f"unsupported encodings version '{assumed}'",
                                     self.span(()), hint=f"supported: {', '.join(READ_VERSIONS)}")
            ver = assumed
        else:
            ver = {"legacy": "0.6.1", "1.0.0": "1.0.0", "2.x": "2.0.0"}.get(shape, "")
        if shape is None:
            raise self.error(
                "E131", "not an encodings file: no 'activation_encodings', 'param_encodings' "
                "or 'encodings'", (), hint="see docs/encodings.md for the supported layouts",
            )
        layout = layout_of(ver)
        if shape != layout:
            where = "encodings" if shape == "2.x" else self._section_path(doc)
            raise self.error(
                "E131", f"version {ver} does not use this layout: {_LAYOUT_TEXT[shape]}",
                (where,), key=True,
                hint=f"in {ver} {_LAYOUT_TEXT[layout]}; set \"version\" to match the content",
            )
        return layout, ver, declared

    @staticmethod
    def _section_path(doc: dict[str, Any]) -> str:
        return "activation_encodings" if "activation_encodings" in doc else "param_encodings"

    @staticmethod
    def _shape(doc: dict[str, Any]) -> str | None:
        if "encodings" in doc and not any(s in doc for s, _ in SECTIONS):
            return "2.x"
        sections = [doc[s] for s, _ in SECTIONS if s in doc]
        if not sections:
            return None
        if any(isinstance(s, list) for s in sections):
            return "1.0.0"
        return "legacy"

    # -- schema ---------------------------------------------------------------------------------

    def check_schema(self, doc: dict[str, Any], layout: str) -> None:
        found: list[tuple[tuple[int, int, int], QuantspecError]] = []
        errors = list(_validator(layout).iter_errors(doc))
        # A misspelt field explains the "missing" one: report the spelling, with its hint.
        misspelt = {tuple(e.absolute_path) for e in errors
                    if e.validator == "additionalProperties" and self.strict}
        for err in errors:
            if err.validator == "required" and tuple(err.absolute_path) in misspelt:
                continue
            converted = self._convert(err, layout)
            if converted is None:
                continue
            span = converted.span
            line, col = (span.line, span.col) if span else (0, 0)
            found.append(((line, col, -len(err.absolute_path)), converted))
        if found:
            raise min(found, key=lambda f: f[0])[1]
        if layout != "2.x" and not any(s in doc for s, _ in SECTIONS):
            raise self.error("E130", "missing 'activation_encodings' and 'param_encodings'", ())

    def _convert(self, err: jsonschema.ValidationError, layout: str) -> QuantspecError | None:
        path = tuple(err.absolute_path)
        field = _field_name(path)
        kw = err.validator
        if kw == "additionalProperties":
            if not self.strict:
                return None
            props = list(err.schema.get("properties", {}))
            extra = [k for k in err.instance if k not in props]
            key = extra[0]
            hint = _CROSS_VERSION[layout].get(key, "")
            hint = f"did you mean '{hint}'? ('{key}' is spelled so in another version)" if hint \
                else did_you_mean(key, props)
            where = self._describe(path)
            if layout == "2.x" and key == "bw":
                return self.error("E130", f"'bw' is not a 2.x field{where}", (*path, key),
                                  key=True, hint="2.x takes the bit width from output_dtype, "
                                  'e.g. "output_dtype": "int8"')
            return self.error("E130", f"unknown field '{key}'{where}", (*path, key), key=True,
                              hint=hint or f"expected one of: {', '.join(props)}")
        if kw == "required":
            missing = [k for k in err.validator_value if k not in err.instance]
            return self.error("E130", f"missing '{missing[0]}'{self._describe(path)}", path,
                              key=True)
        if kw == "type" and layout == "legacy" and len(path) == 2 and path[0] in _SECTION_NAMES:
            return self.error("E130", f"the encoding of '{path[1]}' must be a list with one "
                              f"entry per channel, got {_json_type(err.instance)}", path)
        if kw == "type":
            want = err.validator_value
            want = " or ".join(want) if isinstance(want, list) else want
            hint = ""
            if want == "boolean" and err.instance in ("True", "False"):
                hint = f"1.0.0 writes JSON {str(err.instance).lower()} (0.6.1 wrote the string)"
            elif want in ("number", "integer") and isinstance(err.instance, str):
                hint = "write the number without quotes"
            return self.error("E130", f"'{field}' must be {_article(want)}, got "
                              f"{_json_type(err.instance)}", path, hint=hint)
        if kw in ("enum", "const"):
            choices = err.validator_value if kw == "enum" else [err.validator_value]
            shown = ", ".join(json.dumps(c) for c in choices)
            return self.error(
                "E130", f"'{field}' must be one of {shown}, got {json.dumps(err.instance)}", path,
                hint=did_you_mean(str(err.instance), [str(c) for c in choices]),
            )
        if kw == "minItems":
            return self.error("E130", f"'{field}' must not be empty", path)
        if kw == "anyOf":
            what = "an integer or a list of integers" if field == "y_zero_point" else \
                "a number or a (nested) list of numbers"
            return self.error("E130", f"'{field}' must be {what}, got "
                              f"{_json_type(err.instance)}", path)
        return self.error("E130", f"{err.message} at {json_path(path)}", path)

    def _describe(self, path: PathT) -> str:
        if not path:
            return " at the top level"
        if path[0] in ("activation_encodings", "param_encodings", "encodings") and len(path) >= 2:
            return f" in the encoding of '{self._entry_name(path)}'"
        return f" in '{path[0]}'"

    def _entry_name(self, path: PathT) -> str:
        if isinstance(path[1], str):  # legacy: keyed by tensor name
            return path[1]
        try:
            name = self.doc[path[0]][path[1]]["name"]
        except (KeyError, IndexError, TypeError):
            name = None
        return name if isinstance(name, str) else f"{path[0]}[{path[1]}]"

    def check_duplicate_keys(self) -> None:
        if not self.strict or not self.pos.duplicates:
            return
        path, first, again = min(self.pos.duplicates, key=lambda d: (d[2].line, d[2].col))
        in_section = len(path) == 2 and path[0] in ("activation_encodings", "param_encodings")
        what = f"tensor '{path[-1]}'" if in_section else f"key '{path[-1]}'"
        raise QuantspecError("E136", f"duplicate {what}", again, related=[(first, "first at")],
                             hint="JSON readers keep the last one silently")

    def unique_tensors(self, entries: list[TensorEncoding]) -> list[TensorEncoding]:
        """E136 for a tensor encoded twice; non-strict: the last entry wins, in its place."""
        seen: dict[str, TensorEncoding] = {}
        for e in entries:
            if e.name in seen and self.strict:
                first = seen[e.name].span
                raise QuantspecError(
                    "E136", f"tensor '{e.name}' has more than one encoding", e.span,
                    related=[(first, "first at")] if first else (),
                    hint="a tensor has one encoding (one per channel inside the entry)",
                )
            seen.pop(e.name, None)
            seen[e.name] = e
        return list(seen.values())

    # -- entries --------------------------------------------------------------------------------

    def entries(self, doc: dict[str, Any], layout: str) -> Iterator[TensorEncoding]:
        if layout == "legacy":
            for section, kind in SECTIONS:
                for name, chans in doc.get(section, {}).items():
                    yield self.legacy_entry(name, chans, (section, name), kind)
        elif layout == "1.0.0":
            for section, kind in SECTIONS:
                for i, e in enumerate(doc.get(section, [])):
                    yield self.v1_entry(e, (section, i), kind)
        else:
            for i, e in enumerate(doc["encodings"]):
                yield self.v2_entry(e, ("encodings", i))

    # legacy (0.4.0 / 0.5.0 / 0.6.1) -----------------------------------------------------------

    def legacy_entry(self, name: str, chans: list[dict[str, Any]], path: PathT,
                     kind: str) -> TensorEncoding:
        first = chans[0]
        dtype = first.get("dtype", "int")  # 0.4.0 had no dtype: int (aimet.md D)
        bits = int(first["bitwidth"])
        sym = _legacy_bool(first.get("is_symmetric"))
        for i, ch in enumerate(chans[1:], 1):
            for key, want in (("bitwidth", bits), ("dtype", dtype), ("is_symmetric", sym)):
                got = {"bitwidth": ch.get("bitwidth"), "dtype": ch.get("dtype", "int"),
                       "is_symmetric": _legacy_bool(ch.get("is_symmetric"))}[key]
                if got != want:
                    raise self.error(
                        "E135", f"channel {i} of '{name}' has {key} {_show(got)}, channel 0 has "
                        f"{_show(want)}", (*path, i, key) if key in ch else (*path, i),
                        hint="the encodings of one tensor share bitwidth, dtype and "
                        "is_symmetric (spec 004, per-channel overrides)",
                    )
        self.check_bitwidth(dtype, bits, (*path, 0, "bitwidth"))
        enc = TensorEncoding(
            name=name, kind=kind, dtype=dtype, bitwidth=bits,
            symmetric=sym if dtype == "int" else None,
            enc_type="PER_CHANNEL" if len(chans) > 1 else "PER_TENSOR",
            span=self.key_span(path),
        )
        enc.spans = self.field_spans(path + (0,), {
            "bitwidth": "bitwidth", "dtype": "dtype", "symmetric": "is_symmetric",
            "range": "min" if "min" in first else "scale",
        })
        if dtype == "float":
            return enc
        grids = [self.legacy_channel(ch, (*path, i), bits) for i, ch in enumerate(chans)]
        if all(g is None for g in grids):
            return enc  # bitwidth only: "calibrate it, with this width" (spec 004 mixed precision)
        for i, g in enumerate(grids):
            if g is None:
                raise self.error(
                    "E137", f"channel {i} of '{name}' has no range but other channels do",
                    (*path, i), hint="give min and max (or scale and offset) for every channel",
                )
        enc.scale = [g[0] for g in grids if g]
        enc.offset = [g[1] for g in grids if g]
        enc.min, enc.max = enc.grid_ranges()
        return enc

    def legacy_channel(self, ch: dict[str, Any], path: PathT,
                       bits: int) -> tuple[float, float] | None:
        """``(scale, TfEncoding offset)`` of one legacy channel, or None without a range.

        QNN semantics (spec 004, "Quantization Overrides"): bitwidth, min and max suffice; scale
        and offset are recomputed from them. Consistent scale/offset (what AIMET writes) are kept
        as they are, so numbers survive a round trip bit for bit.
        """
        for key in ("min", "max", "scale", "offset"):
            if key in ch:
                self.check_finite(ch[key], (*path, key))
        if ("scale" in ch) != ("offset" in ch) and not ("min" in ch and "max" in ch):
            have, lack = ("scale", "offset") if "scale" in ch else ("offset", "scale")
            raise self.error("E137", f"'{have}' without '{lack}'", (*path, have),
                             hint="give bitwidth, min and max (spec 004), or scale and offset")
        if "scale" in ch:
            self.check_scale(ch["scale"], (*path, "scale"))
        if "offset" in ch:
            # AIMET's loader accepts legacy offsets in [-2**bw, 2**bw - 1] (aimet.md D).
            self.check_offset(ch["offset"], (*path, "offset"), -(1 << bits), (1 << bits) - 1,
                              f"{bits}-bit legacy offsets")
        if ("min" in ch) != ("max" in ch):
            have, lack = ("min", "max") if "min" in ch else ("max", "min")
            raise self.error("E137", f"'{have}' without '{lack}'", (*path, have),
                             hint="QNN needs bitwidth, min and max (spec 004)")
        if "min" in ch:
            mn, mx = float(ch["min"]), float(ch["max"])
            if mn > mx:
                raise self.error("E134", f"min {mn!r} is greater than max {mx!r}",
                                 (*path, "max"))
            if "scale" in ch and "offset" in ch and _consistent(
                    mn, mx, float(ch["scale"]), float(ch["offset"]), bits):
                return float(ch["scale"]), float(ch["offset"]) + 0.0
            return qnn_encoding(mn, mx, bits)
        if "scale" in ch:
            off = float(ch["offset"])
            # A positive offset is QNN's convention round(-min/scale) (spec 004); AIMET's is <= 0.
            return float(ch["scale"]), -off if off > 0 else off + 0.0
        return None

    # 1.0.0 ------------------------------------------------------------------------------------

    def v1_entry(self, e: dict[str, Any], path: PathT, kind: str) -> TensorEncoding:
        dtype = "int" if e["dtype"] == "INT" else "float"
        enc_type = e["enc_type"]
        bits = int(e["bw"])
        self.check_bitwidth(dtype, bits, (*path, "bw"))
        if enc_type == "LPBQ" and dtype == "int":
            if "compressed_bw" not in e:
                raise self.error("E130", f"missing 'compressed_bw' in the LPBQ encoding of "
                                 f"'{e['name']}'", path, key=True)
            # aimet.md D: LPBQ "bw" is the decompressed width; the grid has compressed_bw bits.
            decompressed, bits = bits, int(e["compressed_bw"])
            self.check_bitwidth(dtype, bits, (*path, "compressed_bw"))
        enc = TensorEncoding(
            name=e["name"], kind=kind, dtype=dtype, bitwidth=bits,
            symmetric=bool(e["is_sym"]) if dtype == "int" else None, enc_type=enc_type,
            block_size=_opt_int(e.get("block_size")), span=self.span(path),
        )
        enc.spans = self.field_spans(path, {"bitwidth": "bw", "dtype": "dtype",
                                            "symmetric": "is_sym", "range": "scale"})
        if dtype == "float":
            return enc
        if enc_type == "LPBQ":
            enc.extra["decompressed_bw"] = decompressed
        for key in ("per_block_int_scale", "zero_point_shift"):
            if key in e:
                enc.extra[key] = e[key]
        scale, offset = e["scale"], e["offset"]
        self.check_lengths(scale, offset, path, "scale", "offset")
        if enc_type == "PER_TENSOR" and len(scale) != 1:
            raise self.error("E135", f"PER_TENSOR encoding of '{enc.name}' has {len(scale)} "
                             "scales", (*path, "scale"),
                             hint='use "enc_type": "PER_CHANNEL" for one scale per channel')
        if enc_type in ("PER_BLOCK", "LPBQ") and "block_size" not in e:
            raise self.error("E130", f"missing 'block_size' in the {enc_type} encoding of "
                             f"'{enc.name}'", path, key=True)
        if enc_type == "LPBQ" and "per_block_int_scale" not in e:
            raise self.error("E130", f"missing 'per_block_int_scale' in the LPBQ encoding of "
                             f"'{enc.name}'", path, key=True)
        integral = "zero_point_shift" not in e  # 1.0.0 writes it only for non-integer offsets
        for i, s in enumerate(scale):
            self.check_scale(s, (*path, "scale", i))
        for i, o in enumerate(offset):
            self.check_finite(o, (*path, "offset", i))
            self.check_offset(o, (*path, "offset", i), -levels(bits), 0,
                              f"{bits}-bit TfEncoding offsets", integral=integral)
        enc.scale = [float(s) for s in scale]
        enc.offset = [float(o) + 0.0 for o in offset]
        enc.min, enc.max = enc.grid_ranges()
        return enc

    # 2.0.0 / 2.1.0 ----------------------------------------------------------------------------

    def v2_entry(self, e: dict[str, Any], path: PathT) -> TensorEncoding:
        od = e["output_dtype"]
        m = _INT_DTYPE.fullmatch(od)
        if m:
            dtype, signed, bits = "int", not m.group(1), int(m.group(2))
        elif od in FLOAT_DTYPES_V2:
            dtype, signed, bits = "float", None, FLOAT_DTYPES_V2[od]
        else:
            raise self.error("E132", f"unknown output_dtype '{od}'", (*path, "output_dtype"),
                             hint=did_you_mean(od, _V2_DTYPES)
                             or f"expected one of: {', '.join(_V2_DTYPES)}")
        self.check_bitwidth(dtype, bits, (*path, "output_dtype"))
        enc = TensorEncoding(
            name=e["name"], kind="unknown", dtype=dtype, bitwidth=bits, signed=signed,
            symmetric=None, axis=_opt_int(e.get("axis")), block_size=_opt_int(e.get("block_size")),
            span=self.span(path),
        )
        enc.spans = self.field_spans(path, {"bitwidth": "output_dtype", "dtype": "output_dtype",
                                            "range": "y_scale", "axis": "axis"})
        if dtype == "float":
            enc.extra["output_dtype"] = od
            if "y_scale" in e:  # scaled fp8 (aimet.md D)
                scales, _, spaths = self.flat_numbers(e["y_scale"], (*path, "y_scale"))
                for s, sp in zip(scales, spaths, strict=True):
                    self.check_scale(s, sp)
                enc.scale = scales
                enc.enc_type = "PER_TENSOR" if not isinstance(e["y_scale"], list) else \
                    "PER_CHANNEL"
            return enc
        if "per_channel_float_scale" in e or isinstance(e.get("y_scale"), dict):
            return self.v2_lpbq(e, path, enc)
        if "y_scale" not in e:
            raise self.error("E130", f"missing 'y_scale' in the encoding of '{enc.name}'", path,
                             key=True, hint=f"output_dtype {od} needs y_scale (and y_zero_point "
                             "unless it is 0)")
        ys = e["y_scale"]
        scales, shape, spaths = self.flat_numbers(ys, (*path, "y_scale"))
        if len(shape) > 1 or (shape and enc.block_size is not None):
            enc.enc_type = "PER_BLOCK"
            if len(shape) > 1:
                enc.extra["scale_shape"] = list(shape)
            if enc.block_size is None:
                raise self.error("E130", f"missing 'block_size' in the blockwise encoding of "
                                 f"'{enc.name}'", path, key=True)
        elif shape:
            enc.enc_type = "PER_CHANNEL"
        zps: list[float]
        zpaths: list[PathT] = spaths
        if "y_zero_point" in e:
            zps, zshape, zpaths = self.flat_numbers(e["y_zero_point"], (*path, "y_zero_point"))
            if zshape != shape:
                raise self.error(
                    "E135", f"y_zero_point of '{enc.name}' has shape {list(zshape)}, y_scale has "
                    f"{list(shape)}", (*path, "y_zero_point"),
                    hint="one zero point per scale (as ONNX QuantizeLinear)",
                )
        else:
            zps = [0.0] * len(scales)
        lo, hi = zero_point_range(bits, bool(signed))
        for s, sp in zip(scales, spaths, strict=True):
            self.check_scale(s, sp)
        for z, zp in zip(zps, zpaths, strict=True):
            if not lo <= z <= hi:
                raise self.error("E133", f"y_zero_point {_show(z)} does not fit {od} "
                                 f"[{lo}, {hi}]", zp,
                                 hint="2.x zero points are ONNX zero points of output_dtype")
        enc.scale = scales
        enc.offset = [offset_from_zero_point(z, bits, bool(signed)) for z in zps]
        enc.symmetric = _v2_symmetric(enc.offset, bits, bool(signed))
        enc.min, enc.max = enc.grid_ranges()
        return enc

    def v2_lpbq(self, e: dict[str, Any], path: PathT, enc: TensorEncoding) -> TensorEncoding:
        """Low-power blockwise quantization (aimet.md D): kept as data, per-channel float scales
        in ``scale``; the int block scales in ``extra``."""
        enc.enc_type = "LPBQ"
        enc.symmetric = True
        ys = e.get("y_scale")
        if isinstance(ys, dict):  # 2.1.0 spelling
            float_scale, int_scale = ys["x_scale"], ys["x"]
            if "axis" in ys:
                enc.extra["channel_axis"] = ys["axis"]
            where = (*path, "y_scale", "x_scale")
        else:
            if "per_block_int_scale" not in e:
                raise self.error("E130", f"missing 'per_block_int_scale' in the LPBQ encoding of "
                                 f"'{enc.name}'", path, key=True)
            float_scale, int_scale = e["per_channel_float_scale"], e["per_block_int_scale"]
            where = (*path, "per_channel_float_scale")
        scales, _, spaths = self.flat_numbers(float_scale, where)
        for s, sp in zip(scales, spaths, strict=True):
            self.check_scale(s, sp)
        enc.scale = scales
        enc.offset = [-float(1 << (enc.bitwidth - 1))] * len(scales)
        enc.extra["per_block_int_scale"] = int_scale
        enc.min, enc.max = enc.grid_ranges()
        return enc

    def flat_numbers(
        self, v: Any, path: PathT
    ) -> tuple[list[float], tuple[int, ...], list[PathT]]:
        """Row-major values, shape and value paths of a number or regular nested list."""
        if not isinstance(v, list):
            self.check_finite(v, path)
            return [float(v)], (), [path]
        parts = [self.flat_numbers(x, (*path, i)) for i, x in enumerate(v)]
        inner = parts[0][1]
        for i, (_, shp, _) in enumerate(parts):
            if shp != inner:
                raise self.error("E135", f"'{_field_name(path)}' is not a regular nested list: "
                                 f"row {i} has shape {list(shp)}, row 0 {list(inner)}",
                                 (*path, i))
        values = [x for vals, _, _ in parts for x in vals]
        paths = [p for _, _, ps in parts for p in ps]
        return values, (len(v), *inner), paths

    # -- value checks ---------------------------------------------------------------------------

    def check_bitwidth(self, dtype: str, bits: int, path: PathT) -> None:
        allowed = INT_BITWIDTHS if dtype == "int" else FLOAT_BITWIDTHS
        if bits not in allowed:
            want = "2 to 32" if dtype == "int" else "8, 16 or 32"
            raise self.error("E132", f"{dtype} bit width {bits} is out of range ({want})", path)

    def check_finite(self, v: Any, path: PathT) -> None:
        if not math.isfinite(float(v)):
            raise self.error("E134", f"'{_field_name(path)}' is not a finite number", path)

    def check_scale(self, v: Any, path: PathT) -> None:
        self.check_finite(v, path)
        if not float(v) > 0:
            raise self.error("E134", f"scale must be > 0, got {_show(v)}", path,
                             hint="a scale is the grid step (max - min) / (2**bw - 1)")

    def check_offset(self, v: Any, path: PathT, lo: int, hi: int, what: str, *,
                     integral: bool = True) -> None:
        f = float(v)
        if integral and not f.is_integer():
            raise self.error("E133", f"offset {_show(v)} is not an integer", path,
                             hint="zero must be exactly representable (aimet.md C.6)")
        if not lo <= f <= hi:
            hint = "1.0.0 offsets are <= 0 (offset = -zero_point, aimet.md D)" if hi == 0 \
                else ""
            raise self.error("E133", f"offset {_show(v)} does not fit {what} [{lo}, {hi}]",
                             path, hint=hint)

    def check_lengths(self, a: list[Any], b: list[Any], path: PathT, na: str, nb: str) -> None:
        if len(a) != len(b):
            raise self.error("E135", f"'{nb}' has {len(b)} value(s), '{na}' has {len(a)}",
                             (*path, nb), hint="one offset per scale (per channel)")


_LAYOUT_TEXT = {
    "legacy": "sections are objects keyed by tensor name (0.4.0 to 0.6.1)",
    "1.0.0": "sections are lists of entries with 'name' (1.0.0)",
    "2.x": "one 'encodings' list (2.x)",
}


def _consistent(mn: float, mx: float, scale: float, offset: float, bits: int) -> bool:
    """Whether a legacy entry's scale/offset describe its min/max (what AIMET exports).

    The max of a strict symmetric grid is accepted both as AIMET 2.x writes it (top of the full
    integer grid, aimet.md D) and as the TfEncoding max (one step lower).
    """
    if not offset.is_integer() or not -levels(bits) <= offset <= 0:
        return False
    tol = 1e-6 * max(abs(mn), abs(mx)) + 1e-5 * scale  # float32-rounded exports (aimet.md D)
    if abs(scale * offset - mn) > tol:
        return False
    tops = [scale * (offset + levels(bits))]
    if offset == -((1 << (bits - 1)) - 1):
        tops.append(scale * (offset + levels(bits, True)))
    return any(abs(t - mx) <= tol for t in tops)


def _v2_symmetric(offsets: list[float], bits: int, signed: bool) -> bool:
    """Symmetric flag of a 2.x entry, which has none: read off the grid (aimet.md D).

    AIMET exports a signed dtype iff the quantizer is symmetric; its offsets are then
    ``-2**(bw-1)``, strict ``-(2**(bw-1)-1)`` or unsigned-symmetric ``0``. An unsigned dtype with
    the symmetric offset is a symmetric activation that export forced to unsigned.
    """
    half = 1 << (bits - 1)
    allowed = {-float(half), -float(half - 1), 0.0} if signed else {-float(half)}
    return bool(offsets) and set(offsets) <= allowed


def _legacy_bool(v: Any) -> bool | None:
    if v is None:
        return None
    return v in ("True", True)  # AIMET writes the strings "True" / "False" (aimet.md D)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _field_name(path: PathT) -> str:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return "value"


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return f"the string {json.dumps(v)}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return "null"


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _show(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return json.dumps(v) if isinstance(v, str) else repr(v)
