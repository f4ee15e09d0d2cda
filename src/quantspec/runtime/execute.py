"""Run an ONNX model and read back intermediate tensors (calibration, simulation).

:class:`Executor` exposes the tensors a caller names as extra graph outputs and runs the model in
onnxruntime on the CPU. When onnxruntime cannot create a session for the model (an op or opset it
does not implement), it falls back to onnx's reference evaluator, which is slow but covers every
standard op; :attr:`Executor.backend` says which one runs.

Errors (``E420``-``E429``) are :class:`~quantspec.errors.QuantspecError` naming the input, tensor
or node, with a hint:

* ``E420`` the model cannot be run by any backend;
* ``E421`` a requested tensor does not exist in the graph;
* ``E422`` a graph input has no feed; ``E423`` a feed names no graph input;
* ``E424`` a feed has the wrong element type; ``E425`` a feed has the wrong shape;
* ``E426`` the backend failed while running (the message names the node when it can).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import QuantspecError

if TYPE_CHECKING:
    import onnx

MODEL_UNRUNNABLE = "E420"
UNKNOWN_TENSOR = "E421"
MISSING_FEED = "E422"
UNKNOWN_FEED = "E423"
FEED_DTYPE = "E424"
FEED_SHAPE = "E425"
RUN_FAILED = "E426"

BACKENDS = ("onnxruntime", "reference")


def _error(code: str, message: str, hint: str = "") -> QuantspecError:
    return QuantspecError(code, message, hint=hint)


class InputSpec:
    """A graph input: name, numpy dtype and declared shape (``None`` for a symbolic dim)."""

    __slots__ = ("name", "dtype", "shape", "elem_type")

    def __init__(self, name: str, elem_type: int, shape: list[int | None] | None) -> None:
        from onnx import helper

        self.name = name
        self.elem_type = elem_type
        self.dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)) if elem_type else None
        self.shape = shape

    def __repr__(self) -> str:
        dims = "?" if self.shape is None else "x".join("?" if d is None else str(d)
                                                       for d in self.shape)
        return f"InputSpec({self.name!r}, {self.dtype}, [{dims}])"


def input_specs(model: onnx.ModelProto) -> list[InputSpec]:
    """The real graph inputs (initializers listed as inputs by old IR versions excluded)."""
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape: list[int | None] | None = None
        if tt.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                     for d in tt.shape.dim]
        specs.append(InputSpec(vi.name, tt.elem_type, shape))
    return specs


class Executor:
    """Run ``model`` and return its outputs plus the intermediate tensors named in ``outputs``.

    Args:
        model: the ONNX model, with its weights (:func:`quantspec.onnx_io.load_model`). It is not
            modified.
        outputs: tensor names to return besides the graph outputs: node outputs, graph inputs
            (returned as fed) or initializers (returned as stored).
        providers: onnxruntime execution providers (default ``["CPUExecutionProvider"]``).
        threads: onnxruntime intra-op threads (default: onnxruntime's choice).
        backend: ``None`` (onnxruntime, reference evaluator as fallback), or force
            ``"onnxruntime"`` / ``"reference"``.
        optimization: onnxruntime graph optimization level: ``"disable"``, ``"basic"``,
            ``"extended"`` or ``"all"``. ``"basic"`` (default) keeps every node's arithmetic as
            the float graph states it (no fusions that reorder float operations).
        prepacking: let onnxruntime pre-pack constant weights. Pre-packed Gemm/MatMul kernels
            may sum in another order than the kernels for weights computed at run time, so the
            last bit of an output can differ; ``False`` reproduces a graph whose weights come
            from quantize-dequantize nodes (AIMET's simulation graph) bit for bit.
        spinning: let onnxruntime's idle intra-op threads spin for work (its default, the
            fastest when nothing else runs). ``False`` makes them sleep, which leaves the cores
            to threads that work while the model runs (calibrator updates); it never changes
            an output.

    Example:
        >>> from onnx import TensorProto, helper
        >>> g = helper.make_graph(
        ...     [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])],
        ...     "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
        >>> ex = Executor(helper.make_model(g), outputs=["r"])
        >>> res = ex.run({"x": np.array([-1.0, 2.0], dtype=np.float32)})
        >>> res["r"].tolist(), res["y"].tolist(), ex.backend
        ([0.0, 2.0], [-0.0, -2.0], 'onnxruntime')
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        outputs: Sequence[str] = (),
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        backend: str | None = None,
        optimization: str = "basic",
        prepacking: bool = True,
        spinning: bool = True,
    ) -> None:
        if backend is not None and backend not in BACKENDS:
            raise _error(MODEL_UNRUNNABLE, f"unknown backend {backend!r}",
                         "use 'onnxruntime' or 'reference'")
        self.inputs = input_specs(model)
        self.input_names = [s.name for s in self.inputs]
        self._spec = {s.name: s for s in self.inputs}
        self.graph_outputs = [o.name for o in model.graph.output]
        self._initializers = {t.name: t for t in model.graph.initializer}
        produced = {o for n in model.graph.node for o in n.output if o}
        self._producer = {o: n.name or n.op_type for n in model.graph.node for o in n.output}
        requested = list(dict.fromkeys(outputs))
        for name in requested:
            if name not in produced and name not in self._spec and name not in self._initializers:
                from ..errors import did_you_mean

                pool = sorted(produced | set(self._spec))
                raise _error(UNKNOWN_TENSOR, f"tensor '{name}' is not in the graph",
                             did_you_mean(name, pool) or "name a node output or a graph input")
        self.requested = requested
        self._from_feeds = [n for n in requested if n in self._spec]
        self._from_inits = [n for n in requested
                            if n in self._initializers and n not in produced
                            and n not in self._spec]
        extra = [n for n in requested
                 if n in produced and n not in self.graph_outputs]
        self.fetch = self.graph_outputs + extra
        self._threads = threads
        self._providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._optimization = optimization
        self._prepacking = prepacking
        self.spinning = spinning
        self._init_values: dict[str, np.ndarray] | None = None
        self._session: Any = None
        self._reference: Any = None
        self.backend = ""
        self.fallback_reason = ""
        self._build(model, extra, backend)

    # -- construction ----------------------------------------------------------------------------
    def _build(self, model: onnx.ModelProto, extra: list[str], backend: str | None) -> None:
        import onnx

        # Extra outputs are declared by name only: both backends type them from the producing
        # node, which spares a shape inference pass over the whole model (a noticeable share of
        # a calibration run's start-up on large graphs).
        added = [onnx.ValueInfoProto(name=name) for name in extra]
        # Append the outputs to the caller's model only for the time it takes to serialize it,
        # so a large model is not copied twice.
        count = len(model.graph.output)
        model.graph.output.extend(added)
        try:
            data = model.SerializeToString()
        except ValueError as exc:
            raise _error(MODEL_UNRUNNABLE, f"cannot serialize the model: {exc}",
                         "models over 2 GiB are not supported by the executor") from None
        finally:
            del model.graph.output[count:]
        if backend in (None, "onnxruntime"):
            try:
                self._session = self._ort_session(data)
                self.backend = "onnxruntime"
                return
            except QuantspecError:
                raise
            except Exception as exc:
                if backend == "onnxruntime":
                    raise _error(MODEL_UNRUNNABLE,
                                 f"onnxruntime cannot load the model: {_short(exc)}",
                                 "run with the reference backend, or check the model with "
                                 "onnx.checker") from None
                self.fallback_reason = _short(exc)
        ref_model = _parse(data)
        try:
            from onnx.reference import ReferenceEvaluator

            self._reference = ReferenceEvaluator(ref_model)
        except Exception as exc:
            why = f"onnxruntime: {self.fallback_reason}; " if self.fallback_reason else ""
            raise _error(MODEL_UNRUNNABLE,
                         f"no backend can run the model ({why}reference: {_short(exc)})",
                         "check the model with onnx.checker.check_model(full_check=True)"
                         ) from None
        self.backend = "reference"

    def _ort_session(self, data: bytes) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        if self._optimization not in levels:
            raise _error(MODEL_UNRUNNABLE, f"unknown optimization level {self._optimization!r}",
                         "use one of: " + ", ".join(levels))
        opts.graph_optimization_level = levels[self._optimization]
        opts.log_severity_level = 3  # errors only: warnings would clutter the CLI
        if not self._prepacking:
            opts.add_session_config_entry("session.disable_prepacking", "1")
        if not self.spinning:  # idle intra-op threads sleep: other threads need the cores
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self._threads:
            opts.intra_op_num_threads = int(self._threads)
        return ort.InferenceSession(data, sess_options=opts, providers=self._providers)

    # -- running ---------------------------------------------------------------------------------
    def check_feeds(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Feeds as arrays of the declared element type and shape, or raise E422-E425."""
        out: dict[str, np.ndarray] = {}
        for name in feeds:
            if name not in self._spec:
                from ..errors import did_you_mean

                raise _error(UNKNOWN_FEED, f"feed '{name}' is not a graph input",
                             did_you_mean(name, self.input_names)
                             or "graph inputs: " + ", ".join(self.input_names))
        for spec in self.inputs:
            if spec.name not in feeds:
                raise _error(MISSING_FEED, f"graph input '{spec.name}' has no data",
                             f"give an array for every graph input: {', '.join(self.input_names)}")
            arr = np.asarray(feeds[spec.name])
            if spec.dtype is not None and arr.dtype != spec.dtype:
                raise _error(FEED_DTYPE,
                             f"graph input '{spec.name}' expects {spec.dtype}, got {arr.dtype}",
                             f"convert the data with .astype(np.{spec.dtype.name})")
            if spec.shape is not None:
                bad = arr.ndim != len(spec.shape) or any(
                    d is not None and d != a for d, a in zip(spec.shape, arr.shape, strict=False))
                if bad:
                    want = "x".join("?" if d is None else str(d) for d in spec.shape)
                    raise _error(FEED_SHAPE,
                                 f"graph input '{spec.name}' expects shape [{want}], got "
                                 f"{list(arr.shape)}",
                                 "a sample must have the model input's shape (with its batch "
                                 "axis)")
            out[spec.name] = arr
        return out

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once: graph outputs and requested tensors by name."""
        arrays = self.check_feeds(feeds)
        try:
            if self._session is not None:
                values = self._session.run(self.fetch, arrays)
            else:
                values = self._reference.run(self.fetch, arrays)
        except Exception as exc:
            raise _run_error(exc, self.backend) from None
        result = dict(zip(self.fetch, (np.asarray(v) for v in values), strict=True))
        for name in self._from_feeds:
            result[name] = arrays[name]
        if self._from_inits:
            if self._init_values is None:
                from onnx import numpy_helper

                self._init_values = {n: numpy_helper.to_array(self._initializers[n])
                                     for n in self._from_inits}
            result.update(self._init_values)
        return result

    def producer(self, tensor: str) -> str | None:
        """Name (or op type) of the node producing ``tensor``."""
        return self._producer.get(tensor)


def _parse(data: bytes) -> onnx.ModelProto:
    import onnx

    m = onnx.ModelProto()
    m.ParseFromString(data)
    return m


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 400 else text[:400] + " ..."


_NODE_RE = re.compile(r"node\.?\s*Name:\s*'([^']*)'|Node \(([^)]*)\)")


def _run_error(exc: BaseException, backend: str) -> QuantspecError:
    text = _short(exc)
    m = _NODE_RE.search(str(exc))
    node = next((g for g in m.groups() if g), "") if m else ""
    where = f" in node '{node}'" if node else ""
    return _error(RUN_FAILED, f"{backend} failed{where}: {text}",
                  "check that the calibration data matches what the model expects "
                  "(value ranges, shapes of every input)")
