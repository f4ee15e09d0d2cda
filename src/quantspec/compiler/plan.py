"""The plan: one entry per tensor, every field resolved, with the rule that decided it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .. import ir

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

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rule": self.rule}
        if self.selector:
            d["selector"] = self.selector
        if self.note:
            d["note"] = self.note
        if self.shadowed:
            d["shadowed"] = self.shadowed
        return d


@dataclass(slots=True)
class Entry:
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
            "tensors": [e.to_json() for e in self.entries],
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
        tensor, and those lines go through json's C encoder (indenting every entry takes the
        pure-Python encoder, 2-3x slower: benchmarks/RESULTS.md)."""
        enc = json.JSONEncoder(allow_nan=False)  # no indent: the C encoder
        parts = []
        for key, value in self.to_json().items():
            if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
                body = "[\n" + ",\n".join("  " + enc.encode(x) for x in value) + "\n ]"
            else:  # json strings hold no raw newline: indenting the lines is safe
                body = json.dumps(value, indent=1, allow_nan=False).replace("\n", "\n ")
            parts.append(f" {json.dumps(key)}: {body}")
        return "{\n" + ",\n".join(parts) + "\n}\n"
