"""Encodings files <-> runtime encodings, for export and for simulating a given file.

* :func:`encodings_text`: runtime :class:`~.encoding.Encoding` objects (a calibration result) as an
  AIMET / QNN encodings file, version 0.6.1, 1.0.0, 2.0.0 or 2.1.0, through the dialect's writer
  (:func:`quantspec.dialects.encodings.encodings_file_from_entries`, docs/encodings.md).
* :func:`encodings_from_file`: an encodings file (any version) as runtime encodings, with the
  plan supplying what the file does not store (the per-channel axis of 0.6.1 / 1.0.0 files).

Both keep one convention (AIMET's TfEncoding offset, aimet.md C) so scale and offset survive a
round trip bit for bit. The storage signedness written is the one the QDQ graph uses
(:func:`~.qdq.storage_signed`), so a 2.x file and the QDQ model agree on the integer type. They
differ in one spelling: a strict symmetric int8 grid is ``[-127, 127]`` with zero point 0 in the
graph (ONNX's narrow range) and zero point -1 on ``[-128, 126]`` in a 2.x file (AIMET's, aimet.md
D); both are the grid ``scale * [-127, 127]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__ as _version
from .encoding import Encoding
from .qdq import storage_signed

if TYPE_CHECKING:
    from ..compiler.plan import Plan
    from ..dialects.encodings_model import EncodingFile, TensorEncoding

PARAM_KINDS = ("weight", "bias", "param")
PRODUCER = {"package": "quantspec", "version": _version}


def to_tensor_encoding(name: str, enc: Encoding, kind: str = "activation") -> TensorEncoding:
    """One file entry for ``enc`` (``kind``: ``"activation"`` or ``"param"``)."""
    from ..dialects.encodings_model import TensorEncoding

    if enc.dtype == "float":
        return TensorEncoding.float_(name, enc.bits, kind)
    per_channel = enc.per_channel and enc.channels > 1
    scale: Any = enc.scale.tolist() if per_channel else float(enc.scale[0])
    offset: Any = enc.offset.tolist() if per_channel else float(enc.offset[0])
    return TensorEncoding.from_grid(
        name, scale, offset, enc.bits, symmetric=enc.symmetric, kind=kind,
        axis=enc.axis if per_channel else None, signed=storage_signed(enc))


def encodings_text(
    encodings: Mapping[str, Encoding],
    plan: Plan | None = None,
    version: str = "1.0.0",
    *,
    force_activation_as: str | None = None,
) -> str:
    """An encodings file holding ``encodings``, in plan order when a plan is given.

    Args:
        encodings: tensor -> encoding.
        plan: gives the order and which tensors are parameters (``param_encodings``).
        version: ``"0.6.1"``, ``"1.0.0"``, ``"2.0.0"`` or ``"2.1.0"``.
        force_activation_as: 2.x only; ``None`` writes each activation with the signedness of its
            QDQ storage, ``"unsigned"`` is AIMET's export default (aimet.md D).

    Example:
        >>> from quantspec.runtime import encoding_from_range
        >>> text = encodings_text({"x": encoding_from_range(-1.8, 0.5, 8, scheme="qnn_tf")},
        ...                       version="2.0.0")
        >>> '"y_zero_point": 200' in text, '"output_dtype": "uint8"' in text
        (True, True)
    """
    from ..dialects.encodings import encodings_file_from_entries

    kinds: dict[str, str] = {}
    order = list(encodings)
    if plan is not None:
        kinds = {e.name: e.kind for e in plan.entries}
        ranked = {e.name: i for i, e in enumerate(plan.entries)}
        order.sort(key=lambda n: ranked.get(n, len(ranked)))
    entries = [
        to_tensor_encoding(n, encodings[n],
                           "param" if kinds.get(n) in PARAM_KINDS else "activation")
        for n in order
    ]
    options: dict[str, Any] = {}
    if version.startswith("2."):
        options["force_activation_as"] = force_activation_as
    return encodings_file_from_entries(entries, version, producer=PRODUCER, **options)


def encodings_from_file(
    source: str | EncodingFile, plan: Plan | None = None, *, file: str = "<string>"
) -> tuple[dict[str, Encoding], dict[str, str]]:
    """Runtime encodings from an encodings file (its text, or a parsed :class:`EncodingFile`).

    Returns ``(encodings, skipped)``: entries the runtime cannot hold (bit-width-only overrides,
    blockwise grids, fp8) are listed in ``skipped`` with the reason. A per-channel entry without
    an axis takes the plan's axis for that tensor, else 0 (AIMET's Conv weight axis, aimet.md B.6).
    """
    from ..dialects.encodings import read_file

    ef = read_file(source, file) if isinstance(source, str) else source
    entries = {e.name: e for e in plan.entries} if plan is not None else {}
    out: dict[str, Encoding] = {}
    skipped: dict[str, str] = {}
    for te in ef.entries:
        entry = entries.get(te.name)
        enc, why = _runtime_encoding(te, entry.get("axis") if entry is not None else None)
        if enc is None:
            skipped[te.name] = why
        else:
            out[te.name] = enc
    return out, skipped


def _runtime_encoding(te: TensorEncoding, plan_axis: int | None
                      ) -> tuple[Encoding | None, str]:
    if te.dtype == "float":
        if te.bitwidth in (16, 32) and not te.scale:
            return Encoding.float_cast(te.bitwidth), ""
        return None, f"float{te.bitwidth} encodings are not simulated"
    if not te.has_range:
        return None, "bit width only (no scale/offset): calibrate to get a range"
    if te.enc_type in ("PER_BLOCK", "LPBQ"):
        return None, f"{te.enc_type} encodings are not simulated"
    sym, strict, unsigned = te.grid_kind()
    per_channel = te.per_channel and te.channels > 1
    axis = None
    if per_channel:
        axis = te.axis if te.axis is not None else (plan_axis if plan_axis is not None else 0)
    signed = te.signed if te.signed is not None else bool(te.symmetric)
    enc = Encoding.from_scale_offset(
        te.scale, te.offset, te.bitwidth, symmetric=sym, strict=strict, unsigned=unsigned,
        signed=signed, axis=axis)
    return enc, ""
