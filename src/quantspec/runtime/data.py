"""Calibration data: ``.npz``, a directory of ``.npy`` files, or a QNN ``input_list`` text file.

Every source yields *samples*: dicts ``{graph input name: array}`` where each array has the
model input's declared shape (batch axis included) and element type. :func:`batches` joins
samples into batches for one model run each.

Formats (``docs/runtime.md`` has examples):

* ``.npz``: one array per graph input, named after it, samples along axis 0. ``arr[i]`` is
  sample ``i`` when ``arr`` has one more axis than the model input; when it has as many axes as
  the input and the input's first dimension is 1 or symbolic, ``arr[i:i+1]`` is (the batch axis
  holds the samples). Read with ``allow_pickle=False``; each input's array is loaded once.
* ``.npy`` file: the same, for a model with a single input.
* directory of ``.npy`` files, one of three layouts (checked in this order):

  1. ``<input>.npy`` per graph input, samples along axis 0 as in ``.npz`` (memory-mapped, so
     only the samples in use are read);
  2. one sub-directory per sample holding ``<input>.npy`` with one sample each (sample order =
     sorted sub-directory names);
  3. single-input models: one ``.npy`` file per sample (sorted file names).

* QNN ``input_list`` (spec 004, "Quantizing a Model"): one line per sample, ``path`` for a
  single-input model or ``name:=path`` entries separated by spaces (positional paths are taken in
  graph-input order). Lines starting with ``#`` (output layer names) or ``%`` (output tensor
  names) name the outputs a QNN tool should produce; calibration observes every tensor anyway,
  so they are read and skipped. Paths are relative to the list file. A raw file holds the
  input's values in its element type (float32 for float inputs), C order, native byte order;
  its shape is the model input's (one symbolic dimension is inferred from the file size).

Validation, with the sample index in every message: missing or unknown inputs, wrong shapes,
element types (float64/float16 data are cast to a float32 input and integer data to a wider
integer input only when every value survives the cast unchanged or, for float64 -> float32, stays
finite), NaN or infinite values, and empty data. Codes ``E430``-``E439``:

* ``E430`` data path not found or of an unknown kind; ``E431`` unreadable / corrupt file;
* ``E432`` a graph input has no data (or data names no graph input); ``E433`` wrong shape or
  sample counts that differ between inputs; ``E434`` element type that cannot be cast safely;
* ``E435`` NaN or infinite value; ``E436`` no samples;
* ``E437`` batching impossible (fixed batch dimension, ``batch_size < 1``);
* ``E438`` ``input_list`` syntax or reference error (``file:line:col``).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import QuantspecError, did_you_mean
from ..source import Span
from .execute import InputSpec

NOT_FOUND = "E430"
UNREADABLE = "E431"
MISSING_INPUT = "E432"
BAD_SHAPE = "E433"
BAD_DTYPE = "E434"
NOT_FINITE = "E435"
EMPTY = "E436"
BAD_BATCH = "E437"
BAD_LIST = "E438"

Sample = dict[str, np.ndarray]


def _error(code: str, message: str, where: str | Span | None = None,
           hint: str = "") -> QuantspecError:
    span = Span(where) if isinstance(where, str) else where
    return QuantspecError(code, message, span, hint=hint)


def _dims(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "[?]"
    return "[" + "x".join("?" if d is None else str(d) for d in shape) + "]"


def _matches(shape: Sequence[int], spec: Sequence[int | None]) -> bool:
    if len(shape) != len(spec):
        return False
    return all(d is None or d == a for d, a in zip(spec, shape, strict=True))


# ---------------------------------------------------------------------------------------------
# Per-sample checks
# ---------------------------------------------------------------------------------------------


def conform(arr: np.ndarray, spec: InputSpec, index: int, origin: str) -> np.ndarray:
    """One sample of one input, cast to the input's element type and checked (E433-E435)."""
    where = f"sample {index} of input '{spec.name}' ({origin})"
    if spec.shape is not None and not _matches(arr.shape, spec.shape):
        raise _error(BAD_SHAPE, f"{where} has shape {list(arr.shape)}, the model expects "
                     f"{_dims(spec.shape)}", origin,
                     "samples must have the model input's shape, batch axis included")
    arr = _cast(arr, spec, where, origin)
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))[0]
        pos = np.unravel_index(bad, arr.shape) if arr.ndim else ()
        value = arr.reshape(-1)[bad]
        raise _error(NOT_FINITE, f"{where} contains {value} at index {list(map(int, pos))}",
                     origin, "calibration data must be finite; clean or drop that sample")
    return arr


def _cast(arr: np.ndarray, spec: InputSpec, where: str, origin: str) -> np.ndarray:
    want = spec.dtype
    if want is None or arr.dtype == want:
        return arr
    have = arr.dtype
    ok = False
    if want.kind == "f" and have.kind == "f":
        if np.can_cast(have, want, "safe"):
            ok = True  # float16 -> float32: exact
        else:
            # float64 -> float32 rounds each value to the nearest float32 (what the data would
            # have been had it been stored as float32); values beyond float32's range are refused.
            with np.errstate(over="ignore"):
                out = arr.astype(want)
            if np.all(np.isfinite(out) | ~np.isfinite(arr)):
                return out
            raise _error(BAD_DTYPE, f"{where} holds {have} values outside the {want} range",
                         origin, f"scale the data to fit {want}")
    elif want.kind in "iu" and have.kind in "iub":
        ok = np.can_cast(have, want, "safe") or _fits_integer(arr, want)
    elif want.kind == "b" and have.kind == "b":
        ok = True
    if not ok:
        raise _error(BAD_DTYPE, f"{where} is {have}, the model input is {want}", origin,
                     f"save the data as {want} (numpy .astype(np.{want.name}))")
    return arr.astype(want)


def _fits_integer(arr: np.ndarray, want: np.dtype) -> bool:
    if arr.size == 0:
        return True
    info = np.iinfo(want)
    return bool(arr.min() >= info.min and arr.max() <= info.max)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


class DataSource:
    """Base of every source: ``len()`` samples, iterated as checked ``{input: array}`` dicts."""

    kind = ""

    def __init__(self, path: str, inputs: Sequence[InputSpec]) -> None:
        self.path = path
        self.inputs = list(inputs)
        self._spec = {s.name: s for s in self.inputs}
        self.output_names: list[str] = []  # input_list '#' / '%' lines (informational)

    def __len__(self) -> int:
        raise NotImplementedError

    def raw(self, index: int) -> Mapping[str, np.ndarray]:
        """Sample ``index`` as stored (before checks)."""
        raise NotImplementedError

    def origin(self, index: int, name: str) -> str:
        return self.path

    def sample(self, index: int) -> Sample:
        raw = self.raw(index)
        return {s.name: conform(np.asarray(raw[s.name]), s, index, self.origin(index, s.name))
                for s in self.inputs}

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self.sample(i)

    def describe(self) -> dict[str, Any]:
        return {"format": self.kind, "path": self.path, "samples": len(self)}

    # -- helpers ---------------------------------------------------------------------------------
    def _check_names(self, names: Sequence[str], where: str) -> None:
        known = [s.name for s in self.inputs]
        for s in self.inputs:
            if s.name not in names:
                raise _error(MISSING_INPUT, f"no data for graph input '{s.name}' in {where}",
                             where, f"graph inputs: {', '.join(known)}; data holds: "
                             f"{', '.join(names) or 'nothing'}")
        for n in names:
            if n not in self._spec:
                raise _error(MISSING_INPUT, f"{where} has data for '{n}', which is not a graph "
                             "input", where, did_you_mean(n, known)
                             or f"graph inputs: {', '.join(known)}")


class _StackedSource(DataSource):
    """Arrays with samples along axis 0, one per input (npz, npy file, npy directory layout 1)."""

    def __init__(self, path: str, inputs: Sequence[InputSpec],
                 arrays: Mapping[str, np.ndarray], names: Sequence[str] | None = None) -> None:
        super().__init__(path, inputs)
        self._check_names(list(arrays) if names is None else list(names), path)
        self.arrays: dict[str, np.ndarray] = {}
        self._slice: dict[str, bool] = {}  # True: arr[i:i+1] is a sample (batch axis = samples)
        counts = {}
        for s in self.inputs:
            arr = arrays[s.name]
            self.arrays[s.name] = arr
            self._slice[s.name] = self._layout(arr, s)
            counts[s.name] = arr.shape[0] if arr.ndim else 0
        if len(set(counts.values())) > 1:
            detail = ", ".join(f"'{k}': {v}" for k, v in counts.items())
            raise _error(BAD_SHAPE, f"inputs have different sample counts ({detail})", path,
                         "every input needs one entry per sample along axis 0")
        self._len = next(iter(counts.values()), 0)

    def _layout(self, arr: np.ndarray, spec: InputSpec) -> bool:
        if arr.ndim == 0:
            raise _error(BAD_SHAPE, f"data for '{spec.name}' is a scalar, expected samples "
                         "along axis 0", self.path)
        if spec.shape is None:
            return False
        rank = len(spec.shape)
        if arr.ndim == rank + 1 and _matches(arr.shape[1:], spec.shape):
            return False
        if arr.ndim == rank and rank and spec.shape[0] in (None, 1) \
                and _matches(arr.shape[1:], spec.shape[1:]):
            return True
        raise _error(BAD_SHAPE, f"data for '{spec.name}' has shape {list(arr.shape)}; the "
                     f"model input is {_dims(spec.shape)}", self.path,
                     f"use shape [samples, {_dims(spec.shape)[1:-1].replace('x', ', ')}] "
                     "(axis 0 = samples)")

    def __len__(self) -> int:
        return self._len

    def raw(self, index: int) -> Mapping[str, np.ndarray]:
        return {k: (a[index:index + 1] if self._slice[k] else a[index])
                for k, a in self.arrays.items()}


class NpzSource(_StackedSource):
    kind = "npz"

    def __init__(self, path: str, inputs: Sequence[InputSpec]) -> None:
        try:
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                arrays = {s.name: z[s.name] for s in inputs if s.name in names}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # .npz is a zip
            raise _error(UNREADABLE, f"cannot read {path}: {exc}", path,
                         "write it with numpy.savez (object arrays are refused)") from None
        super().__init__(path, inputs, arrays, names)


def _load_npy(path: str, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as exc:
        raise _error(UNREADABLE, f"cannot read {path}: {exc}", path,
                     "write it with numpy.save (object arrays are refused)") from None


class NpySource(_StackedSource):
    kind = "npy"

    def __init__(self, path: str, inputs: Sequence[InputSpec]) -> None:
        if len(inputs) != 1:
            DataSource.__init__(self, path, inputs)
            raise _error(MISSING_INPUT, f"a single .npy file feeds one graph input; the model "
                         f"has {len(inputs)}", path,
                         "use an .npz with one array per input, or a directory of .npy files")
        super().__init__(path, inputs, {inputs[0].name: _load_npy(path, mmap=True)})


class NpyDirSource(DataSource):
    """A directory of ``.npy`` files (layouts 1-3 of the module docstring)."""

    kind = "npy-dir"

    def __init__(self, path: str, inputs: Sequence[InputSpec]) -> None:
        super().__init__(path, inputs)
        root = Path(path)
        names = [s.name for s in inputs]
        files = {p.stem: p for p in root.iterdir() if p.suffix == ".npy" and p.is_file()}
        subdirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
        self._stacked: _StackedSource | None = None
        self._samples: list[dict[str, Path]] = []
        if any(n in files for n in names):
            self.layout = "per-input"
            self._stacked = _StackedSource(
                path, inputs,
                {n: _load_npy(str(files[n]), mmap=True) for n in names if n in files})
        elif subdirs:
            self.layout = "per-sample-dir"
            for d in subdirs:
                found = {p.stem: p for p in d.iterdir() if p.suffix == ".npy"}
                self._check_names(list(found), str(d))
                self._samples.append({n: found[n] for n in names})
        elif files and len(inputs) == 1:
            self.layout = "per-sample-file"
            for stem in sorted(files):
                self._samples.append({names[0]: files[stem]})
        elif files:
            raise _error(MISSING_INPUT, f"{path} has no '<input>.npy' for the graph inputs "
                         f"{', '.join(names)}", path,
                         "name files after the graph inputs, or use one sub-directory per "
                         "sample")
        else:
            raise _error(EMPTY, f"{path} holds no .npy files", path,
                         "see docs/runtime.md for the directory layouts")

    def __len__(self) -> int:
        return len(self._stacked) if self._stacked is not None else len(self._samples)

    def raw(self, index: int) -> Mapping[str, np.ndarray]:
        if self._stacked is not None:
            return self._stacked.raw(index)
        return {n: self._one(p) for n, p in self._samples[index].items()}

    def _one(self, p: Path) -> np.ndarray:
        return _load_npy(str(p))

    def sample(self, index: int) -> Sample:
        if self._stacked is not None:
            return self._stacked.sample(index)
        raw = self.raw(index)
        out = {}
        for s in self.inputs:
            arr = raw[s.name]
            # A per-sample file may omit a leading batch axis of 1.
            if s.shape is not None and arr.ndim == len(s.shape) - 1 and s.shape[0] in (1, None):
                arr = arr[None]
            out[s.name] = conform(arr, s, index, self.origin(index, s.name))
        return out

    def origin(self, index: int, name: str) -> str:
        if self._stacked is not None:
            return self._stacked.origin(index, name)
        return str(self._samples[index][name])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "layout": self.layout}


class InputListSource(DataSource):
    """QNN ``--input_list`` text file with raw files (spec 004, "Quantizing a Model")."""

    kind = "input_list"

    def __init__(self, path: str, inputs: Sequence[InputSpec]) -> None:
        super().__init__(path, inputs)
        from ..fileio import read_text

        text = read_text(path)
        base = Path(path).resolve().parent
        names = [s.name for s in inputs]
        self._samples: list[dict[str, tuple[Path, Span]]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped:
                continue
            if stripped[0] in "#%":
                self.output_names += stripped[1:].split()
                continue
            self._samples.append(self._parse(line, lineno, names, base))
        if not self._samples:
            raise _error(EMPTY, f"{path} lists no samples", path,
                         "write one line per sample: a raw file, or name:=file entries")

    def _parse(self, line: str, lineno: int, names: list[str],
               base: Path) -> dict[str, tuple[Path, Span]]:
        entries: dict[str, tuple[Path, Span]] = {}
        positional: list[tuple[str, Span]] = []
        col = 0
        for token in line.split():
            col = line.index(token, col) + 1
            span = Span(self.path, lineno, col)
            col += len(token) - 1
            if ":=" in token:
                name, _, file = token.partition(":=")
                if name not in names:
                    raise _error(BAD_LIST, f"'{name}' is not a graph input", span,
                                 did_you_mean(name, names) or f"graph inputs: {', '.join(names)}")
                if name in entries:
                    raise _error(BAD_LIST, f"input '{name}' is given twice on one line", span)
                if not file:
                    raise _error(BAD_LIST, f"no file after '{name}:='", span)
                entries[name] = (self._resolve(file, span, base), span)
            else:
                positional.append((token, span))
        if entries and positional:
            raise _error(BAD_LIST, "a line mixes 'name:=file' entries with plain paths",
                         positional[0][1], "give every input as name:=file")
        if positional:
            if len(positional) != len(names):
                raise _error(BAD_LIST, f"{len(positional)} file(s) on a line for "
                             f"{len(names)} graph input(s)", positional[0][1],
                             "multi-input models need name:=file entries (spec 004)")
            entries = {n: (self._resolve(t, s, base), s)
                       for n, (t, s) in zip(names, positional, strict=True)}
        missing = [n for n in names if n not in entries]
        if missing:
            raise _error(BAD_LIST, f"no file for graph input '{missing[0]}'",
                         Span(self.path, lineno, 1),
                         f"add {missing[0]}:=<file> to every line")
        return entries

    def _resolve(self, file: str, span: Span, base: Path) -> Path:
        p = Path(os.path.expanduser(file))
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise _error(BAD_LIST, f"raw file not found: {file}", span,
                         "paths are relative to the input list's directory")
        return p

    def __len__(self) -> int:
        return len(self._samples)

    def raw(self, index: int) -> Mapping[str, np.ndarray]:
        return {n: self._read(self._samples[index][n], self._spec[n], index)
                for n in self._spec}

    def _read(self, entry: tuple[Path, Span], spec: InputSpec, index: int) -> np.ndarray:
        path, span = entry
        dtype = spec.dtype if spec.dtype is not None else np.dtype(np.float32)
        try:
            data = np.fromfile(path, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise _error(UNREADABLE, f"cannot read {path}: {exc}", span) from None
        shape = _raw_shape(data.size, spec, dtype)
        if shape is None:
            raise _error(BAD_SHAPE, f"sample {index}: {path.name} holds {data.size} {dtype} "
                         f"values, input '{spec.name}' is {_dims(spec.shape)}", span,
                         f"raw files hold the input's {dtype} values in C order")
        return data.reshape(shape)

    def origin(self, index: int, name: str) -> str:
        return str(self._samples[index][name][0])


def _raw_shape(size: int, spec: InputSpec, dtype: np.dtype) -> tuple[int, ...] | None:
    if spec.shape is None:
        return (size,)
    known = [d for d in spec.shape if d is not None]
    unknown = len(spec.shape) - len(known)
    prod = math.prod(known)
    if unknown == 0:
        return tuple(known) if prod == size else None
    if unknown > 1 or prod == 0 or size % prod:
        return None
    fill = size // prod
    return tuple(fill if d is None else d for d in spec.shape)


# ---------------------------------------------------------------------------------------------
# Opening and batching
# ---------------------------------------------------------------------------------------------


def open_data(path: str | os.PathLike[str], inputs: Sequence[InputSpec]) -> DataSource:
    """The data source at ``path`` for a model with graph inputs ``inputs``.

    ``.npz`` -> :class:`NpzSource`; ``.npy`` -> :class:`NpySource`; a directory ->
    :class:`NpyDirSource`; any other file -> QNN ``input_list`` (:class:`InputListSource`).
    Raises E436 when the source holds no samples.
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise _error(NOT_FOUND, f"calibration data not found: {p}", p,
                     "give an .npz, a directory of .npy files or a QNN input_list text file")
    if not inputs:
        raise _error(MISSING_INPUT, "the model has no graph inputs to feed", p)
    src: DataSource
    if os.path.isdir(p):
        src = NpyDirSource(p, inputs)
    elif p.endswith(".npz"):
        src = NpzSource(p, inputs)
    elif p.endswith(".npy"):
        src = NpySource(p, inputs)
    else:
        src = InputListSource(p, inputs)
    if len(src) == 0:
        raise _error(EMPTY, f"{p} holds no samples", p, "calibration needs at least one sample")
    return src


def batch_axis_free(spec: InputSpec) -> bool:
    """True when samples of ``spec`` can be concatenated along axis 0 (symbolic first dim)."""
    return spec.shape is None or (len(spec.shape) > 0 and spec.shape[0] is None)


def batches(source: DataSource, batch_size: int = 1) -> Iterator[Sample]:
    """Samples of ``source`` joined ``batch_size`` at a time along axis 0 (E437).

    Joining needs a symbolic first dimension on every input; with ``batch_size=1`` each sample is
    one batch, whatever the model. The last batch may be smaller.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise _error(BAD_BATCH, f"batch size {batch_size!r} is not a positive integer",
                     hint="use --batch-size 1 or more")
    if batch_size > 1:
        fixed = [s for s in source.inputs if not batch_axis_free(s)]
        if fixed:
            s = fixed[0]
            raise _error(BAD_BATCH, f"graph input '{s.name}' has a fixed first dimension "
                         f"{_dims(s.shape)}; samples cannot be batched", source.path,
                         "use --batch-size 1, or export the model with a dynamic batch axis")
    pending: list[Sample] = []
    for sample in source:
        pending.append(sample)
        if len(pending) == batch_size:
            yield _join(pending)
            pending = []
    if pending:
        yield _join(pending)


def _join(samples: list[Sample]) -> Sample:
    if len(samples) == 1:
        return samples[0]
    return {k: np.concatenate([s[k] for s in samples], axis=0) for k in samples[0]}


def count_batches(source: DataSource, batch_size: int = 1) -> int:
    return -(-len(source) // max(1, batch_size))
