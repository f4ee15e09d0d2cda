"""Reading inputs with limits and writing outputs atomically (temp file + rename)."""

from __future__ import annotations

import functools
import os
import stat
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
        raise _too_big(p, size, limit)
    try:
        with p.open("rb") as fh:
            # read at most limit + 1 bytes: a device or pipe reports size 0 (/dev/zero)
            data = fh.read(limit + 1)
    except OSError as exc:
        raise QuantspecError("E101", f"cannot read {p}: {exc.strerror}", Span(str(p))) from None
    if len(data) > limit:
        raise _too_big(p, len(data), limit)
    return decode(data, str(p))


def _too_big(p: Path, size: int, limit: int) -> QuantspecError:
    return QuantspecError(
        "E102", f"{p} is {size}{'+' if size > limit else ''} bytes, over the {limit}-byte limit",
        Span(str(p)), hint="config files are small; is this the right file?",
    )


def decode(data: bytes, file: str) -> str:
    """UTF-8 (with or without BOM) text, or E103 at the line:col of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise QuantspecError(
            "E103", "file is not valid UTF-8 text", Span(file, line, col),
            hint="quantspec reads UTF-8 text configs",
        ) from None


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``.

    A failure leaves any previous file untouched. ``path`` itself is replaced: a symlink there
    becomes a regular file and the file it pointed at is left as it was (so an output that is a
    link to an input cannot overwrite the input). A replaced file keeps its permission bits
    (``mkstemp`` creates 0600 files, which would otherwise leak into every rewritten output).
    """
    p = Path(path)
    directory = p.parent if str(p.parent) else Path(".")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _write_error(p, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _write_error(p, exc) from None
        raise


def _write_error(p: Path, exc: OSError) -> QuantspecError:
    return QuantspecError("E121", f"cannot write {p}: {exc.strerror or exc}", Span(str(p)),
                          hint="the previous file, if any, is unchanged")


@functools.cache
def _umask() -> int:
    # os.umask can only be read by setting it; put it straight back (once per process)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
