"""ONNX shape inference for the graph view, run beside it on large graphs.

``onnx.shape_inference.infer_shapes`` is C++ that holds the GIL for its whole run (about
8 us per node: 0.8 s for a 100k-node graph), so a thread cannot overlap it with the Python
work of building the graph view. On Linux, for graphs of :data:`FORK_MIN_NODES` nodes or
more, it runs in a forked child instead, which sends back only what the view reads from the
inferred graph (each value's name, element type and shape), while the parent links the nodes
on the other core (benchmarks/RESULTS.md, "Compile").

The child changes nothing the view sees: the types are the ones in-process inference gives.
When inference raises, the view uses the model's own types in both cases; when the child dies
(onnx aborts the process on some damaged models), the parent does the same instead of dying
with it. ``QUANTSPEC_NO_FORK=1`` in the environment keeps inference in the process.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

FORK_MIN_NODES = 5_000  # the fork pays from ~3,000 nodes (bench_compile.py --inference)

TensorType = tuple[int, "tuple[Any, ...] | None"]  # (element type, shape or None)


class ValueTypes(NamedTuple):
    """The type of every value a graph declares (inputs, value_info, outputs), in that order:
    ``names[k]`` has type ``types[index[k]]``, or is not a tensor when ``index[k]`` is -1. A
    type is stored once however many values share it (most values share a few)."""

    names: list[Any]
    index: list[int]
    types: list[TensorType]


def value_types(g: Any) -> ValueTypes:
    """The :class:`ValueTypes` of a GraphProto; each distinct TypeProto is decoded once."""
    seen: dict[bytes, int] = {}
    names: list[Any] = []
    index: list[int] = []
    types: list[TensorType] = []
    for vi in (*g.input, *g.value_info, *g.output):
        ty = vi.type
        key = ty.SerializeToString()
        i = seen.get(key)
        if i is None:
            tt = _tensor_type(ty)
            i = seen[key] = -1 if tt is None else len(types)
            if tt is not None:
                types.append(tt)
        names.append(vi.name)
        index.append(i)
    return ValueTypes(names, index, types)


def _tensor_type(ty: Any) -> tuple[int, tuple[Any, ...] | None] | None:
    """(element type, shape or None) of a TypeProto; None when it is not a tensor type."""
    if not ty.HasField("tensor_type"):
        return None
    tt = ty.tensor_type
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or None
                      for d in tt.shape.dim)
    return tt.elem_type, shape


def _infer(data: Any) -> ValueTypes | None:
    """The value types of the inferred model, or None when inference fails."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(data, strict_mode=False)
    except Exception:
        return None
    return value_types(inferred.graph)


def start(model: Any, data: Any) -> Callable[[], ValueTypes]:
    """Start inferring ``data`` (the serialized ``model``, or the model itself when it is too
    large to serialize); the returned function gives the value types, waiting for them. When
    inference fails, they are the model's own."""
    if not _forkable(model, data):
        return _in_process(model, data)
    try:
        read_fd, write_fd = os.pipe()
    except OSError:  # out of file descriptors: infer here
        return _in_process(model, data)
    try:
        with warnings.catch_warnings():  # 3.12+ warns about forking with threads alive: the
            warnings.simplefilter("ignore", DeprecationWarning)  # child runs onnx and exits
            pid = os.fork()
    except OSError:  # no memory or processes left for a child (strict overcommit, limits)
        os.close(read_fd)
        os.close(write_fd)
        return _in_process(model, data)
    if pid == 0:  # the child: infer, send the types, exit without running any cleanup
        code = 1
        try:
            os.close(read_fd)
            # quiet: an abort's message (or faulthandler's dump) would read as the parent's
            # failure, while the parent goes on with the declared types
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            faulthandler.disable()
            payload = _encode(_infer(data))
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    return _Child(model, pid, read_fd)


class _Child:
    """The forked inference: calling it waits for the types and reaps the child, once (call
    it even when the view stops early; later calls return the same types)."""

    def __init__(self, model: Any, pid: int, read_fd: int) -> None:
        self.model, self.pid, self.read_fd = model, pid, read_fd
        self.types: ValueTypes | None = None
        self.reaped = False

    def __call__(self) -> ValueTypes:
        if not self.reaped:
            self.reaped = True
            try:
                with os.fdopen(self.read_fd, "rb") as pipe:  # closing it ends a blocked child
                    payload = pipe.read()
            finally:
                _, status = os.waitpid(self.pid, 0)
            if os.waitstatus_to_exitcode(status) == 0:
                self.types = _decode(payload)
        if self.types is None:  # inference failed, or the child died
            self.types = value_types(self.model.graph)
        return self.types


def _encode(vis: ValueTypes | None) -> bytes:
    return b"null" if vis is None else json.dumps(vis._asdict()).encode()


def _decode(payload: bytes) -> ValueTypes | None:
    got = json.loads(payload)
    if got is None:
        return None
    types = [(elem, None if shape is None else tuple(shape)) for elem, shape in got["types"]]
    return ValueTypes(got["names"], got["index"], types)


def _in_process(model: Any, data: Any) -> Callable[[], ValueTypes]:
    got = _infer(data)
    vis = value_types(model.graph) if got is None else got
    return lambda: vis


def _forkable(model: Any, data: Any) -> bool:
    return (isinstance(data, bytes) and sys.platform.startswith("linux")
            and hasattr(os, "fork") and os.environ.get("QUANTSPEC_NO_FORK", "") in ("", "0")
            and len(model.graph.node) >= FORK_MIN_NODES)
