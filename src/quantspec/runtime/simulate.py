"""Simulation: run the float and the QDQ model on the same data and measure the damage.

:func:`simulate` builds (or takes) the QDQ model of a plan (:mod:`.qdq`), runs it and the float
model batch by batch in onnxruntime (:class:`~.execute.Executor`, onnx's reference evaluator as
fallback) and reports, per tensor:

* ``sqnr_db``: the quantized graph's tensor against the float graph's, so errors of every
  quantizer upstream count (graph outputs too, quantized or not);
* ``quantizer_sqnr_db``: the tensor's own quantizer alone: its dequantized value against the value
  it read, in the QDQ graph;
* for parameters, the SQNR of the quantized weight against the float weight;
* ``check``: the numpy kernel (:func:`~.quantize.fake_quantize`, ONNX semantics) applied to the
  value the quantizer read, compared with what onnxruntime's Q/DQ nodes produced. The two must
  agree to the bit; a mismatch means a zero point, axis or storage type went wrong in the graph.

Sums are streamed (:class:`~.sqnr.Sqnr`), so memory does not depend on the number of batches.

Errors ``E460``-``E469``: ``E460`` no data, ``E461`` a tensor the QDQ graph lacks (internal).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import QuantspecError
from .encoding import Encoding
from .execute import Executor
from .progress import progress as progress_bar
from .qdq import QdqModel, Storage, build_qdq
from .quantize import fake_quantize
from .sqnr import Sqnr

if TYPE_CHECKING:
    import onnx

    from ..compiler.plan import Plan

NO_DATA = "E460"
MISSING_TENSOR = "E461"
REPORT_FORMAT = "quantspec-simulation/1"


# -- report --------------------------------------------------------------------------------------
@dataclass
class TensorReport:
    """One row of the report (``None``: not measured for this tensor)."""

    name: str
    kind: str
    storage: str = ""
    sqnr_db: float | None = None
    quantizer_sqnr_db: float | None = None
    max_abs_error: float | None = None
    check: str = ""  # "ok", "mismatch" or "" (not checked)
    check_max_diff: float | None = None
    check_mismatches: int = 0
    is_output: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "storage": self.storage or None,
            "is_output": self.is_output, "sqnr_db": _num(self.sqnr_db),
            "quantizer_sqnr_db": _num(self.quantizer_sqnr_db),
            "max_abs_error": _num(self.max_abs_error), "check": self.check or None,
            "check_max_diff": _num(self.check_max_diff),
            "check_mismatches": self.check_mismatches,
        }


def _num(v: float | None) -> Any:
    if v is None:
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return round(float(v), 6)


@dataclass
class SimulationReport:
    """Per-tensor SQNR and checks of one simulation run (:func:`simulate`)."""

    tensors: list[TensorReport]
    samples: int = 0
    batches: int = 0
    backends: dict[str, str] = field(default_factory=dict)
    opset: int = 0
    contrib: bool = False
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model: str = ""
    profile: str = ""

    @property
    def ok(self) -> bool:
        """Every checked tensor agrees between numpy and the QDQ graph."""
        return all(t.check != "mismatch" for t in self.tensors)

    def row(self, name: str) -> TensorReport:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        acts = [t.sqnr_db for t in self.tensors
                if t.sqnr_db is not None and t.kind not in _PARAM_KINDS and t.storage]
        params = [t.sqnr_db for t in self.tensors
                  if t.sqnr_db is not None and t.kind in _PARAM_KINDS]
        return {
            "quantized_tensors": sum(1 for t in self.tensors if t.storage),
            "min_activation_sqnr_db": _num(min(acts)) if acts else None,
            "min_param_sqnr_db": _num(min(params)) if params else None,
            "outputs_sqnr_db": {t.name: _num(t.sqnr_db) for t in self.tensors if t.is_output},
            "checked": sum(1 for t in self.tensors if t.check),
            "check_mismatches": sum(1 for t in self.tensors if t.check == "mismatch"),
            "skipped": len(self.skipped),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT, "model": self.model, "profile": self.profile,
            "samples": self.samples, "batches": self.batches, "backends": self.backends,
            "qdq": {"opset": self.opset, "contrib_ops": self.contrib, "skipped": self.skipped,
                    "notes": self.notes},
            "summary": self.summary(),
            "tensors": [t.to_json() for t in self.tensors],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, allow_nan=False) + "\n"

    def to_text(self) -> str:
        """A fixed-width table plus a summary, for the terminal."""
        head = ("tensor", "kind", "storage", "SQNR dB", "own dB", "max |err|", "numpy=onnx")
        rows = [head]
        for t in self.tensors:
            check = t.check
            if t.check == "mismatch":
                check = f"MISMATCH ({t.check_mismatches}, {t.check_max_diff:.3g})"
            rows.append((
                t.name + (" (output)" if t.is_output else ""), t.kind, t.storage or "-",
                _fmt(t.sqnr_db), _fmt(t.quantizer_sqnr_db), _fmt(t.max_abs_error, "{:.4g}"),
                check or "-",
            ))
        widths = [min(48, max(len(r[i]) for r in rows)) for i in range(len(head))]
        right = {3, 4, 5}
        lines = []
        for r in rows:
            cells = [c.rjust(w) if i in right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(r, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
        s = self.summary()
        lines.append("")
        lines.append(f"{self.samples} sample(s) in {self.batches} batch(es); float model on "
                     f"{self.backends.get('float', '?')}, QDQ model on "
                     f"{self.backends.get('qdq', '?')} (opset {self.opset}"
                     f"{', com.microsoft Q/DQ' if self.contrib else ''})")
        lines.append(f"{s['quantized_tensors']} quantized tensor(s); lowest activation SQNR "
                     f"{_fmt(s['min_activation_sqnr_db'])} dB; numpy/ONNX checks: "
                     f"{s['checked'] - s['check_mismatches']}/{s['checked']} agree")
        for name, why in self.skipped.items():
            lines.append(f"skipped {name}: {why}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines) + "\n"


def _fmt(v: Any, spec: str = "{:.2f}") -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return spec.format(v)


_PARAM_KINDS = ("weight", "bias", "param")


# -- simulation ----------------------------------------------------------------------------------
class _Row:
    """Accumulators of one activation / output."""

    def __init__(self) -> None:
        self.sqnr = Sqnr()
        self.own = Sqnr()
        self.mismatches = 0
        self.max_diff = 0.0
        self.checked = False


def simulate(
    model: onnx.ModelProto,
    plan: Plan,
    encodings: Mapping[str, Encoding] | None,
    data: Any,
    *,
    qdq: QdqModel | None = None,
    opset: int | None = None,
    batch_size: int = 1,
    max_batches: int | None = None,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> SimulationReport:
    """Run the float and QDQ models on ``data`` and report per-tensor SQNR.

    Args:
        model: the float model with its weights.
        plan: its compiled plan.
        encodings: tensor -> encoding; may be ``None`` when ``qdq`` is given.
        data: a data path (``.npz``, ``.npy``, a directory of ``.npy``, a QNN input list), a
            :class:`~.data.DataSource`, one feed dict, or an iterable of feed dicts (what
            :func:`~.calibrate.feeds_from` accepts).
        qdq: a QDQ model built earlier with :func:`~.qdq.build_qdq` (else built here).
        opset: passed to :func:`~.qdq.build_qdq`.
        batch_size, max_batches: batching of the samples (``max_batches`` caps the run).
        providers, threads: onnxruntime settings.
        progress: show a progress bar (tqdm) on stderr.

    Returns:
        a :class:`SimulationReport`.
    """
    from .calibrate import feeds_from

    if qdq is None:
        if encodings is None:
            raise QuantspecError(NO_DATA, "simulate needs encodings or a QDQ model")
        qdq = build_qdq(model, plan, encodings, opset=opset)
    acts = [t for t in qdq.dequantized if t not in qdq.params]
    outputs = [o.name for o in model.graph.output]
    qdq_names = set(_produced(qdq.model))
    float_ex = Executor(model, outputs=[t for t in acts if t not in outputs],
                        providers=providers, threads=threads)
    want = list(dict.fromkeys(
        [qdq.source[t] for t in acts] + [qdq.dequantized[t] for t in acts]))
    for name in want:
        if name not in qdq_names:
            raise QuantspecError(MISSING_TENSOR, f"'{name}' is not in the QDQ model",
                                 hint="pass the QdqModel built for this model and plan")
    qdq_ex = simulation_executor(qdq.model, [n for n in want if n not in outputs],
                                 providers=providers, threads=threads)
    rows = {t: _Row() for t in [*acts, *outputs]}
    samples = batches = 0
    feeds, total = feeds_from(data, model, batch_size)
    if max_batches is not None and total is not None:
        total = min(total, max_batches)
    for feed in progress_bar(feeds, total=total, desc="simulate", enabled=progress):
        if max_batches is not None and batches >= max_batches:
            break
        feed = {k: np.asarray(v) for k, v in feed.items()}
        ref = float_ex.run(feed)
        sim = qdq_ex.run(feed)
        batches += 1
        samples += _batch_len(feed)
        for t in acts:
            row = rows[t]
            dq = sim[qdq.dequantized[t]]
            src = sim[qdq.source[t]]
            row.sqnr.update(ref[t], dq)
            row.own.update(src, dq)
            _check(row, src, dq, qdq.storage[t])
        for o in outputs:
            if o not in qdq.dequantized:
                rows[o].sqnr.update(ref[o], sim[o])
    if batches == 0:
        raise QuantspecError(NO_DATA, "simulation got no data",
                             hint="give at least one sample")
    report = SimulationReport(
        [], samples=samples, batches=batches,
        backends={"float": float_ex.backend, "qdq": qdq_ex.backend}, opset=qdq.opset,
        contrib=qdq.contrib, skipped=dict(qdq.skipped), notes=list(qdq.notes),
        model=plan.model, profile=plan.profile)
    params = _param_rows(model, plan, qdq, providers)
    for entry in plan.entries:
        name = entry.name
        if name in params:
            report.tensors.append(params[name])
        elif name in rows:
            report.tensors.append(_act_row(name, entry.kind, rows[name], qdq, name in outputs))
    listed = {t.name for t in report.tensors}
    for o in outputs:
        if o not in listed:
            report.tensors.append(_act_row(o, "activation", rows[o], qdq, True))
    return report


def simulation_executor(model: onnx.ModelProto, outputs: Sequence[str] = (), *,
                        providers: Sequence[str] | None = None,
                        threads: int | None = None) -> Executor:
    """An :class:`~.execute.Executor` for a QDQ model that computes what the graph states.

    onnxruntime's QDQ transformers rewrite a QDQ graph's arithmetic: from the basic level on they
    quantize a float Conv bias to int32 when the Conv reads dequantized inputs, and above it they
    fuse Q/DQ into integer kernels. The session keeps every graph optimization but turns those
    off (``session.disable_quant_qdq``), so Q/DQ run as written and the float ops keep
    onnxruntime's fast kernels (constant DequantizeLinear of weights is folded). The reference
    evaluator remains the fallback.
    """

    class _Simulation(Executor):
        def _ort_session(self, data: bytes) -> Any:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.add_session_config_entry("session.disable_quant_qdq", "1")
            opts.log_severity_level = 3
            if threads:
                opts.intra_op_num_threads = int(threads)
            return ort.InferenceSession(data, sess_options=opts,
                                        providers=list(providers or ["CPUExecutionProvider"]))

    return _Simulation(model, outputs, providers=providers, threads=threads)


def _produced(model: onnx.ModelProto) -> list[str]:
    g = model.graph
    return [o for n in g.node for o in n.output] + [i.name for i in g.input] + \
        [t.name for t in g.initializer]


def _batch_len(feed: Mapping[str, np.ndarray]) -> int:
    first = next(iter(feed.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def _check(row: _Row, src: np.ndarray, dq: np.ndarray, storage: Storage) -> None:
    """numpy fake-quant of the quantizer's input must equal the graph's Q/DQ output."""
    if storage.kind == "none":
        return
    expect = fake_quantize(src, storage.encoding).astype(dq.dtype)
    row.checked = True
    n, worst = mismatches(expect, dq, storage.encoding)
    row.mismatches += n
    row.max_diff = max(row.max_diff, worst)


def mismatches(expect: np.ndarray, got: np.ndarray, enc: Encoding) -> tuple[int, float]:
    """(elements that differ, largest difference) between numpy's and the graph's values.

    Exact for grids up to 24 bits, whose integers float32 holds exactly. Wider grids (int32
    biases) are stored from float64 integers, which float32 arithmetic can only approach: they
    may differ by a float32 rounding (relative 2^-22).
    """
    e = expect.astype(np.float64)
    g = got.astype(np.float64)
    diff = np.abs(e - g)
    tol = 0.0 if enc.dtype != "int" or enc.bits <= 24 else np.abs(e) * 2.0**-22
    bad = (diff > tol) & ~(np.isnan(e) & np.isnan(g))
    n = int(np.count_nonzero(bad))
    return n, float(np.max(diff[bad])) if n else (float(np.nanmax(diff)) if diff.size else 0.0)


def _act_row(name: str, kind: str, row: _Row, qdq: QdqModel, is_output: bool) -> TensorReport:
    storage = qdq.storage.get(name)
    rep = TensorReport(name, kind, _describe(storage) if storage else "", is_output=is_output)
    if row.sqnr.count:
        rep.sqnr_db = row.sqnr.db
        rep.max_abs_error = row.sqnr.max_abs_error
    if row.own.count:
        rep.quantizer_sqnr_db = row.own.db
    if row.checked:
        rep.check = "mismatch" if row.mismatches else "ok"
        rep.check_max_diff = row.max_diff
        rep.check_mismatches = row.mismatches
    return rep


def _describe(storage: Storage) -> str:
    enc = storage.encoding
    text = storage.type_name
    if enc.dtype == "int" and enc.per_channel and enc.channels > 1:
        text += f" per-channel(axis {enc.axis})"
    if enc.dtype == "int" and enc.symmetric:
        text += " strict" if enc.strict else " sym"
    return text


def _param_rows(model: onnx.ModelProto, plan: Plan, qdq: QdqModel,
                providers: Sequence[str] | None) -> dict[str, TensorReport]:
    """Weight SQNR (numpy) and the numpy/ONNX check of every quantized parameter."""
    from onnx import numpy_helper

    params = [t for t in qdq.dequantized if t in qdq.params]
    if not params:
        return {}
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
               if t.name in params}
    graph_values = _param_values(qdq, params, providers)
    out: dict[str, TensorReport] = {}
    for name in params:
        entry = plan.entry(name)
        storage = qdq.storage[name]
        w = weights[name]
        rounding = str(entry.get("rounding") if entry else "half_even")
        expect = fake_quantize(w, storage.encoding, rounding=rounding).astype(w.dtype)
        acc = Sqnr()
        acc.update(w, expect)
        rep = TensorReport(name, entry.kind if entry else "param", _describe(storage),
                           sqnr_db=acc.db, quantizer_sqnr_db=acc.db,
                           max_abs_error=acc.max_abs_error)
        got = graph_values.get(name)
        if got is not None:
            rep.check_mismatches, rep.check_max_diff = mismatches(expect, got, storage.encoding)
            rep.check = "mismatch" if rep.check_mismatches else "ok"
        out[name] = rep
    return out


def _param_values(qdq: QdqModel, params: list[str], providers: Sequence[str] | None
                  ) -> dict[str, np.ndarray]:
    """The dequantized parameters as the QDQ graph computes them: the nodes that read only
    initializers, run on their own."""
    from onnx import helper, numpy_helper

    g = qdq.model.graph
    inits = {t.name: t for t in g.initializer}
    by_output = {o: n for n in g.node for o in n.output}
    nodes: list[Any] = []
    needed: set[str] = set()
    values: dict[str, np.ndarray] = {}
    targets: dict[str, str] = {}
    for name in params:
        dq = qdq.dequantized[name]
        if dq in inits:  # emulated: the graph holds the fake-quantized values themselves
            values[name] = numpy_helper.to_array(inits[dq])
            continue
        chain = _constant_chain(dq, by_output, inits)
        if chain is None:
            continue
        for n in chain:
            if n not in nodes:
                nodes.append(n)
                needed.update(i for i in n.input if i in inits)
        targets[name] = dq
    if targets:
        graph = helper.make_graph(
            nodes, "params", [], [helper.make_empty_tensor_value_info(v)
                                  for v in targets.values()],
            [inits[n] for n in sorted(needed)])
        sub = helper.make_model(graph, opset_imports=list(qdq.model.opset_import))
        sub.ir_version = qdq.model.ir_version
        res = simulation_executor(sub, providers=providers).run({})
        values.update({name: res[dq] for name, dq in targets.items()})
    return values


def _constant_chain(name: str, by_output: Mapping[str, Any], inits: Mapping[str, Any]
                    ) -> list[Any] | None:
    """The nodes computing ``name`` from initializers only, in order (None if it reads more)."""
    node = by_output.get(name)
    if node is None:
        return None
    chain: list[Any] = []
    for i in node.input:
        if not i or i in inits:
            continue
        sub = _constant_chain(i, by_output, inits)
        if sub is None:
            return None
        chain.extend(sub)
    chain.append(node)
    return chain
