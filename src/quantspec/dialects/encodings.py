"""AIMET / QNN encodings files (0.4.0 to 2.1.0) as a quantspec dialect.

An encodings file fixes the encoding of named tensors: QNN's ``--quantization_overrides`` (spec
004) and AIMET's export (research aimet.md D). Reading gives one tensor rule per entry, with the
fixed range (``fixed_range`` / per-channel ``encodings``) in AIMET's TfEncoding convention, so the
compiler and runtime recompute exactly the file's grid. Writing turns tensor rules with fixed
ranges back into entries; whatever else a profile says is reported (W501/W502) and dropped.

The file model and its conversions live in :mod:`.encodings_model`, the readers in
:mod:`.encodings_read`, the writers in :mod:`.encodings_write`; ``docs/encodings.md`` describes
the versions and the field mapping.

Example::

    profile = read(text, "model.encodings")           # any version, auto-detected
    text_2x = write(profile, Report(), version="2.0.0")
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .. import ir
from ..errors import Report
from ..source import Span
from .encodings_model import (
    LEGACY_VERSIONS,
    READ_VERSIONS,
    WRITE_VERSIONS,
    EncodingFile,
    TensorEncoding,
    compute_encoding,
    grid_min_max,
    levels,
    offset_from_zero_point,
    qnn_encoding,
    qnn_offset,
    signed_offset,
    zero_point,
)
from .encodings_read import read_file, schema
from .encodings_write import check_entry, dumps, encodings_file_from_entries, entry_dict

__all__ = [
    "LEGACY_VERSIONS", "NAME", "READ_VERSIONS", "SUFFIXES", "WRITE_VERSIONS", "EncodingFile",
    "TensorEncoding", "check_entry", "compute_encoding", "detect", "dumps",
    "encodings_file_from_entries", "entry_dict", "from_profile", "grid_min_max", "levels",
    "offset_from_zero_point", "qnn_encoding", "qnn_offset", "read", "read_file", "schema",
    "signed_offset", "to_profile", "write", "zero_point",
]

NAME = "encodings"
SUFFIXES = (".encodings", ".json")

# Profile.meta keys this dialect keeps for round trips (file-level data, no per-tensor meaning).
META_VERSION = "version"
META_QUANTIZER_ARGS = "quantizer_args"
META_PRODUCER = "producer"
META_PARAMS = "param_tensors"  # names filed under param_encodings (2.x files have no split)
META_EXTRA = ("excluded_layers",)

_PARAM_SLOTS = frozenset({"param", "weight", "bias", *ir.KNOWN_PARAM_ROLES})
_GLOB = re.compile(r"[*?\[]")
# Settings an entry holds; every other field of a tensor rule is reported as dropped (W502).
_HELD = frozenset({
    "quantized", "dtype", "bits", "symmetric", "strict_symmetric", "unsigned_symmetric",
    "signed", "per_channel", "axis", "block_size", "fixed_range", "encodings",
})


def detect(text: str) -> bool:
    """Content sniff: sections ``activation_encodings`` / ``param_encodings``, or a top-level
    ``encodings`` list whose entries have ``y_scale`` / ``output_dtype`` (aimet.md D)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # broken (or too deep) JSON: still ours if the keys
        # are, so the reader can point at it
        if re.search(r'"(activation|param)_encodings"\s*:', text):
            return True
        return bool(re.search(r'"encodings"\s*:\s*\[', text) and
                    re.search(r'"(y_scale|output_dtype)"\s*:', text))
    if not isinstance(doc, dict):
        return False
    if "activation_encodings" in doc or "param_encodings" in doc:
        return True
    entries = doc.get("encodings")
    return isinstance(entries, list) and any(
        isinstance(e, dict) and ("y_scale" in e or "output_dtype" in e) for e in entries
    )


def read(text: str, file: str = "<string>", **options: Any) -> ir.Profile:
    """Read an encodings file of any version into fixed-encoding tensor rules.

    Options: ``version`` (assumed when the file declares none), ``strict`` (default True: unknown
    fields and duplicates are errors). Raises ``QuantspecError`` (E110/E111, E130-E137).
    """
    assumed = options.get("version")
    if isinstance(assumed, str) and "." not in assumed:
        # "1" / "2" is the CLI's --aimet-version, passed to every reader: not an encodings version
        assumed = None
    ef = read_file(text, file, version=assumed,
                   strict=bool(options.get("strict", True)))
    return to_profile(ef)


def write(profile: ir.Profile, report: Report, version: str = "1.0.0", **options: Any) -> str:
    """Write the tensor rules of ``profile`` as an encodings file of ``version``.

    Options are those of :func:`dumps` (``force_activation_as``, ``default_axis``). Whatever the
    file cannot hold is reported once through ``report`` (W501 rule dropped, W502 setting dropped,
    W503 value assumed) and left out.
    """
    ef = from_profile(profile, report, version, default_axis=options.get("default_axis", 0))
    return dumps(ef, version, **options)


# ---------------------------------------------------------------------------------------------
# File model -> IR
# ---------------------------------------------------------------------------------------------


def to_profile(ef: EncodingFile) -> ir.Profile:
    """One ``tensor`` rule per entry (QNN ``--quantization_overrides`` semantics, spec 004)."""
    meta: dict[str, ir.Setting] = {
        META_VERSION: ir.Setting(ef.version, ef.spans.get("version")),
    }
    if ef.quantizer_args is not None:
        meta[META_QUANTIZER_ARGS] = ir.Setting(ef.quantizer_args, ef.spans.get("quantizer_args"))
    if ef.producer is not None:
        meta[META_PRODUCER] = ir.Setting(ef.producer, ef.spans.get("producer"))
    params = tuple(e.name for e in ef.entries if e.kind == "param")
    if params:
        meta[META_PARAMS] = ir.Setting(params)
    for key, value in ef.extra.items():
        meta[key] = ir.Setting(value, ef.spans.get(key))
    return ir.Profile(source=ef.file, dialect=NAME,
                      rules=tuple(rule_for(e) for e in ef.entries), meta=meta)


def rule_for(enc: TensorEncoding) -> ir.Rule:
    """The tensor rule of one entry.

    int with a range: ``fixed_range=(min, max)`` (per tensor) or ``per_channel`` + ``encodings``
    (one ``(min, max)`` per channel), TfEncoding ranges (strict grids end one step below the file's
    0.6.1 ``max``, aimet.md D) plus the grid flags that make AIMET's min-max math reproduce the
    grid. int without a range (spec 004 mixed precision): bit width (and symmetry) only.
    """
    def s(value: Any, part: str = "") -> ir.Setting:
        return ir.Setting(value, enc.spans.get(part) or enc.span)

    settings: dict[str, ir.Setting] = {
        "quantized": s(True),
        "dtype": s(enc.dtype, "dtype"),
        "bits": s(enc.bitwidth, "bitwidth"),
    }
    if enc.dtype == "int" and enc.enc_type == "LPBQ":
        # Blockwise with integer block scales has no IR form: keep its shape, not the numbers.
        settings.update(symmetric=s(True, "symmetric"), per_channel=s(True, "range"))
        if enc.block_size is not None:
            settings["block_size"] = s(enc.block_size)
    elif enc.dtype == "int" and enc.has_range:
        sym, strict, unsigned = enc.grid_kind()
        settings["symmetric"] = s(sym, "symmetric")
        if sym:
            settings["strict_symmetric"] = s(strict, "symmetric")
            settings["unsigned_symmetric"] = s(unsigned, "symmetric")
        if enc.signed is not None:
            settings["signed"] = s(enc.signed, "dtype")
        if enc.per_channel:
            settings["per_channel"] = s(True, "range")
            if enc.axis is not None:
                settings["axis"] = s(enc.axis, "axis")
            if enc.block_size is not None:
                settings["block_size"] = s(enc.block_size)
            pairs = tuple((mn, mx) for mn, mx in zip(enc.min, enc.max, strict=True))
            settings["encodings"] = s(pairs, "range")
        else:
            settings["per_channel"] = s(False, "range")
            settings["fixed_range"] = s((enc.min[0], enc.max[0]), "range")
    elif enc.dtype == "int" and enc.symmetric is not None:
        settings["symmetric"] = s(enc.symmetric, "symmetric")
    return ir.Rule(ir.Selector(scope="tensor", names=(enc.name,)), settings, span=enc.span)


# ---------------------------------------------------------------------------------------------
# IR -> file model
# ---------------------------------------------------------------------------------------------


def from_profile(
    profile: ir.Profile, report: Report, version: str = "1.0.0", *, default_axis: int | None = 0
) -> EncodingFile:
    """The entries ``profile``'s tensor rules fix; everything else is reported and dropped."""
    _report_profile_parts(profile, report)
    params = set(_meta(profile, META_PARAMS, ()))
    merged: dict[str, dict[str, ir.Setting]] = {}
    spans: dict[str, Span | None] = {}
    kinds: dict[str, str] = {}
    # Among tensor rules the cascade is "final first, then later wins" (docs/cascade.md).
    ordered = sorted(enumerate(profile.rules), key=lambda item: (item[1].priority, item[0]))
    for _, rule in ordered:
        names = _tensor_names(rule, report)
        for name in names:
            merged.setdefault(name, {}).update(rule.settings)
            spans[name] = rule.span
            if rule.selector.slot in _PARAM_SLOTS or name in params:
                kinds[name] = "param"
    order = [n for r in profile.rules for n in r.selector.names if n in merged]
    entries: list[TensorEncoding] = []
    for name in dict.fromkeys(order):
        enc = _entry_from_settings(name, merged[name], kinds.get(name, "activation"),
                                   spans[name], version, report)
        if enc is None:
            continue
        if version.startswith("2.") and enc.per_channel and enc.axis is None and \
                default_axis is not None:
            report.warn("W503", f"tensor '{name}': per-channel encoding without an axis; "
                        f"encodings {version} needs one, wrote axis {default_axis}", spans[name],
                        hint="set `axis` on the tensor rule")
        entries.append(enc)
    extra = {k: profile.meta[k].value for k in META_EXTRA if k in profile.meta}
    return EncodingFile(
        version=version, entries=entries,
        quantizer_args=_meta(profile, META_QUANTIZER_ARGS, None),
        producer=_meta(profile, META_PRODUCER, None), extra=extra, file=profile.source,
    )


def _tensor_names(rule: ir.Rule, report: Report) -> tuple[str, ...]:
    sel = rule.selector
    if sel.scope != "tensor" or sel.where or sel.index is not None or \
            sel.slot not in _PARAM_SLOTS | {"tensor"}:
        report.warn("W501", f"'{sel.describe()}' rule dropped: an encodings file holds only "
                    "encodings of named tensors", rule.span)
        return ()
    globs = [n for n in sel.names if _GLOB.search(n)]
    if globs:
        report.warn("W501", f"'{sel.describe()}' rule dropped: an encodings file names every "
                    f"tensor exactly (pattern '{globs[0]}')", rule.span)
        return ()
    return sel.names


def _entry_from_settings(
    name: str, settings: Mapping[str, ir.Setting], kind: str, span: Span | None, version: str,
    report: Report,
) -> TensorEncoding | None:
    def get(key: str, default: Any = None) -> Any:
        st = settings.get(key)
        return default if st is None or isinstance(st.value, ir.Ref) else st.value

    refs = [k for k, v in settings.items() if isinstance(v.value, ir.Ref)]
    if get("quantized", True) is False:
        report.warn("W501", f"tensor '{name}' rule dropped: an encodings file cannot switch "
                    "quantization off (a missing entry means 'quantize by default', spec 004)",
                    span)
        return None
    dropped = sorted(k for k in settings if k not in _HELD or k in refs)
    fixed, encs = get("fixed_range"), get("encodings")
    if fixed is not None and (len(fixed) != 2 or fixed[1] is None):
        dropped.append("fixed_range")
        fixed = None
    has_range = encs is not None or fixed is not None
    dtype = get("dtype", "int" if has_range or "bits" in settings else None)
    if dtype is None:
        report.warn("W501", f"tensor '{name}' rule dropped: it sets nothing an encodings file "
                    f"holds ({', '.join(sorted(settings)) or 'no settings'})", span)
        return None
    if dropped:
        first = settings.get(dropped[0])
        report.warn("W502", f"tensor '{name}': {', '.join(dropped)} cannot be held by an "
                    "encodings file; dropped", first.span if first and first.span else span)
    bits = int(get("bits", 16 if dtype == "float" else 8))
    if "bits" not in settings:
        report.warn("W503", f"tensor '{name}': no bit width; wrote {bits}", span)
    if dtype == "float":
        return TensorEncoding.float_(name, bits, kind)
    if not has_range:
        if version != "0.6.1":
            report.warn("W501", f"tensor '{name}' rule dropped: no fixed encoding, and encodings "
                        f"{version} needs scale and offset for int entries (0.6.1 can hold a "
                        "bit width alone)", span)
            return None
        sym = settings.get("symmetric")
        return TensorEncoding(name=name, kind=kind, dtype="int", bitwidth=bits,
                              symmetric=None if sym is None else bool(sym.value), span=span)
    per_channel = encs is not None
    if get("per_channel") and not per_channel:
        report.warn("W502", f"tensor '{name}': per_channel without per-channel encodings; "
                    "wrote its fixed_range as a per-tensor encoding", span)
    lows = [float(p[0]) for p in encs] if per_channel else float(fixed[0])
    highs = [float(p[1]) for p in encs] if per_channel else float(fixed[1])
    enc = TensorEncoding.from_min_max(
        name, lows, highs, bits, symmetric=bool(get("symmetric", False)),
        strict=bool(get("strict_symmetric", False)),
        unsigned=bool(get("unsigned_symmetric", False)), kind=kind, axis=get("axis"),
        block_size=get("block_size"), signed=get("signed"),
    )
    enc.span = span
    return enc


def _report_profile_parts(profile: ir.Profile, report: Report) -> None:
    """W501 once for each part of a profile that is not a tensor rule."""
    why = "an encodings file holds only encodings of named tensors"
    for name, span in profile.extends:
        report.warn("W501", f"extends \"{name}\" dropped: {why}", span,
                    hint="resolve the profile against a model and export its encodings instead")
    for pat in profile.patterns:
        report.warn("W501", f"fusion pattern '{pat.describe()}' dropped: {why}", pat.span)
    for tie in profile.ties:
        what = ", ".join(tie.tensors or tie.op_types) or tie.mode
        report.warn("W501", f"shared encoding ({tie.mode or 'tensors'}: {what}) dropped: {why}",
                    tie.span)
    for label, items in (("graph pass", profile.passes), ("post hook", profile.post)):
        for name, span in items:
            report.warn("W501", f"{label} '{name}' dropped: {why}", span)
    for label, values in (("option", profile.options.values), ("calibrate", profile.calibrate),
                          ("transform", profile.transforms)):
        for key, st in values.items():
            report.warn("W501", f"{label} '{key}' dropped: {why}", st.span)


def _meta(profile: ir.Profile, key: str, default: Any) -> Any:
    st = profile.meta.get(key)
    return default if st is None else st.value
