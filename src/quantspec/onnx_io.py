"""Loading ONNX models *with* their weights, and saving them atomically.

:class:`quantspec.graph.Graph` reads structure only. The runtime (calibration, simulation,
transforms) needs the weights, which may live in external-data files next to the model. Those
paths come from the model file, so they are untrusted: a location that escapes the model's
directory (``../../etc/passwd``, an absolute path) is refused unless the caller allows it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import QuantspecError
from .source import Span

if TYPE_CHECKING:
    import onnx


def _external_locations(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """(tensor name, location) of every initializer stored outside the model file."""
    from onnx.external_data_helper import _get_all_tensors

    out = []
    for t in _get_all_tensors(model):
        if t.data_location == 1:  # TensorProto.EXTERNAL
            loc = next((e.value for e in t.external_data if e.key == "location"), "")
            out.append((t.name, loc))
    return out


def check_external_data(model: onnx.ModelProto, path: str | os.PathLike[str],
                        allow_outside: bool = False) -> None:
    """Refuse external-data locations outside the model's directory, or missing files."""
    base = Path(path).resolve().parent
    for name, loc in _external_locations(model):
        try:
            if not isinstance(loc, str):  # protobuf hands back bytes when it is not UTF-8
                raise ValueError(loc)
            target = (base / loc).resolve()
        except (ValueError, OSError):  # a NUL byte, a symlink loop, not text
            raise QuantspecError(
                "E306", f"initializer '{name}': external data location {loc!r} is not a usable "
                "path", Span(str(path)), hint="the model file is damaged") from None
        if not allow_outside and base != target and base not in target.parents:
            raise QuantspecError(
                "E305", f"initializer '{name}' points at external data outside the model's "
                f"directory: {loc!r}", Span(str(path)),
                hint="move the data next to the model, or pass --allow-outside if you trust it")
        if not target.is_file():
            raise QuantspecError(
                "E306", f"initializer '{name}': external data file not found: {loc!r}",
                Span(str(path)), hint="copy the weight file(s) next to the model")


def load_model(path: str | os.PathLike[str], *, allow_outside: bool = False) -> onnx.ModelProto:
    """Load a model with its weights (external data checked first)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise QuantspecError("E301", f"model not found: {p}", Span(str(p)))
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... for bad files
        raise QuantspecError("E302", f"cannot read ONNX model: {exc}", Span(str(p)),
                             hint="is this an .onnx file?") from None
    check_external_data(model, p, allow_outside)
    if _external_locations(model):
        from onnx.external_data_helper import load_external_data_for_model

        try:
            if allow_outside:  # onnx itself refuses locations outside the model's directory
                _read_external_data(model, p.resolve().parent)
            else:
                load_external_data_for_model(model, str(p.resolve().parent))
        except Exception as exc:
            raise QuantspecError("E306", f"cannot read external data: {exc}",
                                 Span(str(p))) from None
    return model


def _read_external_data(model: onnx.ModelProto, base: Path) -> None:
    """Inline every external tensor, wherever its location points (the caller allowed it)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors

    for t in _get_all_tensors(model):
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = ExternalDataInfo(t)
        with open(base / info.location, "rb") as fh:  # an absolute location stays absolute
            fh.seek(int(info.offset or 0))
            data = fh.read(int(info.length)) if info.length else fh.read()
        if info.length and len(data) != int(info.length):
            raise ValueError(f"'{t.name}': {info.location} ends before offset + length")
        t.raw_data = data
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Serialize a model (weights inline) and write it atomically."""
    from .fileio import write_atomic

    try:
        data = model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GiB
        raise QuantspecError("E307", f"cannot serialize the model: {exc}", Span(str(path)),
                             hint="models over 2 GiB need external data") from None
    write_atomic(path, data)
