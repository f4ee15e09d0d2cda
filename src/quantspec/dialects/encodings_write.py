"""Writing :class:`EncodingFile` as AIMET / QNN encodings 0.6.1, 1.0.0, 2.0.0 or 2.1.0.

Each entry gets exactly the fields AIMET's loader requires (research aimet.md D): 0.6.1
``bitwidth``, ``dtype`` and for int ``is_symmetric``, ``offset`` (plus ``min``, ``max``, ``scale``);
1.0.0 ``bw``, ``dtype``, ``enc_type`` and for int ``is_sym``, ``scale``, ``offset``; 2.x
``output_dtype`` (no ``bw``) with ``y_scale`` / ``y_zero_point`` / ``axis``. The text is what
AIMET's ``json.dump(obj, sort_keys=True, indent=4)`` writes: deterministic, floats in ``repr``
form (exact round trip), no trailing newline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import Any

from ..errors import QuantspecError
from .encodings_model import (
    FLOAT_BITWIDTHS,
    FLOAT_DTYPES_V2,
    INT_BITWIDTHS,
    WRITE_VERSIONS,
    EncodingFile,
    TensorEncoding,
    levels,
    zero_point_range,
)

# 2.x spelling of a float width when the entry does not carry its own output_dtype.
_V2_FLOAT = {8: "float8e4m3fn", 16: "float16", 32: "float32"}


def dumps(
    ef: EncodingFile,
    version: str | None = None,
    *,
    force_activation_as: str | None = "unsigned",
    default_axis: int | None = 0,
    param_names: Collection[str] = (),
) -> str:
    """The text of ``ef`` in ``version`` (default: the file's own version if writable).

    Args:
        ef: the file model.
        version: "0.6.1", "1.0.0", "2.0.0" or "2.1.0".
        force_activation_as: 2.x only. ``"unsigned"`` (AIMET's export default, aimet.md D) turns
            every activation's int encoding into a uint one; ``None`` keeps ``signed``.
        default_axis: 2.x only: the ``axis`` of per-channel entries that have none (1.0.0 files do
            not store it; AIMET's Conv weights use 0). ``None`` makes a missing axis an error.
        param_names: tensors to file under ``param_encodings`` whatever their ``kind`` (2.x files
            do not say which tensors are params).

    Raises:
        QuantspecError: E131 unsupported version; E138 an entry this version cannot hold.
    """
    version = version or (ef.version if ef.version in WRITE_VERSIONS else "1.0.0")
    if version not in WRITE_VERSIONS:
        raise QuantspecError("E131", f"cannot write encodings version '{version}'",
                             hint=f"writable versions: {', '.join(WRITE_VERSIONS)}")
    entries = [_with_kind(e, param_names) for e in ef.entries]
    _check_unique(entries)
    for e in entries:
        check_entry(e)
    doc: dict[str, Any] = {"version": version}
    if version.startswith("2."):
        # One list, params first as AIMET's export does (aimet.md D, corpus toy_v2.0.0).
        ordered = [e for e in entries if e.kind == "param"] + \
            [e for e in entries if e.kind != "param"]
        items = (entry_dict(e, version, force_activation_as=force_activation_as,
                            default_axis=default_axis) for e in ordered)
        doc["encodings"] = [d for d in items if d is not None]
    else:
        for section, want in (("activation_encodings", False), ("param_encodings", True)):
            chosen = [e for e in entries if (e.kind == "param") == want]
            if version == "0.6.1":
                doc[section] = {e.name: entry_dict(e, version) for e in chosen}
            else:
                doc[section] = [entry_dict(e, version) for e in chosen]
        if ef.quantizer_args is not None:  # 2.x has no quantizer_args (aimet.md D)
            doc["quantizer_args"] = ef.quantizer_args
    if ef.producer is not None:
        doc["producer"] = ef.producer
    for key, value in ef.extra.items():
        doc.setdefault(key, value)
    return json.dumps(doc, sort_keys=True, indent=4, allow_nan=False)


def encodings_file_from_entries(
    entries: Iterable[TensorEncoding],
    version: str = "1.0.0",
    quantizer_args: dict[str, Any] | None = None,
    producer: dict[str, Any] | None = None,
    **options: Any,
) -> str:
    """Encodings text straight from entries (e.g. calibration results), without the IR.

    Build entries with :meth:`TensorEncoding.from_grid` (scale + TfEncoding offset) or
    :meth:`TensorEncoding.from_min_max` (AIMET min-max math); ``options`` are those of
    :func:`dumps`.
    """
    ef = EncodingFile(version=version, entries=list(entries), quantizer_args=quantizer_args,
                      producer=producer)
    return dumps(ef, version, **options)


def entry_dict(
    enc: TensorEncoding,
    version: str,
    *,
    force_activation_as: str | None = None,
    default_axis: int | None = 0,
) -> Any:
    """One entry as ``version`` spells it.

    0.6.1: the list of per-channel dicts (the value under the tensor's name); 1.0.0 and 2.x: the
    entry dict with its ``name``. 2.x never omits an entry: AIMET drops plain fp16 casts from its
    2.x export (aimet.md D), here they are written as ``{"name", "output_dtype": "float16"}`` so
    that a round trip keeps them.
    """
    if version == "0.6.1":
        return _legacy(enc)
    if version == "1.0.0":
        return _v1(enc)
    return _v2(enc, version, force_activation_as, default_axis)


def check_entry(enc: TensorEncoding) -> None:
    """The checks the readers make, for entries built in code (E138 on failure)."""
    def bad(message: str) -> QuantspecError:
        return QuantspecError("E138", f"cannot write the encoding of '{enc.name}': {message}",
                              enc.span)

    if enc.dtype not in ("int", "float"):
        raise bad(f"dtype {enc.dtype!r} is not 'int' or 'float'")
    allowed = INT_BITWIDTHS if enc.dtype == "int" else FLOAT_BITWIDTHS
    if enc.bitwidth not in allowed:
        raise bad(f"bit width {enc.bitwidth} is out of range")
    if len(enc.scale) != len(enc.offset) and enc.dtype == "int":
        raise bad(f"{len(enc.scale)} scales but {len(enc.offset)} offsets")
    for s in enc.scale:
        if not (math.isfinite(s) and s > 0):
            raise bad(f"scale {s!r} is not a finite number > 0")
    for o in enc.offset:
        if not (math.isfinite(o) and -levels(enc.bitwidth) <= o <= 0):
            raise bad(f"offset {o!r} is not in [-{levels(enc.bitwidth)}, 0] (TfEncoding "
                      "convention, aimet.md D)")


# ---------------------------------------------------------------------------------------------
# Per-version entry shapes
# ---------------------------------------------------------------------------------------------


def _legacy(enc: TensorEncoding) -> list[dict[str, Any]]:
    if enc.dtype == "float":
        return [{"bitwidth": enc.bitwidth, "dtype": "float"}]
    if enc.enc_type in ("PER_BLOCK", "LPBQ"):
        raise _cannot(enc, "0.6.1", f"{enc.enc_type} encodings")
    if not enc.has_range:
        # Bit width only: QNN's mixed-precision override (spec 004); AIMET's loader needs a range.
        d: dict[str, Any] = {"bitwidth": enc.bitwidth, "dtype": "int"}
        if enc.symmetric is not None:
            d["is_symmetric"] = str(bool(enc.symmetric))
        return [d]
    mins, maxs = enc.export_ranges()
    return [
        {
            "bitwidth": enc.bitwidth,
            "dtype": "int",
            "is_symmetric": str(bool(enc.symmetric)),  # the strings "True"/"False" (aimet.md D)
            "max": mx,
            "min": mn,
            "offset": float(o),
            "scale": s,
        }
        for s, o, mn, mx in zip(enc.scale, enc.offset, mins, maxs, strict=True)
    ]


def _v1(enc: TensorEncoding) -> dict[str, Any]:
    if enc.dtype == "float":
        return {"name": enc.name, "dtype": "FLOAT", "bw": enc.bitwidth, "enc_type": "PER_TENSOR"}
    if not enc.has_range:
        raise _cannot(enc, "1.0.0", "an INT entry without scale/offset",
                      hint="write 0.6.1 for a bit-width-only override (spec 004)")
    d: dict[str, Any] = {
        "name": enc.name,
        "dtype": "INT",
        "bw": enc.bitwidth,
        "enc_type": enc.enc_type,
        "is_sym": bool(enc.symmetric),
        "scale": list(enc.scale),
        "offset": [float(o) for o in enc.offset],
    }
    if enc.enc_type in ("PER_BLOCK", "LPBQ"):
        d["block_size"] = _need(enc, enc.block_size, "block_size", "1.0.0")
    if enc.enc_type == "LPBQ":
        # aimet.md D: 1.0.0 "bw" is the decompressed width, "compressed_bw" the grid's.
        d["bw"] = _need(enc, enc.extra.get("decompressed_bw"), "decompressed_bw", "1.0.0")
        d["compressed_bw"] = enc.bitwidth
        d["per_block_int_scale"] = _flat(
            _need(enc, enc.extra.get("per_block_int_scale"), "per_block_int_scale", "1.0.0"))
    if "zero_point_shift" in enc.extra:
        d["zero_point_shift"] = enc.extra["zero_point_shift"]
    return d


def _v2(enc: TensorEncoding, version: str, force: str | None,
        default_axis: int | None) -> dict[str, Any]:
    d: dict[str, Any] = {"name": enc.name}
    if enc.dtype == "float":
        od = enc.extra.get("output_dtype")
        if od not in FLOAT_DTYPES_V2 or FLOAT_DTYPES_V2[od] != enc.bitwidth:
            od = _V2_FLOAT[enc.bitwidth]
        d["output_dtype"] = od
        if enc.scale:  # scaled fp8
            d["y_scale"] = list(enc.scale) if enc.per_channel else enc.scale[0]
            if enc.per_channel:
                d["axis"] = _axis(enc, default_axis, version)
        return d
    if not enc.has_range:
        raise _cannot(enc, version, "an int entry without scale/offset",
                      hint="write 0.6.1 for a bit-width-only override (spec 004)")
    signed = enc.is_signed(force)
    d["output_dtype"] = f"{'' if signed else 'u'}int{enc.bitwidth}"
    if enc.enc_type == "LPBQ":
        return _v2_lpbq(enc, version, d, default_axis)
    zps = enc.zero_points(signed)
    lo, hi = zero_point_range(enc.bitwidth, signed)
    for z in zps:
        if not lo <= z <= hi:
            raise _cannot(enc, version, f"zero point {z} does not fit {d['output_dtype']}")
    if not enc.per_channel:
        d["y_scale"] = enc.scale[0]
        if zps[0]:
            d["y_zero_point"] = zps[0]
        return d
    shape = enc.extra.get("scale_shape")
    d["y_scale"] = _reshape(list(enc.scale), shape)
    if any(zps):  # omitted when all 0 (aimet.md D)
        d["y_zero_point"] = _reshape(zps, shape)
    d["axis"] = _axis(enc, default_axis, version)
    if enc.enc_type == "PER_BLOCK":
        d["block_size"] = _need(enc, enc.block_size, "block_size", version)
    return d


def _v2_lpbq(enc: TensorEncoding, version: str, d: dict[str, Any],
             default_axis: int | None) -> dict[str, Any]:
    int_scale = _need(enc, enc.extra.get("per_block_int_scale"), "per_block_int_scale", version)
    if int_scale and not isinstance(int_scale[0], list) and len(int_scale) % enc.channels == 0:
        int_scale = _reshape(list(int_scale), [enc.channels, len(int_scale) // enc.channels])
    if version == "2.0.0":
        d["per_channel_float_scale"] = list(enc.scale)
        d["per_block_int_scale"] = int_scale
    else:  # 2.1.0 nests both under y_scale (aimet.md D, _convert_200_to_210)
        d["y_scale"] = {"x": int_scale, "x_scale": list(enc.scale)}
        if "channel_axis" in enc.extra:
            d["y_scale"]["axis"] = enc.extra["channel_axis"]
    d["axis"] = _axis(enc, default_axis, version)
    d["block_size"] = _need(enc, enc.block_size, "block_size", version)
    return d


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _with_kind(enc: TensorEncoding, param_names: Collection[str]) -> TensorEncoding:
    if enc.name in param_names and enc.kind != "param":
        return replace(enc, kind="param")
    return enc


def _check_unique(entries: list[TensorEncoding]) -> None:
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            raise QuantspecError("E136", f"tensor '{e.name}' has more than one encoding", e.span,
                                 hint="a tensor has one encoding (one per channel inside it)")
        seen.add(e.name)


def _axis(enc: TensorEncoding, default_axis: int | None, version: str) -> int:
    if enc.axis is not None:
        return enc.axis
    return _need(enc, default_axis, "axis", version)


def _need(enc: TensorEncoding, value: Any, what: str, version: str) -> Any:
    if value is None:
        raise _cannot(enc, version, f"a {enc.enc_type} entry without {what}")
    return value


def _cannot(enc: TensorEncoding, version: str, what: str, hint: str = "") -> QuantspecError:
    return QuantspecError("E138", f"encodings {version} cannot hold {what} ('{enc.name}')",
                          enc.span, hint=hint)


def _reshape(values: list[Any], shape: Any) -> Any:
    """Row-major ``values`` back into the nested ``shape`` a 2.x file had (flat if unknown)."""
    if not shape or len(shape) < 2 or math.prod(shape) != len(values):
        return values
    step = math.prod(shape[1:])
    return [_reshape(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _flat(v: Any) -> list[Any]:
    if isinstance(v, list):
        return [x for item in v for x in _flat(item)]
    return [v]
