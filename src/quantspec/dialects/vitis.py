"""Vitis AI ``vai_q_pytorch`` quantize config JSON (``torch_quantizer(quant_config_file=...)``).

Spec: ``003_9fbf8b921b278ae5.txt`` (UG1414). Where the tool's code and its documentation differ,
this module follows the code (``nndct_shared/quantization/quant_config.py`` and
``pytorch_nndct/quantization/torch_qstrategy.py``, summarised in ``vitis_amct.md`` section 1).

Reading emulates ``TorchQConfig.parse_config_file``: the key whitelist first, then the built-in
(DPU) table as the base, ``overall_quantize_config`` and ``tensor_quantize_config`` merged
field by field, every ``layer_quantize_config`` entry based on a copy of that resolved global
config, and the DPU / CPU / GPU conflict rules last. In the IR:

* the built-in table becomes derived ``defaults`` rules (origin ``vitis``),
* the global config becomes ``defaults input|weight|bias|output`` + ``model input`` rules holding
  only the fields the file sets (the cascade does the field-by-field merge),
* ``layer_type`` entries become ``op`` rules (torch names -> ONNX op types through
  ``data/vitis_layer_types.json``), ``layer_name`` entries ``layer`` rules,
* the switches become ``Profile.transforms`` / ``Profile.meta``.

``docs/dialects.md`` has the full mapping and what each direction loses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import jsonpos
from ..errors import QuantspecError, Report, did_you_mean
from ..ir import (
    FIELDS,
    OPTION_DEFAULTS,
    Calibration,
    Profile,
    Rule,
    Selector,
    Setting,
    value_of,
)
from ..source import Span
from .messages import show_value

if TYPE_CHECKING:  # imported on use, so sniffing a file's dialect stays cheap (lint)
    import jsonschema

NAME = "vitis"
SUFFIXES = (".json",)

KINDS = ("input", "weights", "bias", "activation")
SLOTS = {"input": "input", "weights": "weight", "bias": "bias", "activation": "output"}
# calib_statistic_method is read only for these (vitis_amct.md 1.3).
STAT_KINDS = ("input", "activation")

# quant_config.py _keywords_legel: the whitelists, in the order the tool lists them.
TOP_KEYS = (
    "convert_relu6_to_relu", "convert_silu_to_hswish", "include_cle",
    "keep_first_last_layer_accuracy", "keep_add_layer_accuracy", "include_bias_corr",
    "target_device", "onnx_opset_version", "change_concat_input_fix", "change_pool_input_fix",
    "quantizable_data_type", "overall_quantize_config", "tensor_quantize_config",
    "layer_quantize_config",
)
PARAM_KEYS = (
    "datatype", "bit_width", "method", "round_mode", "symmetry", "per_channel", "signed",
    "narrow_range", "scale_type", "calib_statistic_method", "percentage",
)
LAYER_KEYS = (
    "layer_type", "layer_name", "quantizable_data_type", "overall_quantize_config",
    "tensor_quantize_config",
)
# The order _generate_config_from_export applies keys in, which is also its error order.
APPLY_ORDER = (
    "bit_width", "method", "datatype", "round_mode", "scale_type", "symmetry", "per_channel",
    "signed", "narrow_range", "calib_statistic_method",
)
# Keys the tool reads with `if export_config.get(key):`: 0 and "" are ignored like null
# (vitis_amct.md 1.3).
TRUTHY_KEYS = frozenset(
    {"bit_width", "method", "datatype", "round_mode", "scale_type", "calib_statistic_method"}
)
FLOAT16 = ("float16", "bfloat16")
DEFAULT_PERCENTAGE = 99.99

METHODS = {"maxmin": "minmax", "percentile": "percentile", "entropy": "entropy", "mse": "mse",
           "diffs": "diffs"}
METHODS_BACK = {v: k for k, v in METHODS.items()}
SCALE_TYPES = {"poweroftwo": "power_of_two", "float": "float"}
SCALE_BACK = {v: k for k, v in SCALE_TYPES.items()}
ROUND_MODES = ("half_even", "half_up", "half_down", "std_round")
STATISTICS = ("modal", "mean", "median", "max")

# Global switches (vitis_amct.md 1.2): JSON key -> (transform, the tool's default).
SWITCH_TRANSFORMS = {
    "convert_relu6_to_relu": ("relu6_to_relu", False),
    "include_cle": ("cle", True),
    "include_bias_corr": ("bias_correction", True),
}
# Switches without an IR meaning, kept in Profile.meta for round trips: key -> JSON type.
SWITCH_META: dict[str, type] = {
    "convert_silu_to_hswish": bool,
    "keep_first_last_layer_accuracy": bool,
    "keep_add_layer_accuracy": bool,
    "onnx_opset_version": int,
    "change_concat_input_fix": bool,
    "change_pool_input_fix": bool,
}
META = "vitis."  # prefix of this dialect's Profile.meta keys

# quant_config.py QConfigBase._default_qconfig: the DPU table every file overrides
# (vitis_amct.md 1.4).
_BASE = {
    "datatype": "int", "bit_width": 8, "method": "diffs", "round_mode": "std_round",
    "symmetry": True, "per_channel": False, "signed": True, "narrow_range": False,
    "scale_type": "poweroftwo",
}
BUILTIN: dict[str, dict[str, Any]] = {
    "input": {**_BASE, "calib_statistic_method": "modal"},
    "weights": dict(_BASE),
    "bias": dict(_BASE),
    # The doc lists one round_mode for all; the code rounds activations half_up (vitis_amct.md 1.3).
    "activation": {**_BASE, "round_mode": "half_up", "calib_statistic_method": "modal"},
}

_BUILTIN_NOTE = "vai_q_pytorch built-in default (the DPU table every config file overrides)"
_DPU_NOTE = ("target_device DPU computes power-of-two positions with diffs whatever 'method' "
             "says; method is only validated")
_TF2_KEYS = frozenset({"quantize_registry_config", "optimize_pipeline_config",
                       "quantize_pipeline_config", "refine_pipeline_config",
                       "finalize_pipeline_config"})
_DETECT = re.compile(r'"(target_device|overall_quantize_config|tensor_quantize_config|'
                     r'layer_quantize_config)"\s*:')


# ---------------------------------------------------------------------------------------------
# Data tables
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def layer_types() -> dict[str, tuple[str, ...]]:
    """vai_q_pytorch ``layer_type`` name -> ONNX op types (``data/vitis_layer_types.json``)."""
    raw = json.loads(resources.files(__package__).joinpath("data/vitis_layer_types.json")
                     .read_text(encoding="utf-8"))
    return {name: tuple(ops) for name, ops in raw["types"].items()}


@lru_cache(maxsize=1)
def _schema_validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    path = resources.files("quantspec").joinpath("schemas/vitis_quant_config.json")
    return jsonschema.Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


def onnx_op_types(layer_type: str) -> tuple[str, ...] | None:
    """ONNX op types of a ``layer_type``, or None (``torch.nn.Conv2d`` == ``Conv2d``,
    vitis_amct.md 1.8)."""
    return layer_types().get(layer_type.split(".")[-1])


def torch_layer_types(op_types: tuple[str, ...]) -> list[str]:
    """The ``layer_type`` names to write for an ``op`` rule's ONNX op types."""
    table = layer_types()
    exact = [t for t, ops in table.items() if ops == op_types]
    if exact:
        return exact
    out: list[str] = []
    for op in op_types:
        single = [t for t, ops in table.items() if ops == (op,)]
        out += single or [t for t, ops in table.items() if op in ops]
    return list(dict.fromkeys(out))


_GLOB_CHAR = re.compile(r"([*?[])")
_ESCAPED = re.compile(r"\[([*?[])\]")


def escape_name(name: str) -> str:
    """A vendor layer name as an exact IR name: glob characters escaped fnmatch-style."""
    return _GLOB_CHAR.sub(r"[\1]", name)


def exact_name(pattern: str) -> str | None:
    """The literal name an IR layer pattern stands for, or None when it is a real glob."""
    literal = _ESCAPED.sub("", pattern)
    if _GLOB_CHAR.search(literal):
        return None
    return _ESCAPED.sub(r"\1", pattern)


# ---------------------------------------------------------------------------------------------
# Dialect protocol
# ---------------------------------------------------------------------------------------------


def detect(text: str) -> bool:
    head = text.lstrip()
    return head.startswith("{") and bool(_DETECT.search(text)) and not any(
        f'"{k}"' in text for k in _TF2_KEYS)


def read(text: str, file: str = "<string>", **options: Any) -> Profile:
    """Read a vai_q_pytorch config. ``report=`` collects warnings (ignored values, quirks)."""
    data, pos = jsonpos.loads(text, file)
    doc = _Doc(data, pos, file, options.get("report"))
    _check_keys(doc)
    _check_schema(doc)
    return _Reader(doc).profile()


def write(profile: Profile, report: Report, **options: Any) -> str:
    """Write a vai_q_pytorch config. ``target_device=`` overrides the profile's (default CPU)."""
    return _Writer(profile, report, options).text()


# ---------------------------------------------------------------------------------------------
# Reading: positions, whitelist, schema
# ---------------------------------------------------------------------------------------------


@dataclass
class _Doc:
    data: Any
    pos: jsonpos.Positions
    file: str
    report: Report | None
    warned: set[tuple[str, str, Span | None]] = field(default_factory=set)

    def span(self, path: Iterable[Any]) -> Span:
        return self.pos.get(tuple(path))

    def value_span(self, path: Iterable[Any]) -> Span:
        return self.pos.value_span(tuple(path))

    def warn(self, code: str, message: str, span: Span | None, hint: str = "") -> None:
        if self.report is not None and (code, message, span) not in self.warned:
            self.warned.add((code, message, span))
            self.report.warn(code, message, span, hint)


def _check_keys(doc: _Doc) -> None:
    """Unknown keys first: ``_keywords_legel`` checks them before any value (vitis_amct.md 1.5)."""
    if not isinstance(doc.data, dict):
        raise QuantspecError("E141", "a vai_q_pytorch config is a JSON object", doc.span(()))
    for key, value in doc.data.items():
        _known(doc, (key,), TOP_KEYS)
        if key == "overall_quantize_config":
            _check_params(doc, (key,), value)
        elif key == "tensor_quantize_config":
            _check_tensors(doc, (key,), value)
        elif key == "layer_quantize_config" and isinstance(value, list):
            for i, entry in enumerate(value):
                if not isinstance(entry, dict):
                    continue
                for k2, v2 in entry.items():
                    _known(doc, (key, i, k2), LAYER_KEYS)
                    if k2 == "overall_quantize_config":
                        _check_params(doc, (key, i, k2), v2)
                    elif k2 == "tensor_quantize_config":
                        _check_tensors(doc, (key, i, k2), v2)


def _check_tensors(doc: _Doc, path: tuple[Any, ...], value: Any) -> None:
    if isinstance(value, dict):
        for kind, block in value.items():
            _known(doc, (*path, kind), KINDS)
            _check_params(doc, (*path, kind), block)


def _check_params(doc: _Doc, path: tuple[Any, ...], value: Any) -> None:
    if isinstance(value, dict):
        for key in value:
            _known(doc, (*path, key), PARAM_KEYS)


def _known(doc: _Doc, path: tuple[Any, ...], allowed: tuple[str, ...]) -> None:
    key = path[-1]
    if key in allowed:
        return
    hint = did_you_mean(key, allowed)
    if key in _TF2_KEYS:
        hint = ("this is a vai_q_tensorflow2 quantize strategy, a different format; quantspec "
                "reads vai_q_pytorch configs")
    raise QuantspecError("E140", f"Unsupported keyword in quantization config: '{key}'",
                         doc.span(path), hint=hint)


def _check_schema(doc: _Doc) -> None:
    errors = list(_schema_validator().iter_errors(doc.data))
    if not errors:
        return
    first = min(errors, key=lambda e: _sort_key(doc, tuple(e.absolute_path)))
    raise _schema_error(doc, first)


def _sort_key(doc: _Doc, path: tuple[Any, ...]) -> tuple[int, int, int]:
    span = doc.value_span(path)
    return (span.line, span.col, -len(path))


def _schema_error(doc: _Doc, err: jsonschema.ValidationError) -> QuantspecError:
    path = tuple(err.absolute_path)
    key = str(path[-1]) if path else ""
    where = _where(path)
    if err.validator == "required":
        missing = re.findall(r"'([^']+)'", err.message)[:1] or ["?"]
        return QuantspecError("E141", f"{where or 'the config'} needs '{missing[0]}'",
                              doc.value_span(path))
    if err.validator == "enum":
        choices = [c for c in err.validator_value if c is not None]
        hint = did_you_mean(str(err.instance), [str(c) for c in choices])
        if err.instance == "power_of_two":
            hint = "vai_q_pytorch spells it 'poweroftwo' ('power_of_two' is rejected)"
        return QuantspecError("E142", f"The {key} of {where} should be in the list {choices}, "
                              f"got {json.dumps(err.instance)}", doc.value_span(path), hint=hint)
    if err.validator in ("minimum", "maximum") or (key == "bit_width" and err.validator == "type"):
        return QuantspecError("E142", f"The bit_width type of {where} should be int, and in "
                              f"range of [0,32], got {json.dumps(err.instance)}",
                              doc.value_span(path))
    if err.validator == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return QuantspecError("E141", f"{key or 'the config'} must be {want}, got "
                              f"{_json_type(err.instance)}", doc.value_span(path))
    return QuantspecError("E141", err.message, doc.value_span(path))


def _where(path: tuple[Any, ...]) -> str:
    """``activation`` / ``overall_quantize_config`` / ``layer_quantize_config[2]`` for messages."""
    if len(path) >= 2 and path[-2] in KINDS:
        return str(path[-2])
    names = [p for p in path[:-1] if isinstance(p, str)]
    return names[-1] if names else "the config"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# Reading: the tool's merge, emulated per tensor type
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Val:
    value: Any
    span: Span | None = None


Cfg = dict[str, _Val]
Touched = dict[str, Span | None]


@dataclass
class _Entry:
    key: str  # normalised layer type or the layer name
    spelling: str  # as written
    label: str  # for messages
    span: Span
    kinds: tuple[str, ...]
    cfgs: dict[str, Cfg]
    touched: dict[str, Touched]


def _builtin(kind: str) -> Cfg:
    return {k: _Val(v) for k, v in BUILTIN[kind].items()}


class _Reader:
    def __init__(self, doc: _Doc) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.mixed = False  # a non-int datatype selects TorchMPQstrategy (vitis_amct.md 1.13)
        self.bf16: list[str] = []

    def profile(self) -> Profile:
        glob = {k: _builtin(k) for k in KINDS}
        touched: dict[str, Touched] = {k: {} for k in KINDS}
        self._apply_global(glob, touched)
        types, names = self._layer_entries(glob)
        self._check_conflicts(glob, types, names)
        rules = [*self._global_rules(glob, touched), *self._type_rules(types, glob),
                 *self._name_rules(names, glob, bool(types))]
        if self.data["target_device"] == "DPU":
            rules += _dpu_rules()
        meta = self._meta(types)
        return Profile(source=self.doc.file, dialect=NAME, rules=tuple(rules),
                       transforms=self._transforms(), meta=meta)

    # -- merging ------------------------------------------------------------------------------

    def _apply_global(self, glob: dict[str, Cfg], touched: dict[str, Touched]) -> None:
        overall = self.data.get("overall_quantize_config")
        if overall:  # set_tensor_quant_config: `if overall_quant_config:`
            for kind in KINDS:
                self._apply(kind, overall, ("overall_quantize_config",), glob[kind],
                            touched[kind])
        for kind, block in (self.data.get("tensor_quantize_config") or {}).items():
            self._apply(kind, block, ("tensor_quantize_config", kind), glob[kind], touched[kind])

    def _apply(self, kind: str, block: Mapping[str, Any], path: tuple[Any, ...], cfg: Cfg,
               touched: Touched) -> None:
        """``_generate_config_from_export`` for one block and one tensor type."""
        for key in APPLY_ORDER:
            if key not in block or (key == "calib_statistic_method" and kind not in STAT_KINDS):
                continue
            value, kpath = block[key], (*path, key)
            if value is None or (key in TRUTHY_KEYS and not value):
                self.doc.warn("W140", f"{key}: {json.dumps(value)} is ignored by vai_q_pytorch",
                              self.doc.span(kpath))
                continue
            if key == "bit_width" and not isinstance(value, int):
                # TorchQConfig.parse_bit_width: isinstance(int); JSON Schema takes 8.0 as integer.
                raise QuantspecError("E142", f"The bit_width type of {kind} should be int, and "
                                     "in range of [0,32].", self.doc.value_span(kpath))
            span = self.doc.span(kpath)
            cfg[key] = _Val(value, span)
            touched[key] = span
            if key == "datatype" and value != "int":
                self.mixed = True
        self._apply_percentage(block, path, cfg, touched)

    def _apply_percentage(self, block: Mapping[str, Any], path: tuple[Any, ...], cfg: Cfg,
                          touched: Touched) -> None:
        raw = block.get("percentage")
        if cfg["method"].value != "percentile":
            if raw is not None:
                self.doc.warn("W140", "percentage is read only when method is percentile",
                              self.doc.span((*path, "percentage")))
            return
        if raw is None:
            # quant_config.py: every block applied while the method is percentile resets the
            # percentage to 99.99 unless the block sets it itself.
            span = self.doc.span(path)
            cfg["percentage"] = _Val(DEFAULT_PERCENTAGE, span)
            touched["percentage"] = span
            return
        kpath = (*path, "percentage")
        if not isinstance(raw, float) or not 0.0 < raw <= 100.0:
            hint = ("vai_q_pytorch wants a float: write 99.0, not 99"
                    if type(raw) is int and 0 < raw <= 100 else "")
            raise QuantspecError("E142", "Percentage should be larger than 0.0 and smaller "
                                 "than 100.0", self.doc.value_span(kpath), hint=hint)
        span = self.doc.span(kpath)
        cfg["percentage"] = _Val(raw, span)
        touched["percentage"] = span

    def _layer_entries(self, glob: dict[str, Cfg]) -> tuple[dict[str, _Entry],
                                                             dict[str, _Entry]]:
        """``set_layer_quant_config``: later entries for a type/name replace earlier ones."""
        types: dict[str, _Entry] = {}
        names: dict[str, _Entry] = {}
        for i, raw in enumerate(self.data.get("layer_quantize_config") or []):
            path = ("layer_quantize_config", i)
            ltype, lname = raw.get("layer_type"), raw.get("layer_name")
            if ltype:  # `if layer_type: ... elif layer_name:` -- type wins when both are set
                if lname:
                    self.doc.warn("W142", "an entry with both layer_type and layer_name is a "
                                  "layer_type entry; layer_name is ignored",
                                  self.doc.span((*path, "layer_name")))
                key, target, label = ltype.split(".")[-1], types, f"layer_type '{ltype}'"
                span = self.doc.span((*path, "layer_type"))
            elif lname:
                key, target, label = lname, names, f"layer_name '{lname}'"
                span = self.doc.span((*path, "layer_name"))
            else:
                self.doc.warn("W142", "entry ignored: it sets neither layer_type nor "
                              "layer_name", self.doc.span(path))
                continue
            entry = self._entry(raw, path, key, ltype or lname, label, span, glob)
            if key in target:
                self.doc.warn("W142", f"this entry replaces the one for '{key}' at "
                              f"{target[key].span}: vai_q_pytorch keeps the last", span)
            target[key] = entry  # a dict keeps the first position, as the tool's dict does
        return types, names

    def _entry(self, raw: Mapping[str, Any], path: tuple[Any, ...], key: str, spelling: str,
               label: str, span: Span, glob: dict[str, Cfg]) -> _Entry:
        kinds = tuple(dict.fromkeys(raw["quantizable_data_type"]))
        # The base is a deep copy of the resolved global config, not a type entry
        # (vitis_amct.md 1.6 step 4).
        cfgs = {k: dict(glob[k]) for k in kinds}
        touched: dict[str, Touched] = {k: {} for k in kinds}
        overall = raw.get("overall_quantize_config")
        if overall:
            for kind in kinds:
                self._apply(kind, overall, (*path, "overall_quantize_config"), cfgs[kind],
                            touched[kind])
        for kind, block in (raw.get("tensor_quantize_config") or {}).items():
            if kind not in cfgs:
                raise QuantspecError(
                    "E142", f"tensor_quantize_config sets '{kind}', which this entry's "
                    "quantizable_data_type does not list",
                    self.doc.span((*path, "tensor_quantize_config", kind)),
                    hint="vai_q_pytorch would build a partial config for it; list it in "
                    "quantizable_data_type or remove the block")
            self._apply(kind, block, (*path, "tensor_quantize_config", kind), cfgs[kind],
                        touched[kind])
        return _Entry(key, spelling, label, span, kinds, cfgs, touched)

    # -- conflict rules (vitis_amct.md 1.7) -------------------------------------------------

    def _check_conflicts(self, glob: dict[str, Cfg], types: dict[str, _Entry],
                         names: dict[str, _Entry]) -> None:
        target = self.data["target_device"]
        check = {"DPU": _dpu_problem, "CPU": _cpu_problem, "GPU": _cpu_problem}.get(target)
        if check is None:  # FLEXML: no checks
            return
        owners: list[tuple[str, tuple[str, ...], dict[str, Cfg], Span]] = [
            ("the global config", KINDS, glob, self.doc.span(("target_device",)))]
        owners += [(e.label, e.kinds, e.cfgs, e.span) for e in [*types.values(),
                                                                 *names.values()]]
        device = self.doc.span(("target_device",))
        for label, kinds, cfgs, fallback in owners:
            for kind in kinds:
                problem = check(kind, cfgs, glob)
                if problem is not None:
                    message, val = problem
                    raise QuantspecError(
                        "E143", f"{message} ({kind} of {label})", val.span or fallback,
                        related=[(device, f"target_device is {target}")],
                        hint=_CONFLICT_HINT[target])

    # -- IR -------------------------------------------------------------------------------------

    def _global_rules(self, glob: dict[str, Cfg], touched: dict[str, Touched]
                      ) -> Iterator[Rule]:
        # Per tensor type, input rules before output rules: a tensor that is both an op's input
        # and another op's output is configured by the output (activation) quantizer
        # (vitis_amct.md 1.10).
        for kind in KINDS:
            builtin = _builtin(kind)
            for sel in _selectors(kind, "defaults", ()):
                yield Rule(sel, _full_settings(kind, builtin), origin=NAME, note=_BUILTIN_NOTE)
            settings = _settings(kind, glob[kind], touched[kind], builtin)
            if settings:
                span = self._block_span(kind)
                for sel in _selectors(kind, "defaults", ()):
                    self._note_bf16(sel, glob[kind], settings)
                    yield Rule(sel, settings, span)

    def _block_span(self, kind: str) -> Span:
        if kind in (self.data.get("tensor_quantize_config") or {}):
            return self.doc.span(("tensor_quantize_config", kind))
        return self.doc.span(("overall_quantize_config",))

    def _type_rules(self, types: dict[str, _Entry], glob: dict[str, Cfg]) -> Iterator[Rule]:
        for entry in types.values():
            op_types = self._op_types(entry)
            for kind in KINDS:
                if kind in entry.kinds:
                    settings = _settings(kind, entry.cfgs[kind], entry.touched[kind], glob[kind])
                    sel = _selectors(kind, "op", op_types)[0]
                    self._note_bf16(sel, entry.cfgs[kind], settings)
                    yield Rule(sel, settings, entry.span)

    def _name_rules(self, names: dict[str, _Entry], glob: dict[str, Cfg], has_types: bool
                    ) -> Iterator[Rule]:
        # get_layer_tensor_config: a name entry is based on the global config and, when it does
        # not list a tensor type, falls back to the global config, not to a matching type entry
        # (vitis_amct.md 1.6 steps 4-5). The all-int strategy asks the quant group for
        # activations instead, which falls back to the type entry, and creates no per-node input
        # quantizers, so there the input type keeps the cascade (torch_qstrategy.py).
        base_kinds = ("weights", "bias") + (("input", "activation") if self.mixed else ())
        for entry in names.values():
            for kind in KINDS:
                sel = _selectors(kind, "layer", (escape_name(entry.key),))[0]
                listed = kind in entry.kinds
                if has_types and (kind in base_kinds or (listed and kind == "activation")):
                    note = (f"layer_name entries start from the resolved global config, not from "
                            f"a layer_type entry ({'listed' if listed else 'unlisted'} '{kind}')")
                    yield Rule(sel, _full_settings(kind, glob[kind]), entry.span, origin=NAME,
                               note=note)
                if listed:
                    settings = _settings(kind, entry.cfgs[kind], entry.touched[kind], glob[kind])
                    self._note_bf16(sel, entry.cfgs[kind], settings)
                    yield Rule(sel, settings, entry.span)

    def _op_types(self, entry: _Entry) -> tuple[str, ...]:
        ops = onnx_op_types(entry.key)
        if ops is not None:
            return ops
        # The tool only warns ("There is no X layer in this model") and the entry has no effect.
        known = list(layer_types())
        self.doc.warn("W141", f"layer_type '{entry.key}' is not a layer type vai_q_pytorch "
                      "registers; the entry matches ONNX ops of that exact type only",
                      entry.span, hint=did_you_mean(entry.key, known))
        return (entry.key,)

    def _note_bf16(self, sel: Selector, cfg: Cfg, settings: Mapping[str, Setting]) -> None:
        # The IR has no bfloat16: float 16 bits plus this note in meta keeps the round trip exact.
        if cfg["datatype"].value == "bfloat16" and "dtype" in settings:
            self.bf16.append(sel.describe())

    def _transforms(self) -> dict[str, Setting]:
        out: dict[str, Setting] = {}
        for key, (name, default) in SWITCH_TRANSFORMS.items():
            value, span = self._switch(key, bool)
            out[name] = Setting(default if value is None else value, span)
        # vai_q_pytorch always folds batch norm into the preceding conv (no switch).
        out["fold_batchnorm"] = Setting(True)
        return out

    def _switch(self, key: str, kind: type) -> tuple[Any, Span | None]:
        if key not in self.data:
            return None, None
        value, span = self.data[key], self.doc.span((key,))
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            # _nndct_switch_option: `isinstance(..., bool)`, anything else is silently ignored.
            self.doc.warn("W140", f"{key}: {json.dumps(value)} is ignored by vai_q_pytorch "
                          f"(it reads only a JSON {'boolean' if kind is bool else 'integer'})",
                          span)
            return None, None
        return value, span

    def _meta(self, types: dict[str, _Entry]) -> dict[str, Setting]:
        meta = {META + "target_device": Setting(self.data["target_device"],
                                                self.doc.span(("target_device",)))}
        for key, kind in SWITCH_META.items():
            value, span = self._switch(key, kind)
            if value is not None:
                meta[META + key] = Setting(value, span)
                if key.startswith("keep_") and value:
                    self.doc.warn("W140", f"{key}: true is not implemented by vai_q_pytorch "
                                  "(it only logs that it will be supported)", span)
        qdt = self.data.get("quantizable_data_type")
        if isinstance(qdt, list) and all(isinstance(x, str) for x in qdt):
            # Ignored by the tool at the top level since 3.0; kept for the round trip.
            meta[META + "quantizable_data_type"] = Setting(
                tuple(qdt), self.doc.span(("quantizable_data_type",)))
        if types:
            meta[META + "layer_types"] = Setting(tuple(e.spelling for e in types.values()))
        if self.bf16:
            meta[META + "bfloat16"] = Setting(tuple(dict.fromkeys(self.bf16)))
        return meta


def _selectors(kind: str, scope: str, target: tuple[str, ...]) -> tuple[Selector, ...]:
    slot = SLOTS[kind]
    if scope == "op":
        return (Selector("op", op_types=target, slot=slot),)
    if scope == "layer":
        return (Selector("layer", names=target, slot=slot),)
    if kind == "activation":
        # The model's Input node output is quantized with the global activation config; no
        # layer entry can reach it (vitis_amct.md 1.10).
        return (Selector("defaults", slot=slot), Selector("model_input"))
    return (Selector("defaults", slot=slot),)


def _dpu_rules() -> list[Rule]:
    act = Calibration("diffs", (("combine", "modal"),))
    return [
        Rule(Selector("defaults", slot="tensor"), {"calibration": Setting(act)}, final=True,
             origin=NAME, note=_DPU_NOTE),
        Rule(Selector("defaults", slot="param"), {"calibration": Setting(Calibration("diffs"))},
             final=True, origin=NAME, note=_DPU_NOTE),
    ]


def _full_settings(kind: str, cfg: Cfg) -> dict[str, Setting]:
    return _settings(kind, cfg, {k: v.span for k, v in cfg.items()}, cfg)


def _settings(kind: str, cfg: Cfg, touched: Touched, base: Cfg) -> dict[str, Setting]:
    """The IR settings for the vendor keys a block set (``touched``), valued from ``cfg``."""
    out: dict[str, Setting] = {}
    _dtype_settings(out, cfg, touched, base)
    for key, name, conv in (("symmetry", "symmetric", bool), ("signed", "signed", bool),
                            ("narrow_range", "narrow_range", bool),
                            ("per_channel", "per_channel", bool),
                            ("scale_type", "scale_type", SCALE_TYPES.__getitem__),
                            ("round_mode", "rounding", str)):
        if key in touched:
            out[name] = Setting(conv(cfg[key].value), touched[key])
    calib = [k for k in ("method", "calib_statistic_method", "percentage") if k in touched]
    if calib:
        out["calibration"] = Setting(_calibration(kind, cfg), touched[calib[0]])
    return {f: out[f] for f in FIELDS if f in out}


def _dtype_settings(out: dict[str, Setting], cfg: Cfg, touched: Touched, base: Cfg) -> None:
    datatype = cfg["datatype"].value
    if "datatype" in touched:
        span = touched["datatype"]
        out["quantized"] = Setting(datatype != "float32", span)
        if datatype != "float32":
            out["dtype"] = Setting("int" if datatype == "int" else "float", span)
    if datatype in FLOAT16 and ("datatype" in touched or "bit_width" in touched):
        # bit_width is ignored for float datatypes: the format fixes 16 bits.
        out["bits"] = Setting(16, touched.get("datatype", touched.get("bit_width")))
    elif "bit_width" in touched:
        out["bits"] = Setting(cfg["bit_width"].value, touched["bit_width"])
    elif "datatype" in touched and datatype == "int" and base["datatype"].value in FLOAT16:
        # Back to int over a 16-bit float base: the tool uses the base's bit_width, which the
        # IR cascade would otherwise take as 16.
        out["bits"] = Setting(cfg["bit_width"].value, touched["datatype"])


def _calibration(kind: str, cfg: Cfg) -> Calibration:
    method = cfg["method"].value
    params: list[tuple[str, Any]] = []
    if method == "percentile":
        params.append(("percentile", cfg.get("percentage", _Val(DEFAULT_PERCENTAGE)).value))
    if kind in STAT_KINDS:
        params.append(("combine", cfg["calib_statistic_method"].value))
    return Calibration(METHODS[method], tuple(params))


# quant_config.py _handle_dpu_tensor_conflict / _handle_cpu_gpu_tensor_conflict
# (vitis_amct.md 1.7), in the tool's order; messages are the tool's.
_CONFLICT_HINT = {
    "DPU": "the DPU runs symmetric per-tensor power-of-two integers; use target_device CPU or "
           "GPU for other schemes",
    "CPU": "see the CPU/GPU restrictions of vai_q_pytorch's quant_config.py",
    "GPU": "see the CPU/GPU restrictions of vai_q_pytorch's quant_config.py",
}
_INT = " if datatype is int"


def _dpu_problem(kind: str, cfgs: dict[str, Cfg], glob: dict[str, Cfg]
                 ) -> tuple[str, _Val] | None:
    c = cfgs[kind]
    if c["datatype"].value != "int":
        return None
    # The tool reads the entry's own activation/bias configs (KeyError when the entry does not
    # list them); quantspec falls back to the global ones.
    act = cfgs.get("activation", glob["activation"])["bit_width"]
    bias = cfgs.get("bias", glob["bias"])["bit_width"]
    if act.value != bias.value:
        return ("Bitwidth of activation and bias should be the same in DPU device" + _INT,
                act if act.span else bias)
    stat = c.get("calib_statistic_method")
    want_round = "half_up" if kind == "activation" else "std_round"
    checks = [
        (not c["symmetry"].value, "symmetry", "Only support symmetric quantization in DPU device"),
        (c["method"].value not in ("diffs", "maxmin"), "method",
         "Only support diffs and maxmin calibration method in DPU device"),
        (c["per_channel"].value, "per_channel", "Only support per_tensor quantization in DPU "
         "device"),
        (c["scale_type"].value != "poweroftwo", "scale_type",
         "Only support poweroftwo scale type in DPU device"),
        (c["narrow_range"].value, "narrow_range", "Not support narrow_range in DPU device"),
        (stat is not None and stat.value != "modal", "calib_statistic_method",
         "Only support modal activation statistic method in DPU device"),
        (c["round_mode"].value != want_round, "round_mode",
         "Only support half_up round method in activation quantization of DPU device"
         if kind == "activation" else
         "Only support std_round round method in weights, bias and input quantization of DPU "
         "device"),
    ]
    return _first(checks, c)


def _cpu_problem(kind: str, cfgs: dict[str, Cfg], glob: dict[str, Cfg]
                 ) -> tuple[str, _Val] | None:
    c = cfgs[kind]
    if c["datatype"].value != "int":
        return None
    method, scale = c["method"].value, c["scale_type"].value
    asym, unsigned = not c["symmetry"].value, not c["signed"].value
    stat = c.get("calib_statistic_method")
    if c["per_channel"].value:
        checks = [
            (kind != "weights", "per_channel",
             "Only support per_channel quantization for weights for now"),
            (scale == "float" and method != "maxmin", "method",
             "Only support maxmin calibration method in per_channel float quantization"),
            (scale == "poweroftwo" and method not in ("diffs", "maxmin"), "method",
             "Only support diffs and maxmin calibration method in per_channel poweroftwo "
             "quantization"),
            (scale == "poweroftwo" and asym, "symmetry",
             "Not support asymmetric quantization in per_channel poweroftwo quantization"),
            (scale == "poweroftwo" and unsigned, "signed",
             "Not support unsigned quantization in per_channel poweroftwo quantization"),
        ]
    elif scale == "float":
        checks = [
            (method not in ("maxmin", "percentile", "mse", "entropy"), "method",
             "Only support maxmin, percentile, mse and entropy calibration method in per_tensor "
             "float quantization"),
            (stat is not None and stat.value not in ("max", "mean", "median"),
             "calib_statistic_method", "Only support max, mean and median scale activation "
             "statistic method in per_tensor float quantization"),
            (asym and method in ("percentile", "entropy", "mse"), "symmetry",
             "Not support asymmetric quantization in percentile, entropy and mse calibration "
             "method"),
        ]
    else:
        checks = [
            (method not in ("diffs", "maxmin"), "method", "Only support diffs and maxmin "
             "calibration method in per_tensor poweroftwo quantization"),
            (asym, "symmetry", "Not support asymmetric quantization in per_tensor poweroftwo "
             "quantization"),
            (unsigned, "signed", "Not support unsigned quantization in per_tensor poweroftwo "
             "quantization"),
            (stat is not None and stat.value != "modal", "calib_statistic_method",
             "Only support modal scale activation statistic method in per_tensor poweroftwo "
             "quantization"),
        ]
    return _first(checks, c)


def _first(checks: list[tuple[Any, str, str]], cfg: Cfg) -> tuple[str, _Val] | None:
    for failed, key, message in checks:
        if failed:
            val = cfg[key]
            if val.span is None:  # a built-in value: point at what made it wrong
                val = next((v for v in (cfg["scale_type"], cfg["method"], cfg["per_channel"])
                            if v.span), val)
            return message + _INT, val
    return None


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


@dataclass
class _Dest:
    """One place in the JSON (the global config or a layer entry) and the rules it receives."""

    items: dict[str, list[tuple[int, Rule]]] = field(default_factory=dict)

    def add(self, kinds: Iterable[str], order: int, rule: Rule) -> None:
        for kind in kinds:
            self.items.setdefault(kind, []).append((order, rule))


@dataclass
class _Run:
    op_types: tuple[str, ...]
    slots: set[str]
    names: list[str]


class _Namer:
    """``layer_type`` names for op rules: the spellings the file had first, else the table's."""

    def __init__(self, spellings: Iterable[str]) -> None:
        self.queue = list(spellings)

    def names(self, op_types: tuple[str, ...]) -> list[str]:
        for i, spelling in enumerate(self.queue):
            key = spelling.split(".")[-1]
            if layer_types().get(key, (key,)) == op_types:
                del self.queue[i]
                return [spelling]
        return torch_layer_types(op_types)


class _Writer:
    def __init__(self, profile: Profile, report: Report, options: Mapping[str, Any]) -> None:
        self.p = profile
        self.report = report
        self.target = (options.get("target_device") or _meta(profile, "target_device")
                       or "CPU")
        self.bf16 = set(_meta(profile, "bfloat16") or ())
        self.namer = _Namer(_meta(profile, "layer_types") or ())
        self.run: _Run | None = None
        self.warned: set[tuple[str, str, Span | None]] = set()
        self.own = _Dest()  # this dialect's derived defaults rules: fields they set are set

    def warn(self, code: str, message: str, span: Span | None, hint: str = "") -> None:
        if (code, message, span) not in self.warned:
            self.warned.add((code, message, span))
            self.report.warn(code, message, span, hint)

    def text(self) -> str:
        doc = self._switches()
        glob, types, names, model_io = self._route()
        gsettings = {k: self._fold(glob.items.get(k, [])) for k in KINDS}
        self._fill_ir_defaults(gsettings)
        self._check_model_io(gsettings["activation"][0], model_io)
        self._note_model_inputs(gsettings["activation"][0], model_io)
        params = {k: self._params(k, *gsettings[k]) for k in KINDS}
        self._stat_fixup(params)
        overall, tensors = _factor(KINDS, params)
        if overall:
            doc["overall_quantize_config"] = overall
        if tensors:
            doc["tensor_quantize_config"] = tensors
        layers = [self._entry(t, None, d) for t, d in types.items()]
        layers += [self._entry(None, n, d) for n, d in names.items()]
        if layers:
            doc["layer_quantize_config"] = layers
        self._profile_items()
        out = json.dumps(doc, indent=2) + "\n"
        self._self_check(out)
        return out

    # -- profile-level ----------------------------------------------------------------------------

    def _switches(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        values: dict[str, Any] = {}
        back = {name: key for key, (name, _) in SWITCH_TRANSFORMS.items()}
        for name, setting in self.p.transforms.items():
            if name in back and isinstance(setting.value, bool):
                values[back[name]] = setting.value
            elif name == "fold_batchnorm" and setting.value is True:
                continue  # vai_q_pytorch always folds batch norm
            elif setting.value is not False:
                self.warn("W504", f"transform {name}: {show_value(setting.value)} has no "
                          "vai_q_pytorch switch; dropped", setting.span)
        values["target_device"] = self.target
        for key in SWITCH_META:
            value = _meta(self.p, key)
            if value is not None:
                values[key] = value
        qdt = _meta(self.p, "quantizable_data_type")
        if qdt is not None:
            values["quantizable_data_type"] = list(qdt)
        for key in TOP_KEYS:
            if key in values:
                doc[key] = values[key]
        return doc

    def _profile_items(self) -> None:
        for tie in self.p.ties:
            if tie.origin != NAME:
                self.warn("W504", f"shared encoding ({tie.mode or 'tensors'}) cannot be written: "
                          "vai_q_pytorch forms its quant groups itself", tie.span)
        for pattern in self.p.patterns:
            if pattern.origin != NAME:
                self.warn("W504", f"fusion pattern {pattern.describe()} cannot be written: "
                          "vai_q_pytorch forms its quant groups itself", pattern.span)
        for name, span in (*self.p.passes, *self.p.post):
            self.warn("W504", f"'{name}' has no vai_q_pytorch equivalent; dropped", span)
        for name, setting in self.p.calibrate.items():
            self.warn("W504", f"calibrate {name}: {show_value(setting.value)} has no place in the "
                      "config file (torch_quantizer arguments); dropped", setting.span)
        for name, setting in self.p.options.values.items():
            if setting.value != OPTION_DEFAULTS.get(name):  # the reader sets none: defaults
                self.warn("W504", f"option {name}: {show_value(setting.value)} has no "
                          "vai_q_pytorch form; dropped", setting.span)

    def _self_check(self, text: str) -> None:
        try:
            read(text, "<written vitis config>")
        except QuantspecError as err:
            self.warn("W505", f"vai_q_pytorch would reject the written config: "
                      f"{err.diagnostic.message}", None, hint=err.diagnostic.hint)

    # -- routing rules to places --------------------------------------------------------------

    def _route(self) -> tuple[_Dest, dict[str, _Dest], dict[str, _Dest], list[Rule]]:
        glob = _Dest()
        types: dict[str, _Dest] = {}
        names: dict[str, _Dest] = {}
        model_io: list[Rule] = []
        for order, rule in enumerate(self.p.rules):
            if rule.origin == NAME:
                if rule.selector.scope == "defaults":
                    self.own.add(self._kinds(rule), order, rule)
                continue  # re-derived on read
            sel = rule.selector
            if sel.scope != "op":
                self.run = None
            if sel.scope in ("model_input", "model_output"):
                model_io.append(rule)
                continue
            if sel.scope == "tensor":
                self.warn("W501", f"{_label(rule)}: vai_q_pytorch configs cannot name "
                          "tensors; rule dropped", rule.span)
                continue
            kinds = self._kinds(rule)
            if not kinds:
                continue
            self._rule_warnings(rule, kinds)
            if sel.scope == "defaults":
                glob.add(kinds, order, rule)
            elif sel.scope == "op":
                for name in self._type_names(rule):
                    types.setdefault(name, _Dest()).add(kinds, order, rule)
            else:
                for pattern in sel.names:
                    layer = exact_name(pattern)
                    if layer is None:
                        self.warn("W501", f"{_label(rule)}: layer_name matches exact names "
                                  f"only; '{pattern}' dropped", rule.span)
                        continue
                    names.setdefault(layer, _Dest()).add(kinds, order, rule)
        return glob, types, names, model_io

    def _kinds(self, rule: Rule) -> tuple[str, ...]:
        sel = rule.selector
        slot = sel.slot
        if slot == "input" and sel.index is not None:
            self.warn("W503", f"{_label(rule)}: vai_q_pytorch's 'input' covers every input; "
                      "the index is dropped", rule.span)
        if slot == "weight_r":
            self.warn("W503", f"{_label(rule)}: written as 'weights' (vai_q_pytorch does not "
                      "separate recurrent weights)", rule.span)
        kinds = {"tensor": KINDS, "output": ("activation",), "input": ("input",),
                 "param": ("weights", "bias"), "weight": ("weights",), "weight_r": ("weights",),
                 "bias": ("bias",)}.get(slot, ())
        if not kinds:
            self.warn("W501", f"{_label(rule)}: vai_q_pytorch has no '{slot}' tensor type; "
                      "rule dropped", rule.span)
        return kinds

    def _type_names(self, rule: Rule) -> list[str]:
        sel = rule.selector
        run = self.run
        if run is not None and run.op_types == sel.op_types and sel.slot not in run.slots:
            run.slots.add(sel.slot)
            self._wider(rule, run.names)
            return run.names
        names = self.namer.names(sel.op_types)
        self.run = _Run(sel.op_types, {sel.slot}, names)
        if not names:
            self.warn("W501", f"{_label(rule)}: no vai_q_pytorch layer_type for "
                      f"{' | '.join(sel.op_types)}; rule dropped", rule.span)
        self._wider(rule, names)
        return names

    def _wider(self, rule: Rule, names: list[str]) -> None:
        """A layer_type may stand for more ONNX ops than the rule names (``Linear`` is Gemm and
        MatMul, 1.8): the written entry then applies to those too."""
        covered = {op for n in names for op in (onnx_op_types(n) or ())}
        extra = sorted(covered - set(rule.selector.op_types))
        if extra:
            self.warn("W503", f"{_label(rule)}: layer_type {', '.join(names)} also covers "
                      f"{', '.join(extra)}; written for those ops too", rule.span)

    def _rule_warnings(self, rule: Rule, kinds: tuple[str, ...]) -> None:
        label = _label(rule)
        if rule.final:
            self.warn("W503", f"{label}: 'final' has no vai_q_pytorch equivalent; written at "
                      "its own precedence", rule.span)
        if rule.selector.where:
            self.warn("W503", f"{label}: vai_q_pytorch cannot test "
                      f"{', '.join(map(str, rule.selector.where))}; written for every matching "
                      "op", rule.span)
        for name, setting in rule.settings.items():
            problem = _unsupported(name, setting.value, kinds)
            if problem:
                self.warn("W502", f"{label}: {problem}", setting.span or rule.span)

    def _fill_ir_defaults(self, gsettings: dict[str, tuple[dict[str, Setting], bool]]) -> None:
        """Fields no rule sets have the compiler's defaults in the IR but vai_q_pytorch's
        built-in (DPU) values in the file: write the IR's where they differ."""
        from ..compiler.plan import BUILTIN as IR_DEFAULTS  # only writers need it

        for kind in ("activation", "weights", "bias", "input"):
            settings = gsettings[kind][0]
            present = set(settings) | {f for _, r in self.own.items.get(kind, [])
                                       for f in r.settings}
            builtin = _full_settings(kind, _builtin(kind))
            for name in _FILL_FIELDS:
                if name in present:
                    continue
                # Vitis' per-node input quantizers stand for the same tensors as activations.
                value = gsettings["activation"][0].get(name) if kind == "input" else None
                value = value or Setting(IR_DEFAULTS[name])
                if builtin[name] != value:
                    settings[name] = value

    def _note_model_inputs(self, act: Mapping[str, Setting], model_io: list[Rule]) -> None:
        """vai_q_pytorch quantizes the model's input (the Input node's output) with the global
        activation config (1.10), whatever the consuming layers' input configs say. A profile
        not read from Vitis that has no model input rule may quantize model inputs otherwise:
        announced once."""
        if any(r.origin == NAME for r in self.p.rules):
            return
        if any(r.selector.scope == "model_input" for r in model_io):
            return  # _check_model_io reports what differs
        quantized = _value(act, "quantized") is True
        if not quantized and not any(  # no rule could quantize a model input either
                value_of(r.settings, "quantized") is True
                and r.selector.slot in ("tensor", "input", "graph_input") for r in self.p.rules):
            return
        state = "quantized" if quantized else "not quantized"
        self.warn("W503", "vai_q_pytorch quantizes the model inputs with the global activation "
                  f"config ({state} here); this profile has no model input rule, so model "
                  "inputs may not be quantized as it says", None)

    def _check_model_io(self, act: Mapping[str, Setting], rules: list[Rule]) -> None:
        for rule in rules:
            what = "inputs" if rule.selector.scope == "model_input" else "outputs"
            for name, setting in rule.settings.items():
                if act.get(name) != setting:
                    self.warn("W502", f"{_label(rule)} {name}: "
                              f"{show_value(setting.value)} dropped; vai_q_pytorch quantizes model "
                              f"{what} with the global activation config",
                              setting.span or rule.span)

    # -- values ---------------------------------------------------------------------------------

    def _fold(self, items: list[tuple[int, Rule]]) -> tuple[dict[str, Setting], bool]:
        """The cascade within one place: (final, level, order); returns settings + bfloat16."""
        out: dict[str, Setting] = {}
        bf16 = False
        for _, rule in sorted(items, key=lambda it: (it[1].priority, it[1].selector.level,
                                                    it[0])):
            out.update(rule.settings)
            if "dtype" in rule.settings:
                bf16 = rule.selector.describe() in self.bf16
        return out, bf16

    def _params(self, kind: str, s: Mapping[str, Setting], bf16: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _datatype_params(out, s, bf16)
        for name, key in (("symmetric", "symmetry"), ("per_channel", "per_channel"),
                          ("signed", "signed"), ("narrow_range", "narrow_range")):
            if name in s and isinstance(s[name].value, bool):
                out[key] = s[name].value
        if out.get("per_channel") and kind != "weights" and self.target in ("CPU", "GPU"):
            # CPU/GPU quantize only weights per channel (vitis_amct.md 1.7), e.g. not the
            # biases of a `param` rule.
            self.warn("W502", f"{kind}: vai_q_pytorch quantizes only weights per channel; "
                      "per_channel dropped", s["per_channel"].span)
            del out["per_channel"]
        if "narrow_range" not in out and isinstance(_value(s, "strict_symmetric"), bool):
            out["narrow_range"] = s["strict_symmetric"].value  # same grid when signed+symmetric
            if out["narrow_range"]:
                self.warn("W503", "strict_symmetric written as narrow_range: the same grid for "
                          "signed symmetric tensors, but vai_q_pytorch also narrows asymmetric "
                          "ones", s["strict_symmetric"].span)
        if _value(s, "scale_type") in SCALE_BACK:
            out["scale_type"] = SCALE_BACK[s["scale_type"].value]
        rounding = _value(s, "rounding")
        if rounding in ROUND_MODES or rounding == "half_away":
            out["round_mode"] = "std_round" if rounding == "half_away" else rounding
        if isinstance(_value(s, "calibration"), Calibration):
            out.update(self._calibration_params(kind, s["calibration"], _value(s, "symmetric")))
        return {k: out[k] for k in PARAM_KEYS if k in out}

    def _calibration_params(self, kind: str, setting: Setting, symmetric: Any
                            ) -> dict[str, Any]:
        calib: Calibration = setting.value
        method = METHODS_BACK.get(calib.method)
        if calib.method == "ifmr" and _is_exact_minmax_ifmr(calib):
            method = "maxmin"  # exact: one candidate, the min/max (vitis_amct.md 2.5)
        elif method is None and calib.method in _APPROX_METHODS:
            method = _APPROX_METHODS[calib.method]
            if symmetric is False and method != "maxmin" and self.target in ("CPU", "GPU"):
                # percentile/mse/entropy are symmetric-only on CPU/GPU (vitis_amct.md 1.7)
                method = "maxmin"
            self.warn("W503", f"calibration {calib.method} approximated by vai_q_pytorch method "
                      f"'{method}'", setting.span)
        elif method is None:
            self.warn("W502", f"calibration {calib.method} has no vai_q_pytorch method; "
                      "dropped", setting.span)
            return {}
        out: dict[str, Any] = {"method": method}
        if method == "percentile":
            out["percentage"] = float(_percentile(calib))
        combine = calib.param("combine")
        if kind in STAT_KINDS and combine is not None:
            if combine in STATISTICS:
                out["calib_statistic_method"] = combine
            else:
                self.warn("W502", f"combine {show_value(combine)} has no calib_statistic_method; "
                          "dropped", setting.span)
        return out

    def _stat_fixup(self, params: dict[str, dict[str, Any]]) -> None:
        # CPU/GPU reject the built-in 'modal' statistic with float scales (vitis_amct.md 1.7);
        # a profile that says nothing about it gets 'max', the running maximum min-max
        # calibrators use.
        if self.target not in ("CPU", "GPU"):
            return
        for kind in STAT_KINDS:
            p = params[kind]
            if p.get("scale_type") == "float" and "calib_statistic_method" not in p:
                p["calib_statistic_method"] = "max"
                self.warn("W503", f"{kind}: calib_statistic_method 'max' added (vai_q_pytorch "
                          "needs max, mean or median with float scales)", None)
                params[kind] = {k: p[k] for k in PARAM_KEYS if k in p}

    def _entry(self, layer_type: str | None, layer_name: str | None, dest: _Dest
               ) -> dict[str, Any]:
        kinds = tuple(k for k in KINDS if k in dest.items)
        params = {k: self._params(k, *self._fold(dest.items[k])) for k in kinds}
        overall, tensors = _factor(kinds, params)
        entry: dict[str, Any] = {"layer_type": layer_type, "layer_name": layer_name,
                                 "quantizable_data_type": list(kinds),
                                 "overall_quantize_config": overall}
        if tensors:
            entry["tensor_quantize_config"] = tensors
        return entry


def _datatype_params(out: dict[str, Any], s: Mapping[str, Setting], bf16: bool) -> None:
    quantized, dtype, bits = _value(s, "quantized"), _value(s, "dtype"), _value(s, "bits")
    if quantized is False:
        out["datatype"] = "float32"
    elif dtype == "float":
        if bits == 16:
            out["datatype"] = "bfloat16" if bf16 else "float16"
            return
        if bits == 32:
            out["datatype"] = "float32"
            return
    elif dtype == "int" or quantized is True:
        out["datatype"] = "int"
    if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= 32 and \
            dtype != "float":
        out["bit_width"] = bits


# Fields whose built-in Vitis value differs from the compiler's default for an unset field.
_FILL_FIELDS = ("quantized", "symmetric", "scale_type", "rounding", "calibration")

# Approximate stand-ins for methods vai_q_pytorch lacks (docs/dialects.md).
_APPROX_METHODS = {"tf_enhanced": "mse", "hfmg": "mse", "ifmr": "percentile",
                   "moving_average": "maxmin"}


def _is_exact_minmax_ifmr(calib: Calibration) -> bool:
    # IFMR with percentiles 1.0 and the single candidate 1.0 is exactly min-max (vitis_amct.md 2.5).
    return (calib.param("max_percentile") == 1.0 and calib.param("min_percentile") == 1.0
            and calib.param("search_range_start") == 1.0
            and (calib.param("search_range_end") or 0) <= 1.0 + (calib.param("search_step")
                                                                  or 0.01) + 1e-9)


def _percentile(calib: Calibration) -> float:
    if calib.method == "ifmr":
        fraction = calib.param("max_percentile", 0.999999)
        return float(fraction) * 100.0 if isinstance(fraction, (int, float)) else \
            DEFAULT_PERCENTAGE
    value = calib.param("percentile")
    if value is None:
        value = next((v for _, v in calib.params if isinstance(v, (int, float))), None)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return DEFAULT_PERCENTAGE
    return float(value)


def _unsupported(name: str, value: Any, kinds: tuple[str, ...]) -> str:
    """Why a setting cannot be written (empty when it can, maybe approximately)."""
    if name in ("axis", "block_size", "min_bits", "fixed_range", "encodings"):
        return f"{name} has no vai_q_pytorch key; dropped"
    if name == "unsigned_symmetric" and value:
        return "unsigned_symmetric (data-dependent unsigned grid) has no vai_q_pytorch key; dropped"
    if name == "rounding" and value not in ROUND_MODES and value != "half_away":
        return f"rounding {show_value(value)} has no vai_q_pytorch round_mode; dropped"
    if name == "bits" and not (isinstance(value, int) and 0 < value <= 32):
        return f"bits {show_value(value)} is outside vai_q_pytorch's 1..32; dropped"
    if name == "scale_type" and value not in SCALE_BACK:
        return f"scale_type {show_value(value)} dropped"
    if name == "dtype" and value not in ("int", "float"):
        return f"dtype {show_value(value)} dropped"
    return ""


def _factor(kinds: tuple[str, ...], params: Mapping[str, Mapping[str, Any]]
            ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split per-type parameters into an ``overall_quantize_config`` and per-type overrides."""
    overall: dict[str, Any] = {}
    for key in PARAM_KEYS:
        rel = [k for k in kinds if key != "calib_statistic_method" or k in STAT_KINDS]
        if not rel or any(key not in params[k] for k in rel):
            continue
        values = [params[k][key] for k in rel]
        overall[key] = max(values, key=lambda v: (values.count(v), -values.index(v)))
    tensors: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        p = params[kind]
        diff = {k: v for k, v in p.items() if k not in overall or overall[k] != v}
        if diff and "percentage" in p and "percentage" not in diff:
            # Every block applied while the method is percentile resets the percentage unless
            # the block repeats it (quant_config.py _generate_config_from_export).
            diff["percentage"] = p["percentage"]
        if diff:
            tensors[kind] = {k: diff[k] for k in PARAM_KEYS if k in diff}
    return overall, tensors


def _label(rule: Rule) -> str:
    """The rule as messages name it; derived rules say whose default they are."""
    return rule.selector.describe() + (f" ({rule.origin} default)" if rule.origin else "")


_value = value_of


def _meta(profile: Profile, key: str) -> Any:
    return profile.meta_value(META + key)


