"""The plan: one entry per tensor, every field resolved, with the rule that decided it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .. import ir
from ..errors import Span

PLAN_FORMAT = "quantspec-plan/1"

# Values a field has when no rule sets it.
BUILTIN: dict[str, Any] = {
    "quantized": False,
    "dtype": "int",
    "bits": 8,
    "min_bits": None,
    "symmetric": False,
    "strict_symmetric": False,
    "unsigned_symmetric": False,
    "signed": None,
    "narrow_range": False,
    "per_channel": False,
    "axis": None,
    "block_size": None,
    "scale_type": "float",
    "rounding": "half_even",
    "calibration": ir.Calibration("minmax"),
    "fixed_range": None,
    "encodings": None,
}

PLAN_FIELDS = tuple(f for f in ir.FIELDS if f != "min_bits")


@dataclass(slots=True)  # one per tensor and field: slots make them smaller and faster
class Why:
    rule: str  # "file:line:col" of the winner, or "<builtin>" / a derivation name
    selector: str = ""
    note: str = ""
    shadowed: list[str] = field(default_factory=list)

    def span(self) -> Span | None:
        """The winning rule's position, or None for built-ins and derivations."""
        if ":" not in self.rule:
            return None
        parts = self.rule.rsplit(":", 2)
        try:
            return Span(parts[0], int(parts[1]), int(parts[2]))
        except (ValueError, IndexError):
            return Span(self.rule)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rule": self.rule}
        if self.selector:
            d["selector"] = self.selector
        if self.note:
            d["note"] = self.note
        if self.shadowed:
            d["shadowed"] = self.shadowed
        return d


class Shared(dict):  # type: ignore[type-arg]
    """A read-only dict, shared by the plan entries that the compiler resolved alike.

    Most tensors share their values and ``why`` records with thousands of others (every Conv
    weight outside a layer rule), so the cascade gives them one dict instead of a copy each:
    at 100k nodes the copies were a fifth of the cascade, and their ~100 MB made every later
    pass over the entries slower (benchmarks/RESULTS.md, "Compile"). Writing to one would
    change every entry that holds it, so writes raise; :meth:`Entry.own` gives an entry its
    own, writable dicts."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a plan entry's values and why records are shared with other "
                        "entries: call Entry.own() for writable ones")

    __setitem__ = __delitem__ = __ior__ = _read_only  # type: ignore[assignment]
    pop = popitem = setdefault = update = clear = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:  # copy, deepcopy and pickle rebuild it whole
        return (Shared, (dict(self),))


@dataclass(slots=True)
class Entry:
    """One tensor's resolved settings. ``values`` and ``why`` may be :class:`Shared` with
    other entries (read-only); :meth:`own` makes them this entry's own before a change."""

    name: str
    kind: str
    role: str
    producer: str | None
    consumers: list[str]
    is_model_input: bool
    is_model_output: bool
    shape: list[Any] | None
    values: dict[str, Any] = field(default_factory=dict)
    why: dict[str, Why] = field(default_factory=dict)
    shared_with: list[str] = field(default_factory=list)
    reason: str = ""  # why a tensor is never quantized (non-float, unused, ...)

    def get(self, name: str) -> Any:
        return self.values.get(name, BUILTIN[name])

    def own(self) -> tuple[dict[str, Any], dict[str, Why]]:
        """This entry's values and why, writable: copies of the shared ones on first use."""
        values, why = self.values, self.why
        if type(values) is Shared or type(why) is Shared:
            values = self.values = dict(values)
            why = self.why = dict(why)
        return values, why

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "role": self.role or None,
            "producer": self.producer,
            "consumers": self.consumers,
            "is_model_input": self.is_model_input,
            "is_model_output": self.is_model_output,
            "shape": self.shape,
        }
        values = self.values
        for f in PLAN_FIELDS:
            v = values.get(f, BUILTIN[f])
            # plain scalars as they are (most values): skip _jsonable's isinstance chain
            d[f] = v if type(v) in _PLAIN else _jsonable(v)
        d["signed"] = _signed(self)
        d["shared_with"] = sorted(self.shared_with)
        if self.reason:
            d["not_quantizable"] = self.reason
        d["why"] = {k: w.to_json() for k, w in sorted(self.why.items())}
        return d


def _signed(e: Entry) -> bool:
    s = e.get("signed")
    if s is not None:
        return bool(s)
    return bool(e.get("symmetric")) and not bool(e.get("unsigned_symmetric"))


_PLAIN = frozenset({bool, int, str, type(None)})


def _jsonable(v: Any) -> Any:
    if isinstance(v, ir.Calibration):
        return v.to_json()
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


@dataclass
class Plan:
    entries: list[Entry]
    profile: str
    model: str
    fused: list[dict[str, Any]]
    matches: list[dict[str, Any]]
    transforms: dict[str, Any]
    calibrate: dict[str, Any]
    graph_inputs: list[str]
    graph_outputs: list[str]

    def entry(self, name: str) -> Entry | None:
        for e in self.entries:
            if e.name == name:
                return e
        return None

    def to_json(self) -> dict[str, Any]:
        return self._document([e.to_json() for e in self.entries])

    def _document(self, tensors: Any) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "profile": self.profile,
            "model": self.model,
            "graph": {"inputs": self.graph_inputs, "outputs": self.graph_outputs},
            "transforms": self.transforms,
            "calibrate": self.calibrate,
            "graph_passes": self.fused,
            "fusions": self.matches,
            "summary": self.summary(),
            "tensors": tensors,
        }

    def summary(self) -> dict[str, int]:
        q = [e for e in self.entries if e.get("quantized")]
        return {
            "tensors": len(self.entries),
            "quantized": len(q),
            "per_channel": sum(1 for e in q if e.get("per_channel")),
            "shared_groups": len({tuple(sorted([e.name, *e.shared_with]))
                                  for e in q if e.shared_with}),
        }

    def dumps(self) -> str:
        """The plan as text (docs/plan.md "Layout"): the document indented by one space, and
        each element of a top-level list of objects (``tensors``, ``fusions``,
        ``graph_passes``) on one line. One line per tensor keeps ``grep`` and ``diff`` per
        tensor. The tensor lines are exactly ``json.dumps(entry.to_json())``, written by
        :class:`_EntryWriter` from fragments shared between the entries that hold the same
        value and ``Why`` objects (benchmarks/RESULTS.md); other lists of objects go through
        json's C encoder line by line."""
        enc = json.JSONEncoder(allow_nan=False)  # no indent: the C encoder
        out = ["{\n"]  # one join at the end: a 100k-node plan is ~150 MB of text
        for key, value in self._document(None).items():
            out.append(f" {json.dumps(key)}: " if len(out) == 1 else f",\n {json.dumps(key)}: ")
            if key == "tensors" and self.entries:
                out.append("[\n")
                _EntryWriter(enc).write(self.entries, out)
                out.append("\n ]")
            elif key == "tensors":
                out.append("[]")
            elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
                out.append("[\n" + ",\n".join("  " + enc.encode(x) for x in value) + "\n ]")
            else:  # json strings hold no raw newline: indenting the lines is safe
                out.append(json.dumps(value, indent=1, allow_nan=False).replace("\n", "\n "))
        out.append("\n}\n")
        return "".join(out)


_DEFAULTS = tuple(BUILTIN[f] for f in PLAN_FIELDS)
_SIGNED = PLAN_FIELDS.index("signed"), PLAN_FIELDS.index("symmetric"), \
    PLAN_FIELDS.index("unsigned_symmetric")
_esc = json.encoder.encode_basestring_ascii  # what the encoder writes for a str (ensure_ascii)


class _EntryWriter:
    """``Entry.to_json()`` encoded (json.dumps' default separators, ASCII, no NaN), one line
    per entry, without building the dicts.

    Most of a line is the same for many tensors: entries with one cascade signature hold the
    same :class:`Shared` values and why dicts (resolve._cascade), whose text is found by
    identity; entries with dicts of their own mostly hold the same value objects and ``Why``
    records as others. So the fields from ``quantized`` to ``encodings`` are encoded once per
    set of (field, value object), the ``why`` object once per set of (field, ``Why``
    record), and each ``Why`` once. The keys are field names and object identities: every
    object is alive (held by the plan) while the lines are written, and nothing changes them
    meanwhile, so equal keys mean equal text."""

    def __init__(self, enc: json.JSONEncoder) -> None:
        self.enc = enc.encode
        self.values: dict[tuple[Any, ...], str] = {}
        self.whys: dict[tuple[Any, ...], str] = {}
        self.why: dict[int, str] = {}
        self.shapes: dict[tuple[Any, ...], str] = {}

    def write(self, entries: list[Entry], out: list[str]) -> None:
        """Append the lines of ``entries`` (joined by ",\\n") to ``out``, as fragments."""
        s, enc, add = _esc, self.enc, out.extend
        # text per values dict and per why dict (each is alive and unchanged meanwhile; one
        # empty dict may stand for both)
        values_by_id: dict[int, str] = {}
        why_by_id: dict[int, str] = {}
        sep = "  "  # before each line (a comma and a newline after the first)
        for e in entries:
            name, kind, role, prod, cons = e.name, e.kind, e.role, e.producer, e.consumers
            gi, go, shape, reason = e.is_model_input, e.is_model_output, e.shape, e.reason
            if type(name) is not str or type(kind) is not str or type(role) is not str or \
                    (prod is not None and type(prod) is not str) or type(cons) is not list or \
                    type(gi) is not bool or type(go) is not bool or type(reason) is not str:
                add((sep, enc(e.to_json())))  # made elsewhere
                sep = ",\n  "
                continue
            values = e.values
            middle = values_by_id.get(id(values))  # a dict Shared with earlier entries
            if middle is None:
                vkey = (*values, *map(id, values.values()))
                middle = self.values.get(vkey)
                if middle is None:
                    middle = self.values[vkey] = self._values(
                        tuple(map(values.get, PLAN_FIELDS, _DEFAULTS)))
                values_by_id[id(values)] = middle
            why = e.why
            whys = why_by_id.get(id(why))
            if whys is None:
                wkey = (*why, *map(id, why.values()))
                whys = self.whys.get(wkey)
                if whys is None:
                    whys = self.whys[wkey] = self._whys(why)
                why_by_id[id(why)] = whys
            if shape is None:
                shape_text: str | None = "null"
            else:
                skey = (*shape, *map(type, shape))  # types too: 1 == 1.0 == True
                shape_text = self.shapes.get(skey)
                if shape_text is None:
                    shape_text = self.shapes[skey] = enc(shape)
            shared = e.shared_with
            tail = ', "shared_with": ' + enc(sorted(shared)) if shared else \
                ', "shared_with": []'
            if reason:
                tail += ', "not_quantizable": ' + s(reason)
            add((f'{sep}{{"name": {s(name)}, "kind": {s(kind)}, '
                 f'"role": {s(role) if role else "null"}, '
                 f'"producer": {"null" if prod is None else s(prod)}, '
                 f'"consumers": [{", ".join(map(s, cons))}], '
                 f'"is_model_input": {"true" if gi else "false"}, '
                 f'"is_model_output": {"true" if go else "false"}, "shape": {shape_text}, ',
                 middle, tail, ', "why": ', whys, "}"))
            sep = ",\n  "

    def _values(self, vals: tuple[Any, ...]) -> str:
        d = {f: v if type(v) in _PLAIN else _jsonable(v) for f, v in zip(PLAN_FIELDS, vals,
                                                                     strict=True)}
        i_signed, i_sym, i_uns = _SIGNED
        signed = vals[i_signed]
        d["signed"] = bool(signed) if signed is not None else \
            bool(vals[i_sym]) and not bool(vals[i_uns])  # as _signed
        return self.enc(d)[1:-1]

    def _whys(self, why: dict[str, Why]) -> str:
        parts = []
        for k, w in sorted(why.items()):
            text = self.why.get(id(w))
            if text is None:
                text = self.why[id(w)] = self.enc(w.to_json())
            parts.append(f"{_esc(k)}: {text}")  # keys are field names
        return "{" + ", ".join(parts) + "}"
