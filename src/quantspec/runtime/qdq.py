"""A QDQ ONNX model from a plan and its encodings: QuantizeLinear / DequantizeLinear pairs.

Every quantized tensor of the plan that has an :class:`~quantspec.runtime.encoding.Encoding`
gets its grid in the graph:

* activations and graph inputs: ``QuantizeLinear -> DequantizeLinear`` right after the producer
  (or at the start for a graph input); every consumer reads the dequantized value. A graph
  output keeps its name: the producer's tensor is renamed ``<name>_float`` and the
  DequantizeLinear writes ``<name>``.
* parameters (initializers): stored as integers and read through one ``DequantizeLinear``, the
  layout onnxruntime's ``quantize_static`` and QNN's converter consume. ``param_storage="float"``
  keeps the float initializer and puts a Q/DQ pair on it instead.
* float encodings (``dtype="float"``, 16 bits): ``Cast`` to float16 and back (spec 004, "Mixed
  Precision and FP16 Support"); float32 encodings are a no-op.

Storage types. The zero point comes from the AIMET offset (aimet.md C: ``x = scale*(q+offset)``)
through :func:`~quantspec.runtime.encoding.offset_to_zero_point`: symmetric grids are stored
signed (int8 zero point 0, strict ``[-127, 127]``), asymmetric ones as the plan says, and an
unsigned-symmetric grid whose offset is 0 unsigned (aimet.md B.9). ONNX has int8/uint8, and
int16/uint16/int4/uint4 from opset 21. Other widths live in the next container (a 6-bit grid in
int8, a 12-bit grid in int16) and the stored range is narrowed: by a ``Clip`` between Q and DQ for
8-bit containers, by a float clamp at the grid's end points after DQ where onnxruntime has no
integer ``Clip`` (16-bit and 4-bit types). Both are exact: a clamp to ``[qmin, qmax]`` after
saturating to the container is a clamp to ``[qmin, qmax]``. Strict symmetric grids
(``[-127, 127]``) use the same mechanism. Wider grids (over 16 bits) are stored as int32
initializers when they are parameters and emulated with float ops (``Div, Round, Max, Min, Mul``,
the same arithmetic as QuantizeLinear) otherwise.

Opset. Q/DQ need opset 10, per-channel ``axis`` 13, float16 tensors 19, 16-bit types 21. The model
is upgraded with ``onnx.version_converter`` when it is older; when that fails and 16-bit types are
needed, those pairs use onnxruntime's ``com.microsoft`` QuantizeLinear / DequantizeLinear (same
semantics, only onnxruntime runs them). 4-bit grids use int4 only when the model is at opset 21
already (else an int8 container and a Clip), so a 4-bit plan never forces an opset upgrade.

Tied tensors (the plan's ``shared_with``, one :class:`Encoding` object in a calibration result)
read one set of scale / zero-point initializers.

Activations are rounded half to even: ONNX QuantizeLinear has no other rounding. Parameters are
quantized here, in numpy, with the plan's rounding mode.

Errors: ``E450`` tied tensors with different encodings, ``E451`` an encoding that does not fit
its tensor, ``E452`` an opset that cannot be used, ``E453`` the result fails ``onnx.checker``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import QuantspecError
from .encoding import Encoding
from .quantize import fake_quantize, quantize
from .rounding import canonical_mode, round_array

if TYPE_CHECKING:
    import onnx

    from ..compiler.plan import Entry, Plan

TIED_MISMATCH = "E450"
BAD_ENCODING = "E451"
BAD_OPSET = "E452"
CHECK_FAILED = "E453"

MIN_OPSET = 10  # QuantizeLinear / DequantizeLinear
AXIS_OPSET = 13  # per-channel axis attribute
HALF_OPSET = 19  # float16 inputs and scales
WIDE_OPSET = 21  # int16 / uint16 / int4 / uint4
CONTRIB_DOMAIN = "com.microsoft"

# TensorProto element types (onnx.TensorProto values, spelled out so importing is cheap).
_FLOAT, _UINT8, _INT8, _UINT16, _INT16, _INT32, _FLOAT16 = 1, 2, 3, 4, 5, 6, 10
_UINT4, _INT4 = 21, 22
_INT_RANGE = {
    _INT4: (-8, 7), _UINT4: (0, 15), _INT8: (-128, 127), _UINT8: (0, 255),
    _INT16: (-32768, 32767), _UINT16: (0, 65535), _INT32: (-(2**31), 2**31 - 1),
}
_NP_TYPE = {_INT4: np.int8, _UINT4: np.uint8, _INT8: np.int8, _UINT8: np.uint8,
            _INT16: np.int16, _UINT16: np.uint16, _INT32: np.int32}
_TYPE_NAMES = {_INT4: ("int4", 4), _UINT4: ("uint4", 4), _INT8: ("int8", 8), _UINT8: ("uint8", 8),
               _INT16: ("int16", 16), _UINT16: ("uint16", 16), _INT32: ("int32", 32)}
_INT_CLIP_TYPES = (_INT8, _UINT8)  # onnxruntime's Clip has kernels for these integer types
_SCALE_TYPES = {_FLOAT: np.float32, _FLOAT16: np.float16}


def _error(code: str, message: str, hint: str = "") -> QuantspecError:
    return QuantspecError(code, message, hint=hint)


# -- how one encoding is stored ------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Storage:
    """How an encoding appears in the graph.

    Attributes:
        kind: ``"qdq"`` (integer Q/DQ), ``"cast"`` (float16 round trip), ``"emulate"`` (float
            ops with QuantizeLinear's arithmetic) or ``"none"`` (float32: nothing to do).
        encoding: the encoding with the storage signedness actually used.
        elem_type: ONNX element type of the stored integers (``qdq``).
        qmin, qmax: stored integer range of the grid.
        clip: ``""`` (the grid fills the type), ``"int"`` (Clip between Q and DQ) or ``"float"``
            (clamp to the grid's end points after DQ).
        domain: ``""`` or ``"com.microsoft"`` for the Q/DQ nodes.
    """

    kind: str
    encoding: Encoding
    elem_type: int = 0
    qmin: int = 0
    qmax: int = 0
    clip: str = ""
    domain: str = ""

    @property
    def type_name(self) -> str:
        """``int8``, ``uint16``, ``int4``, ``int32``, ``float16``... for reports."""
        if self.kind == "cast":
            return "float16"
        if self.kind == "none":
            return "float32"
        if self.kind == "emulate":
            return f"emulated {'' if self.encoding.signed else 'u'}int{self.encoding.bits}"
        name, width = _TYPE_NAMES[self.elem_type]
        bits = self.encoding.bits
        return name if bits == width else f"{name}[{bits}-bit]"


def storage_signed(enc: Encoding) -> bool:
    """Signed storage for ``enc``: its ``signed`` flag, but unsigned for an unsigned-symmetric
    grid whose offsets are all 0 (aimet.md B.9: the grid is ``[0, 2^b - 1]``)."""
    if enc.symmetric and enc.unsigned and bool(np.all(enc.offset == 0)):
        return False
    return bool(enc.signed)


def storage_for(enc: Encoding, opset: int, *, param: bool = False,
                contrib: bool = False) -> Storage:
    """Choose the ONNX type and the range clamp that hold ``enc`` (see the module docstring).

    Args:
        enc: the encoding.
        opset: the default-domain opset of the model the nodes go into.
        param: the tensor is an initializer stored as integers (int32 is then available).
        contrib: 16-bit types may use ``com.microsoft`` Q/DQ below opset 21.

    Example:
        >>> from quantspec.runtime import encoding_from_range
        >>> storage_for(encoding_from_range(-1, 1, 8, symmetric=True), 17).type_name
        'int8'
        >>> s = storage_for(encoding_from_range(0, 1, 6), 17)
        >>> s.type_name, s.qmin, s.qmax, s.clip
        ('uint8[6-bit]', 0, 63, 'int')
    """
    if enc.dtype == "float":
        return Storage("cast" if enc.bits == 16 else "none", enc)
    signed = storage_signed(enc)
    if signed != enc.signed:
        enc = enc.replace(signed=signed)
    qmin, qmax = enc.qmin, enc.qmax
    wide = opset >= WIDE_OPSET
    domain = ""
    if enc.bits == 4 and wide:
        elem = _INT4 if signed else _UINT4
    elif enc.bits <= 8:
        elem = _INT8 if signed else _UINT8
    elif enc.bits <= 16 and (wide or contrib):
        elem = _INT16 if signed else _UINT16
        domain = "" if wide else CONTRIB_DOMAIN
    elif param and qmin >= _INT_RANGE[_INT32][0] and qmax <= _INT_RANGE[_INT32][1]:
        elem = _INT32  # DequantizeLinear reads int32 at every opset (the int32 bias layout)
    else:
        return Storage("emulate", enc, qmin=qmin, qmax=qmax)
    lo, hi = _INT_RANGE[elem]
    clip = ""
    if (qmin, qmax) != (lo, hi) and not (param and elem == _INT32):
        clip = "int" if elem in _INT_CLIP_TYPES else "float"
    return Storage("qdq", enc, elem, qmin, qmax, clip, domain)


# -- result --------------------------------------------------------------------------------------
@dataclass
class QdqModel:
    """The QDQ model and where each quantized tensor ended up.

    Attributes:
        model: the QDQ ``ModelProto``.
        dequantized: plan tensor -> the value its consumers read now (the fake-quantized tensor).
        source: plan tensor -> the value its quantizer reads (the unquantized tensor in the QDQ
            graph; for a parameter stored as integers, the original initializer name, which is no
            longer in the graph).
        storage: plan tensor -> :class:`Storage`.
        skipped: plan tensor -> why it has no quantizer (no encoding, not in the model...).
        notes: things the graph cannot say exactly (rounding modes other than half-even).
        opset: default-domain opset of the result; ``contrib``: com.microsoft Q/DQ were used.
    """

    model: onnx.ModelProto
    dequantized: dict[str, str] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    storage: dict[str, Storage] = field(default_factory=dict)
    params: set[str] = field(default_factory=set)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    opset: int = 0
    contrib: bool = False

    @property
    def encodings(self) -> dict[str, Encoding]:
        """The encodings as stored (signedness as in the graph), by plan tensor."""
        return {name: s.encoding for name, s in self.storage.items()}


# -- model inspection ----------------------------------------------------------------------------
def model_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset the model imports (1 when it imports none)."""
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 1


def _tensor_types(model: onnx.ModelProto) -> dict[str, tuple[int, list[Any] | None]]:
    """Element type and shape (dims, ``None`` per unknown dim) of every tensor that has one."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # over 2 GiB or unknown ops: declared types only
        inferred = model
    g = inferred.graph
    out: dict[str, tuple[int, list[Any] | None]] = {}
    for vi in (*g.input, *g.output, *g.value_info):
        tt = vi.type.tensor_type
        shape = None
        if tt.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if tt.elem_type:
            out.setdefault(vi.name, (tt.elem_type, shape))
    for t in model.graph.initializer:
        out[t.name] = (t.data_type, list(t.dims))
    return out


def _upgrade(model: onnx.ModelProto, target: int) -> onnx.ModelProto | None:
    """The model converted to ``target`` opset, or None when the converter cannot."""
    import onnx
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, target)
        onnx.checker.check_model(converted)
    except Exception:
        return None
    return converted


# -- the builder ---------------------------------------------------------------------------------
def build_qdq_model(model: onnx.ModelProto, plan: Plan, encodings: Mapping[str, Encoding], *,
                    opset: int | None = None) -> onnx.ModelProto:
    """The QDQ model of ``plan`` with ``encodings`` (see :func:`build_qdq` for the details).

    Example:
        >>> import numpy as np
        >>> from onnx import TensorProto, helper
        >>> from quantspec.compiler import Entry, Plan
        >>> from quantspec.runtime import encoding_from_range
        >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
        >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        >>> e = Entry("y", "activation", "", "relu", [], False, True, [4], {"quantized": True})
        >>> plan = Plan([e], "p", "m", [], [], {}, {}, ["x"], ["y"])
        >>> q = build_qdq_model(m, plan, {"y": encoding_from_range(0.0, 1.0, 8)})
        >>> [n.op_type for n in q.graph.node], q.graph.output[0].name
        (['Relu', 'QuantizeLinear', 'DequantizeLinear'], 'y')
    """
    return build_qdq(model, plan, encodings, opset=opset).model


def build_qdq(
    model: onnx.ModelProto,
    plan: Plan,
    encodings: Mapping[str, Encoding],
    *,
    opset: int | None = None,
    param_storage: str = "int",
    check: bool = True,
) -> QdqModel:
    """Insert Q/DQ for every quantized tensor of ``plan`` that has an encoding.

    Args:
        model: the float model with its weights (not modified).
        plan: the compiled plan (:func:`quantspec.compiler.compile_profile`).
        encodings: tensor name -> encoding (a calibration result, or read from a file). Tied
            tensors should map to equal encodings (the same object after calibration).
        opset: default-domain opset of the result; ``None`` picks the lowest that holds every
            encoding and is not older than the model's.
        param_storage: ``"int"`` (integer initializers + DequantizeLinear) or ``"float"``
            (float initializers + QuantizeLinear + DequantizeLinear).
        check: run ``onnx.checker.check_model(full_check=True)`` on the result (E453).

    Returns:
        a :class:`QdqModel`.
    """
    if param_storage not in ("int", "float"):
        raise _error(BAD_ENCODING, f"unknown param_storage {param_storage!r}",
                     "use 'int' or 'float'")
    work, skipped = _work_items(model, plan, encodings)
    _check_ties(work)
    types = _tensor_types(model)
    half = any(enc.dtype == "int" and types.get(e.name, (_FLOAT,))[0] == _FLOAT16
               for e, enc, _ in work)
    target, contrib, model = _choose_opset(model, work, opset, half)
    builder = _Builder(model, target, contrib, param_storage, types)
    result = QdqModel(model, skipped=skipped, opset=target, contrib=contrib)
    for entry, enc, key in work:
        builder.add(entry, enc, key, result)
    result.model = builder.finish()
    if check:
        _check(result.model)
    return result


def _work_items(model: onnx.ModelProto, plan: Plan, encodings: Mapping[str, Encoding]
                ) -> tuple[list[tuple[Entry, Encoding, str]], dict[str, str]]:
    """(entry, encoding, sharing key) per tensor to quantize, and the skipped ones."""
    g = model.graph
    known = {t.name for t in g.initializer} | {i.name for i in g.input} | \
        {o for n in g.node for o in n.output if o}
    work: list[tuple[Entry, Encoding, str]] = []
    skipped: dict[str, str] = {}
    by_object: dict[int, str] = {}  # one Encoding object given for several tensors: one set
    for entry in plan.entries:
        if not entry.get("quantized") or entry.reason:
            continue
        enc = encodings.get(entry.name)
        if enc is None:
            skipped[entry.name] = "no encoding"
        elif entry.name not in known:
            skipped[entry.name] = "not in the model"
        else:
            group = sorted([entry.name, *entry.shared_with])
            work.append((entry, enc, by_object.setdefault(id(enc), group[0])))
    return work, skipped


def _check_ties(work: list[tuple[Entry, Encoding, str]]) -> None:
    """Tensors tied in the plan must come with equal encodings (E450)."""
    first: dict[str, tuple[str, Encoding]] = {}
    for entry, enc, _ in work:
        key = min([entry.name, *entry.shared_with])
        if key not in first:
            first[key] = (entry.name, enc)
            continue
        other, ref = first[key]
        if enc is not ref and enc != ref:
            raise _error(TIED_MISMATCH,
                         f"tensors '{other}' and '{entry.name}' share one encoding in the plan "
                         "but have different encodings",
                         "calibrate tied tensors together, or give them one encoding in the "
                         "encodings file")


def _choose_opset(model: onnx.ModelProto, work: list[tuple[Entry, Encoding, str]],
                  requested: int | None, half: bool = False) -> tuple[int, bool, onnx.ModelProto]:
    """(opset, use com.microsoft for 16-bit types, model at that opset).

    ``half``: a float16 tensor gets integer Q/DQ, which needs opset 19 (float16 scales).
    """
    import onnx

    current = model_opset(model)
    ints = [enc for _, enc, _ in work if enc.dtype == "int"]
    need = MIN_OPSET
    if any(e.per_channel and e.channels > 1 for e in ints):
        need = AXIS_OPSET
    if half:
        need = HALF_OPSET
    wide = any(8 < e.bits <= 16 for e in ints)
    if requested is not None:
        if requested < max(current, need):
            raise _error(BAD_OPSET,
                         f"opset {requested} is below what the model and the encodings need "
                         f"({max(current, need)})",
                         "leave the opset unset to let it be chosen")
        target = requested
    else:
        target = max(current, need, WIDE_OPSET if wide else 0)
    if target == current:
        return target, False, model
    upgraded = _upgrade(model, target)
    if upgraded is not None:
        min_ir = onnx.helper.find_min_ir_version_for(
            [onnx.helper.make_opsetid("", target)], ignore_unknown=True)
        upgraded.ir_version = max(upgraded.ir_version, min_ir)
        return target, False, upgraded
    if requested is None and wide and current >= need:
        return current, True, model  # onnxruntime's com.microsoft Q/DQ hold 16-bit types
    raise _error(BAD_OPSET,
                 f"cannot convert the model from opset {current} to {target}",
                 "convert the model with onnx.version_converter (or re-export it) at opset "
                 f"{target} first")


def _check(model: onnx.ModelProto) -> None:
    import onnx

    if model.ByteSize() >= 2**31:  # the in-memory checker refuses protobufs over 2 GiB
        return
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise _error(CHECK_FAILED, f"the QDQ model fails onnx.checker: {exc}",
                     "please report this with the model and the encodings") from None


class _Builder:
    """Collects new nodes and initializers, rewires consumers, then assembles the graph."""

    def __init__(self, model: onnx.ModelProto, opset: int, contrib: bool,
                 param_storage: str, types: dict[str, tuple[int, list[Any] | None]]) -> None:
        import onnx

        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        self.g = self.model.graph
        self.opset = opset
        self.contrib = contrib
        self.param_storage = param_storage
        self.types = types
        self.inits = {t.name: t for t in self.g.initializer}
        self.inputs = {i.name for i in self.g.input}
        self.outputs = {o.name for o in self.g.output}
        self.producer = {o: i for i, n in enumerate(self.g.node) for o in n.output if o}
        self.uses: dict[str, list[tuple[Any, int]]] = {}  # tensor -> (node, input slot)
        for n in self.g.node:
            for i, name in enumerate(n.input):
                if name:
                    self.uses.setdefault(name, []).append((n, i))
        self.with_subgraphs = [n for n in self.g.node
                               if any(a.HasField("g") or len(a.graphs) for a in n.attribute)]
        self.used = _all_names(self.g)
        self.front: list[onnx.NodeProto] = []
        self.after: dict[int, list[onnx.NodeProto]] = {}
        self.new_inits: list[onnx.TensorProto] = []
        self.removed: set[str] = set()
        self.shared: dict[tuple[Any, ...], str] = {}
        self.domains: set[str] = set()

    # -- names and constants ---------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def const(self, key: tuple[Any, ...], base: str, value: np.ndarray,
              elem: int | None = None) -> str:
        """An initializer, shared by every quantizer asking with the same key."""
        name = self.shared.get(key)
        if name is None:
            from onnx import helper, numpy_helper

            name = self.unique(base)
            if elem in (_INT4, _UINT4):
                t = helper.make_tensor(name, elem, list(value.shape),
                                       value.astype(np.int64).reshape(-1).tolist())
            else:
                t = numpy_helper.from_array(np.array(value, copy=True, order="C"), name)
            self.new_inits.append(t)
            self.shared[key] = name
        return name

    def node(self, op: str, inputs: list[str], output_base: str, domain: str = "",
             **attrs: Any) -> tuple[Any, str]:
        from onnx import helper

        out = self.unique(output_base)
        n = helper.make_node(op, inputs, [out], name=self.unique(f"{output_base}_{op}"),
                             domain=domain or None, **attrs)
        if domain:
            self.domains.add(domain)
        return n, out

    # -- one tensor ------------------------------------------------------------------------------
    def add(self, entry: Entry, enc: Encoding, key: str, result: QdqModel) -> None:
        name = entry.name
        elem, shape = self.types.get(name, (_FLOAT, None))
        if elem not in _SCALE_TYPES:
            result.skipped[name] = f"element type {elem} is not float or float16"
            return
        if elem == _FLOAT16 and enc.dtype == "int":
            # A float16 tensor's Q/DQ take a float16 scale: the grid is that scale's.
            enc = Encoding.from_scale_offset(
                enc.scale.astype(np.float16).astype(np.float64), enc.offset, enc.bits,
                symmetric=enc.symmetric, strict=enc.strict, unsigned=enc.unsigned,
                signed=enc.signed, axis=enc.axis, scale_type=enc.scale_type)
        is_param = name in self.inits and name not in self.inputs
        storage = storage_for(enc, self.opset, param=is_param and self.param_storage == "int",
                              contrib=self.contrib)
        if storage.kind == "none" or (storage.kind == "cast" and elem == _FLOAT16):
            result.skipped[name] = f"{storage.type_name} encoding of a " \
                f"{'float16' if elem == _FLOAT16 else 'float32'} tensor: nothing to simulate"
            return
        axis = self._axis(name, storage.encoding, shape)
        rounding = str(entry.get("rounding") or "half_even")
        if is_param and self.param_storage == "int":
            dq = self._param(name, storage, axis, elem, key, rounding)
            result.params.add(name)
            result.source[name] = name
        else:
            if rounding not in ("half_even", "nearest") and storage.kind in ("qdq", "emulate"):
                result.notes.append(f"'{name}': rounding {rounding} is simulated as half_even "
                                    "(ONNX QuantizeLinear rounds half to even)")
            src, dq = self._activation(name, storage, axis, elem, key, shape)
            result.source[name] = src
            if is_param:
                result.params.add(name)
        result.dequantized[name] = dq
        result.storage[name] = storage

    def _axis(self, name: str, enc: Encoding, shape: list[Any] | None) -> int | None:
        if enc.dtype != "int" or not enc.per_channel or enc.channels == 1:
            return None
        axis = int(enc.axis)  # type: ignore[arg-type]
        if shape is None:
            return axis
        rank = len(shape)
        norm = axis + rank if axis < 0 else axis
        if not 0 <= norm < rank:
            raise _error(BAD_ENCODING,
                         f"tensor '{name}': per-channel axis {axis} is out of range for rank "
                         f"{rank}", "check the encoding's axis")
        if shape[norm] not in (None, 0, enc.channels):
            raise _error(BAD_ENCODING,
                         f"tensor '{name}' has {shape[norm]} channels on axis {axis} but its "
                         f"encoding has {enc.channels}",
                         "the encoding belongs to another tensor or another axis")
        return norm

    def _scale_zp(self, key: str, base: str, storage: Storage, elem: int) -> tuple[str, str]:
        enc = storage.encoding
        per_channel = enc.channels > 1
        scale = enc.scale.astype(_SCALE_TYPES[elem])
        zp = enc.zero_point.astype(_NP_TYPE[storage.elem_type])
        if not per_channel:
            scale, zp = scale.reshape(()), zp.reshape(())
        s = self.const((key, "scale", elem), f"{base}_scale", scale)
        z = self.const((key, "zero_point", storage.elem_type), f"{base}_zero_point", zp,
                       storage.elem_type)
        return s, z

    def _param(self, name: str, storage: Storage, axis: int | None, elem: int, key: str,
               rounding: str) -> str:
        from onnx import numpy_helper

        w = numpy_helper.to_array(self.inits[name])
        enc = storage.encoding
        if storage.kind == "cast":
            stored = self.const((name, "fp16"), f"{name}_float16", w.astype(np.float16))
            n, dq = self.node("Cast", [stored], f"{name}_dequantized", to=elem)
            self.front.append(n)
        elif storage.kind == "emulate":
            fq = fake_quantize(w, enc, rounding=rounding).astype(w.dtype)
            dq = self.const((name, "fq"), f"{name}_fakequant", fq)
        else:
            q = quantize_param(w, enc, rounding, axis).astype(_NP_TYPE[storage.elem_type])
            stored = self.const((name, "q"), f"{name}_quantized", q, storage.elem_type)
            s, z = self._scale_zp(key, name, storage, elem)
            attrs = {} if axis is None else {"axis": axis}
            n, dq = self.node("DequantizeLinear", [stored, s, z], f"{name}_dequantized",
                              storage.domain, **attrs)
            self.front.append(n)
        self._rewire(name, dq)
        if name not in self.outputs:
            self.removed.add(name)
        return dq

    def _activation(self, name: str, storage: Storage, axis: int | None, elem: int, key: str,
                    shape: list[Any] | None) -> tuple[str, str]:
        """Insert the quantizer after the producer; returns (source, dequantized) names."""
        produced = name in self.producer
        if name in self.outputs and produced:
            # Graph outputs keep their names: the producer writes <name>_float instead.
            src = self.unique(f"{name}_float")
            node = self.g.node[self.producer[name]]
            for i, o in enumerate(node.output):
                if o == name:
                    node.output[i] = src
            for vi in self.g.value_info:
                if vi.name == name:
                    vi.name = src
            final: str | None = name
        else:
            src, final = name, None
        nodes, dq = self._chain(src, storage, axis, elem, key, shape, final)
        if final is None:
            self._rewire(name, dq)
        where = self.producer.get(name)
        if where is None:
            self.front.extend(nodes)
        else:
            self.after.setdefault(where, []).extend(nodes)
        return src, dq

    def _chain(self, src: str, storage: Storage, axis: int | None, elem: int, key: str,
               shape: list[Any] | None, final: str | None) -> tuple[list[Any], str]:
        """The nodes from ``src`` to the dequantized value (named ``final`` if given)."""
        base = final or src
        nodes: list[Any] = []
        steps: list[tuple[str, list[str], dict[str, Any]]] = []
        enc = storage.encoding
        attrs = {} if axis is None else {"axis": axis}
        if storage.kind == "cast":
            steps = [("Cast", [], {"to": _FLOAT16}), ("Cast", [], {"to": elem})]
        elif storage.kind == "emulate":
            s = self._broadcast(key, "scale", base, enc.scale, enc, axis, shape, elem)
            lo = self._broadcast(key, "lo", base, enc.offset, enc, axis, shape, elem)
            hi = self._broadcast(key, "hi", base, enc.offset + enc.num_steps, enc, axis, shape,
                                 elem)
            steps = [("Div", [s], {}), ("Round", [], {}), ("Max", [lo], {}), ("Min", [hi], {}),
                     ("Mul", [s], {})]
        else:
            s, z = self._scale_zp(key, base, storage, elem)
            steps = [("QuantizeLinear", [s, z], attrs)]
            if storage.clip == "int":
                lo = self.const((key, "qmin", storage.elem_type), f"{base}_qmin",
                                np.array(storage.qmin, _NP_TYPE[storage.elem_type]))
                hi = self.const((key, "qmax", storage.elem_type), f"{base}_qmax",
                                np.array(storage.qmax, _NP_TYPE[storage.elem_type]))
                steps.append(("Clip", [lo, hi], {}))
            steps.append(("DequantizeLinear", [s, z], attrs))
            if storage.clip == "float":
                steps += self._float_clamp(key, base, storage, axis, shape, elem)
        cur = src
        for i, (op, extra, kw) in enumerate(steps):
            last = i == len(steps) - 1
            domain = storage.domain if op in ("QuantizeLinear", "DequantizeLinear") else ""
            suffix = {"QuantizeLinear": "quantized", "DequantizeLinear": "dequantized"}.get(
                op, op.lower())
            n, out = self.node(op, [cur, *extra], f"{base}_{suffix}", domain, **kw)
            if last and final is not None:
                self.used.discard(out)
                n.output[0] = final
                out = final
            nodes.append(n)
            cur = out
        return nodes, cur

    def _float_clamp(self, key: str, base: str, storage: Storage, axis: int | None,
                     shape: list[Any] | None, elem: int
                     ) -> list[tuple[str, list[str], dict[str, Any]]]:
        """Clamp the dequantized values to the grid's end points, computed as DQ computes them
        (``float(q - zero_point) * scale``), so the clamp is exact."""
        enc = storage.encoding
        st = _SCALE_TYPES[elem]
        scale = enc.scale.astype(st)
        zp = enc.zero_point
        lo = ((storage.qmin - zp).astype(st) * scale).astype(st)
        hi = ((storage.qmax - zp).astype(st) * scale).astype(st)
        if enc.channels == 1:
            a = self.const((key, "fmin", elem), f"{base}_min", lo.reshape(()))
            b = self.const((key, "fmax", elem), f"{base}_max", hi.reshape(()))
            return [("Clip", [a, b], {})]
        a = self._broadcast(key, "fmin", base, lo, enc, axis, shape, elem)
        b = self._broadcast(key, "fmax", base, hi, enc, axis, shape, elem)
        return [("Max", [a], {}), ("Min", [b], {})]

    def _broadcast(self, key: str, what: str, base: str, values: np.ndarray, enc: Encoding,
                   axis: int | None, shape: list[Any] | None, elem: int) -> str:
        """A per-channel constant shaped to broadcast along ``axis`` (a scalar per tensor)."""
        arr = np.asarray(values).astype(_SCALE_TYPES[elem])
        if enc.channels == 1 or axis is None:
            return self.const((key, what, elem), f"{base}_{what}", arr.reshape(()))
        if shape is None:
            raise _error(BAD_ENCODING,
                         f"tensor '{base}': a per-channel grid this graph cannot store needs "
                         "the tensor's rank, which shape inference did not find",
                         "give the model value_info for the tensor, or use a per-tensor grid")
        dims = [1] * (len(shape) - axis)
        dims[0] = enc.channels
        return self.const((key, what, elem, len(dims)), f"{base}_{what}", arr.reshape(dims))

    def _rewire(self, old: str, new: str) -> None:
        for node, i in self.uses.pop(old, []):
            node.input[i] = new
        for node in self.with_subgraphs:
            _rename_in_subgraphs(node, old, new)

    # -- assembly --------------------------------------------------------------------------------
    def finish(self) -> onnx.ModelProto:
        from onnx import helper

        nodes = list(self.front)
        for i, n in enumerate(self.g.node):
            nodes.append(n)
            nodes.extend(self.after.get(i, []))
        kept = [t for t in self.g.initializer if t.name not in self.removed]
        del self.g.node[:]
        self.g.node.extend(nodes)
        del self.g.initializer[:]
        self.g.initializer.extend(kept + self.new_inits)
        for imp in self.model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                imp.version = max(imp.version, self.opset)
        have = {imp.domain for imp in self.model.opset_import}
        for domain in sorted(self.domains - have):
            self.model.opset_import.append(helper.make_opsetid(domain, 1))
        if any(t.data_type in (_INT4, _UINT4) for t in self.new_inits):
            self.model.ir_version = max(self.model.ir_version, 10)
        return self.model


def quantize_param(w: np.ndarray, enc: Encoding, rounding: str, axis: int | None) -> np.ndarray:
    """Stored integers of a parameter (int64).

    Grids up to 24 bits use the float32 kernel (:func:`~.quantize.quantize`, what QuantizeLinear
    computes). Wider grids (int32 biases) are computed in float64: float32 cannot hold their
    integers, and ``2^31 - 1`` would round to ``2^31`` and wrap around in the int32 cast.
    """
    if enc.bits <= 24:
        return quantize(w, enc, rounding=rounding).astype(np.int64)
    shape = [1] * w.ndim
    if axis is not None and enc.channels > 1:
        shape[axis] = enc.channels
    col = (lambda a: a.reshape(shape)) if w.ndim else (lambda a: a.reshape(()))
    c = round_array(w.astype(np.float64) / col(enc.scale), canonical_mode(rounding))
    c = np.clip(c, col(enc.offset), col(enc.offset + enc.num_steps))
    return (c + col(enc.zero_point.astype(np.float64))).astype(np.int64)


def _all_names(g: Any) -> set[str]:
    names = {t.name for t in g.initializer} | {v.name for v in (*g.input, *g.output,
                                                                  *g.value_info)}
    for n in g.node:
        names.update(n.input)
        names.update(n.output)
        if n.name:
            names.add(n.name)
    return names


def _rename_in_subgraphs(node: Any, old: str, new: str) -> None:
    """Rename outer-scope uses of ``old`` inside If/Loop/Scan bodies (unless shadowed)."""
    for attr in node.attribute:
        graphs: Iterable[Any] = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for sub in graphs:
            local = {t.name for t in sub.initializer} | {i.name for i in sub.input} | \
                {o for n in sub.node for o in n.output}
            if old in local:
                continue
            for n in sub.node:
                for i, name in enumerate(n.input):
                    if name == old:
                        n.input[i] = new
                _rename_in_subgraphs(n, old, new)

