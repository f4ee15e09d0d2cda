"""Huawei AMCT simplified post-training-quantization config (``.cfg``, protobuf text format).

Spec: ``001_22332feba86d0ba7.txt``; behaviour as AMCT's code implements it
(``common/config/proto_config.py``, ``config_base.py``, ``field.py``; ``vitis_amct.md`` 2).
The schema is ``amct.proto`` (``amct_pb2``), parsed with ``google.protobuf.text_format.Merge``
like AMCT does; positions of fields come from a small scanner of the same text.

AMCT quantizes on the *input* side of quantizable layers (Conv, Gemm/MatMul, ConvTranspose,
AveragePool, LSTM/GRU): each layer gets one whole config block, ``override_layer_configs``
(by name) else ``override_layer_types`` (by type) else ``common_config``, and fields missing
from the chosen block take AMCT's built-in defaults, not the lower block's values. In the IR each
block becomes an ``input`` rule and a ``weight`` rule holding every field (whole-block
replacement); skips become ``final`` ``quantized: false`` rules. ``docs/dialects.md``
has the full mapping and what each direction loses.
"""

from __future__ import annotations

import bisect
import json
import math
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from google.protobuf import text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ..errors import QuantspecError, Report, did_you_mean
from ..ir import (
    FIELDS,
    OPTION_DEFAULTS,
    Calibration,
    Profile,
    Rule,
    Selector,
    Setting,
    Tie,
    value_of,
)
from ..source import Span
from . import amct_pb2 as pb
from .messages import show_value

NAME = "amct"
SUFFIXES = (".cfg", ".prototxt", ".pbtxt")
META = "amct."  # prefix of this dialect's Profile.meta keys
MAX_CFG_CHARS = 256 * 1024

# field.py defaults (vitis_amct.md 2.2).
IFMR_DEFAULTS = (("max_percentile", 0.999999), ("min_percentile", 0.999999),
                 ("search_range_start", 0.7), ("search_range_end", 1.3), ("search_step", 0.01))
HFMG_BINS = (1024, 2048, 4096, 8192)
WEIGHT_BITS = (4, 6, 7, 8)
WINOGRAD_BITS = (6, 7)
DST_BITS = {1: 8, 2: 16}  # CalibrationDataType INT8, INT16
DMQ_RANGE = (0.2, 0.8)
NUQ_STEPS = (16, 32)
NUQ_ITERATIONS = range(0, 6)
# IFMR with these parameters has one candidate, the exact min/max (vitis_amct.md 2.5).
MINMAX_IFMR = (("max_percentile", 1.0), ("min_percentile", 1.0), ("search_range_start", 1.0),
               ("search_range_end", 1.01), ("search_step", 0.01))

_BASE_NOTE = "AMCT quantizes only the inputs and weights of quantizable layers"
_CW_NOTE = "ARQ channel_wise defaults to the layer type (per-channel for conv-like layers)"
_DEFAULT_NOTE = "AMCT's built-in block for every quantizable layer (no common_config)"
_FOREIGN_HINTS = {
    "retrain_data_quant_config": "this is an AMCT retrain (QAT) config, which quantspec does "
                                 "not read",
    "retrain_weight_quant_config": "this is an AMCT retrain (QAT) config, which quantspec "
                                   "does not read",
    "kv_cache_quant_config": "this is an AMCT KV-cache calibration config, which quantspec "
                             "does not read",
    "override_layers_configs": "this is an AMCT KV-cache calibration config, which quantspec "
                               "does not read",
}
# [ \t]*, not \s*: with re.M a leading \s* ran over the blank lines after every line start
# (quadratic: 16k blank lines took seconds)
_DETECT = re.compile(r"^[ \t]*(batch_num|activation_offset|joint_quant|common_config|"
                     r"override_layer_types|override_layer_configs|skip_layers|"
                     r"skip_layer_types|do_fusion|skip_fusion_layers|nuq_config|"
                     r"fakequant_precision_mode|tensor_quantize)\s*[:{<]", re.M)


# ---------------------------------------------------------------------------------------------
# Layer-type table (data/amct_layer_types.json)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framework:
    name: str
    types: Mapping[str, tuple[str, ...]]  # quantizable type -> ONNX op types
    tensor_only: Mapping[str, tuple[str, ...]]
    caps: Mapping[str, frozenset[str] | None]  # capability -> types (None: not published)

    def known(self, layer_type: str) -> bool:
        return layer_type in self.types or layer_type in self.tensor_only

    def has(self, cap: str, layer_type: str) -> bool | None:
        types = self.caps.get(cap)
        return None if types is None else layer_type in types


@dataclass(frozen=True)
class Table:
    frameworks: Mapping[str, Framework]
    detect_order: tuple[str, ...]
    common: tuple[str, ...]
    channel_wise_ops: frozenset[str]
    per_tensor_weight_ops: tuple[str, ...]
    int16_ops: frozenset[str]
    winograd_ops: frozenset[str]

    def detect(self, names: Iterable[str]) -> Framework | None:
        wanted = set(names)
        for fw in self.detect_order:
            if all(self.frameworks[fw].known(n) for n in wanted):
                return self.frameworks[fw]
        return None

    def lookup(self, layer_type: str) -> tuple[str, ...] | None:
        for fw in self.detect_order:
            f = self.frameworks[fw]
            if layer_type in f.types:
                return f.types[layer_type]
        return None


@lru_cache(maxsize=1)
def table() -> Table:
    raw = json.loads(resources.files(__package__).joinpath("data/amct_layer_types.json")
                     .read_text(encoding="utf-8"))
    caps = ("channel_wise", "int16", "winograd", "dmq", "ada", "symmetric_only", "fuse")
    fws = {
        name: Framework(
            name,
            {t: tuple(ops) for t, ops in spec["types"].items()},
            {t: tuple(ops) for t, ops in spec["tensor_only"].items()},
            {c: None if spec.get(c) is None else frozenset(spec[c]) for c in caps},
        )
        for name, spec in raw["frameworks"].items()
    }
    return Table(fws, tuple(raw["detect_order"]), tuple(raw["common_op_types"]),
                 frozenset(raw["channel_wise_op_types"]),
                 tuple(raw["per_tensor_weight_op_types"]), frozenset(raw["int16_op_types"]),
                 frozenset(raw["winograd_op_types"]))


def layer_type_names(fw: Framework, op_types: tuple[str, ...]) -> list[str]:
    """The AMCT layer types of ``fw`` to write for an ``op`` rule's ONNX op types."""
    exact = [t for t, ops in fw.types.items() if ops == op_types]
    if exact:
        return exact
    out: list[str] = []
    for op in op_types:
        single = [t for t, ops in fw.types.items() if ops == (op,)]
        out += single or [t for t, ops in fw.types.items() if op in ops]
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------------------------
# Dialect protocol
# ---------------------------------------------------------------------------------------------


def detect(text: str) -> bool:
    return not text.lstrip().startswith(("{", "[")) and bool(_DETECT.search(text))


def read(text: str, file: str = "<string>", **options: Any) -> Profile:
    """Read an AMCT ``.cfg``. ``framework=`` (pytorch|onnx|tensorflow|caffe|ascend) names the
    front-end whose layer types the file uses (default: detected); ``report=`` gets warnings."""
    if len(text) > MAX_CFG_CHARS:  # protobuf's text parser reads ~0.5 MB/s; configs are small
        raise QuantspecError("E114", f"an AMCT .cfg is at most {MAX_CFG_CHARS} characters; this "
                             f"one has {len(text)}", Span(file, 1, 1),
                             hint="is this the right file?")
    msg = _parse(text, file)
    loc = _Locator(text, file)
    ctx = _Context(msg, loc, options.get("report"), _framework(msg, loc, options))
    _Checker(ctx).run()
    return _Builder(ctx).profile()


def write(profile: Profile, report: Report, **options: Any) -> str:
    """Write an AMCT ``.cfg``. ``framework=`` picks the layer-type names (default: the
    profile's, else onnx)."""
    return _Writer(profile, report, options).text()


# ---------------------------------------------------------------------------------------------
# Parsing and positions
# ---------------------------------------------------------------------------------------------


def _parse(text: str, file: str) -> pb.AMCTConfig:
    msg = pb.AMCTConfig()
    try:
        # AMCT uses Merge: a repeated scalar keeps the last value (proto_config.py,
        # vitis_amct.md 2.1).
        text_format.Merge(text, msg)
    except text_format.ParseError as err:
        raise _parse_error(err, text, file) from None
    return msg


def _parse_error(err: text_format.ParseError, text: str, file: str) -> QuantspecError:
    line, col = err.GetLine() or 0, err.GetColumn() or 0
    message = re.sub(r"^\d+:\d+ : ", "", str(err)).replace("quantspec.amct.", "")
    span = Span(file, line, col)
    unknown = re.search(r'Message type "([\w.]+)" has no field named "(\w+)"', str(err))
    if unknown:
        msg_type, name = unknown.groups()
        desc = pb.DESCRIPTOR.message_types_by_name.get(msg_type.split(".")[-1])
        hint = _FOREIGN_HINTS.get(name, "")
        if not hint and desc is not None:
            hint = did_you_mean(name, list(desc.fields_by_name))
        return QuantspecError("E151", message, span, hint=hint)
    hint = ""
    if text.lstrip().startswith("{"):
        hint = ("this is JSON: an AMCT .cfg is protobuf text format (AMCT's expanded per-layer "
                "config.json is not read)")
    return QuantspecError("E150", message, span, hint=hint)


_TOKEN = re.compile(r"""
    (?P<skip>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>[{}<>\[\]:;,])
  | (?P<word>[^\s{}<>\[\]:;,"'\#]+)
""", re.X)
_CLOSE = {"{": "}", "<": ">"}

Path = tuple[Any, ...]


@dataclass(frozen=True)
class _Loc:
    key: Span
    value: Span


class _Stop(Exception):
    pass


class _Locator:
    """Field positions by path (``("override_layer_types", 1, "calibration_config")``).

    protobuf's Python text_format keeps no positions, so this walks the (already validated) text
    again with the message descriptors: field names, ``:`` optional before a message, ``{}`` or
    ``<>``, ``[...]`` lists, ``;``/``,`` separators, adjacent string literals.
    """

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.lines = [0] + [m.end() for m in re.finditer("\n", text)]
        self.toks = [(m.lastgroup or "", m.group(), m.start()) for m in _TOKEN.finditer(text)
                     if m.lastgroup != "skip"]
        self.i = 0
        self.locs: dict[Path, _Loc] = {}
        try:
            self._message(pb.AMCTConfig.DESCRIPTOR, (), None)
        except (_Stop, IndexError, KeyError):
            pass  # positions are best effort; text_format has the final say on syntax

    def key(self, path: Path) -> Span:
        """The span of ``path``'s field name, or of its nearest ancestor's."""
        p = tuple(path)
        while p:
            if p in self.locs:
                return self.locs[p].key
            p = p[:-1]
        return Span(self.file, 1, 1)

    def value(self, path: Path) -> Span:
        loc = self.locs.get(tuple(path))
        return loc.value if loc else self.key(path)

    def _span(self, offset: int, path: Path) -> Span:
        i = bisect.bisect_right(self.lines, offset) - 1
        return Span(self.file, i + 1, offset - self.lines[i] + 1, path=_dotted(path))

    def _peek(self) -> str:
        return self.toks[self.i][1] if self.i < len(self.toks) else ""

    def _message(self, desc: Descriptor, path: Path, close: str | None) -> None:
        counts: dict[str, int] = {}
        while self.i < len(self.toks):
            kind, text, off = self.toks[self.i]
            if close is not None and text == close:
                self.i += 1
                return
            if text in (";", ","):
                self.i += 1
                continue
            fd = desc.fields_by_name.get(text) if kind == "word" else None
            if fd is None:
                raise _Stop
            self.i += 1
            if self._peek() == ":":
                self.i += 1
            if self._peek() == "[":
                self.i += 1
                while self._peek() != "]":
                    if self._peek() == ",":
                        self.i += 1
                        continue
                    self._value(fd, path, counts, off)
                self.i += 1
            else:
                self._value(fd, path, counts, off)

    def _value(self, fd: FieldDescriptor, path: Path, counts: dict[str, int], key_off: int
               ) -> None:
        if _repeated(fd):
            index = counts.get(fd.name, 0)
            counts[fd.name] = index + 1
            fpath: Path = (*path, fd.name, index)
        else:
            fpath = (*path, fd.name)
        kind, text, off = self.toks[self.i]
        self.locs[fpath] = _Loc(self._span(key_off, fpath), self._span(off, fpath))
        self.i += 1
        if fd.message_type is not None:
            self._message(fd.message_type, fpath, _CLOSE[text])
        elif kind == "string":
            while self.i < len(self.toks) and self.toks[self.i][0] == "string":
                self.i += 1  # "a" "b" is one string


def _repeated(fd: FieldDescriptor) -> bool:
    flag = getattr(fd, "is_repeated", None)
    return bool(flag) if flag is not None else fd.label == FieldDescriptor.LABEL_REPEATED


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def f32(value: float) -> float:
    """The shortest decimal that is the same float32: what the user wrote (``0.999999``)."""
    exact = float(struct.unpack("f", struct.pack("f", value))[0])
    for digits in range(1, 10):
        short = float(f"{exact:.{digits}g}")
        if struct.unpack("f", struct.pack("f", short))[0] == exact:
            return short
    return exact


# ---------------------------------------------------------------------------------------------
# Checks (graph-free part of AMCT's validation)
# ---------------------------------------------------------------------------------------------


@dataclass
class _Block:
    """One CalibrationConfig (or TensorQuantize) and where it sits."""

    ident: str  # common | type:<T> | layer:<name> | tensor:<name>:<index>
    msg: Message
    path: Path
    span: Span
    layer_type: str | None = None  # type blocks
    layer_name: str | None = None  # layer and tensor blocks
    index: int | None = None  # tensor blocks


@dataclass
class _Context:
    msg: pb.AMCTConfig
    loc: _Locator
    report: Report | None
    fw: Framework | None
    warned: set[tuple[str, str, Span | None]] = field(default_factory=set)

    def warn(self, code: str, message: str, span: Span | None, hint: str = "") -> None:
        if self.report is not None and (code, message, span) not in self.warned:
            self.warned.add((code, message, span))
            self.report.warn(code, message, span, hint)

    def blocks(self) -> Iterator[_Block]:
        """Every block the config holds, in AMCT's precedence order (low to high)."""
        m = self.msg
        uses_deprecated = not m.HasField("common_config") and not m.override_layer_types
        if m.HasField("common_config"):
            yield _Block("common", m.common_config, ("common_config",),
                         self.loc.key(("common_config",)))
        elif uses_deprecated and m.HasField("conv_calibration_config"):
            yield _Block("common", m.conv_calibration_config, ("conv_calibration_config",),
                         self.loc.key(("conv_calibration_config",)))
        for i, item in enumerate(m.override_layer_types):
            path = ("override_layer_types", i)
            yield _Block(f"type:{item.layer_type}", item.calibration_config,
                         (*path, "calibration_config"), self.loc.key(path),
                         layer_type=item.layer_type)
        if uses_deprecated and m.HasField("fc_calibration_config"):
            for t in self.fc_types():
                yield _Block(f"type:{t}", m.fc_calibration_config, ("fc_calibration_config",),
                             self.loc.key(("fc_calibration_config",)), layer_type=t)
        for i, item in enumerate(m.override_layer_configs):
            path = ("override_layer_configs", i)
            yield _Block(f"layer:{item.layer_name}", item.calibration_config,
                         (*path, "calibration_config"), self.loc.key(path),
                         layer_name=item.layer_name)
        for i, item in enumerate(m.tensor_quantize):
            path = ("tensor_quantize", i)
            yield _Block(f"tensor:{item.layer_name}:{item.input_index}", item, path,
                         self.loc.key(path), layer_name=item.layer_name, index=item.input_index)

    def fc_types(self) -> list[str]:
        # fc_calibration_config applies to quantizable minus channel-wise types
        # (proto_config.py, vitis_amct.md 2.2).
        fw = self.fw or table().frameworks["caffe"]
        cw = fw.caps.get("channel_wise") or frozenset()
        return [t for t in fw.types if t not in cw]


def _framework(msg: pb.AMCTConfig, loc: _Locator, options: Mapping[str, Any]
               ) -> Framework | None:
    tables = table()
    name = options.get("framework")
    if name:
        if name not in tables.frameworks:
            raise QuantspecError("E120", f"unknown AMCT framework '{name}'",
                                 hint=did_you_mean(name, tables.frameworks) or
                                 f"choose one of: {', '.join(tables.frameworks)}")
        return tables.frameworks[name]
    names = [o.layer_type for o in msg.override_layer_types] + list(msg.skip_layer_types)
    if not names and msg.HasField("fc_calibration_config"):
        return tables.frameworks["caffe"]
    return tables.detect(names) if names else None


class _Checker:
    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.loc = ctx.loc
        self.msg = ctx.msg

    def run(self) -> None:
        self._required()
        self._globals()
        self._duplicates()
        self._types()
        for block in self.ctx.blocks():
            self._block(block)

    def _fail(self, code: str, message: str, path: Path, hint: str = "", key: bool = False
              ) -> QuantspecError:
        span = self.loc.key(path) if key else self.loc.value(path)
        return QuantspecError(code, message, span, hint=hint)

    def _required(self) -> None:
        # proto2 `required`: text_format.Merge does not check them; AMCT reads them blindly.
        for name, needed in (("override_layer_types", ("layer_type", "calibration_config")),
                             ("override_layer_configs", ("layer_name", "calibration_config")),
                             ("tensor_quantize", ("layer_name", "input_index"))):
            for i, item in enumerate(getattr(self.msg, name)):
                for f in needed:
                    if not item.HasField(f):
                        raise self._fail("E155", f'{name} needs "{f}"', (name, i), key=True,
                                         hint=f'To quantize, must set "{f}" at first'
                                         if name == "tensor_quantize" else "")
        if self.msg.HasField("nuq_config") and not self.msg.nuq_config.HasField("mapping_file"):
            raise self._fail("E155", 'nuq_config needs "mapping_file"', ("nuq_config",),
                             key=True)

    def _globals(self) -> None:
        m = self.msg
        if m.HasField("batch_num") and m.batch_num <= 0:
            raise self._fail("E152", "The batch_num must be greater than zero.", ("batch_num",))
        if m.HasField("version") and m.version != 1:
            raise self._fail("E152", "The version must be 1.", ("version",))
        if m.HasField("nuq_config") and m.nuq_config.HasField("nuq_quantize"):
            self._nuq(m.nuq_config.nuq_quantize, ("nuq_config", "nuq_quantize"))

    def _duplicates(self) -> None:
        # check_no_repeated: AMCT rejects repeated names in every list.
        lists: list[tuple[str, list[str], str]] = [
            ("override_layer_types", [o.layer_type for o in self.msg.override_layer_types],
             "layer_type"),
            ("override_layer_configs", [o.layer_name for o in self.msg.override_layer_configs],
             "layer_name"),
            ("skip_layers", list(self.msg.skip_layers), ""),
            ("skip_layer_types", list(self.msg.skip_layer_types), ""),
            ("skip_fusion_layers", list(self.msg.skip_fusion_layers), ""),
        ]
        for name, values, sub in lists:
            seen: set[str] = set()
            for i, value in enumerate(values):
                if value in seen:
                    path = (name, i, sub) if sub else (name, i)
                    raise self._fail("E153", f"{name} repeats '{value}'", path)
                seen.add(value)

    def _types(self) -> None:
        fw = self.ctx.fw
        tables = table()
        every = sorted({t for f in tables.frameworks.values() for t in f.types})
        for path, layer_type in self._named_types():
            quantizable = layer_type in fw.types if fw else tables.lookup(layer_type) is not None
            if not quantizable:
                choices = list(fw.types) if fw else every
                raise self._fail("E154", f"Layer type {layer_type} does not support quantize.",
                                 path, hint=did_you_mean(layer_type, choices))
        skipped = set(self.msg.skip_layer_types)
        if fw is not None and skipped and not set(fw.types) - skipped:
            raise self._fail("E154", "Except skip_types, no type need to quantize.",
                             ("skip_layer_types", len(self.msg.skip_layer_types) - 1))

    def _named_types(self) -> Iterator[tuple[Path, str]]:
        for i, o in enumerate(self.msg.override_layer_types):
            yield ("override_layer_types", i, "layer_type"), o.layer_type
        for i, t in enumerate(self.msg.skip_layer_types):
            yield ("skip_layer_types", i), t

    def _block(self, block: _Block) -> None:
        cfg = block.msg
        act = _act(cfg)
        if act is not None:
            algo, m, sub = act
            (self._ifmr if algo == "ifmr" else self._hfmg)(m, (*block.path, sub))
        if isinstance(cfg, pb.TensorQuantize):
            if cfg.HasField("ifmr_quantize") and cfg.HasField("hfmg_quantize"):
                self.ctx.warn("W150", "tensor_quantize sets ifmr_quantize and hfmg_quantize; "
                              "AMCT uses hfmg_quantize", block.span)
            return
        self._weights(block)
        if cfg.HasField("dmq_balancer"):
            lo, hi = DMQ_RANGE
            value = f32(cfg.dmq_balancer.migration_strength)
            if not lo <= value <= hi:
                raise self._fail("E152", f"migration_strength {value} must be in range "
                                 f"[{lo}, {hi}]",
                                 (*block.path, "dmq_balancer", "migration_strength"))
        self._exclusive(block)
        if block.layer_type is not None:
            self._capabilities(block)

    def _weights(self, block: _Block) -> None:
        cfg = block.msg
        if cfg.HasField("arq_quantize"):
            arq, path = cfg.arq_quantize, (*block.path, "arq_quantize")
            if arq.HasField("quant_bits") and arq.quant_bits not in WEIGHT_BITS:
                raise self._fail("E152", f"weight num_bits is not in {list(WEIGHT_BITS)}",
                                 (*path, "quant_bits"))
            if arq.HasField("asymmetric") and not cfg.weight_compress_only:
                raise self._fail("E152", "ARQ asymmetric needs weight_compress_only: true",
                                 (*path, "asymmetric"))
        elif cfg.HasField("ada_quantize"):
            self._ada(cfg.ada_quantize, (*block.path, "ada_quantize"))
        elif cfg.HasField("nuq_quantize"):
            self._nuq(cfg.nuq_quantize, (*block.path, "nuq_quantize"))

    def _exclusive(self, block: _Block) -> None:
        # oneof under Merge: the later algorithm silently replaces the earlier one.
        for group in (("arq_quantize", "nuq_quantize", "ada_quantize"),
                      ("ifmr_quantize", "hfmg_quantize")):
            present = [g for g in group if (*block.path, g) in self.loc.locs]
            if len(present) > 1:
                chosen = block.msg.WhichOneof("wts_quant_algo" if "arq_quantize" in group
                                              else "acts_quant_algo")
                self.ctx.warn("W150", f"{' and '.join(present)} are alternatives; the last one "
                              f"written ({chosen}) replaces the others",
                              self.loc.key((*block.path, chosen or present[-1])))

    def _ifmr(self, m: pb.FMRQuantize, path: Path) -> None:
        for name in ("search_range_start", "search_range_end", "search_step", "max_percentile",
                     "min_percentile"):
            # nan passes every comparison below as False (and Decimal("nan") raises)
            if not math.isfinite(getattr(m, name)):
                raise self._fail("E152", f"{name} must be a finite number", (*path, name))
        start, end = f32(m.search_range_start), f32(m.search_range_end)
        step = f32(m.search_step)
        if start <= 0:
            raise self._fail("E152", "search_range_start must be greater than zero",
                             (*path, "search_range_start"))
        if start >= end:
            raise self._fail("E152", "search_range_start must be less than search_range_end",
                             (*path, "search_range_start" if m.HasField("search_range_start")
                              else "search_range_end"))
        if step <= 0:
            raise self._fail("E152", "The search_step must be greater than zero",
                             (*path, "search_step"))
        if Decimal(str(step)) > Decimal(str(end)) - Decimal(str(start)):
            raise self._fail("E152", "The search_step must be less than or equal to "
                             "(search_range_end - search_range_start)", (*path, "search_step"))
        for name in ("max_percentile", "min_percentile"):
            value = f32(getattr(m, name))
            if not 0.5 < value <= 1.0:
                raise self._fail("E152", f"The {name} must be greater than 0.5 and less than "
                                 f"or equal to 1.0, got {value}", (*path, name))

    def _hfmg(self, m: pb.HFMGQuantize, path: Path) -> None:
        if m.num_of_bins not in HFMG_BINS:
            raise self._fail("E152", f"num_of_bins {m.num_of_bins} must be in "
                             f"{list(HFMG_BINS)}", (*path, "num_of_bins"))

    def _ada(self, m: pb.ADAquantize, path: Path) -> None:
        start, end = f32(m.beta_range_start), f32(m.beta_range_end)
        checks = [
            (not 0 < f32(m.reg_param) < 1, "reg_param", "must be less than 1 and larger than 0"),
            (not 0 < f32(m.warm_start) < 1, "warm_start",
             "must be less than 1 and larger than 0"),
            (start <= end, "beta_range_start", "must be larger than beta_range_end"),
            (end <= 0, "beta_range_end", "must be larger than 0"),
        ]
        for failed, name, text in checks:
            if failed:
                raise self._fail("E152", f"{name} {text}", (*path, name))

    def _nuq(self, m: pb.NUQuantize, path: Path) -> None:
        if m.num_steps not in NUQ_STEPS:
            raise self._fail("E152", f"num_steps must be in {list(NUQ_STEPS)}",
                             (*path, "num_steps"))
        if m.num_of_iteration not in NUQ_ITERATIONS:
            raise self._fail("E152", "num_of_iteration must be in [0, 5]",
                             (*path, "num_of_iteration"))

    def _capabilities(self, block: _Block) -> None:
        """proto_config.py _get_override_layer_types checks, in its order (vitis_amct.md
        2.2, 2.4)."""
        fw, t, cfg = self.ctx.fw, block.layer_type or "", block.msg
        if fw is None:
            return
        act = _act(cfg)
        wts = cfg.WhichOneof("wts_quant_algo")
        cw = wts in ("arq_quantize", "ada_quantize") and getattr(cfg, wts).channel_wise
        checks = [
            (act is not None and act[1].HasField("asymmetric") and act[1].asymmetric,
             "symmetric_only", True, f"Layer type {t} can only set asymmetric be False",
             (*block.path, act[2] if act else "", "asymmetric")),
            (cw, "channel_wise", False, f"channel_wise can only be False for {t} type",
             (*block.path, wts or "", "channel_wise")),
            (cfg.HasField("dmq_balancer"), "dmq", False, f"dmq_balancer not support for {t} type",
             (*block.path, "dmq_balancer")),
            (act is not None and act[1].dst_type == 2, "int16", False,
             f"int16_quantizable not support for {t} type",
             (*block.path, act[2] if act else "", "dst_type")),
            (wts == "ada_quantize", "ada", False, f"ada_quantizable not support for {t} layer",
             (*block.path, "ada_quantize")),
            (wts == "arq_quantize" and cfg.arq_quantize.quant_bits in WINOGRAD_BITS,
             "winograd", False,
             f"quant_bits {cfg.arq_quantize.quant_bits} not support for {t} type",
             (*block.path, "arq_quantize", "quant_bits")),
        ]
        for used, cap, forbidden_when, message, path in checks:
            if used and fw.has(cap, t) is forbidden_when:
                raise self._fail("E154", message, path)


def _act(cfg: Message) -> tuple[str, Message, str] | None:
    """The activation algorithm block: (``ifmr``|``hfmg``, message, field name) or None."""
    if cfg.HasField("hfmg_quantize"):  # TensorQuantize: hfmg wins when both are set
        return "hfmg", cfg.hfmg_quantize, "hfmg_quantize"
    if cfg.HasField("ifmr_quantize"):
        return "ifmr", cfg.ifmr_quantize, "ifmr_quantize"
    return None


# ---------------------------------------------------------------------------------------------
# Building the IR
# ---------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.msg = ctx.msg
        self.loc = ctx.loc
        self.tables = table()
        self.extras: list[tuple[str, str, tuple[Any, ...]]] = []
        common = self.msg.common_config if self.msg.HasField("common_config") else (
            self.msg.conv_calibration_config if self._uses_deprecated() else None)
        act = _act(common) if common is not None else None
        self.common_algo = act[0] if act else None
        self.common_asym = None
        if act and act[1].HasField("asymmetric"):
            path = (self._common_path(), act[2], "asymmetric")
            self.common_asym = (act[1].asymmetric, self.loc.key(path))

    def _uses_deprecated(self) -> bool:
        m = self.msg
        return (not m.HasField("common_config") and not m.override_layer_types
                and m.HasField("conv_calibration_config"))

    def _common_path(self) -> str:
        return "common_config" if self.msg.HasField("common_config") else \
            "conv_calibration_config"

    def profile(self) -> Profile:
        rules = [*self._base_rules(), *self._block_rules(), *self._skip_rules()]
        ties: tuple[Tie, ...] = ()
        if self.msg.joint_quant:
            # Eltwise joint quantization: the Add inputs share one encoding (vitis_amct.md 2.2).
            ties = (Tie("inputs_to_output", op_types=("Add",),
                        span=self.loc.key(("joint_quant",))),)
        return Profile(source=self.loc.file, dialect=NAME, rules=tuple(rules), ties=ties,
                       calibrate=self._calibrate(), transforms=self._transforms(),
                       meta=self._meta())

    # -- rules ----------------------------------------------------------------------------------

    def _base_rules(self) -> Iterator[Rule]:
        t = self.tables
        yield Rule(Selector("defaults", slot="tensor"),
                   {"quantized": Setting(False), "signed": Setting(True),
                    "scale_type": Setting("float"), "rounding": Setting("half_even")},
                   origin=NAME, note=_BASE_NOTE + "; integer grids are signed, scales float, "
                   "rounding half-even (torch.round)")
        yield Rule(Selector("op", op_types=tuple(sorted(t.channel_wise_ops,
                                                        key=t.common.index)), slot="weight"),
                   {"per_channel": Setting(True)}, origin=NAME, note=_CW_NOTE)
        yield Rule(Selector("op", op_types=t.per_tensor_weight_ops, slot="weight"),
                   {"per_channel": Setting(False)}, origin=NAME, note=_CW_NOTE)

    def _block_rules(self) -> Iterator[Rule]:
        blocks = list(self.ctx.blocks())
        if not blocks or blocks[0].ident != "common":
            yield from self._default_block()
        for block in blocks:
            yield from self._rules_for(block)
            if block.ident == "common":
                yield from self._downgrades(block)
            self._note_extras(block)

    def _default_block(self) -> Iterator[Rule]:
        block = _Block("common", pb.CalibrationConfig(), (), Span(self.loc.file))
        for rule in self._rules_for(block):
            yield Rule(rule.selector, rule.settings, None, origin=NAME, note=_DEFAULT_NOTE)

    def _rules_for(self, block: _Block) -> Iterator[Rule]:
        ident = block.ident
        if ident == "common":
            ops = self.tables.common
            sels = (Selector("op", op_types=ops, slot="input"),
                    Selector("op", op_types=ops, slot="weight"))
        elif block.layer_type is not None:
            ops = self._ops(block.layer_type)
            sels = (Selector("op", op_types=ops, slot="input"),
                    Selector("op", op_types=ops, slot="weight"))
        elif block.index is None:
            name = _escape(block.layer_name or "")
            sels = (Selector("layer", names=(name,), slot="input"),
                    Selector("layer", names=(name,), slot="weight"))
        else:
            name = _escape(block.layer_name or "")
            yield Rule(Selector("layer", names=(name,), slot="input", index=block.index),
                       self._act_settings(block), block.span)
            return
        yield Rule(sels[0], self._act_settings(block), block.span)
        yield Rule(sels[1], self._weight_settings(block), block.span)

    def _ops(self, layer_type: str) -> tuple[str, ...]:
        fw = self.ctx.fw
        if fw is not None and layer_type in fw.types:
            return fw.types[layer_type]
        return self.tables.lookup(layer_type) or (layer_type,)

    def _act_settings(self, block: _Block) -> dict[str, Setting]:
        cfg, span = block.msg, block.span
        if isinstance(cfg, pb.CalibrationConfig) and cfg.weight_compress_only:
            return {"quantized": Setting(False, self.loc.key((*block.path,
                                                              "weight_compress_only")))}
        act = _act(cfg)
        algo, m, sub = act if act else ("ifmr", pb.FMRQuantize(), "ifmr_quantize")
        path = (*block.path, sub)
        algo_span = self.loc.key(path) if act else span
        out = {
            "quantized": Setting(True, span),
            "dtype": Setting("int", span),
            "bits": Setting(DST_BITS.get(m.dst_type, 8),
                            self.loc.key((*path, "dst_type")) if m.HasField("dst_type")
                            else algo_span),
            "symmetric": self._symmetric(block, algo, m, path),
            "per_channel": Setting(False, span),
            "calibration": Setting(_calibration(algo, m), algo_span),
        }
        return {f: out[f] for f in FIELDS if f in out}

    def _symmetric(self, block: _Block, algo: str, m: Message, path: Path) -> Setting:
        """Block value, else common_config's when the algorithms match, else activation_offset
        (config_base.py set_global_asymmetric, vitis_amct.md 2.3)."""
        if m.HasField("asymmetric"):
            return Setting(not m.asymmetric, self.loc.key((*path, "asymmetric")))
        fw = self.ctx.fw
        if block.layer_type and fw is not None and fw.has("symmetric_only", block.layer_type):
            return Setting(True, block.span)  # _fill_default_activation_asymmetric forces it
        if self.common_asym is not None and algo == self.common_algo:
            value, span = self.common_asym
            return Setting(not value, span)
        offset = self.msg.activation_offset  # proto default true
        span = self.loc.key(("activation_offset",)) if self.msg.HasField(
            "activation_offset") else block.span
        return Setting(not offset, span)

    def _weight_settings(self, block: _Block) -> dict[str, Setting]:
        cfg, span = block.msg, block.span
        wts = cfg.WhichOneof("wts_quant_algo")
        m = getattr(cfg, wts) if wts else pb.ARQuantize()
        path = (*block.path, wts or "arq_quantize")
        algo_span = self.loc.key(path) if wts else span
        out = {
            "quantized": Setting(True, span),
            "dtype": Setting("int", span),
            "bits": Setting(8, algo_span),
            "symmetric": Setting(True, algo_span),  # PTQ weights have no offset (vitis_amct.md 2.3)
            # ARQ is min/max per tensor or channel (vitis_amct.md 2.5)
            "calibration": Setting(Calibration("minmax"), algo_span),
        }
        if wts == "arq_quantize":
            if m.HasField("quant_bits"):
                out["bits"] = Setting(m.quant_bits, self.loc.key((*path, "quant_bits")))
            if m.HasField("asymmetric"):
                out["symmetric"] = Setting(not m.asymmetric, self.loc.key((*path, "asymmetric")))
        if wts in ("arq_quantize", "ada_quantize") and m.HasField("channel_wise"):
            out["per_channel"] = Setting(m.channel_wise, self.loc.key((*path, "channel_wise")))
        elif block.layer_type is not None:
            # Whole-block replacement: an unset channel_wise is the type's default, not the
            # common_config value (config_base.py fill_default, vitis_amct.md 2.3).
            out["per_channel"] = Setting(self._channel_wise_default(block.layer_type), span)
        elif block.layer_name is not None and self._explicit_lower_channel_wise():
            self.ctx.warn("W151", f"override_layer_configs '{block.layer_name}' leaves "
                          "channel_wise unset: AMCT uses the layer type's default; quantspec "
                          "inherits the explicit channel_wise of the type/common block", span)
        return {f: out[f] for f in FIELDS if f in out}

    def _explicit_lower_channel_wise(self) -> bool:
        for block in self.ctx.blocks():
            if block.layer_name is None and isinstance(block.msg, pb.CalibrationConfig):
                wts = block.msg.WhichOneof("wts_quant_algo")
                if wts in ("arq_quantize", "ada_quantize") and getattr(
                        block.msg, wts).HasField("channel_wise"):
                    return True
        return False

    def _channel_wise_default(self, layer_type: str) -> bool:
        fw = self.ctx.fw
        known = fw.has("channel_wise", layer_type) if fw is not None else None
        if known is not None:
            return known
        return all(op in self.tables.channel_wise_ops for op in self._ops(layer_type))

    def _downgrades(self, block: _Block) -> Iterator[Rule]:
        """common_config values AMCT lowers on layers that cannot take them (config_base.py,
        vitis_amct.md 2.2)."""
        cfg, t = block.msg, self.tables
        if cfg.HasField("arq_quantize") and cfg.arq_quantize.quant_bits in WINOGRAD_BITS:
            ops = tuple(op for op in t.common if op not in t.winograd_ops)
            yield Rule(Selector("op", op_types=ops, slot="weight"), {"bits": Setting(8)},
                       block.span, origin=NAME, note="6/7-bit (winograd) weights only on "
                       "Conv2d; other layers fall back to 8 bits")
        act = _act(cfg)
        if act is not None and act[1].dst_type == 2:
            ops = tuple(op for op in t.common if op not in t.int16_ops)
            yield Rule(Selector("op", op_types=ops, slot="input"), {"bits": Setting(8)},
                       block.span, origin=NAME, note="INT16 activations only on "
                       "INT16_QUANTIZABLE_TYPES; other layers fall back to INT8")

    def _skip_rules(self) -> Iterator[Rule]:
        # A skipped type or layer is never quantized, whatever overrides say (config_base.py
        # _find_quant_layers removes them before any block applies, vitis_amct.md 2.4): `final`.
        for i, t in enumerate(self.msg.skip_layer_types):
            span = self.loc.value(("skip_layer_types", i))
            for slot in ("input", "weight"):
                yield Rule(Selector("op", op_types=self._ops(t), slot=slot),
                           {"quantized": Setting(False, span)}, span, final=True)
        for i, name in enumerate(self.msg.skip_layers):
            span = self.loc.value(("skip_layers", i))
            for slot in ("input", "weight"):
                yield Rule(Selector("layer", names=(_escape(name),), slot=slot),
                           {"quantized": Setting(False, span)}, span, final=True)

    def _note_extras(self, block: _Block) -> None:
        # DMQ (SmoothQuant-like balancing), ADA rounding and NUQ have no IR field: kept per
        # block in meta so the block is written back with them.
        cfg = block.msg
        if not isinstance(cfg, pb.CalibrationConfig):
            return
        for name in ("ada_quantize", "nuq_quantize", "dmq_balancer"):
            if cfg.HasField(name):
                self.extras.append((block.ident, name, _pairs(getattr(cfg, name))))

    # -- profile-level --------------------------------------------------------------------------

    def _calibrate(self) -> dict[str, Setting]:
        if not self.msg.HasField("batch_num"):
            return {}
        return {"batches": Setting(self.msg.batch_num, self.loc.value(("batch_num",)))}

    def _transforms(self) -> dict[str, Setting]:
        m = self.msg
        value: Any = m.do_fusion
        if m.skip_fusion_layers:
            # Pairs rather than a dict so the value survives the .qspec language unchanged.
            value = (("enabled", m.do_fusion), ("skip", tuple(m.skip_fusion_layers)))
        span = None
        for key in ("skip_fusion_layers", "do_fusion"):
            if (key,) in self.loc.locs or (key, 0) in self.loc.locs:
                span = self.loc.key((key,) if key == "do_fusion" else (key, 0))
        return {"fold_batchnorm": Setting(value, span)}

    def _meta(self) -> dict[str, Setting]:
        m, meta = self.msg, {}

        def put(key: str, value: Any, path: Path) -> None:
            meta[META + key] = Setting(value, self.loc.key(path))

        if m.HasField("activation_offset"):
            put("activation_offset", m.activation_offset, ("activation_offset",))
        if m.HasField("fakequant_precision_mode"):
            put("fakequant_precision_mode",
                pb.FakequantPrecisionMode.Name(m.fakequant_precision_mode),
                ("fakequant_precision_mode",))
        if m.HasField("version"):
            put("version", m.version, ("version",))
        if m.HasField("nuq_config"):
            put("nuq_config", _pairs(m.nuq_config), ("nuq_config",))
        if m.skip_approximation_layers:
            put("skip_approximation_layers", tuple(m.skip_approximation_layers),
                ("skip_approximation_layers", 0))
        names = [b.layer_type for b in self.ctx.blocks() if b.layer_type is not None]
        names += list(m.skip_layer_types)
        if names:
            meta[META + "layer_types"] = Setting(tuple(names))
        if self.ctx.fw is not None and names:
            meta[META + "framework"] = Setting(self.ctx.fw.name)
        if self.extras:
            meta[META + "block_extras"] = Setting(tuple(self.extras))
        return meta


def _calibration(algo: str, m: Message) -> Calibration:
    if algo == "hfmg":
        return Calibration("hfmg", (("num_of_bins", m.num_of_bins),))
    return Calibration("ifmr", tuple((k, f32(getattr(m, k))) for k, _ in IFMR_DEFAULTS))


def _pairs(msg: Message) -> tuple[tuple[str, Any], ...]:
    out: list[tuple[str, Any]] = []
    for fd, value in msg.ListFields():
        if fd.message_type is not None:
            value = _pairs(value)
        elif fd.type == FieldDescriptor.TYPE_FLOAT:
            value = f32(value)
        out.append((fd.name, value))
    return tuple(out)


def _fill(msg: Message, pairs: Iterable[tuple[str, Any]]) -> None:
    for name, value in pairs:
        if isinstance(value, tuple):
            _fill(getattr(msg, name), value)
            getattr(msg, name).SetInParent()
        else:
            setattr(msg, name, value)


_GLOB_CHAR = re.compile(r"([*?[])")
_ESCAPED = re.compile(r"\[([*?[])\]")


def _escape(name: str) -> str:
    """A vendor layer name as an exact IR name: glob characters escaped fnmatch-style."""
    return _GLOB_CHAR.sub(r"[\1]", name)


def _exact(pattern: str) -> str | None:
    """The literal name an IR layer pattern stands for, or None when it is a real glob."""
    if _GLOB_CHAR.search(_ESCAPED.sub("", pattern)):
        return None
    return _ESCAPED.sub(r"\1", pattern)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


@dataclass
class _WBlock:
    act: list[tuple[int, Rule]] = field(default_factory=list)
    weight: list[tuple[int, Rule]] = field(default_factory=list)
    span: Span | None = None


@dataclass
class _Skip:
    slots: set[str] = field(default_factory=set)
    span: Span | None = None
    final: bool = True


class _Writer:
    def __init__(self, profile: Profile, report: Report, options: Mapping[str, Any]) -> None:
        self.p = profile
        self.report = report
        self.t = table()
        name = options.get("framework") or _meta(profile, "framework") or "onnx"
        if name not in self.t.frameworks:
            raise QuantspecError("E120", f"unknown AMCT framework '{name}'",
                                 hint=did_you_mean(name, self.t.frameworks))
        self.fw = self.t.frameworks[name]
        self.queue = list(_meta(profile, "layer_types") or ())
        self.run: tuple[tuple[str, ...], set[str], list[str], bool] | None = None
        self.warned: set[tuple[str, str, Span | None]] = set()
        self.extras = {(ident, algo): pairs
                       for ident, algo, pairs in _meta(profile, "block_extras") or ()}
        self.offset = _meta(profile, "activation_offset")
        self.common_algo: str | None = None
        self.common_asym: bool | None = None
        self.from_amct = False  # the profile holds this dialect's derived rules

    def warn(self, code: str, message: str, span: Span | None, hint: str = "") -> None:
        if (code, message, span) not in self.warned:
            self.warned.add((code, message, span))
            self.report.warn(code, message, span, hint)

    def text(self) -> str:
        msg = pb.AMCTConfig()
        self._globals(msg)
        lower: _WBlock = _WBlock()
        common: _WBlock | None = None
        types: dict[str, _WBlock] = {}
        layers: dict[str, _WBlock] = {}
        tensors: dict[tuple[str, int], _WBlock] = {}
        skip_types: dict[str, _Skip] = {}
        skip_layers: dict[str, _Skip] = {}
        weight_only = False
        own: list[Rule] = []
        for order, rule in enumerate(self.p.rules):
            if rule.origin == NAME:
                own.append(rule)
                continue  # re-derived on read
            if rule.selector.scope != "op":
                self.run = None
            if self._common_weight_only(rule):
                weight_only = True
                continue
            if _value(rule.settings, "quantized") is False:
                self._skip(rule, skip_types, skip_layers)
                continue
            parts = self._parts(rule)
            if not parts:
                continue
            self._rule_warnings(rule, parts)
            for dest in self._dests(rule, lower, types, layers, tensors):
                if dest is lower and rule.selector.scope == "op":
                    common = common or _WBlock(span=rule.span)
                    dest = common
                dest.span = dest.span or rule.span
                for part in parts:
                    getattr(dest, part).append((order, rule))
        self._fill_ir_defaults(lower, common, own)
        self.from_amct = bool(own)
        if not self.from_amct:
            # AMCT's model is input-side (2.3): whatever the profile says about other tensors,
            # AMCT quantizes exactly the data inputs and weights of the layers it does not skip
            self.warn("W503", "AMCT quantizes the data input and the weights of every "
                      f"quantizable layer ({', '.join(self.t.common)}) it does not skip, and "
                      "no other tensor: tensors this profile quantizes otherwise are not "
                      "quantized as it says", None)
        # `input: quantized false` inside a block is weight-only quantization (ATC's
        # weight_compress_only), not a skip.
        wo_types = _weight_only(skip_types, types)
        wo_layers = _weight_only(skip_layers, layers)
        if common is not None or lower.act or lower.weight or weight_only:
            blocks = (lower, common) if common is not None else (_WBlock(), lower)
            self._write_block(msg.common_config, "common", *blocks, None, False, weight_only)
            msg.common_config.SetInParent()
        base = _merge(lower, common)
        for t, block in types.items():
            item = msg.override_layer_types.add(layer_type=t)
            self._write_block(item.calibration_config, f"type:{t}", base, block, t, False,
                              t in wo_types)
            item.calibration_config.SetInParent()
        for name, block in layers.items():
            item = msg.override_layer_configs.add(layer_name=name)
            self._write_block(item.calibration_config, f"layer:{name}", base, block, None, True,
                              name in wo_layers)
            item.calibration_config.SetInParent()
        for (name, index), block in tensors.items():
            item = msg.tensor_quantize.add(layer_name=name, input_index=index)
            self._write_act(item, base, block, None)
        self._write_skips(msg, skip_types, skip_layers)
        self._profile_items()
        out: str = text_format.MessageToString(msg)
        self._self_check(out, msg)
        return out

    # -- globals ----------------------------------------------------------------------------------

    def _globals(self, msg: pb.AMCTConfig) -> None:
        batches = self.p.calibrate.get("batches")
        for key, setting in self.p.calibrate.items():
            if key != "batches":
                self.warn("W504", f"calibrate {key}: {show_value(setting.value)} has no AMCT "
                          "field; dropped", setting.span)
        if batches is not None:
            if type(batches.value) is int and batches.value > 0:
                msg.batch_num = batches.value
            else:
                self.warn("W502", f"batch_num {show_value(batches.value)} is not a positive "
                          "integer; dropped", batches.span)
        if self.offset is not None:
            msg.activation_offset = self.offset
        for key, setter in (("fakequant_precision_mode",
                             lambda v: setattr(msg, "fakequant_precision_mode",
                                               pb.FakequantPrecisionMode.Value(v))),
                            ("version", lambda v: setattr(msg, "version", v)),
                            ("nuq_config", lambda v: _fill(msg.nuq_config, v)),
                            ("skip_approximation_layers",
                             lambda v: msg.skip_approximation_layers.extend(v))):
            value = _meta(self.p, key)
            if value is not None:
                setter(value)
        self._fusion(msg)
        for tie in self.p.ties:
            if tie.mode == "inputs_to_output" and tie.op_types == ("Add",) and not tie.through:
                msg.joint_quant = True
            elif tie.origin != NAME:
                self.warn("W504", f"shared encoding ({tie.mode or 'tensors'}) has no AMCT field; "
                          "dropped (joint_quant shares the Add inputs only)", tie.span)

    def _fusion(self, msg: pb.AMCTConfig) -> None:
        for name, setting in self.p.transforms.items():
            value = setting.value
            if name == "fold_batchnorm":
                options = _as_mapping(value)
                if options is not None:
                    if not options.get("enabled", True):
                        msg.do_fusion = False
                    msg.skip_fusion_layers.extend(options.get("skip", ()))
                elif value is False:
                    msg.do_fusion = False
            elif value is not False:
                self.warn("W504", f"transform {name}: {show_value(value)} has no AMCT field; "
                          "dropped", setting.span)

    def _profile_items(self) -> None:
        for pattern in self.p.patterns:
            self.warn("W504", f"fusion pattern {pattern.describe()} has no AMCT field; dropped",
                      pattern.span)
        for name, span in (*self.p.passes, *self.p.post):
            self.warn("W504", f"'{name}' has no AMCT equivalent; dropped", span)
        for name, setting in self.p.options.values.items():
            if setting.value != OPTION_DEFAULTS.get(name):  # the reader sets none: defaults
                self.warn("W504", f"option {name}: {show_value(setting.value)} has no AMCT form; "
                          "dropped", setting.span)

    # -- routing ----------------------------------------------------------------------------------

    def _parts(self, rule: Rule) -> tuple[str, ...]:
        sel = rule.selector
        if sel.scope in ("tensor", "model_input", "model_output"):
            self.warn("W501", f"{_label(rule)}: AMCT configures layers, not "
                      f"{sel.scope.replace('_', ' ')}s; rule dropped", rule.span)
            return ()
        slot = sel.slot
        if slot == "output" and sel.scope == "defaults":
            self.warn("W503", f"{_label(rule)}: AMCT quantizes the inputs of quantizable "
                      "layers; written as their input config", rule.span)
            return ("act",)
        if slot == "graph_input" and sel.scope == "defaults":
            self.warn("W503", f"{_label(rule)}: written as the input config of every "
                      "quantizable layer", rule.span)
            return ("act",)
        parts = {"tensor": ("act", "weight"), "input": ("act",), "weight": ("weight",),
                 "param": ("weight",)}.get(slot, ())
        if not parts:
            self.warn("W501", f"{_label(rule)}: AMCT has no settings for "
                      f"{'outputs' if slot == 'output' else slot + ' tensors'} of a layer; "
                      "rule dropped", rule.span)
        return parts

    def _dests(self, rule: Rule, lower: _WBlock, types: dict[str, _WBlock],
               layers: dict[str, _WBlock], tensors: dict[tuple[str, int], _WBlock]
               ) -> list[_WBlock]:
        sel = rule.selector
        if sel.scope == "defaults":
            return [lower]
        if sel.scope == "op":
            if set(sel.op_types) == set(self.t.common):
                return [lower]
            return [types.setdefault(t, _WBlock()) for t in self._type_names(rule)]
        out = []
        for pattern in sel.names:
            name = _exact(pattern)
            if name is None:
                self.warn("W501", f"{_label(rule)}: AMCT layer names are exact; '{pattern}' "
                          "dropped", rule.span)
            elif sel.slot == "input" and sel.index is not None:
                out.append(tensors.setdefault((name, sel.index), _WBlock()))
            else:
                out.append(layers.setdefault(name, _WBlock()))
        return out

    def _type_names(self, rule: Rule, skip: bool = False) -> list[str]:
        sel = rule.selector
        if self.run and self.run[0] == sel.op_types and sel.slot not in self.run[1] and \
                self.run[3] == skip:
            self.run[1].add(sel.slot)
            return self.run[2]
        names = self._names_for(sel.op_types)
        quantizable = [n for n in names if n in self._owner(n).types]
        for n in names:
            if n not in quantizable:
                self.warn("W501", f"{_label(rule)}: {self.fw.name} AMCT cannot configure "
                          f"layer type {n} by type; dropped", rule.span)
        if not names:
            self.warn("W501", f"{_label(rule)}: AMCT quantizes only "
                      f"{', '.join(self.t.common)} layers; rule dropped", rule.span)
        self.run = (sel.op_types, {sel.slot}, quantizable, skip)
        return quantizable

    def _owner(self, layer_type: str) -> Framework:
        """The front-end a layer type belongs to: the target's, else the first that has it."""
        if self.fw.known(layer_type):
            return self.fw
        for name in self.t.detect_order:
            if self.t.frameworks[name].known(layer_type):
                return self.t.frameworks[name]
        return self.fw

    def _has(self, cap: str, layer_type: str | None) -> bool | None:
        return self._owner(layer_type).has(cap, layer_type) if layer_type else None

    def _names_for(self, op_types: tuple[str, ...]) -> list[str]:
        for i, name in enumerate(self.queue):
            ops = self.fw.types.get(name) or self.t.lookup(name) or (name,)
            if ops == op_types:
                del self.queue[i]
                return [name]
        names = layer_type_names(self.fw, op_types)
        names += [t for t, ops in self.fw.tensor_only.items() if set(ops) & set(op_types)]
        return names

    def _fill_ir_defaults(self, lower: _WBlock, common: _WBlock | None, own: list[Rule]) -> None:
        """Fields no rule sets have the compiler's defaults in the IR but AMCT's built-in values
        in the file: the IR's min/max calibration and per-tensor weights go into
        common_config where they differ."""
        from ..compiler.plan import BUILTIN as IR_DEFAULTS  # only writers need it

        present = {f for r in own for f in r.settings}
        for block in (lower, common):
            for _, rule in (block.act + block.weight) if block else ():
                present |= set(rule.settings)
        fills = [("act", "input", "calibration"), ("weight", "weight", "per_channel")]
        for part, slot, name in fills:
            if name not in present:
                rule = Rule(Selector("defaults", slot=slot),
                            {name: Setting(IR_DEFAULTS[name])}, origin="ir")
                getattr(lower, part).insert(0, (-1, rule))

    def _common_weight_only(self, rule: Rule) -> bool:
        sel = rule.selector
        return (_value(rule.settings, "quantized") is False and not rule.final
                and sel.slot == "input" and sel.index is None and sel.scope == "op"
                and set(sel.op_types) == set(self.t.common))

    def _skip(self, rule: Rule, skip_types: dict[str, _Skip], skip_layers: dict[str, _Skip]
              ) -> None:
        sel = rule.selector
        slots = {"tensor": {"input", "weight"}, "param": {"weight"}, "input": {"input"},
                 "weight": {"weight"}}.get(sel.slot)
        if sel.scope not in ("op", "layer") or slots is None or sel.index is not None:
            self.warn("W501", f"{_label(rule)}: AMCT can only skip whole layers or layer "
                      "types; 'quantized: false' dropped", rule.span)
            return
        if sel.scope == "op":
            targets = [skip_types.setdefault(n, _Skip()) for n in self._type_names(rule, True)]
        else:
            targets = []
            for pattern in sel.names:
                name = _exact(pattern)
                if name is None:
                    self.warn("W501", f"{_label(rule)}: AMCT layer names are exact; "
                              f"'{pattern}' dropped", rule.span)
                else:
                    targets.append(skip_layers.setdefault(name, _Skip()))
        for target in targets:
            target.slots |= slots
            target.span = target.span or rule.span
            target.final = target.final and rule.final

    def _write_skips(self, msg: pb.AMCTConfig, skip_types: dict[str, _Skip],
                     skip_layers: dict[str, _Skip]) -> None:
        for field_name, skips in (("skip_layer_types", skip_types), ("skip_layers", skip_layers)):
            for name, skip in skips.items():
                if skip.slots == {"input"} and not skip.final:
                    continue  # written as weight_compress_only
                if skip.slots != {"input", "weight"}:
                    self.warn("W503", f"{name}: AMCT skips a layer's input and weights together; "
                              f"written to {field_name}", skip.span)
                elif not skip.final:
                    self.warn("W503", f"{name}: AMCT skips beat every override; written to "
                              f"{field_name}", skip.span)
                getattr(msg, field_name).append(name)

    def _rule_warnings(self, rule: Rule, parts: tuple[str, ...]) -> None:
        sel = rule.selector
        if rule.final:
            self.warn("W503", f"{_label(rule)}: 'final' has no AMCT equivalent; written at its "
                      "own precedence", rule.span)
        if sel.where:
            self.warn("W503", f"{_label(rule)}: AMCT cannot test "
                      f"{', '.join(map(str, sel.where))}; written for every matching layer",
                      rule.span)
        if sel.slot == "input" and sel.index is not None and sel.scope != "layer":
            self.warn("W503", f"{_label(rule)}: AMCT quantizes the data input; index dropped",
                      rule.span)
        for name, setting in rule.settings.items():
            for part in parts:
                code, problem = _unsupported(name, setting.value, part)
                if problem:
                    self.warn(code, f"{_label(rule)}: {problem}", setting.span or rule.span)

    # -- blocks -----------------------------------------------------------------------------------

    def _write_block(self, cfg: pb.CalibrationConfig, ident: str, base: _WBlock,
                     block: _WBlock, layer_type: str | None, is_layer: bool,
                     weight_only: bool = False) -> None:
        if weight_only:
            cfg.weight_compress_only = True
        else:
            self._write_act(cfg, base, block, layer_type)
        if ident == "common":
            act = _act(cfg)
            self.common_algo = act[0] if act else None
            self.common_asym = act[1].asymmetric if act and act[1].HasField("asymmetric") \
                else None
        self._write_weight(cfg, ident, base, block, layer_type, is_layer)
        dmq = self.extras.get((ident, "dmq_balancer"))
        if dmq is not None:
            _fill(cfg.dmq_balancer, dmq)
            cfg.dmq_balancer.SetInParent()

    def _write_act(self, cfg: Message, base: _WBlock, block: _WBlock, layer_type: str | None
                   ) -> None:
        s = _fold(base.act + block.act)
        if not s:
            return
        calib = _value(s, "calibration")
        algo, params, approx = _act_algorithm(calib)
        if approx:
            known = calib.method in ("percentile", "mse", "entropy", "tf_enhanced")
            self.warn("W503" if known else "W502", f"calibration {calib.method} "
                      f"{'approximated by' if known else 'has no AMCT algorithm; written as'} "
                      f"{algo}", s["calibration"].span)
        bits = _value(s, "bits")
        dst = 2 if bits == 16 else 1
        if dst == 2 and self._has("int16", layer_type) is False:
            self.warn("W502", f"{layer_type}: INT16 activations not supported; INT8 written",
                      s["bits"].span)
            dst = 1
        asym = None if _value(s, "symmetric") is None else not s["symmetric"].value
        if asym and self._has("symmetric_only", layer_type):
            self.warn("W502", f"{layer_type}: activations must be symmetric; asymmetric "
                      "dropped", s["symmetric"].span)
            asym = False
        write_asym = asym is not None and asym != self._inferred_asym(algo)
        if algo == "ifmr" and params == IFMR_DEFAULTS and dst == 1 and not write_asym:
            return
        m = cfg.hfmg_quantize if algo == "hfmg" else cfg.ifmr_quantize
        m.SetInParent()
        for key, value in params:
            setattr(m, key, value)
        if dst == 2:
            m.dst_type = 2
        if write_asym:
            m.asymmetric = bool(asym)

    def _inferred_asym(self, algo: str) -> bool:
        """What a reader infers when the block leaves ``asymmetric`` out."""
        if self.common_asym is not None and algo == self.common_algo:
            return self.common_asym
        return True if self.offset is None else bool(self.offset)

    def _write_weight(self, cfg: pb.CalibrationConfig, ident: str, base: _WBlock,
                      block: _WBlock, layer_type: str | None, is_layer: bool) -> None:
        lower = _fold(base.weight)
        if is_layer and self.from_amct:
            # The reader left an unset channel_wise unset (AMCT resets it to the type default,
            # W151); keep it unset so the block reads back the same.
            lower.pop("per_channel", None)
        s = {**lower, **_fold(block.weight)}
        for algo in ("ada_quantize", "nuq_quantize"):
            pairs = self.extras.get((ident, algo))
            if pairs is not None:
                _fill(getattr(cfg, algo), pairs)
                getattr(cfg, algo).SetInParent()
                return
        arq = cfg.arq_quantize
        bits = _value(s, "bits")
        if bits is not None and bits != 8:
            if bits in WINOGRAD_BITS and self._has("winograd", layer_type) is False:
                self.warn("W502", f"{layer_type}: {bits}-bit weights only on winograd types; "
                          "8 written", s["bits"].span)
            elif bits in WEIGHT_BITS:
                arq.quant_bits = bits
        per_channel = _value(s, "per_channel")
        if isinstance(per_channel, bool):
            default = self._cw_default(layer_type) if layer_type else None
            if per_channel and self._has("channel_wise", layer_type) is False:
                self.warn("W502", f"{layer_type}: channel_wise must be false for this type; "
                          "per-channel dropped", s["per_channel"].span)
                per_channel = False
            if per_channel != default:
                arq.channel_wise = per_channel
        if _value(s, "symmetric") is False:
            if cfg.weight_compress_only:
                arq.asymmetric = True
            else:
                self.warn("W502", "AMCT PTQ weights are symmetric (asymmetric weights need "
                          "weight_compress_only); asymmetric dropped", s["symmetric"].span)
        if arq.ListFields():
            arq.SetInParent()

    def _cw_default(self, layer_type: str) -> bool:
        known = self._has("channel_wise", layer_type)
        if known is not None:
            return known
        ops = self._owner(layer_type).types.get(layer_type, ())
        return bool(ops) and all(op in self.t.channel_wise_ops for op in ops)

    def _self_check(self, text: str, msg: pb.AMCTConfig) -> None:
        names = [o.layer_type for o in msg.override_layer_types] + list(msg.skip_layer_types)
        # Names kept from a file that mixed front-ends are checked against their own tables.
        framework = self.fw.name if all(self.fw.known(n) for n in names) else None
        try:
            read(text, "<written amct config>", framework=framework)
        except QuantspecError as err:
            self.warn("W505", f"AMCT would reject the written config: "
                      f"{err.diagnostic.message}", None, hint=err.diagnostic.hint)


def _weight_only(skips: dict[str, _Skip], blocks: dict[str, _WBlock]) -> set[str]:
    names = {n for n, s in skips.items() if s.slots == {"input"} and not s.final}
    for name in names:
        blocks.setdefault(name, _WBlock())
    return names


def _merge(lower: _WBlock, common: _WBlock | None) -> _WBlock:
    if common is None:
        return lower
    return _WBlock(lower.act + common.act, lower.weight + common.weight)


def _fold(items: list[tuple[int, Rule]]) -> dict[str, Setting]:
    out: dict[str, Setting] = {}
    for _, rule in sorted(items, key=lambda it: (it[1].priority, it[1].selector.level, it[0])):
        out.update(rule.settings)
    return out


def _act_algorithm(calib: Any) -> tuple[str, tuple[tuple[str, Any], ...], bool]:
    """(algorithm, its fields, approximated?) for an activation Calibration."""
    if not isinstance(calib, Calibration):
        return "ifmr", IFMR_DEFAULTS, False
    if calib.method == "ifmr":
        return "ifmr", tuple((k, _num(calib.param(k), d)) for k, d in IFMR_DEFAULTS), False
    if calib.method == "hfmg":
        return "hfmg", (("num_of_bins", int(_num(calib.param("num_of_bins"), 4096))),), False
    if calib.method == "minmax":
        return "ifmr", MINMAX_IFMR, False
    if calib.method == "percentile":
        frac = min(max(_num(calib.param("percentile"), 99.99) / 100.0, 0.500001), 1.0)
        return "ifmr", (("max_percentile", frac), ("min_percentile", frac),
                        ("search_range_start", 1.0), ("search_range_end", 1.01),
                        ("search_step", 0.01)), True
    if calib.method in ("mse", "entropy", "tf_enhanced"):
        return "hfmg", (("num_of_bins", 4096),), True
    return "ifmr", IFMR_DEFAULTS, True


def _num(value: Any, default: float) -> float:
    """A number from a calibration parameter written by any dialect, else ``default``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return default


def _unsupported(name: str, value: Any, part: str) -> tuple[str, str]:
    """(code, why) when a setting cannot be written exactly; ("", "") when it can."""
    if name in ("axis", "block_size", "min_bits", "fixed_range", "encodings", "narrow_range",
                "strict_symmetric") and value not in (None, False):
        return "W502", f"{name} {show_value(value)} has no AMCT field; dropped"
    if name == "unsigned_symmetric" and value:
        return "W502", "unsigned_symmetric has no AMCT field; dropped"
    if name == "signed" and value is False:
        return "W502", "AMCT grids are signed; signed: false dropped"
    if name == "dtype" and value != "int":
        return "W502", f"AMCT quantizes to integers; dtype {show_value(value)} dropped"
    if name == "scale_type" and value != "float":
        return "W502", f"AMCT scales are float; scale_type {show_value(value)} dropped"
    if name == "rounding" and value != "half_even":
        return "W502", f"AMCT rounds half-even; rounding {show_value(value)} dropped"
    if part == "act":
        if name == "bits" and value not in (8, 16):
            return "W502", f"AMCT activations are INT8 or INT16; bits {show_value(value)} dropped"
        if name == "per_channel" and value:
            return "W502", "AMCT activations are per-tensor; per_channel dropped"
    else:
        if name == "bits" and value not in WEIGHT_BITS:
            return "W502", f"AMCT weights are 4, 6, 7 or 8 bits; bits {show_value(value)} dropped"
        if name == "calibration" and isinstance(value, Calibration) and \
                value.method != "minmax":
            return "W503", f"calibration {value.method} approximated by ARQ (min/max)"
    return "", ""


def _label(rule: Rule) -> str:
    """The rule as messages name it; derived rules say whose default they are."""
    return rule.selector.describe() + (f" ({rule.origin} default)" if rule.origin else "")


def _as_mapping(value: Any) -> dict[str, Any] | None:
    """A dict, or the ``(("key", value), ...)`` pairs the .qspec language keeps it as."""
    if isinstance(value, dict):
        return value
    if isinstance(value, tuple) and value and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value):
        return dict(value)
    return None


_value = value_of


def _meta(profile: Profile, key: str) -> Any:
    return profile.meta_value(META + key)


