"""Reading inputs with limits and writing outputs atomically (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import QuantspecError
from .source import Span

# text configs; ONNX models are read by onnx with their own checks
MAX_INPUT_BYTES = 64 * 1024 * 1024


def read_text(path: str | os.PathLike[str], limit: int = MAX_INPUT_BYTES) -> str:
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise QuantspecError("E101", f"file not found: {p}", Span(str(p))) from None
    except OSError as exc:
        raise QuantspecError("E101", f"cannot read {p}: {exc.strerror}", Span(str(p))) from None
    if p.is_dir():
        raise QuantspecError("E101", f"{p} is a directory, expected a file", Span(str(p)))
    if size > limit:
        raise QuantspecError(
            "E102", f"{p} is {size} bytes, over the {limit}-byte limit", Span(str(p)),
            hint="config files are small; is this the right file?",
        )
    data = p.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise QuantspecError(
            "E103", "file is not valid UTF-8 text", Span(str(p), line, col),
            hint="quantspec reads UTF-8 text configs",
        ) from None


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``.

    A failure leaves any previous file untouched.
    """
    p = Path(path)
    directory = p.parent if str(p.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
