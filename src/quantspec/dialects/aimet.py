"""AIMET quantsim runtime configuration JSON (specs 000 and 002; aimet.md A and B).

Reading maps AIMET's application order (aimet.md B.2) onto the IR cascade:

=====================  ==========================================  ===================
AIMET section          IR                                          level
=====================  ==========================================  ===================
defaults.ops           ``defaults { output {..} input {..} }``       defaults
(model inputs, consts  ``defaults { graph_input {off} constant..}``  role-wide
 forced off, B.2 1b)
defaults.params        ``defaults { param {..} }``                   defaults
params.<type>          ``defaults { <type> {..} }``                  role-wide
op_type.<T>            ``op T { input {..} output {..} }``           op type
op_type.<T>.params     ``op T { <type> {..} }``                      op type + role
supergroups            ``fuse A -> B``                               fused pattern
model_input/output     ``model input {..}`` / ``model output {..}``  model input/output
=====================  ==========================================  ===================

What AIMET does beyond the file is added as derived rules (``origin="aimet"``), so ``explain``
shows it: grid-preserving op outputs off unless the type is named (B.7), outputs that never get
a quantizer (B.1, as ``final`` rules), quantizer tying (B.8, as ties) and the post-config
exception rules (B.8, hooks in :mod:`.aimet_rules`). A writer skips derived rules; a reader
re-derives them.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any

from .. import ir
from ..errors import QuantspecError, Report, did_you_mean
from ..jsonpos import Positions, json_path, loads
from ..source import Span

NAME = "aimet"
SUFFIXES = (".json",)
ORIGIN = "aimet"

# aimet.md B.7: outputs auto-disabled unless op_type names the type (W common/onnx/_utils.py)
GRID_PRESERVING = (
    "Col2Im", "Compress", "DepthToSpace", "Dropout", "Expand", "Flatten", "Gather",
    "GatherElements", "GatherND", "Identity", "MaxPool", "MaxRoiPool", "NonZero", "Pad",
    "ReduceMax", "ReduceMin", "Reshape", "Slice", "SpaceToDepth", "Split", "SplitToSequence",
    "Squeeze", "Tile", "TopK", "Transpose", "Unsqueeze", "BatchToSpace", "SpaceToBatch",
)
# aimet.md B.1 op_outputs_to_ignore: these outputs never get a quantizer
NEVER_QUANTIZED = ("Flatten", "Gather", "Reshape", "Shape", "Unsqueeze", "Squeeze", "Split",
                   "Compress", "Tile", "Transpose", "Identity")
# aimet.md B.8 quantizer tying
TIE_OUT_TO_IN = ("Relu", "AveragePool", "Resize", "Upsample", "CropAndResize")
TIE_IN_TO_OUT = ("Concat", "Scatter", "ScatterElements", "ScatterND")
TIE_STATES = ("RNN", "GRU", "LSTM")
# aimet.md A.2 supergroup_pass_list names -> IR graph passes
PASS_NAMES = {"MatmulAdd": "matmul_add", "LayerNormalization": "layer_norm",
              "RMSNormalization": "rms_norm", "MaskedSoftmax": "masked_softmax"}
PASS_NAMES_INV = {v: k for k, v in PASS_NAMES.items()}
SECTIONS = ("defaults", "params", "op_type", "supergroups", "supergroup_pass_list",
            "model_input", "model_output")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = resources.files("quantspec.schemas").joinpath("aimet_quantsim_config.json")
    return json.loads(text.read_text("utf-8"))  # type: ignore[no-any-return]


def detect(text: str) -> bool:
    head = text[:4096]
    return '"op_type"' in head or ('"defaults"' in head and '"supergroups"' in text)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def read(text: str, file: str = "<aimet>", param_bw: int = 8, act_bw: int = 8,
         version: str = "2", **_: Any) -> ir.Profile:
    """Read an AIMET config. ``version="1"`` selects AIMET 1.x semantics (aimet.md B.3, C.1)."""
    cfg, pos = loads(text, file)
    validate(cfg, pos)
    return _Reader(cfg, pos, file, param_bw, act_bw, version).profile()


def validate(cfg: Any, pos: Positions) -> None:
    """JSON Schema check, then AIMET's semantic checks (aimet.md A.1 step 5)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path),
                                                                list(map(str, e.absolute_path))))
    if errors:
        raise _schema_error(errors[0], cfg, pos)
    d = cfg["defaults"]
    checks: list[tuple[tuple[Any, ...], bool, str]] = [
        (("defaults", "ops", "is_input_quantized"), "is_input_quantized" in d["ops"],
         "defaults.ops.is_input_quantized is not supported (AIMET rejects it)"),
        (("defaults", "ops", "is_output_quantized"), d["ops"].get("is_output_quantized") == "False",
         "defaults.ops.is_output_quantized can only be True"),
        (("model_input", "is_input_quantized"),
         cfg["model_input"].get("is_input_quantized") == "False",
         "IS_INPUT_QUANTIZED for model input can only be set to True"),
        (("model_output", "is_output_quantized"),
         cfg["model_output"].get("is_output_quantized") == "False",
         "IS_OUTPUT_QUANTIZED for model output can only be set to True"),
    ]
    for t, oc in cfg["op_type"].items():
        checks.append((("op_type", t, "is_input_quantized"), oc.get("is_input_quantized") ==
                       "False", f"op_type.{t}.is_input_quantized can only be True"))
    kernels: list[tuple[tuple[Any, ...], Any]] = [
        (("defaults", "supported_kernels", i), k) for i, k in
        enumerate(d.get("supported_kernels", []))]
    for t, oc in cfg["op_type"].items():
        kernels += [(("op_type", t, "supported_kernels", i), k)
                    for i, k in enumerate(oc.get("supported_kernels", []))]
    for path, k in kernels:
        for side in ("activation", "param"):
            kk = k.get(side)
            if kk and kk["dtype"] == "float" and kk["bitwidth"] not in (16, 32):
                checks.append(((*path, side, "bitwidth"), True,
                               f"float {side} kernels must be 16 or 32 bits, not "
                               f"{kk['bitwidth']}"))
    for path, bad, msg in checks:
        if bad:
            raise QuantspecError("E132", msg, pos.get(path),
                                 hint="AIMET's semantic check rejects this value")
    for i, sg in enumerate(cfg["supergroups"]):
        if "op_list" not in sg:  # the schema allows it; AIMET then fails on sg["op_list"]
            raise QuantspecError("E132", f"supergroups[{i}] has no 'op_list'",
                                 pos.get(("supergroups", i)),
                                 hint='a supergroup is {"op_list": ["Conv", "Relu"]}')


def _schema_error(err: Any, cfg: Any, pos: Positions) -> QuantspecError:
    path = tuple(err.absolute_path)
    span = pos.value_span(path) if path else pos.get(())
    where = json_path(path)
    hint = ""
    if err.validator == "additionalProperties":
        extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
        if extra:
            key = extra[0]
            span = pos.get((*path, key))
            allowed = list(err.schema.get("properties", {}))
            hint = did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}"
            return QuantspecError("E131", f"unknown key '{key}' in {where}", span, hint=hint)
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        return QuantspecError("E131", f"{where} is missing the required key '{missing[0]}'",
                              span, hint="AIMET requires all six sections, even when empty")
    if err.validator in ("type", "enum", "pattern") and err.schema.get("enum") == ["True", "False"]:
        got = json.dumps(err.instance)
        hint = 'AIMET booleans are the strings "True" and "False"'
        return QuantspecError("E131", f"{where} must be \"True\" or \"False\", got {got}",
                              span, hint=hint)
    return QuantspecError("E131", f"{where}: {err.message}", span)


class _Reader:
    def __init__(self, cfg: dict[str, Any], pos: Positions, file: str, param_bw: int,
                 act_bw: int, version: str) -> None:
        self.cfg, self.pos, self.file = cfg, pos, file
        self.param_bw, self.act_bw = param_bw, act_bw
        self.v1 = str(version).startswith("1")
        self.rules: list[ir.Rule] = []

    def span(self, *path: Any) -> Span:
        return self.pos.get(path)

    def b(self, value: str) -> bool:
        # aimet.md A.1 step 3: "True"/"False" strings become booleans
        return value == "True"

    def add(self, sel: ir.Selector, values: dict[str, tuple[Any, Span]], span: Span,
            group: str = "", origin: str = "", note: str = "", final: bool = False) -> None:
        if not values:
            return
        settings = {k: ir.Setting(v, s) for k, (v, s) in values.items()}
        self.rules.append(ir.Rule(sel, settings, span, final, group, origin, note))

    def derived(self, sel: ir.Selector, values: dict[str, Any], note: str, span: Span | None = None,
                group: str = "", final: bool = False) -> None:
        s = span or Span(self.file)
        self.add(sel, {k: (v, s) for k, v in values.items()}, s, group, ORIGIN, note, final)

    def profile(self) -> ir.Profile:
        cfg = self.cfg
        # B.1 / B.2 step 7: bit widths come from QuantizationSimModel, not the file
        self.derived(ir.Selector("defaults", slot="tensor"),
                     {"dtype": "int", "bits": self.act_bw},
                     f"activation bit width {self.act_bw} "
                     "(QuantizationSimModel default_activation_bw)")
        self.derived(ir.Selector("defaults", slot="param"), {"bits": self.param_bw},
                     f"parameter bit width {self.param_bw} (QuantizationSimModel default_param_bw)")
        self.defaults()
        self.params()
        self.op_types()
        self.model_io()
        self.inventory()
        patterns = tuple(
            ir.Pattern(tuple((t,) for t in sg["op_list"]), self.span("supergroups", i))
            for i, sg in enumerate(cfg["supergroups"]))
        passes = tuple((PASS_NAMES[p], self.span("supergroup_pass_list", i))
                       for i, p in enumerate(cfg.get("supergroup_pass_list", []))
                       if p in PASS_NAMES and not self.v1)
        meta = self.meta()
        ties: tuple[ir.Tie, ...] = ()
        post: tuple[tuple[str, Span | None], ...] = ()
        if not self.v1:
            ties = (
                ir.Tie("output_to_input", TIE_OUT_TO_IN, NEVER_QUANTIZED, origin=ORIGIN),
                ir.Tie("inputs_to_output", TIE_IN_TO_OUT, NEVER_QUANTIZED, origin=ORIGIN),
                ir.Tie("states", TIE_STATES, origin=ORIGIN),
            )
        post = (("aimet.param_symmetry_to_inputs", None), ("aimet.exception_rules", None))
        if "is_input_quantized" not in cfg["model_input"]:
            post = (("aimet.model_input_required", None), *post)
        options = {
            "fusion": ir.Setting("aimet1" if self.v1 else "aimet2", None),
            "conflicts": ir.Setting("later_wins", None),
            "model_output": ir.Setting("terminal", None),
            "per_channel_fallback": ir.Setting("error", None),
        }
        return ir.Profile(
            name="", source=self.file, dialect=NAME, rules=tuple(self.rules),
            patterns=patterns, ties=ties, passes=passes, post=post,
            options=ir.Options(options), meta=meta,
        )

    def meta(self) -> dict[str, ir.Setting]:
        d = self.cfg["defaults"]
        meta: dict[str, ir.Setting] = {
            "aimet.version": ir.Setting("1" if self.v1 else "2", None),
            "aimet.param_bw": ir.Setting(self.param_bw, None),
            "aimet.act_bw": ir.Setting(self.act_bw, None),
        }
        if "hw_version" in d:
            meta["aimet.hw_version"] = ir.Setting(d["hw_version"], self.span("defaults",
                                                                            "hw_version"))
        if "supported_kernels" in d:
            meta["aimet.defaults.supported_kernels"] = ir.Setting(
                _freeze(d["supported_kernels"]), self.span("defaults", "supported_kernels"))
        for t, oc in self.cfg["op_type"].items():
            if "supported_kernels" in oc:
                meta[f"aimet.op_type.{t}.supported_kernels"] = ir.Setting(
                    _freeze(oc["supported_kernels"]), self.span("op_type", t, "supported_kernels"))
            for k in oc.get("encoding_constraints", {}):
                if k not in ("min", "max"):
                    meta[f"aimet.op_type.{t}.encoding_constraints.{k}"] = ir.Setting(
                        _freeze(oc["encoding_constraints"][k]),
                        self.span("op_type", t, "encoding_constraints", k))
        for p in self.cfg.get("supergroup_pass_list", []):
            if p not in PASS_NAMES or self.v1:
                meta[f"aimet.supergroup_pass_list.{p}"] = ir.Setting(True, None)
        # weight symmetry used by _apply_param_symmetry_to_inputs (aimet.md B.8)
        sym = {"": self.b(d["params"].get("is_symmetric", "False"))}
        for t, oc in self.cfg["op_type"].items():
            w = oc.get("params", {}).get("weight", {})
            if "is_symmetric" in w:
                sym[t] = self.b(w["is_symmetric"])
        meta["aimet.weight_symmetry"] = ir.Setting(tuple(sorted(sym.items())), None)
        return meta

    def defaults(self) -> None:
        d = self.cfg["defaults"]
        ops = d["ops"]
        g = "defaults.ops"
        if "is_output_quantized" in ops:
            self.add(ir.Selector("defaults", slot="output"),
                     {"quantized": (self.b(ops["is_output_quantized"]),
                                    self.span("defaults", "ops", "is_output_quantized"))},
                     self.span("defaults", "ops"), g)
        if "is_symmetric" in ops:
            s = self.span("defaults", "ops", "is_symmetric")
            v = self.b(ops["is_symmetric"])
            self.add(ir.Selector("defaults", slot="output"), {"symmetric": (v, s)}, s, g)
            self.add(ir.Selector("defaults", slot="input"), {"symmetric": (v, s)}, s, g)
        # B.2 step 1b: model inputs, constant inputs and Constant outputs start disabled
        self.derived(ir.Selector("defaults", slot="graph_input"), {"quantized": False},
                     "model inputs start disabled; model_input enables them (aimet.md B.2 1b)")
        self.derived(ir.Selector("defaults", slot="constant"), {"quantized": False},
                     "non-parameter constants start disabled; model_input enables them "
                     "(aimet.md B.5)")
        params = d["params"]
        vals = {}
        if "is_quantized" in params:
            vals["quantized"] = (self.b(params["is_quantized"]),
                                 self.span("defaults", "params", "is_quantized"))
        if "is_symmetric" in params:
            vals["symmetric"] = (self.b(params["is_symmetric"]),
                                 self.span("defaults", "params", "is_symmetric"))
        self.add(ir.Selector("defaults", slot="param"), vals, self.span("defaults", "params"))
        gl = {}
        for key, field in (("strict_symmetric", "strict_symmetric"),
                           ("unsigned_symmetric", "unsigned_symmetric")):
            if key in d:
                gl[field] = (self.b(d[key]), self.span("defaults", key))
        self.add(ir.Selector("defaults", slot="tensor"), gl, self.span("defaults"))
        if "per_channel_quantization" in d:
            self.add(ir.Selector("defaults", slot="param"),
                     {"per_channel": (self.b(d["per_channel_quantization"]),
                                      self.span("defaults", "per_channel_quantization"))},
                     self.span("defaults", "per_channel_quantization"))

    def params(self) -> None:
        for ptype, pc in self.cfg["params"].items():
            vals = self._param_vals(pc, ("params", ptype))
            slot = ptype if ptype in ir.KNOWN_PARAM_ROLES else None
            if slot is None:
                continue  # aimet.md A.2: unknown param types are ignored (kept in meta)
            self.add(ir.Selector("defaults", slot=slot), vals, self.span("params", ptype))

    def _param_vals(self, pc: dict[str, str], path: tuple[Any, ...]) -> dict[str, Any]:
        vals = {}
        if "is_quantized" in pc:
            vals["quantized"] = (self.b(pc["is_quantized"]), self.span(*path, "is_quantized"))
        if "is_symmetric" in pc:
            vals["symmetric"] = (self.b(pc["is_symmetric"]), self.span(*path, "is_symmetric"))
        return vals

    def op_types(self) -> None:
        op_type = self.cfg["op_type"]
        g = "op_type"
        for t, oc in op_type.items():
            path = ("op_type", t)
            sel = ir.Selector("op", op_types=(t,))
            out: dict[str, Any] = {}
            inp: dict[str, Any] = {}
            if "is_output_quantized" in oc:
                out["quantized"] = (self.b(oc["is_output_quantized"]),
                                    self.span(*path, "is_output_quantized"))
            if "is_input_quantized" in oc:
                inp["quantized"] = (self.b(oc["is_input_quantized"]),
                                    self.span(*path, "is_input_quantized"))
            if "is_symmetric" in oc:
                s = self.span(*path, "is_symmetric")
                out["symmetric"] = inp["symmetric"] = (self.b(oc["is_symmetric"]), s)
            forced_sym = False
            ec = oc.get("encoding_constraints")
            if ec is not None:
                s = self.span(*path, "encoding_constraints")
                lo = float(ec["min"])
                hi = float(ec["max"]) if ec.get("max") is not None else None
                out["fixed_range"] = ((lo, hi), s)
                # aimet.md C.2: a range symmetric around 0 forces a symmetric quantizer
                forced_sym = hi is not None and math.isclose(lo, -hi, rel_tol=1e-5, abs_tol=1e-8)
            self.add(ir.Selector("op", op_types=(t,), slot="input"), inp, self.span(*path), g)
            self.add(ir.Selector("op", op_types=(t,), slot="output"), out, self.span(*path), g)
            if forced_sym:
                self.derived(ir.Selector("op", op_types=(t,), slot="output"),
                             {"symmetric": True}, "a fixed range symmetric around 0 makes the "
                             "quantizer symmetric (aimet.md C.2)",
                             self.span(*path, "encoding_constraints"), group=g)
            for ptype, pc in oc.get("params", {}).items():
                if ptype not in ir.KNOWN_PARAM_ROLES:
                    continue
                self.add(ir.Selector("op", op_types=(t,), slot=ptype),
                         self._param_vals(pc, (*path, "params", ptype)),
                         self.span(*path, "params", ptype))
            if "per_channel_quantization" in oc:
                s = self.span(*path, "per_channel_quantization")
                self.add(ir.Selector("op", op_types=(t,), slot="param"),
                         {"per_channel": (self.b(oc["per_channel_quantization"]), s)}, s)
            del sel
        if not self.v1:
            missing = tuple(t for t in GRID_PRESERVING if t not in op_type)
            self.derived(ir.Selector("op", op_types=missing, slot="output"), {"quantized": False},
                         "grid-preserving op: output not quantized unless op_type names the "
                         "type (aimet.md B.7)", group=g)

    def model_io(self) -> None:
        mi = self.cfg["model_input"]
        if "is_input_quantized" in mi:
            s = self.span("model_input", "is_input_quantized")
            v = self.b(mi["is_input_quantized"])
            self.add(ir.Selector("model_input"), {"quantized": (v, s)}, s, "model_input")
            # aimet.md B.5: the same key governs non-parameter constants
            self.add(ir.Selector("model_input", slot="constant"), {"quantized": (v, s)}, s,
                     "model_input", ORIGIN, "model_input also governs non-parameter constants "
                     "(aimet.md B.5)")
        mo = self.cfg["model_output"]
        if "is_output_quantized" in mo:
            s = self.span("model_output", "is_output_quantized")
            self.add(ir.Selector("model_output"),
                     {"quantized": (self.b(mo["is_output_quantized"]), s)}, s)

    def inventory(self) -> None:
        if self.v1:
            return
        self.derived(ir.Selector("op", op_types=NEVER_QUANTIZED, slot="output"),
                     {"quantized": False}, "AIMET never places a quantizer here "
                     "(op_outputs_to_ignore, aimet.md B.1)", final=True)
        for i in (1, 2, 3):
            self.derived(ir.Selector("op", op_types=("Resize",), slot="input", index=i),
                         {"quantized": False}, "Resize roi/scales/sizes are not quantized "
                         "(op_params_to_ignore, aimet.md B.1)", final=True)
        self.derived(ir.Selector("op", op_types=("MaskedSoftmax",), slot="input", index=1),
                     {"quantized": False}, "MaskedSoftmax mask is not quantized (aimet.md B.1)",
                     final=True)


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple((k, _freeze(x)) for k, x in v.items())
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple) and v and all(isinstance(x, tuple) and len(x) == 2
                                           and isinstance(x[0], str) for x in v):
        return {k: _thaw(x) for k, x in v}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def _tf(v: bool) -> str:
    return "True" if v else "False"


# The stdlib profile that states, as rules, what AIMET does around any config file: rules that
# come from it are AIMET itself and need no place in the written file.
IMPLICIT_PROFILE = "std/aimet/implicit.qspec"


def _implied(span: Span | None) -> bool:
    return span is not None and span.file == IMPLICIT_PROFILE


def write(profile: ir.Profile, report: Report | None = None, **_: Any) -> str:
    """Write an AIMET config; what AIMET cannot hold is reported (W5xx) with its position."""
    report = report if report is not None else Report()
    cfg: dict[str, Any] = {"defaults": {"ops": {}, "params": {}}, "params": {}, "op_type": {},
                           "supergroups": [], "model_input": {}, "model_output": {}}
    meta = {k: s.value for k, s in profile.meta.items()}
    d = cfg["defaults"]
    for rule in profile.rules:
        if rule.origin == ORIGIN or _implied(rule.span):
            continue
        _write_rule(rule, cfg, report)
    if "aimet.hw_version" in meta:
        d["hw_version"] = meta["aimet.hw_version"]
    if "aimet.defaults.supported_kernels" in meta:
        d["supported_kernels"] = _thaw(meta["aimet.defaults.supported_kernels"])
    for k, v in meta.items():
        if k.startswith("aimet.op_type.") and k.endswith(".supported_kernels"):
            t = k[len("aimet.op_type."):-len(".supported_kernels")]
            cfg["op_type"].setdefault(t, {})["supported_kernels"] = _thaw(v)
    for pat in profile.patterns:
        if any(len(alts) != 1 for alts in pat.ops):
            report.warn("W502", f"fusion pattern '{pat.describe()}' has alternatives; AIMET "
                        "supergroups list one op type per position: expanded", pat.span)
            import itertools

            for combo in itertools.product(*pat.ops):
                cfg["supergroups"].append({"op_list": list(combo)})
        else:
            cfg["supergroups"].append({"op_list": [a[0] for a in pat.ops]})
    passes = [PASS_NAMES_INV[n] for n, _ in profile.passes if n in PASS_NAMES_INV]
    passes += [k[len("aimet.supergroup_pass_list."):] for k in meta
               if k.startswith("aimet.supergroup_pass_list.")]
    if passes or meta.get("aimet.version", "2") == "2" and profile.dialect == NAME:
        cfg["supergroup_pass_list"] = passes
    for t in profile.ties:
        if t.origin != ORIGIN and not _implied(t.span):
            report.warn("W504", f"AIMET cannot hold shared encodings ('{t.mode or 'share'}'); "
                        "AIMET ties Relu/AveragePool/Concat by itself", t.span)
    for name, span in profile.post:
        if not name.startswith("aimet."):
            report.warn("W504", f"post rule '{name}' has no AIMET form", span)
    # the reader fixes the compiler options (fusion matching by AIMET version, aimet.md B.3)
    fixed = {"fusion": "aimet1" if str(meta.get("aimet.version", "2")).startswith("1")
             else "aimet2", "conflicts": "later_wins", "model_output": "terminal",
             "per_channel_fallback": "error"}
    for key, st in profile.options.values.items():
        if st.value != fixed.get(key):
            report.warn("W504", f"option {key}: {st.value} has no AIMET form (AIMET's is "
                        f"{fixed.get(key)})", st.span)
    _note_symmetry_sides(profile, report)
    _note_implicit(profile, report)
    for key, s in {**profile.calibrate, **profile.transforms}.items():
        report.warn("W504", f"'{key}' is not part of an AIMET config (it is a "
                    "QuantizationSimModel / technique argument)", s.span)
    order = ("defaults", "params", "op_type", "supergroups", "supergroup_pass_list",
             "model_input", "model_output")
    out = {k: cfg[k] for k in order if k in cfg}
    return json.dumps(out, indent=4) + "\n"


def _note_symmetry_sides(profile: ir.Profile, report: Report) -> None:
    """``is_symmetric`` of defaults.ops and of an op_type entry covers the op's inputs and
    outputs at once (the reader gives both sides the value): a rule for one side, or two sides
    that disagree, changes the other side in AIMET (W503 at each such rule)."""
    sides: dict[tuple[str, ...], dict[str, list[tuple[bool, ir.Rule]]]] = {}
    for rule in profile.rules:
        sel = rule.selector
        if rule.origin == ORIGIN or _implied(rule.span) or rule.final or sel.where \
                or sel.index is not None or sel.slot not in ("input", "output") \
                or sel.scope not in ("defaults", "op"):
            continue  # not written, or written without is_symmetric
        value = ir.value_of(rule.settings, "symmetric")
        if not isinstance(value, bool):
            continue
        keys = [("defaults",)] if sel.scope == "defaults" else [("op", t) for t in sel.op_types]
        for key in keys:
            sides.setdefault(key, {}).setdefault(sel.slot, []).append((value, rule))
    noted: set[int] = set()
    for key, by_side in sides.items():
        last = {side: rules[-1][0] for side, rules in by_side.items()}
        if len(last) == 2 and last["input"] == last["output"]:
            continue
        what = "defaults.ops" if key == ("defaults",) else f"op_type {key[1]}"
        for rules in by_side.values():
            for value, rule in rules:
                if id(rule) not in noted:
                    noted.add(id(rule))
                    report.warn("W503", f"AIMET's is_symmetric ({what}) sets inputs and outputs "
                                f"together: '{rule.selector.describe()}' symmetric "
                                f"{_tf(value)} is written for both sides", rule.span)


def _note_implicit(profile: ir.Profile, report: Report) -> None:
    """A profile that does not state AIMET's own rules (derived by the reader, or the stdlib
    ``aimet/implicit`` profile) gets them anyway once AIMET reads the file (aimet.md B):
    announced once, since the plan can then differ wherever the profile says nothing."""
    if any(r.origin == ORIGIN or _implied(r.span) for r in profile.rules):
        return
    report.warn("W503", "AIMET adds its own rules to every config (aimet.md B): model inputs "
                "and constants start unquantized, grid-preserving outputs (MaxPool, Reshape, "
                "...) and Flatten/Gather/... outputs are not quantized, Relu/AveragePool outputs "
                "share their input's encoding and Concat inputs the output's; this profile "
                "does not say so (extend \"aimet/implicit\" to compile it the way AIMET will)",
                profile.span)


def _write_rule(rule: ir.Rule, cfg: dict[str, Any], report: Report) -> None:
    sel = rule.selector
    vals = {k: s.value for k, s in rule.settings.items()}
    held: set[str] = set()

    def put(obj: dict[str, Any], key: str, field: str) -> None:
        if field in vals and isinstance(vals[field], bool):
            obj[key] = _tf(vals[field])
            held.add(field)

    if rule.final or sel.where or sel.index is not None:
        report.warn("W501", f"AIMET cannot hold '{'final ' if rule.final else ''}"
                    f"{sel.describe()}' (predicates, input indexes and final rules): dropped",
                    rule.span)
        return
    d = cfg["defaults"]
    if sel.scope == "defaults":
        if sel.slot == "output":
            if vals.get("quantized") is False:
                # AIMET accepts only "True" here (A.1 step 5) and starts with every output
                # quantizer off (B.2): "off" is the key's absence
                d["ops"].pop("is_output_quantized", None)
                held.add("quantized")
            else:
                put(d["ops"], "is_output_quantized", "quantized")
            put(d["ops"], "is_symmetric", "symmetric")
        elif sel.slot == "input":
            if vals.get("symmetric") is not None and "is_symmetric" not in d["ops"]:
                put(d["ops"], "is_symmetric", "symmetric")
            else:
                held.add("symmetric")
        elif sel.slot == "param":
            put(d["params"], "is_quantized", "quantized")
            put(d["params"], "is_symmetric", "symmetric")
            put(d, "per_channel_quantization", "per_channel")
        elif sel.slot == "tensor":
            put(d, "strict_symmetric", "strict_symmetric")
            put(d, "unsigned_symmetric", "unsigned_symmetric")
        elif sel.slot in ir.KNOWN_PARAM_ROLES:
            p = cfg["params"].setdefault(sel.slot, {})
            put(p, "is_quantized", "quantized")
            put(p, "is_symmetric", "symmetric")
    elif sel.scope == "op":
        for t in sel.op_types:
            oc = cfg["op_type"].setdefault(t, {})
            if sel.slot == "output":
                put(oc, "is_output_quantized", "quantized")
                fr = vals.get("fixed_range")
                if vals.get("symmetric") is True and fr is not None and None not in fr[:2] \
                        and math.isclose(fr[0], -fr[1], rel_tol=1e-5, abs_tol=1e-8):
                    held.add("symmetric")  # implied by the range (aimet.md C.2); is_symmetric
                else:  # would also make the op's inputs symmetric
                    put(oc, "is_symmetric", "symmetric")
                if fr is not None and fr[0] is not None:
                    oc["encoding_constraints"] = {"min": fr[0]} if fr[1] is None else \
                        {"min": fr[0], "max": fr[1]}
                    held.add("fixed_range")
            elif sel.slot == "input":
                if vals.get("quantized") is True:
                    put(oc, "is_input_quantized", "quantized")
                put(oc, "is_symmetric", "symmetric")
            elif sel.slot == "param":
                put(oc, "per_channel_quantization", "per_channel")
            elif sel.slot in ir.KNOWN_PARAM_ROLES:
                p = oc.setdefault("params", {}).setdefault(sel.slot, {})
                put(p, "is_quantized", "quantized")
                put(p, "is_symmetric", "symmetric")
            if not oc:
                del cfg["op_type"][t]
    elif sel.scope == "model_input" and sel.slot == "tensor":
        if vals.get("quantized") is True:
            put(cfg["model_input"], "is_input_quantized", "quantized")
    elif sel.scope == "model_output":
        if vals.get("quantized") is True:
            put(cfg["model_output"], "is_output_quantized", "quantized")
    lost = [f for f in vals if f not in held]
    if lost:
        what = "rule" if not held else "setting" + ("s" if len(lost) > 1 else "")
        # W501: the whole rule is dropped; W502: some of its settings (as the other writers)
        report.warn("W501" if not held else "W502", f"AIMET cannot hold {what} "
                    f"{', '.join(lost)} of '{sel.describe()}': dropped", rule.span)
